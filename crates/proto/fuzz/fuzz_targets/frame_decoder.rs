//! The relay frame decoder on arbitrary bytes pushed in arbitrary pieces: it must never panic,
//! and every frame it yields must re-encode to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phlix_proto::frame::{FrameDecoder, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let cut = usize::from(split).min(rest.len());
    let mut decoder = FrameDecoder::new(4096);
    let mut consumed = 0;
    for piece in [&rest[..cut], &rest[cut..]] {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let bytes = frame.to_bytes();
                    assert_eq!(bytes.len(), HEADER_LEN + frame.payload.len());
                    assert_eq!(&bytes[..], &rest[consumed..consumed + bytes.len()]);
                    consumed += bytes.len();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        let _ = decoder.check_overflow();
    }
});
