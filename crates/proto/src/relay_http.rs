//! HTTP-over-relay payloads (SPEC A.5): the legacy single-frame JSON request envelope, and the
//! tagged HEAD / BODY / END chunks of requests and responses carried in HTTP_REQUEST (0x10) and
//! HTTP_RESPONSE (0x11) frames.
//!
//! Decoders take the frame payload as [`Bytes`] so BODY data is handed on as a slice of it,
//! without copying. Header maps are JSON objects with string values on the wire, also when empty
//! (SPEC I.18); anything else is refused rather than coerced.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::frame::MAX_PAYLOAD;

/// Chunk tag of a HEAD: JSON head follows.
pub const TAG_HEAD: u8 = 0x01;
/// Chunk tag of a BODY: raw body bytes follow.
pub const TAG_BODY: u8 = 0x02;
/// Chunk tag of an END: nothing follows; it terminates the request or response.
pub const TAG_END: u8 = 0x03;
/// Largest body slice in one BODY chunk: a frame payload minus the tag byte.
pub const MAX_BODY_CHUNK: usize = MAX_PAYLOAD - 1;

/// Method, path, query and headers of a relayed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHead {
    /// HTTP method as sent by the client; the server validates it after reassembly.
    pub method: String,
    /// Request path; the decoder only checks that it starts with `/`.
    pub path: String,
    /// Query string without the leading `?`, empty when absent.
    #[serde(default)]
    pub query: String,
    /// Always a JSON object, `{}` when empty; values must be strings (SPEC I.18).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The legacy single-frame request: the payload starts with `{` and carries the body as
/// standard base64 (SPEC A.5 form 1). Still accepted because older hubs send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRequest {
    /// Method, path, query and headers.
    pub head: RequestHead,
    /// The raw (decoded) body.
    pub body: Vec<u8>,
}

/// The legacy envelope as decoded.
#[derive(Deserialize)]
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

/// The legacy envelope as encoded, borrowing the request.
#[derive(Serialize)]
struct LegacyWireRef<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a BTreeMap<String, String>,
    body: String,
}

/// A decoded HTTP_REQUEST payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPayload {
    /// A whole request in one frame (payload starts with `{`).
    Legacy(LegacyRequest),
    /// The first chunk of a chunked request.
    Head(RequestHead),
    /// A slice of the body; shares the frame payload.
    Body(Bytes),
    /// The request is complete.
    End,
}

/// Status, headers and optional length of a relayed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHead {
    /// HTTP status, 100–599 (the decoder refuses anything else).
    pub status: u16,
    /// Response headers; values must be strings (SPEC I.18).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `null` when streaming a body of unknown length; END is the real terminator either way.
    #[serde(rename = "bodyLength", default)]
    pub body_length: Option<u64>,
}

/// A decoded HTTP_RESPONSE payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsePayload {
    /// Status and headers; comes first.
    Head(ResponseHead),
    /// A slice of the body; shares the frame payload.
    Body(Bytes),
    /// The response is complete.
    End,
}

/// Why a payload is not a valid HTTP-over-relay chunk or envelope. The hub logs and drops such
/// a response frame (SPEC A.5); it never closes the tunnel for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The payload has no tag byte.
    Empty,
    /// A first byte that is neither a tag nor (for requests) `{`.
    UnknownTag(u8),
    /// The HEAD or envelope is not the expected JSON (including non-string header values).
    BadJson(String),
    /// The request path does not start with `/`.
    BadPath,
    /// A response status outside 100–599.
    BadStatus(u16),
    /// A legacy envelope over [`MAX_PAYLOAD`] bytes (the hub answers 413 instead).
    TooLarge(usize),
    /// The legacy `body` is not standard base64.
    BadBase64,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// `[tag]` + the value as JSON, written straight into the frame payload buffer.
fn tagged_json<T: Serialize>(tag: u8, value: &T) -> Bytes {
    let mut out = BytesMut::with_capacity(256).writer();
    out.get_mut().put_u8(tag);
    // Only maps with non-string keys or failing `Serialize` impls can fail; these types have
    // neither, and a failure still leaves a payload the peer refuses rather than a panic.
    let _ = serde_json::to_writer(&mut out, value);
    out.into_inner().freeze()
}

