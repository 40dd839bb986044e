//! HTTP-over-relay chunk decoders on arbitrary payloads: never panic; decoded heads re-encode
//! and decode to themselves.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use phlix_proto::relay_http::{self, RequestPayload, ResponsePayload};

fuzz_target!(|data: &[u8]| {
    let payload = Bytes::copy_from_slice(data);
    if let Ok(RequestPayload::Head(head)) = relay_http::decode_request(&payload) {
        let again = relay_http::decode_request(&relay_http::encode_request_head(&head));
        assert_eq!(again, Ok(RequestPayload::Head(head)));
    }
    if let Ok(ResponsePayload::Head(head)) = relay_http::decode_response(&payload) {
        let again = relay_http::decode_response(&relay_http::encode_response_head(&head));
        assert_eq!(again, Ok(ResponsePayload::Head(head)));
    }
});
