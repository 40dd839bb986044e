//! The relay frame (SPEC A.1, A.2): a 7-byte header — u32 channel/request id, u8 type, u16
//! payload length, all big-endian — and up to 65 535 payload bytes.
//!
//! Frames form a byte stream across WebSocket messages: one message may carry several frames and
//! one frame may span several messages. [`FrameDecoder`] reassembles them and hands out payloads
//! that share the receive buffer instead of copying it. No input can make this module panic.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Size of the frame header: u32 id, u8 type, u16 payload length.
pub const HEADER_LEN: usize = 7;
/// Largest payload a frame can carry (the u16 length field); the encoder refuses more.
pub const MAX_PAYLOAD: usize = 65_535;
/// The hub's per-tunnel decode buffer cap (SPEC A.1): 128 KiB, room for any complete frame.
pub const DEFAULT_DECODE_CAP: usize = 128 * 1024;

// A frame of the maximum size must be able to complete within the default cap.
const _: () = assert!(DEFAULT_DECODE_CAP >= HEADER_LEN + MAX_PAYLOAD);

/// Frame types 0x01–0x12 (SPEC A.2); any other byte is a fatal decode error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Server → hub handshake; in practice a JSON text message, never binary-framed.
    Hello = 0x01,
    /// Hub → server handshake answer; a JSON text message, never binary-framed.
    HelloAck = 0x02,
    /// Hub → server: a client mounted on the channel in the id field.
    ClientConnect = 0x03,
    /// Hub → server: the client of that channel went away.
    ClientDisconnect = 0x04,
    /// Opaque bytes of one channel, in either direction.
    Data = 0x05,
    /// Tunnel keep-alive (id 0, empty payload), both ways.
    Heartbeat = 0x06,
    /// Hub → client: the tunnel died; payload `{"reason"}`.
    Disconnected = 0x07,
    /// Hub → client (or server): payload `{"error","code","message"}`.
    Error = 0x08,
    /// Federation: leaf hub → master hub.
    HubHello = 0x09,
    /// Federation: master → leaf.
    HubHelloAck = 0x0A,
    /// Federation keep-alive.
    HubHeartbeat = 0x0B,
    /// Federation: master → leaf.
    LibraryShareUpdate = 0x0C,
    /// Federation: master → leaf.
    LibraryShareRevoked = 0x0D,
    /// Federation: master → leaf.
    AdminDelegation = 0x0E,
    /// Federation: clean close.
    HubDisconnected = 0x0F,
    /// Hub → server: a legacy envelope or a tagged request chunk (SPEC A.5).
    HttpRequest = 0x10,
    /// Server → hub: a tagged response chunk (SPEC A.5).
    HttpResponse = 0x11,
    /// Abandons a relayed request (hub → server), or marks it done (server → hub).
    HttpCancel = 0x12,
}

impl TryFrom<u8> for FrameType {
    type Error = FrameError;

    /// The type for a header byte; [`FrameError::UnknownType`] outside 0x01–0x12.
    fn try_from(value: u8) -> Result<Self, FrameError> {
        Ok(match value {
            0x01 => Self::Hello,
            0x02 => Self::HelloAck,
            0x03 => Self::ClientConnect,
            0x04 => Self::ClientDisconnect,
            0x05 => Self::Data,
            0x06 => Self::Heartbeat,
            0x07 => Self::Disconnected,
            0x08 => Self::Error,
            0x09 => Self::HubHello,
            0x0A => Self::HubHelloAck,
            0x0B => Self::HubHeartbeat,
            0x0C => Self::LibraryShareUpdate,
            0x0D => Self::LibraryShareRevoked,
            0x0E => Self::AdminDelegation,
            0x0F => Self::HubDisconnected,
            0x10 => Self::HttpRequest,
            0x11 => Self::HttpResponse,
            0x12 => Self::HttpCancel,
            other => return Err(FrameError::UnknownType(other)),
        })
    }
}

impl FrameType {
    /// The type byte written in the header.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// HEARTBEAT, HTTP_CANCEL, CLIENT_CONNECT and CLIENT_DISCONNECT are "control" frames that
    /// the hub sends ahead of queued DATA/HTTP_REQUEST frames (SPEC A.4), so a busy channel
    /// cannot delay keep-alives or cancellations.
    #[must_use]
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Self::Heartbeat | Self::HttpCancel | Self::ClientConnect | Self::ClientDisconnect
        )
    }
}