/// Decodes an HTTP_REQUEST payload: a first byte `{` means the legacy envelope, anything else is
/// a tagged chunk. The HEAD decoder only checks that the path starts with `/`: the full safety
/// gate runs on the reassembled request.
///
/// # Errors
/// [`ChunkError`]: empty payload, unknown tag, bad JSON, bad path or (legacy) bad base64.
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

/// `[0x01]` + `{"method","path","query","headers"}`; `headers` is always an object, `{}` when
/// empty, because PHP peers cast it (SPEC I.18).
#[must_use]
pub fn encode_request_head(head: &RequestHead) -> Bytes {
    tagged_json(TAG_HEAD, head)
}

/// The legacy envelope `{"method","path","query","headers","body":"<base64>"}`, refused when it
/// would not fit one frame (the hub answers 413 `relay.request_too_large` instead).
///
/// # Errors
/// [`ChunkError::TooLarge`].
pub fn encode_legacy_request(request: &LegacyRequest) -> Result<Bytes, ChunkError> {
    // Base64 grows the body by 4/3: refuse early instead of encoding megabytes to throw away.
    let body_b64_len = request.body.len().div_ceil(3).saturating_mul(4);
    if body_b64_len > MAX_PAYLOAD {
        return Err(ChunkError::TooLarge(body_b64_len));
    }
    let wire = LegacyWireRef {
        method: &request.head.method,
        path: &request.head.path,
        query: &request.head.query,
        headers: &request.head.headers,
        body: STANDARD.encode(&request.body),
    };
    let bytes = serde_json::to_vec(&wire).unwrap_or_default();
    if bytes.len() > MAX_PAYLOAD {
        return Err(ChunkError::TooLarge(bytes.len()));
    }
    Ok(Bytes::from(bytes))
}

/// Decodes an HTTP_RESPONSE payload (always tagged). BODY data is a zero-copy slice of
/// `payload`.
///
/// # Errors
/// [`ChunkError`]: empty payload, unknown tag, bad JSON or a status outside 100–599.
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

/// `[0x01]` + `{"status","headers","bodyLength"}` (`bodyLength` is `null` when unknown).
#[must_use]
pub fn encode_response_head(head: &ResponseHead) -> Bytes {
    tagged_json(TAG_HEAD, head)
}

/// `[0x02]` + data, for requests and responses alike. The caller keeps `data` within
/// [`MAX_BODY_CHUNK`] so the chunk fits one frame; the data is copied once, behind the tag.
#[must_use]
pub fn body_chunk(data: Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + data.len());
    out.put_u8(TAG_BODY);
    out.put_slice(&data);
    out.freeze()
}

