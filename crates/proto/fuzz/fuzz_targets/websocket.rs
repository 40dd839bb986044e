//! The WebSocket frame decoder on arbitrary bytes: never panics, never yields a frame larger
//! than its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phlix_proto::ws::WsDecoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = WsDecoder::new(1 << 16);
    decoder.push(data);
    while let Ok(Some(frame)) = decoder.next_frame() {
        assert!(frame.payload.len() <= 1 << 16);
    }
});