/// Why bytes are not a valid frame stream, or a frame cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A type byte outside 0x01–0x12. Fatal for the tunnel (`invalid_frame`); JSON text sent
    /// after the handshake lands here too, as 0x70 (the `p` of `{"type"`).
    UnknownType(u8),
    /// A payload over [`MAX_PAYLOAD`]; the encoder refuses it because the length is a u16.
    PayloadTooLarge(usize),
    /// The decode buffer holds more than its cap without a complete frame
    /// (`frame_buffer_overflow`).
    BufferOverflow {
        /// Bytes waiting in the buffer.
        buffered: usize,
        /// The decoder's cap.
        cap: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType(kind) => write!(f, "unknown relay frame type {kind:#04x}"),
            Self::PayloadTooLarge(len) => {
                write!(
                    f,
                    "relay frame payload of {len} bytes exceeds {MAX_PAYLOAD}"
                )
            }
            Self::BufferOverflow { buffered, cap } => write!(
                f,
                "relay decode buffer holds {buffered} bytes without a complete frame (cap {cap})"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// One relay frame. The payload length is at most [`MAX_PAYLOAD`] when built with
/// [`Frame::new`], [`Frame::empty`] or [`FrameDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Channel id, request id or 0, depending on the type (SPEC A.2); never a sequence number.
    pub id: u32,
    /// The frame type.
    pub kind: FrameType,
    /// The payload; from the decoder it shares the receive buffer.
    pub payload: Bytes,
}

impl Frame {
    /// A frame; refuses payloads over [`MAX_PAYLOAD`] so that the length always fits its u16.
    ///
    /// # Errors
    /// [`FrameError::PayloadTooLarge`].
    pub fn new(id: u32, kind: FrameType, payload: Bytes) -> Result<Self, FrameError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(FrameError::PayloadTooLarge(payload.len()));
        }
        Ok(Self { id, kind, payload })
    }

    /// A frame without payload (HEARTBEAT, HTTP_CANCEL).
    #[must_use]
    pub fn empty(id: u32, kind: FrameType) -> Self {
        Self {
            id,
            kind,
            payload: Bytes::new(),
        }
    }

    /// Header plus payload length: the bytes [`Frame::encode_into`] appends.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len().min(MAX_PAYLOAD)
    }

    /// Appends the big-endian header and the payload, so several frames can share one
    /// WebSocket message.
    ///
    /// The fields are public, so a payload over [`MAX_PAYLOAD`] can still reach here; it is
    /// truncated to [`MAX_PAYLOAD`] rather than written with a length that lies about it, which
    /// would desynchronise the peer's stream.
    pub fn encode_into(&self, dst: &mut BytesMut) {
        let payload = self.payload.get(..MAX_PAYLOAD).unwrap_or(&self.payload);
        dst.reserve(HEADER_LEN + payload.len());
        dst.put_u32(self.id);
        dst.put_u8(self.kind.as_u8());
        dst.put_u16(u16::try_from(payload.len()).unwrap_or(u16::MAX));
        dst.put_slice(payload);
    }

    /// The encoded frame as one buffer.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let mut dst = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut dst);
        dst.freeze()
    }
}

/// Streaming reassembly of frames from WebSocket message payloads: a message may hold several
/// frames and a frame may span messages.
///
/// Feed each message with [`FrameDecoder::push`], drain with [`FrameDecoder::next_frame`] until
/// `Ok(None)`, then call [`FrameDecoder::check_overflow`]. The cap bounds only what waits for
/// the rest of a frame; the size of one message is the WebSocket layer's limit.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    cap: usize,
    /// The unknown type byte that poisoned the stream; once set, input is discarded.
    poisoned: Option<u8>,
}

