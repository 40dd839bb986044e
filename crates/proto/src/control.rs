//! Control payloads (SPEC A.3): the HELLO / HELLO_ACK handshake text messages and the JSON
//! payloads of CLIENT_CONNECT, CLIENT_DISCONNECT, DISCONNECTED and ERROR frames.
//!
//! HELLO parsing reproduces the PHP hub's checks in its order, so a rejected server gets the
//! same close reason from both implementations.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A server's HELLO, accepted by [`parse_hello`]. The JWT is not verified here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The server id the tunnel claims; non-empty.
    pub server_id: String,
    /// The Ed25519 enrollment JWT whose `server_id` must match (SPEC F.2).
    pub enrollment_jwt: String,
}

/// Why a HELLO is refused; [`HelloError::reason`] is the close reason sent to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// Not JSON, not an object, or not flat: the hub decodes with depth 2, so any object or
    /// array value fails (`malformed_hello`).
    Malformed,
    /// `type` is not the string `"hello"` (`invalid_hello`).
    NotHello,
    /// `server_id` missing, not a string, or empty (`missing_server_id`).
    MissingServerId,
    /// `enrollment_jwt` missing or not a string (`invalid_hello_payload`).
    BadPayload,
}

impl HelloError {
    /// The close reason the hub sends, as the PHP hub spells it.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_hello",
            Self::NotHello => "invalid_hello",
            Self::MissingServerId => "missing_server_id",
            Self::BadPayload => "invalid_hello_payload",
        }
    }
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HelloError {}

/// Parses a HELLO message. The bytes may be anything, including non-UTF-8 (Workerman sends
/// relay traffic in TEXT messages without validating it, SPEC A.6).
///
/// # Errors
/// [`HelloError`], checked in this order: malformed (not JSON, not an object, nested), not a
/// hello, server id, JWT — the first failing check decides the close reason.
pub fn parse_hello(message: &[u8]) -> Result<Hello, HelloError> {
    // serde_json's recursion limit (128) bounds the stack for hostile nesting; anything nested
    // at all is refused below.
    let value: Value = serde_json::from_slice(message).map_err(|_| HelloError::Malformed)?;
    let Value::Object(object) = value else {
        return Err(HelloError::Malformed);
    };
    if object.values().any(|v| v.is_object() || v.is_array()) {
        return Err(HelloError::Malformed);
    }
    if object.get("type").and_then(Value::as_str) != Some("hello") {
        return Err(HelloError::NotHello);
    }
    let server_id = object
        .get("server_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or(HelloError::MissingServerId)?;
    let enrollment_jwt = object
        .get("enrollment_jwt")
        .and_then(Value::as_str)
        .ok_or(HelloError::BadPayload)?;
    Ok(Hello {
        server_id: server_id.to_owned(),
        enrollment_jwt: enrollment_jwt.to_owned(),
    })
}

/// HELLO_ACK, sent as a text message once the HELLO and its JWT are accepted; only then do
/// both sides switch to binary frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HelloAck<'a> {
    /// Always `"hello_ack"`: the server checks it.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Id of the `relay_sessions` row.
    pub relay_session_id: &'a str,
    /// Id of this tunnel.
    pub tunnel_id: &'a str,
}

/// `{"type":"hello_ack","relay_session_id":…,"tunnel_id":…}`.
#[must_use]
pub fn hello_ack(relay_session_id: &str, tunnel_id: &str) -> String {
    // Serialising a struct of strings cannot fail.
    serde_json::to_string(&HelloAck {
        kind: "hello_ack",
        relay_session_id,
        tunnel_id,
    })
    .unwrap_or_default()
}

/// CLIENT_CONNECT payload; the channel id travels in the frame header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConnect {
    /// The mounted client's id (a UUID).
    pub client_id: String,
    /// Observability only; the PHP hub sends `""`.
    #[serde(default)]
    pub session_id: String,
}

/// CLIENT_DISCONNECT payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDisconnect {
    /// The departed client's id.
    pub client_id: String,
}

/// DISCONNECTED payload, sent to each client before its socket closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnected {
    /// The tunnel close reason (`server_closed`, `timeout`, `invalid_frame`, …).
    pub reason: String,
}

/// ERROR payload. Clients read `error`, the Phlix server reads `code` and `message`, so the
/// hub sends all three (SPEC A.3); each may be absent in what a peer sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// Human-readable text, read by clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Machine-readable code, read by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable text, read by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    // These payloads are structs of strings, which always serialise.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// CLIENT_CONNECT payload `{"client_id":…,"session_id":…}`.
#[must_use]
pub fn client_connect(client_id: &str, session_id: &str) -> Bytes {
    json_bytes(&ClientConnect {
        client_id: client_id.to_owned(),
        session_id: session_id.to_owned(),
    })
}

/// CLIENT_DISCONNECT payload `{"client_id":…}`.
#[must_use]
pub fn client_disconnect(client_id: &str) -> Bytes {
    json_bytes(&ClientDisconnect {
        client_id: client_id.to_owned(),
    })
}

/// DISCONNECTED payload `{"reason":…}`.
#[must_use]
pub fn disconnected(reason: &str) -> Bytes {
    json_bytes(&Disconnected {
        reason: reason.to_owned(),
    })
}

