//! HTTP-over-relay payloads (SPEC A.5): the legacy JSON request envelope, and the tagged
//! HEAD / BODY / END chunks of requests and responses.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::frame::MAX_PAYLOAD;

/// Chunk tags.
pub const TAG_HEAD: u8 = 0x01;
pub const TAG_BODY: u8 = 0x02;
pub const TAG_END: u8 = 0x03;
/// Largest body slice in one BODY chunk (frame payload minus the tag).
pub const MAX_BODY_CHUNK: usize = 65_534;

/// Method, path, query (without `?`) and headers of a relayed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    /// Always a JSON object, `{}` when empty; values must be strings (SPEC I.18).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The legacy single-frame request (payload starts with `{`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRequest {
    pub head: RequestHead,
    pub body: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct LegacyWire {
    method: String,
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
}

/// A decoded HTTP_REQUEST payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPayload {
    Legacy(LegacyRequest),
    Head(RequestHead),
    Body(Bytes),
    End,
}

/// Status, headers and optional length of a relayed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHead {
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `null` when streaming a body of unknown length; END is the real terminator.
    #[serde(rename = "bodyLength", default)]
    pub body_length: Option<u64>,
}

/// A decoded HTTP_RESPONSE payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsePayload {
    Head(ResponseHead),
    Body(Bytes),
    End,
}

/// Why a payload is not a valid chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    Empty,
    UnknownTag(u8),
    BadJson(String),
    BadPath,
    BadStatus(u16),
    TooLarge(usize),
    BadBase64,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("empty HTTP-over-relay payload"),
            Self::UnknownTag(tag) => write!(f, "unknown chunk tag {tag:#04x}"),
            Self::BadJson(err) => write!(f, "invalid chunk JSON: {err}"),
            Self::BadPath => f.write_str("request path must start with '/'"),
            Self::BadStatus(status) => write!(f, "invalid response status {status}"),
            Self::TooLarge(len) => {
                write!(f, "legacy envelope of {len} bytes exceeds {MAX_PAYLOAD}")
            }
            Self::BadBase64 => f.write_str("legacy body is not base64"),
        }
    }
}

impl std::error::Error for ChunkError {}

fn json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, ChunkError> {
    serde_json::from_slice(data).map_err(|err| ChunkError::BadJson(err.to_string()))
}

fn tagged(tag: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + data.len());
    out.put_u8(tag);
    out.put_slice(data);
    out.freeze()
}

/// Decodes an HTTP_REQUEST payload: `{` → legacy envelope, otherwise a tagged chunk. The HEAD
/// decoder only checks that the path starts with `/` (the full gate runs after reassembly).
///
/// # Errors
/// [`ChunkError`].
pub fn decode_request(payload: &Bytes) -> Result<RequestPayload, ChunkError> {
    let (&first, rest) = payload.split_first().ok_or(ChunkError::Empty)?;
    match first {
        b'{' => {
            let wire: LegacyWire = json(payload)?;
            if !wire.path.starts_with('/') {
                return Err(ChunkError::BadPath);
            }
            let body = STANDARD
                .decode(wire.body.as_bytes())
                .map_err(|_| ChunkError::BadBase64)?;
            Ok(RequestPayload::Legacy(LegacyRequest {
                head: RequestHead {
                    method: wire.method,
                    path: wire.path,
                    query: wire.query,
                    headers: wire.headers,
                },
                body,
            }))
        }
        TAG_HEAD => {
            let head: RequestHead = json(rest)?;
            if !head.path.starts_with('/') {
                return Err(ChunkError::BadPath);
            }
            Ok(RequestPayload::Head(head))
        }
        TAG_BODY => Ok(RequestPayload::Body(payload.slice(1..))),
        TAG_END => Ok(RequestPayload::End),
        other => Err(ChunkError::UnknownTag(other)),
    }
}

/// `[0x01]` + the head as JSON.
#[must_use]
pub fn encode_request_head(head: &RequestHead) -> Bytes {
    tagged(TAG_HEAD, &serde_json::to_vec(head).unwrap_or_default())
}

/// The legacy envelope, refused when it would not fit one frame (the hub answers 413).
///
/// # Errors
/// [`ChunkError::TooLarge`].
pub fn encode_legacy_request(request: &LegacyRequest) -> Result<Bytes, ChunkError> {
    let wire = LegacyWire {
        method: request.head.method.clone(),
        path: request.head.path.clone(),
        query: request.head.query.clone(),
        headers: request.head.headers.clone(),
        body: STANDARD.encode(&request.body),
    };
    let bytes = serde_json::to_vec(&wire).unwrap_or_default();
    if bytes.len() > MAX_PAYLOAD {
        return Err(ChunkError::TooLarge(bytes.len()));
    }
    Ok(Bytes::from(bytes))
}

