//! Property tests of the codecs: encoding then decoding gives the input back, arbitrary splits
//! of a byte stream give the same frames, and arbitrary bytes never panic a decoder.
//!
//! Case counts and sizes are kept small enough for the whole crate's tests to finish in a few
//! seconds in debug builds; the fuzz targets in `fuzz/` go deeper.

use bytes::{Bytes, BytesMut};
use phlix_proto::control::{HelloError, parse_hello};
use phlix_proto::frame::{Frame, FrameDecoder, FrameError, FrameType, HEADER_LEN, MAX_PAYLOAD};
use phlix_proto::relay_http::{
    self, LegacyRequest, RequestHead, RequestPayload, ResponseHead, ResponsePayload,
};
use phlix_proto::ws::{self, Opcode, WsDecoder};
use proptest::prelude::*;

fn frame_type() -> impl Strategy<Value = FrameType> {
    let all: Vec<FrameType> = (0..=u8::MAX)
        .filter_map(|b| FrameType::try_from(b).ok())
        .collect();
    prop::sample::select(all)
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn frame_with(max: usize) -> impl Strategy<Value = Frame> {
    (any::<u32>(), frame_type(), payload(max)).prop_map(|(id, kind, payload)| Frame {
        id,
        kind,
        payload: payload.into(),
    })
}

/// Mostly small frames, sometimes one at the maximum size so the u16 edge is exercised.
/// (Struct literals, not `Frame::new`: the sizes are in range by construction.)
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        8 => frame_with(512),
        1 => (any::<u32>(), frame_type(), any::<u8>()).prop_map(|(id, kind, fill)| {
            Frame { id, kind, payload: vec![fill; MAX_PAYLOAD].into() }
        }),
    ]
}

fn encode(frames: &[Frame]) -> BytesMut {
    let mut wire = BytesMut::new();
    for frame in frames {
        frame.encode_into(&mut wire);
    }
    wire
}

fn drain(decoder: &mut FrameDecoder, out: &mut Vec<Frame>) -> Result<(), FrameError> {
    while let Some(frame) = decoder.next_frame()? {
        out.push(frame);
    }
    Ok(())
}