impl FrameDecoder {
    /// A decoder that reports [`FrameError::BufferOverflow`] when more than `cap` bytes wait
    /// for the rest of a frame.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            cap,
            poisoned: None,
        }
    }

    /// Appends the bytes of one message. Ignored once the decoder is poisoned: there is no
    /// resynchronising a stream without frame boundaries.
    pub fn push(&mut self, data: &[u8]) {
        if self.poisoned.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete frame, or `Ok(None)` when more bytes are needed. The payload is split
    /// off the buffer without copying.
    ///
    /// A header with an unknown type byte fails as soon as it reaches the front of the buffer,
    /// before its payload arrives; the buffer is then cleared and the decoder stays poisoned,
    /// answering the same error from then on (SPEC A.1: fatal for the tunnel).
    ///
    /// # Errors
    /// [`FrameError::UnknownType`].
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(kind) = self.poisoned {
            return Err(FrameError::UnknownType(kind));
        }
        let Some(&[a, b, c, d, kind, len_hi, len_lo]) = self.buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let kind = match FrameType::try_from(kind) {
            Ok(kind) => kind,
            Err(err) => {
                self.poisoned = Some(kind);
                self.buf = BytesMut::new();
                return Err(err);
            }
        };
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame {
            id: u32::from_be_bytes([a, b, c, d]),
            kind,
            payload,
        }))
    }

    /// Call after draining: an error when more than `cap` bytes wait without forming a frame,
    /// i.e. a frame that cannot complete within the cap (`frame_buffer_overflow`).
    ///
    /// # Errors
    /// [`FrameError::BufferOverflow`].
    pub fn check_overflow(&self) -> Result<(), FrameError> {
        if self.buf.len() > self.cap {
            return Err(FrameError::BufferOverflow {
                buffered: self.buf.len(),
                cap: self.cap,
            });
        }
        Ok(())
    }

    /// Frees a buffer grown by a burst once it holds nothing (idle tunnels stay small).
    pub fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            self.buf = BytesMut::new();
        }
    }

    /// Bytes waiting for the rest of their frame.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether an unknown type byte has ended this stream.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(frames: &[Frame]) -> BytesMut {
        let mut wire = BytesMut::new();
        for frame in frames {
            frame.encode_into(&mut wire);
        }
        wire
    }

    fn drain(decoder: &mut FrameDecoder) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            out.push(frame);
        }
        out
    }

    fn sample() -> Vec<Frame> {
        vec![
            Frame::empty(0, FrameType::Heartbeat),
            Frame::new(7, FrameType::Data, Bytes::from_static(b"hello")).unwrap(),
            Frame::empty(0x8000_0001, FrameType::HttpCancel),
            Frame::new(3, FrameType::Data, Bytes::from(vec![0xAB; MAX_PAYLOAD])).unwrap(),
        ]
    }

    #[test]
    fn the_header_is_seven_big_endian_bytes() {
        let frame = Frame::new(0x0102_0304, FrameType::Data, Bytes::from_static(b"xy")).unwrap();
        assert_eq!(
            &frame.to_bytes()[..],
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x02, b'x', b'y']
        );
        assert_eq!(frame.encoded_len(), 9);
        let big = Frame::new(0xFFFF_FFFF, FrameType::HttpResponse, vec![0; 0x1234].into());
        assert_eq!(
            big.unwrap().to_bytes().get(..HEADER_LEN),
            Some(&[0xFF, 0xFF, 0xFF, 0xFF, 0x11, 0x12, 0x34][..])
        );
        assert_eq!(
            &Frame::empty(0, FrameType::Heartbeat).to_bytes()[..],
            &[0, 0, 0, 0, 0x06, 0, 0]
        );
    }

    #[test]
    fn payloads_over_the_u16_limit_are_refused() {
        assert!(Frame::new(0, FrameType::Data, vec![0; MAX_PAYLOAD].into()).is_ok());
        assert_eq!(
            Frame::new(0, FrameType::Data, Bytes::from(vec![0; MAX_PAYLOAD + 1])),
            Err(FrameError::PayloadTooLarge(MAX_PAYLOAD + 1))
        );
        // A hand-built oversize frame is truncated, never written with a lying length.
        let forged = Frame {
            id: 1,
            kind: FrameType::Data,
            payload: vec![1; MAX_PAYLOAD + 10].into(),
        };
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        decoder.push(&forged.to_bytes());
        assert_eq!(drain(&mut decoder)[0].payload.len(), MAX_PAYLOAD);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn type_bytes_round_trip_and_only_0x01_to_0x12_are_valid() {
        for byte in 0..=u8::MAX {
            match FrameType::try_from(byte) {
                Ok(kind) => {
                    assert!((0x01..=0x12).contains(&byte));
                    assert_eq!(kind.as_u8(), byte);
                }
                Err(err) => {
                    assert!(!(0x01..=0x12).contains(&byte));
                    assert_eq!(err, FrameError::UnknownType(byte));
                }
            }
        }
    }

    #[test]
    fn several_frames_in_one_push() {
        let frames = sample();
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        decoder.push(&wire(&frames));
        assert_eq!(drain(&mut decoder), frames);
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(decoder.check_overflow(), Ok(()));
    }

    #[test]
    fn a_frame_split_byte_by_byte_across_pushes() {
        let frames = sample();
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        let mut out = Vec::new();
        for byte in &wire(&frames) {
            decoder.push(&[*byte]);
            out.extend(drain(&mut decoder));
            assert_eq!(decoder.check_overflow(), Ok(()));
        }
        assert_eq!(out, frames);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn payloads_share_the_receive_buffer() {
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        decoder.push(&wire(&sample()));
        let frames = drain(&mut decoder);
        let (first, second) = (&frames[1].payload, &frames[3].payload);
        // Both payloads point into one allocation: the second starts after the first plus the
        // intervening headers and the empty HTTP_CANCEL frame.
        let gap = second.as_ptr() as usize - first.as_ptr() as usize;
        assert_eq!(gap, first.len() + 2 * HEADER_LEN);
    }

    #[test]
    fn unknown_types_poison_the_decoder() {
        for kind in [0x00u8, 0x13, 0xFF] {
            let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
            decoder.push(&Frame::empty(9, FrameType::Heartbeat).to_bytes());
            // Only the header of the bad frame: the error does not wait for its payload.
            decoder.push(&[0, 0, 0, 0, kind, 0xFF, 0xFF]);
            assert_eq!(
                decoder.next_frame(),
                Ok(Some(Frame::empty(9, FrameType::Heartbeat)))
            );
            assert_eq!(decoder.next_frame(), Err(FrameError::UnknownType(kind)));
            assert_eq!(decoder.buffered(), 0, "poisoned buffer is cleared");
            assert!(decoder.is_poisoned());
            decoder.push(&Frame::empty(0, FrameType::Heartbeat).to_bytes());
            assert_eq!(decoder.buffered(), 0, "input after poisoning is dropped");
            assert_eq!(decoder.next_frame(), Err(FrameError::UnknownType(kind)));
        }
    }

    #[test]
    fn json_text_after_the_handshake_reads_as_type_0x70() {
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        decoder.push(br#"{"type":"hello","server_id":"s"}"#);
        assert_eq!(decoder.next_frame(), Err(FrameError::UnknownType(0x70)));
    }

    #[test]
    fn an_incomplete_frame_beyond_the_cap_overflows() {
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&[0, 0, 0, 1, 0x05, 0, 100]);
        decoder.push(&[0; 9]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(
            decoder.check_overflow(),
            Ok(()),
            "exactly at the cap is fine"
        );
        decoder.push(&[0; 11]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(
            decoder.check_overflow(),
            Err(FrameError::BufferOverflow {
                buffered: 27,
                cap: 16
            })
        );
        // Complete frames drained from a message larger than the cap are not an overflow.
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&wire(&sample()));
        assert_eq!(drain(&mut decoder).len(), 4);
        assert_eq!(decoder.check_overflow(), Ok(()));
    }

    #[test]
    fn control_frames_are_the_spec_four() {
        let control: Vec<u8> = (0..=u8::MAX)
            .filter_map(|b| FrameType::try_from(b).ok())
            .filter(|t| t.is_control())
            .map(FrameType::as_u8)
            .collect();
        assert_eq!(control, vec![0x03, 0x04, 0x06, 0x12]);
    }

    #[test]
    fn errors_display_their_details() {
        assert_eq!(
            FrameError::UnknownType(0x70).to_string(),
            "unknown relay frame type 0x70"
        );
        assert!(
            FrameError::BufferOverflow {
                buffered: 9,
                cap: 8
            }
            .to_string()
            .contains("cap 8")
        );
    }
}
