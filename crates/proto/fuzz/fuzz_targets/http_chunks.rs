//! Fuzzes the HTTP-over-relay decoders (SPEC A.5) with arbitrary frame payloads.
//!
//! Whatever decodes must re-encode to something that decodes to the same value, BODY data must
//! be the payload minus its tag, and a decoded response status must be 100–599.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use phlix_proto::relay_http::{
    self, RequestPayload, ResponsePayload, TAG_END, decode_request, decode_response,
};

fuzz_target!(|data: &[u8]| {
    let payload = Bytes::copy_from_slice(data);
    let rest = data.get(1..).unwrap_or_default();

    match decode_request(&payload) {
        Ok(RequestPayload::Head(head)) => {
            assert!(head.path.starts_with('/'));
            let again = relay_http::encode_request_head(&head);
            assert_eq!(decode_request(&again), Ok(RequestPayload::Head(head)));
        }
        Ok(RequestPayload::Legacy(request)) => {
            assert!(request.head.path.starts_with('/'));
            // Re-encoding may legitimately exceed one frame (e.g. escapes spelled shorter in
            // the input); only a successful encoding has to round-trip.
            if let Ok(again) = relay_http::encode_legacy_request(&request) {
                assert_eq!(decode_request(&again), Ok(RequestPayload::Legacy(request)));
            }
        }
        Ok(RequestPayload::Body(body)) => assert_eq!(&body[..], rest),
        Ok(RequestPayload::End) => assert_eq!(data.first(), Some(&TAG_END)),
        Err(_) => {}
    }

    match decode_response(&payload) {
        Ok(ResponsePayload::Head(head)) => {
            assert!((100..=599).contains(&head.status));
            let again = relay_http::encode_response_head(&head);
            assert_eq!(decode_response(&again), Ok(ResponsePayload::Head(head)));
        }
        Ok(ResponsePayload::Body(body)) => {
            assert_eq!(&body[..], rest);
            let again = relay_http::body_chunk(body.clone());
            assert_eq!(decode_response(&again), Ok(ResponsePayload::Body(body)));
        }
        Ok(ResponsePayload::End) => assert_eq!(data.first(), Some(&TAG_END)),
        Err(_) => {}
    }
});
