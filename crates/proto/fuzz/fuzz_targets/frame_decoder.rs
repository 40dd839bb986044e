//! Fuzzes `FrameDecoder` with arbitrary bytes fed in arbitrary piece sizes and caps.
//!
//! Beyond "never panics", it checks the decoder's accounting: the frames handed out, re-encoded,
//! are exactly the bytes consumed from the front of the stream; what is not handed out is still
//! buffered; an unknown type byte is reported at the right offset and poisons the decoder.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use phlix_proto::frame::{FrameDecoder, FrameError, FrameType, HEADER_LEN, MAX_PAYLOAD};

fuzz_target!(|data: &[u8]| {
    // Two control bytes: the cap (0 to ~128 KiB in 512-byte steps) and the piece size.
    let Some((&[cap_sel, step_sel], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let cap = usize::from(cap_sel) * 512;
    let step = usize::from(step_sel).max(1);

    let mut decoder = FrameDecoder::new(cap);
    let mut reencoded = BytesMut::new();
    let mut fed = 0;
    for piece in stream.chunks(step) {
        decoder.push(piece);
        fed += piece.len();
        loop {
            let before = reencoded.len();
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.payload.len() <= MAX_PAYLOAD);
                    assert_eq!(FrameType::try_from(frame.kind.as_u8()), Ok(frame.kind));
                    frame.encode_into(&mut reencoded);
                    assert_eq!(&reencoded[before..], &stream[before..reencoded.len()]);
                }
                Ok(None) => break,
                Err(FrameError::UnknownType(kind)) => {
                    assert!(FrameType::try_from(kind).is_err());
                    // The type byte of the header at the front of the stream.
                    assert_eq!(stream.get(before + 4), Some(&kind));
                    assert_eq!(decoder.buffered(), 0);
                    assert!(decoder.is_poisoned());
                    decoder.push(stream);
                    assert_eq!(decoder.buffered(), 0);
                    assert_eq!(decoder.next_frame(), Err(FrameError::UnknownType(kind)));
                    return;
                }
                Err(other) => panic!("next_frame returned {other:?}"),
            }
        }
        assert_eq!(reencoded.len() + decoder.buffered(), fed);
        // After draining, what waits is less than one complete frame.
        assert!(decoder.buffered() < HEADER_LEN + MAX_PAYLOAD);
        match decoder.check_overflow() {
            Ok(()) => assert!(decoder.buffered() <= cap),
            Err(FrameError::BufferOverflow {
                buffered,
                cap: reported,
            }) => {
                assert_eq!((buffered, reported), (decoder.buffered(), cap));
                assert!(buffered > cap);
            }
            Err(other) => panic!("check_overflow returned {other:?}"),
        }
    }
});
