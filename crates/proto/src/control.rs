//! Control payloads (SPEC A.3): HELLO / HELLO_ACK text messages and the JSON payloads of
//! CLIENT_CONNECT, CLIENT_DISCONNECT, DISCONNECTED and ERROR frames.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

/// A server's HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub server_id: String,
    pub enrollment_jwt: String,
}

/// Why a HELLO is refused; [`HelloError::reason`] is the close reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// Not JSON, not an object, or not flat (the hub decodes with depth 2).
    Malformed,
    /// `type` is not `"hello"`.
    NotHello,
    /// `server_id` missing, not a string, or empty.
    MissingServerId,
    /// `enrollment_jwt` missing or not a string.
    BadPayload,
}

impl HelloError {
    /// The close reason the hub sends.
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

/// Parses a HELLO message (bytes, maybe not UTF-8).
///
/// # Errors
/// [`HelloError`], checked in this order: malformed, not a hello, server id, payload.
pub fn parse_hello(message: &[u8]) -> Result<Hello, HelloError> {
    let value: Value = serde_json::from_slice(message).map_err(|_| HelloError::Malformed)?;
    let object = value.as_object().ok_or(HelloError::Malformed)?;
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

/// HELLO_ACK, sent as a text message.
#[derive(Debug, Serialize)]
pub struct HelloAck<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub relay_session_id: &'a str,
    pub tunnel_id: &'a str,
}

/// `{"type":"hello_ack","relay_session_id","tunnel_id"}`.
#[must_use]
pub fn hello_ack(relay_session_id: &str, tunnel_id: &str) -> String {
    serde_json::to_string(&HelloAck {
        kind: "hello_ack",
        relay_session_id,
        tunnel_id,
    })
    .unwrap_or_default()
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// CLIENT_CONNECT payload `{"client_id","session_id"}`.
#[must_use]
pub fn client_connect(client_id: &str, session_id: &str) -> Bytes {
    json_bytes(&serde_json::json!({"client_id": client_id, "session_id": session_id}))
}

/// CLIENT_DISCONNECT payload `{"client_id"}`.
#[must_use]
pub fn client_disconnect(client_id: &str) -> Bytes {
    json_bytes(&serde_json::json!({"client_id": client_id}))
}

/// DISCONNECTED payload `{"reason"}`.
#[must_use]
pub fn disconnected(reason: &str) -> Bytes {
    json_bytes(&serde_json::json!({"reason": reason}))
}

/// ERROR payload readable by clients (`error`) and by the server (`code`, `message`).
#[must_use]
pub fn error_payload(error: &str, code: &str) -> Bytes {
    json_bytes(&serde_json::json!({"error": error, "code": code, "message": error}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_are_checked_in_the_spec_order() {
        let ok = br#"{"type":"hello","enrollment_jwt":"a.b.c","server_id":"s1"}"#;
        assert_eq!(
            parse_hello(ok),
            Ok(Hello {
                server_id: "s1".into(),
                enrollment_jwt: "a.b.c".into()
            })
        );
        let cases: [(&[u8], &str); 8] = [
            (b"\xff\xfe", "malformed_hello"),
            (b"[1]", "malformed_hello"),
            (
                br#"{"type":"hello","server_id":"s","enrollment_jwt":"x","n":{"a":1}}"#,
                "malformed_hello",
            ),
            (
                br#"{"type":"hello","server_id":"s","enrollment_jwt":"x","n":[1]}"#,
                "malformed_hello",
            ),
            (
                br#"{"type":"hi","server_id":"s","enrollment_jwt":"x"}"#,
                "invalid_hello",
            ),
            (
                br#"{"type":"hello","server_id":"","enrollment_jwt":"x"}"#,
                "missing_server_id",
            ),
            (
                br#"{"type":"hello","server_id":5,"enrollment_jwt":"x"}"#,
                "missing_server_id",
            ),
            (
                br#"{"type":"hello","server_id":"s","enrollment_jwt":null}"#,
                "invalid_hello_payload",
            ),
        ];
        for (input, reason) in cases {
            assert_eq!(
                parse_hello(input).map_err(HelloError::reason),
                Err(reason),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
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
        let error: Value =
            serde_json::from_slice(&error_payload("Unexpected frame type", "x")).unwrap();
        assert_eq!(error["error"], "Unexpected frame type");
        assert_eq!(error["message"], "Unexpected frame type");
    }
}