/// ERROR payload `{"error":…,"code":…,"message":…}` with `message` = `error`, readable by
/// clients and by the server alike (SPEC A.3).
#[must_use]
pub fn error_payload(error: &str, code: &str) -> Bytes {
    json_bytes(&ErrorPayload {
        error: Some(error.to_owned()),
        code: Some(code.to_owned()),
        message: Some(error.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &[u8]) -> Result<Hello, &'static str> {
        parse_hello(input).map_err(HelloError::reason)
    }

    #[test]
    fn a_valid_hello_is_accepted_in_any_key_order() {
        let expected = Ok(Hello {
            server_id: "s1".into(),
            enrollment_jwt: "a.b.c".into(),
        });
        assert_eq!(
            reason(br#"{"type":"hello","enrollment_jwt":"a.b.c","server_id":"s1"}"#),
            expected
        );
        assert_eq!(
            reason(br#" {"server_id":"s1","extra":5,"enrollment_jwt":"a.b.c","type":"hello"} "#),
            expected
        );
        // An empty JWT passes parsing; verification refuses it later.
        assert!(reason(br#"{"type":"hello","server_id":"s","enrollment_jwt":""}"#).is_ok());
    }

    #[test]
    fn malformed_hellos() {
        let cases: [&[u8]; 11] = [
            b"",
            b"\xff\xfe",
            b"{\"type\":\"hello\",\"server_id\":\"\xff\",\"enrollment_jwt\":\"x\"}",
            b"not json",
            b"[1]",
            b"\"hello\"",
            b"null",
            br#"{"type":"hello","server_id":"s","enrollment_jwt":"x"} trailing"#,
            br#"{"type":"hello","server_id":"s","enrollment_jwt":"x","n":{}}"#,
            br#"{"type":"hello","server_id":"s","enrollment_jwt":"x","n":[]}"#,
            br#"{"type":"hello","server_id":"s","enrollment_jwt":{"a":1}}"#,
        ];
        for input in cases {
            assert_eq!(
                reason(input),
                Err("malformed_hello"),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(reason(deep.as_bytes()), Err("malformed_hello"));
    }

    #[test]
    fn checks_run_in_the_spec_order() {
        let cases: [(&[u8], &str); 10] = [
            // Nesting beats a wrong type.
            (br#"{"type":"hi","n":[1]}"#, "malformed_hello"),
            (
                br#"{"type":"hi","server_id":"s","enrollment_jwt":"x"}"#,
                "invalid_hello",
            ),
            (
                br#"{"type":"Hello","server_id":"s","enrollment_jwt":"x"}"#,
                "invalid_hello",
            ),
            (
                br#"{"server_id":"s","enrollment_jwt":"x"}"#,
                "invalid_hello",
            ),
            (br#"{"type":null}"#, "invalid_hello"),
            // A wrong type beats a missing server id.
            (br#"{"type":1}"#, "invalid_hello"),
            (
                br#"{"type":"hello","server_id":"","enrollment_jwt":"x"}"#,
                "missing_server_id",
            ),
            (
                br#"{"type":"hello","server_id":5,"enrollment_jwt":"x"}"#,
                "missing_server_id",
            ),
            // A missing server id beats a missing JWT.
            (br#"{"type":"hello"}"#, "missing_server_id"),
            (
                br#"{"type":"hello","server_id":"s","enrollment_jwt":null}"#,
                "invalid_hello_payload",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                reason(input),
                Err(expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            reason(br#"{"type":"hello","server_id":"s"}"#),
            Err("invalid_hello_payload")
        );
        assert_eq!(
            reason(br#"{"type":"hello","server_id":"s","enrollment_jwt":7}"#),
            Err("invalid_hello_payload")
        );
        assert_eq!(HelloError::BadPayload.to_string(), "invalid_hello_payload");
    }

    #[test]
    fn control_payloads_have_the_spec_fields() {
        assert_eq!(
            hello_ack("r", "t"),
            r#"{"type":"hello_ack","relay_session_id":"r","tunnel_id":"t"}"#
        );
        assert_eq!(
            &client_connect("c", "")[..],
            br#"{"client_id":"c","session_id":""}"#
        );
        assert_eq!(&client_disconnect("c")[..], br#"{"client_id":"c"}"#);
        assert_eq!(&disconnected("timeout")[..], br#"{"reason":"timeout"}"#);
        assert_eq!(
            &error_payload("Unexpected frame type", "relay.unexpected_frame")[..],
            &br#"{"error":"Unexpected frame type","code":"relay.unexpected_frame","message":"Unexpected frame type"}"#[..]
        );
        // Quotes and control characters are escaped, never spliced.
        let tricky: Disconnected = serde_json::from_slice(&disconnected("a\"b\n")).unwrap();
        assert_eq!(tricky.reason, "a\"b\n");
        // The PHP hub's bare `{"error"}` decodes too.
        let php: ErrorPayload = serde_json::from_slice(br#"{"error":"x"}"#).unwrap();
        assert_eq!((php.error.as_deref(), php.code), (Some("x"), None));
    }
}
