//! Property tests of the codecs: encoding then decoding gives the input back, arbitrary splits
//! of a byte stream give the same frames, and arbitrary bytes never panic a decoder.

use bytes::{Bytes, BytesMut};
use phlix_proto::control::parse_hello;
use phlix_proto::frame::{Frame, FrameDecoder, FrameType, MAX_PAYLOAD};
use phlix_proto::relay_http::{self, RequestHead, RequestPayload, ResponseHead, ResponsePayload};
use phlix_proto::ws::{self, Opcode, WsDecoder};
use proptest::prelude::*;

fn frame_type() -> impl Strategy<Value = FrameType> {
    (1u8..=0x12).prop_map(|b| FrameType::try_from(b).unwrap_or(FrameType::Data))
}

fn frame() -> impl Strategy<Value = Frame> {
    (any::<u32>(), frame_type(), prop::collection::vec(any::<u8>(), 0..2048))
        .prop_map(|(id, kind, payload)| Frame::new(id, kind, Bytes::from(payload)).unwrap_or_else(|_| Frame::empty(id, kind)))
}

fn encode(frames: &[Frame]) -> BytesMut {
    let mut wire = BytesMut::new();
    for frame in frames {
        frame.encode_into(&mut wire);
    }
    wire
}

fn decode_all(decoder: &mut FrameDecoder, out: &mut Vec<Frame>) {
    while let Ok(Some(frame)) = decoder.next_frame() {
        out.push(frame);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip_through_any_split(frames in prop::collection::vec(frame(), 0..12), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let wire = encode(&frames);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut out = Vec::new();
        let mut at = 0;
        for point in points.into_iter().chain(std::iter::once(wire.len())) {
            decoder.push(&wire[at..point]);
            at = point;
            decode_all(&mut decoder, &mut out);
        }
        prop_assert_eq!(out, frames);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&bytes);
        let mut out = Vec::new();
        decode_all(&mut decoder, &mut out);
        let _ = decoder.check_overflow();
        let payload = Bytes::from(bytes.clone());
        let _ = relay_http::decode_request(&payload);
        let _ = relay_http::decode_response(&payload);
        let _ = parse_hello(&bytes);
        let mut ws = WsDecoder::new(1 << 16);
        ws.push(&bytes);
        while let Ok(Some(_)) = ws.next_frame() {}
    }

    #[test]
    fn oversized_payloads_are_refused(extra in 1usize..1000) {
        prop_assert!(Frame::new(0, FrameType::Data, Bytes::from(vec![0; MAX_PAYLOAD + extra])).is_err());
    }

    #[test]
    fn request_and_response_heads_round_trip(
        method in "[A-Z]{3,7}",
        path in "/[a-z0-9/._-]{0,40}",
        query in "[a-z0-9=&]{0,20}",
        headers in prop::collection::btree_map("[a-z-]{1,12}", "[ -~]{0,30}", 0..6),
        status in 100u16..600,
        length in prop::option::of(any::<u64>()),
    ) {
        let head = RequestHead { method, path, query, headers: headers.clone() };
        prop_assert_eq!(relay_http::decode_request(&relay_http::encode_request_head(&head)), Ok(RequestPayload::Head(head)));
        let response = ResponseHead { status, headers, body_length: length };
        prop_assert_eq!(relay_http::decode_response(&relay_http::encode_response_head(&response)), Ok(ResponsePayload::Head(response)));
    }

    #[test]
    fn websocket_frames_round_trip_masked_or_not(payload in prop::collection::vec(any::<u8>(), 0..70_000), mask in prop::option::of(any::<[u8; 4]>()), text in any::<bool>()) {
        let opcode = if text { Opcode::Text } else { Opcode::Binary };
        let mut wire = BytesMut::new();
        ws::encode_frame(opcode, &payload, mask, &mut wire);
        let mut decoder = WsDecoder::new(1 << 20);
        decoder.push(&wire);
        let frame = decoder.next_frame().unwrap().unwrap();
        prop_assert_eq!(frame.opcode, opcode);
        prop_assert_eq!(&frame.payload[..], &payload[..]);
    }
}