fn headers() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    prop::collection::btree_map("[A-Za-z-]{1,12}", "\\PC{0,30}", 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn one_frame_round_trips(frame in frame_with(2048)) {
        let wire = frame.to_bytes();
        prop_assert_eq!(wire.len(), frame.encoded_len());
        prop_assert_eq!(wire.len(), HEADER_LEN + frame.payload.len());
        let mut decoder = FrameDecoder::new(frame.encoded_len());
        decoder.push(&wire);
        prop_assert_eq!(decoder.next_frame(), Ok(Some(frame)));
        prop_assert_eq!(decoder.next_frame(), Ok(None));
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn any_split_of_a_stream_gives_the_same_frames(
        frames in prop::collection::vec(frame(), 0..10),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wire = encode(&frames);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut decoder = FrameDecoder::new(HEADER_LEN + MAX_PAYLOAD);
        let mut out = Vec::new();
        let mut at = 0;
        for point in points.into_iter().chain(std::iter::once(wire.len())) {
            decoder.push(&wire[at..point]);
            at = point;
            prop_assert_eq!(drain(&mut decoder, &mut out), Ok(()));
            // Whatever waits is less than one frame, so a cap of one maximal frame holds.
            prop_assert_eq!(decoder.check_overflow(), Ok(()));
        }
        prop_assert_eq!(out, frames);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        cap in 0usize..2048,
    ) {
        let mut decoder = FrameDecoder::new(cap);
        for piece in bytes.chunks(97) {
            decoder.push(piece);
            let mut out = Vec::new();
            if let Err(err) = drain(&mut decoder, &mut out) {
                prop_assert!(matches!(err, FrameError::UnknownType(_)));
                prop_assert_eq!(decoder.buffered(), 0);
            }
            for frame in out {
                prop_assert!(frame.payload.len() <= MAX_PAYLOAD);
            }
            let _ = decoder.check_overflow();
        }
        let payload = Bytes::from(bytes.clone());
        match relay_http::decode_request(&payload) {
            Ok(RequestPayload::Body(body)) => prop_assert_eq!(&body[..], &bytes[1..]),
            Ok(RequestPayload::Head(head)) => prop_assert!(head.path.starts_with('/')),
            Ok(RequestPayload::Legacy(request)) => prop_assert!(request.head.path.starts_with('/')),
            Ok(RequestPayload::End) | Err(_) => {}
        }
        if let Ok(ResponsePayload::Head(head)) = relay_http::decode_response(&payload) {
            prop_assert!((100..=599).contains(&head.status));
        }
        if let Ok(hello) = parse_hello(&bytes) {
            prop_assert!(!hello.server_id.is_empty());
        }
        let mut ws = WsDecoder::new(1 << 16);
        ws.push(&bytes);
        while let Ok(Some(_)) = ws.next_frame() {}
    }

    #[test]
    fn chunk_like_bytes_never_panic_the_chunk_decoders(
        tag in 0u8..5,
        json in "\\{(\"[a-zA-Z]{1,8}\":(\"\\PC{0,8}\"|[0-9]{1,6}|null|\\{\\}|\\[\\]),?){0,5}\\}",
    ) {
        let mut payload = vec![tag];
        payload.extend_from_slice(json.as_bytes());
        let payload = Bytes::from(payload);
        let _ = relay_http::decode_request(&payload);
        let _ = relay_http::decode_response(&payload);
        let _ = relay_http::decode_request(&Bytes::from(json.clone()));
        let _ = parse_hello(json.as_bytes());
    }

    #[test]
    fn hello_like_objects_get_a_reason(
        kind in prop::option::of(prop_oneof![Just("\"hello\"".to_owned()), "\"[a-z]{0,6}\"", Just("1".to_owned())]),
        server_id in prop::option::of(prop_oneof!["\"[a-z0-9-]{0,8}\"", Just("null".to_owned())]),
        jwt in prop::option::of(prop_oneof!["\"[a-zA-Z0-9.]{0,12}\"", Just("[]".to_owned())]),
    ) {
        let mut fields = Vec::new();
        for (name, value) in [("type", &kind), ("server_id", &server_id), ("enrollment_jwt", &jwt)] {
            if let Some(value) = value {
                fields.push(format!("\"{name}\":{value}"));
            }
        }
        let message = format!("{{{}}}", fields.join(","));
        match parse_hello(message.as_bytes()) {
            Ok(hello) => {
                prop_assert_eq!(kind.as_deref(), Some("\"hello\""));
                prop_assert_eq!(format!("\"{}\"", hello.server_id), server_id.unwrap_or_default());
            }
            Err(err) => prop_assert!(matches!(
                err.reason(),
                "malformed_hello" | "invalid_hello" | "missing_server_id" | "invalid_hello_payload"
            )),
        }
        if jwt.as_deref() == Some("[]") {
            prop_assert_eq!(parse_hello(message.as_bytes()), Err(HelloError::Malformed));
        }
    }

    #[test]
    fn oversized_payloads_are_refused(extra in 1usize..1000) {
        prop_assert_eq!(
            Frame::new(0, FrameType::Data, Bytes::from(vec![0; MAX_PAYLOAD + extra])),
            Err(FrameError::PayloadTooLarge(MAX_PAYLOAD + extra))
        );
    }

    #[test]
    fn request_and_response_heads_round_trip(
        method in "[A-Z]{3,7}",
        path in "/\\PC{0,40}",
        query in "\\PC{0,20}",
        headers in headers(),
        status in 100u16..600,
        length in prop::option::of(any::<u64>()),
    ) {
        let head = RequestHead { method, path, query, headers: headers.clone() };
        prop_assert_eq!(
            relay_http::decode_request(&relay_http::encode_request_head(&head)),
            Ok(RequestPayload::Head(head))
        );
        let response = ResponseHead { status, headers, body_length: length };
        prop_assert_eq!(
            relay_http::decode_response(&relay_http::encode_response_head(&response)),
            Ok(ResponsePayload::Head(response))
        );
    }

    #[test]
    fn legacy_requests_and_body_chunks_round_trip(
        path in "/[a-z0-9/._-]{0,40}",
        headers in headers(),
        body in payload(4096),
    ) {
        let request = LegacyRequest {
            head: RequestHead { method: "POST".into(), path, query: String::new(), headers },
            body: body.clone(),
        };
        let encoded = relay_http::encode_legacy_request(&request).unwrap();
        prop_assert!(encoded.len() <= MAX_PAYLOAD);
        prop_assert_eq!(relay_http::decode_request(&encoded), Ok(RequestPayload::Legacy(request)));
        let chunk = relay_http::body_chunk(Bytes::from(body.clone()));
        prop_assert_eq!(
            relay_http::decode_request(&chunk),
            Ok(RequestPayload::Body(Bytes::from(body.clone())))
        );
        prop_assert_eq!(relay_http::decode_response(&chunk), Ok(ResponsePayload::Body(Bytes::from(body))));
    }

    #[test]
    fn websocket_frames_round_trip_masked_or_not(payload in payload(70_000), mask in prop::option::of(any::<[u8; 4]>()), text in any::<bool>()) {
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
