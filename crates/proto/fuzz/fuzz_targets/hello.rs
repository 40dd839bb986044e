//! Fuzzes `parse_hello` (SPEC A.3) with arbitrary, possibly non-UTF-8 messages.
//!
//! An accepted HELLO has a non-empty server id and survives a re-encode; a refused one always
//! carries one of the four close reasons.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phlix_proto::control::parse_hello;

fuzz_target!(|data: &[u8]| {
    match parse_hello(data) {
        Ok(hello) => {
            assert!(!hello.server_id.is_empty());
            let again = serde_json::json!({
                "type": "hello",
                "server_id": hello.server_id,
                "enrollment_jwt": hello.enrollment_jwt,
            })
            .to_string();
            assert_eq!(parse_hello(again.as_bytes()), Ok(hello));
        }
        Err(err) => assert!(matches!(
            err.reason(),
            "malformed_hello" | "invalid_hello" | "missing_server_id" | "invalid_hello_payload"
        )),
    }
});