/// Decodes an HTTP_RESPONSE payload. BODY data is a zero-copy slice.
///
/// # Errors
/// [`ChunkError`] for an empty payload, an unknown tag, bad JSON or a status outside 100–599.
pub fn decode_response(payload: &Bytes) -> Result<ResponsePayload, ChunkError> {
    let (&tag, rest) = payload.split_first().ok_or(ChunkError::Empty)?;
    match tag {
        TAG_HEAD => {
            let head: ResponseHead = json(rest)?;
            if !(100..=599).contains(&head.status) {
                return Err(ChunkError::BadStatus(head.status));
            }
            Ok(ResponsePayload::Head(head))
        }
        TAG_BODY => Ok(ResponsePayload::Body(payload.slice(1..))),
        TAG_END => Ok(ResponsePayload::End),
        other => Err(ChunkError::UnknownTag(other)),
    }
}

/// `[0x01]` + the response head as JSON.
#[must_use]
pub fn encode_response_head(head: &ResponseHead) -> Bytes {
    tagged(TAG_HEAD, &serde_json::to_vec(head).unwrap_or_default())
}

/// `[0x02]` + data (keep data ≤ [`MAX_BODY_CHUNK`]).
#[must_use]
pub fn body_chunk(data: Bytes) -> Bytes {
    tagged(TAG_BODY, &data)
}

/// `[0x03]`.
#[must_use]
pub fn end_chunk() -> Bytes {
    Bytes::from_static(&[TAG_END])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/api/v1/libraries".into(),
            query: "a=1&b=2".into(),
            headers: BTreeMap::from([("accept".into(), "application/json".into())]),
        }
    }

    #[test]
    fn request_chunks_round_trip_and_headers_are_an_object() {
        let encoded = encode_request_head(&RequestHead {
            headers: BTreeMap::new(),
            ..head()
        });
        assert_eq!(encoded[0], TAG_HEAD);
        assert!(String::from_utf8_lossy(&encoded[1..]).contains(r#""headers":{}"#));
        assert_eq!(
            decode_request(&encode_request_head(&head())),
            Ok(RequestPayload::Head(head()))
        );
        assert_eq!(
            decode_request(&body_chunk(Bytes::from_static(b"abc"))),
            Ok(RequestPayload::Body(Bytes::from_static(b"abc")))
        );
        assert_eq!(decode_request(&end_chunk()), Ok(RequestPayload::End));
        assert_eq!(decode_request(&Bytes::new()), Err(ChunkError::Empty));
        assert_eq!(
            decode_request(&Bytes::from_static(&[9])),
            Err(ChunkError::UnknownTag(9))
        );
        let bad_path = tagged(TAG_HEAD, br#"{"method":"GET","path":"x"}"#);
        assert_eq!(decode_request(&bad_path), Err(ChunkError::BadPath));
    }

    #[test]
    fn legacy_envelopes_carry_a_base64_body_and_are_capped() {
        let request = LegacyRequest {
            head: head(),
            body: b"\x00\xffbody".to_vec(),
        };
        let encoded = encode_legacy_request(&request).unwrap();
        assert_eq!(encoded[0], b'{');
        assert_eq!(
            decode_request(&encoded),
            Ok(RequestPayload::Legacy(request))
        );
        let huge = LegacyRequest {
            head: head(),
            body: vec![0; 60_000],
        };
        assert!(matches!(
            encode_legacy_request(&huge),
            Err(ChunkError::TooLarge(_))
        ));
        let bad = Bytes::from_static(br#"{"method":"GET","path":"/","body":"***"}"#);
        assert_eq!(decode_request(&bad), Err(ChunkError::BadBase64));
    }

    #[test]
    fn responses_decode_and_refuse_non_string_headers_and_bad_statuses() {
        let head = ResponseHead {
            status: 200,
            headers: BTreeMap::from([("x".into(), "y".into())]),
            body_length: None,
        };
        let encoded = encode_response_head(&head);
        assert!(String::from_utf8_lossy(&encoded).contains(r#""bodyLength":null"#));
        assert_eq!(decode_response(&encoded), Ok(ResponsePayload::Head(head)));
        assert!(matches!(
            decode_response(&tagged(TAG_HEAD, br#"{"status":200,"headers":{"x":1}}"#)),
            Err(ChunkError::BadJson(_))
        ));
        assert_eq!(
            decode_response(&tagged(TAG_HEAD, br#"{"status":42}"#)),
            Err(ChunkError::BadStatus(42))
        );
        assert_eq!(decode_response(&Bytes::new()), Err(ChunkError::Empty));
        assert_eq!(
            decode_response(&Bytes::from_static(&[0x04])),
            Err(ChunkError::UnknownTag(4))
        );
        assert_eq!(decode_response(&end_chunk()), Ok(ResponsePayload::End));
    }
}