/// `[0x03]`, for requests and responses alike.
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
            headers: BTreeMap::from([("Accept".into(), "application/json".into())]),
        }
    }

    fn with_tag(tag: u8, json: &[u8]) -> Bytes {
        let mut out = vec![tag];
        out.extend_from_slice(json);
        out.into()
    }

    #[test]
    fn request_head_is_tagged_json_with_an_object_for_headers() {
        let empty = RequestHead {
            headers: BTreeMap::new(),
            ..head()
        };
        let encoded = encode_request_head(&empty);
        assert_eq!(
            &encoded[..],
            &b"\x01{\"method\":\"GET\",\"path\":\"/api/v1/libraries\",\"query\":\"a=1&b=2\",\"headers\":{}}"[..]
        );
        assert_eq!(
            decode_request(&encode_request_head(&head())),
            Ok(RequestPayload::Head(head()))
        );
        // `query` and `headers` may be left out.
        assert_eq!(
            decode_request(&with_tag(TAG_HEAD, br#"{"method":"GET","path":"/"}"#)),
            Ok(RequestPayload::Head(RequestHead {
                method: "GET".into(),
                path: "/".into(),
                query: String::new(),
                headers: BTreeMap::new(),
            }))
        );
    }

    #[test]
    fn request_body_end_and_bad_chunks() {
        let chunk = body_chunk(Bytes::from_static(b"abc"));
        assert_eq!(&chunk[..], b"\x02abc");
        assert_eq!(
            decode_request(&chunk),
            Ok(RequestPayload::Body(Bytes::from_static(b"abc")))
        );
        assert_eq!(&end_chunk()[..], &[TAG_END]);
        assert_eq!(decode_request(&end_chunk()), Ok(RequestPayload::End));
        assert_eq!(decode_request(&Bytes::new()), Err(ChunkError::Empty));
        assert_eq!(
            decode_request(&Bytes::from_static(&[9])),
            Err(ChunkError::UnknownTag(9))
        );
        // The HEAD decoder checks only the leading slash; `//x` and `..` pass here.
        let bad_path = with_tag(TAG_HEAD, br#"{"method":"GET","path":"x"}"#);
        assert_eq!(decode_request(&bad_path), Err(ChunkError::BadPath));
        let lax = with_tag(TAG_HEAD, br#"{"method":"get","path":"//../x"}"#);
        assert!(matches!(decode_request(&lax), Ok(RequestPayload::Head(_))));
        assert!(matches!(
            decode_request(&with_tag(TAG_HEAD, b"not json")),
            Err(ChunkError::BadJson(_))
        ));
        assert_eq!(MAX_BODY_CHUNK + 1, MAX_PAYLOAD);
    }

    #[test]
    fn the_first_byte_tells_legacy_envelopes_from_chunks() {
        let legacy = Bytes::from_static(br#"{"method":"POST","path":"/x","body":"aGk="}"#);
        assert!(matches!(
            decode_request(&legacy),
            Ok(RequestPayload::Legacy(LegacyRequest { body, .. })) if body == b"hi"
        ));
        // The same JSON behind a HEAD tag is a chunk; leading whitespace is neither.
        let head = with_tag(TAG_HEAD, br#"{"method":"POST","path":"/x"}"#);
        assert!(matches!(decode_request(&head), Ok(RequestPayload::Head(_))));
        let spaced = Bytes::from_static(br#" {"method":"GET","path":"/"}"#);
        assert_eq!(decode_request(&spaced), Err(ChunkError::UnknownTag(b' ')));
        // Responses have no legacy form.
        let json = Bytes::from_static(br#"{"status":200}"#);
        assert_eq!(decode_response(&json), Err(ChunkError::UnknownTag(b'{')));
    }

    #[test]
    fn legacy_envelopes_carry_a_base64_body_and_are_capped() {
        let request = LegacyRequest {
            head: head(),
            body: b"\x00\xffbody".to_vec(),
        };
        let encoded = encode_legacy_request(&request).unwrap();
        assert_eq!(
            &encoded[..],
            &br#"{"method":"GET","path":"/api/v1/libraries","query":"a=1&b=2","headers":{"Accept":"application/json"},"body":"AP9ib2R5"}"#[..]
        );
        assert_eq!(
            decode_request(&encoded),
            Ok(RequestPayload::Legacy(request))
        );
        let empty_headers = LegacyRequest {
            head: RequestHead {
                headers: BTreeMap::new(),
                ..head()
            },
            body: Vec::new(),
        };
        let encoded = encode_legacy_request(&empty_headers).unwrap();
        assert!(encoded.ends_with(br#""headers":{},"body":""}"#));
        // Near the limit: 49 000 body bytes fit (65 336 base64 chars), 49 100 do not.
        let fits = LegacyRequest {
            head: head(),
            body: vec![0; 49_000],
        };
        assert!(encode_legacy_request(&fits).unwrap().len() <= MAX_PAYLOAD);
        for size in [49_100, 60_000, 10_000_000] {
            let huge = LegacyRequest {
                head: head(),
                body: vec![0; size],
            };
            assert!(matches!(
                encode_legacy_request(&huge),
                Err(ChunkError::TooLarge(len)) if len > MAX_PAYLOAD
            ));
        }
        let bad = Bytes::from_static(br#"{"method":"GET","path":"/","body":"***"}"#);
        assert_eq!(decode_request(&bad), Err(ChunkError::BadBase64));
        let url_safe = Bytes::from_static(br#"{"method":"GET","path":"/","body":"-_8="}"#);
        assert_eq!(decode_request(&url_safe), Err(ChunkError::BadBase64));
        let no_slash = Bytes::from_static(br#"{"method":"GET","path":"api","body":""}"#);
        assert_eq!(decode_request(&no_slash), Err(ChunkError::BadPath));
    }

    #[test]
    fn non_string_header_values_are_refused() {
        for headers in [
            r#"{"x":1}"#,
            r#"{"x":null}"#,
            r#"{"x":["a"]}"#,
            "[]",
            "null",
        ] {
            let request = format!(r#"{{"method":"GET","path":"/","headers":{headers}}}"#);
            assert!(
                matches!(
                    decode_request(&with_tag(TAG_HEAD, request.as_bytes())),
                    Err(ChunkError::BadJson(_))
                ),
                "request head with {headers}"
            );
            assert!(
                matches!(
                    decode_request(&Bytes::from(request)),
                    Err(ChunkError::BadJson(_))
                ),
                "legacy envelope with {headers}"
            );
            let response = format!(r#"{{"status":200,"headers":{headers}}}"#);
            assert!(
                matches!(
                    decode_response(&with_tag(TAG_HEAD, response.as_bytes())),
                    Err(ChunkError::BadJson(_))
                ),
                "response head with {headers}"
            );
        }
    }

    #[test]
    fn response_heads_round_trip_and_statuses_are_checked() {
        let head = ResponseHead {
            status: 200,
            headers: BTreeMap::from([("content-type".into(), "text/plain".into())]),
            body_length: None,
        };
        let encoded = encode_response_head(&head);
        assert_eq!(
            &encoded[..],
            &b"\x01{\"status\":200,\"headers\":{\"content-type\":\"text/plain\"},\"bodyLength\":null}"[..]
        );
        assert_eq!(decode_response(&encoded), Ok(ResponsePayload::Head(head)));
        assert_eq!(
            decode_response(&with_tag(TAG_HEAD, br#"{"status":204,"bodyLength":0}"#)),
            Ok(ResponsePayload::Head(ResponseHead {
                status: 204,
                headers: BTreeMap::new(),
                body_length: Some(0),
            }))
        );
        for status in [100, 599] {
            let json = format!(r#"{{"status":{status}}}"#);
            assert!(decode_response(&with_tag(TAG_HEAD, json.as_bytes())).is_ok());
        }
        for status in [0, 42, 99, 600, 65_535] {
            let json = format!(r#"{{"status":{status}}}"#);
            assert_eq!(
                decode_response(&with_tag(TAG_HEAD, json.as_bytes())),
                Err(ChunkError::BadStatus(status))
            );
        }
        for json in [&br#"{"status":70000}"#[..], br#"{"status":"200"}"#, b"{}"] {
            assert!(matches!(
                decode_response(&with_tag(TAG_HEAD, json)),
                Err(ChunkError::BadJson(_))
            ));
        }
        assert!(matches!(
            decode_response(&with_tag(TAG_HEAD, br#"{"status":200,"bodyLength":-1}"#)),
            Err(ChunkError::BadJson(_))
        ));
    }

    #[test]
    fn response_body_is_a_zero_copy_slice_and_bad_tags_are_refused() {
        let payload = body_chunk(Bytes::from_static(b"media bytes"));
        let Ok(ResponsePayload::Body(data)) = decode_response(&payload) else {
            panic!("not a body chunk");
        };
        assert_eq!(&data[..], b"media bytes");
        assert_eq!(data.as_ptr(), payload[1..].as_ptr(), "shares the payload");
        assert_eq!(
            decode_response(&Bytes::from_static(&[TAG_BODY])),
            Ok(ResponsePayload::Body(Bytes::new()))
        );
        assert_eq!(decode_response(&end_chunk()), Ok(ResponsePayload::End));
        assert_eq!(decode_response(&Bytes::new()), Err(ChunkError::Empty));
        for tag in [0x00, 0x04, 0xFF] {
            assert_eq!(
                decode_response(&Bytes::from(vec![tag, 1, 2])),
                Err(ChunkError::UnknownTag(tag))
            );
        }
    }
}
