//! The HELLO parser on arbitrary messages: never panics; what it accepts is a flat object with
//! a non-empty server id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phlix_proto::control::parse_hello;

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = parse_hello(data) {
        assert!(!hello.server_id.is_empty());
    }
});
