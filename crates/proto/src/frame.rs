//! The relay frame (SPEC A.1, A.2): a 7-byte header — u32 channel/request id, u8 type, u16
//! payload length, all big-endian — and up to 65 535 payload bytes. Frames form a byte stream
//! across WebSocket messages; [`FrameDecoder`] reassembles them without copying payloads.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Size of the frame header.
pub const HEADER_LEN: usize = 7;
/// Largest payload a frame can carry.
pub const MAX_PAYLOAD: usize = 65_535;
/// The hub's per-tunnel decode buffer cap (SPEC A.1).
pub const DEFAULT_DECODE_CAP: usize = 128 * 1024;

/// Frame types 0x01–0x12; any other byte is a decode error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    Hello = 0x01,
    HelloAck = 0x02,
    ClientConnect = 0x03,
    ClientDisconnect = 0x04,
    Data = 0x05,
    Heartbeat = 0x06,
    Disconnected = 0x07,
    Error = 0x08,
    HubHello = 0x09,
    HubHelloAck = 0x0A,
    HubHeartbeat = 0x0B,
    LibraryShareUpdate = 0x0C,
    LibraryShareRevoked = 0x0D,
    AdminDelegation = 0x0E,
    HubDisconnected = 0x0F,
    HttpRequest = 0x10,
    HttpResponse = 0x11,
    HttpCancel = 0x12,
}

impl TryFrom<u8> for FrameType {
    type Error = FrameError;

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
    /// The type byte.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Control frames are sent ahead of queued DATA/HTTP_REQUEST frames (SPEC A.4).
    #[must_use]
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Self::Heartbeat | Self::HttpCancel | Self::ClientConnect | Self::ClientDisconnect
        )
    }
}

/// Why bytes are not a valid frame stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A type byte outside 0x01–0x12 (fatal for the tunnel: `invalid_frame`).
    UnknownType(u8),
    /// A payload over [`MAX_PAYLOAD`] (the encoder refuses it).
    PayloadTooLarge(usize),
    /// The decode buffer holds more than its cap without a complete frame
    /// (`frame_buffer_overflow`).
    BufferOverflow { buffered: usize, cap: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownType(kind) => write!(f, "unknown relay frame type {kind:#04x}"),
            Self::PayloadTooLarge(len) => write!(
                f,
                "relay frame payload of {len} bytes exceeds {MAX_PAYLOAD}"
            ),
            Self::BufferOverflow { buffered, cap } => {
                write!(
                    f,
                    "relay decode buffer holds {buffered} bytes without a complete frame (cap {cap})"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// One relay frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Channel id, request id or 0, depending on the type.
    pub id: u32,
    pub kind: FrameType,
    pub payload: Bytes,
}

impl Frame {
    /// A frame; refuses payloads over [`MAX_PAYLOAD`].
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

    /// Header plus payload length.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Appends the encoded frame.
    pub fn encode_into(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u32(self.id);
        dst.put_u8(self.kind.as_u8());
        // `new` keeps payloads within u16.
        dst.put_u16(u16::try_from(self.payload.len()).unwrap_or(u16::MAX));
        dst.put_slice(&self.payload);
    }

    /// The encoded frame.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let mut dst = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut dst);
        dst.freeze()
    }
}

/// Streaming reassembly of frames from WebSocket message payloads.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    cap: usize,
}

impl FrameDecoder {
    /// A decoder whose buffer may hold at most `cap` bytes of an incomplete frame.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(16 * 1024),
            cap,
        }
    }

    /// Appends the bytes of one message.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed. The payload is split off
    /// the buffer without copying. An unknown type clears the buffer.
    ///
    /// # Errors
    /// [`FrameError::UnknownType`].
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let id = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = match FrameType::try_from(header[4]) {
            Ok(kind) => kind,
            Err(err) => {
                self.buf.clear();
                return Err(err);
            }
        };
        let len = usize::from(u16::from_be_bytes([header[5], header[6]]));
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { id, kind, payload }))
    }

    /// After draining: an error when more than `cap` bytes wait without forming a frame.
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

    /// Bytes waiting for the rest of their frame.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_seven_big_endian_bytes() {
        let frame = Frame::new(0x0102_0304, FrameType::Data, Bytes::from_static(b"xy")).unwrap();
        assert_eq!(&frame.to_bytes()[..], &[1, 2, 3, 4, 0x05, 0, 2, b'x', b'y']);
        assert_eq!(frame.encoded_len(), 9);
        assert_eq!(
            Frame::new(0, FrameType::Data, Bytes::from(vec![0; MAX_PAYLOAD + 1])),
            Err(FrameError::PayloadTooLarge(MAX_PAYLOAD + 1))
        );
    }

    #[test]
    fn several_frames_per_push_and_frames_split_across_pushes() {
        let frames = vec![
            Frame::empty(0, FrameType::Heartbeat),
            Frame::new(7, FrameType::Data, Bytes::from_static(b"hello")).unwrap(),
            Frame::empty(0x8000_0001, FrameType::HttpCancel),
        ];
        let mut wire = BytesMut::new();
        for frame in &frames {
            frame.encode_into(&mut wire);
        }
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        decoder.push(&wire);
        for frame in &frames {
            assert_eq!(decoder.next_frame().unwrap().as_ref(), Some(frame));
        }
        assert_eq!(decoder.next_frame().unwrap(), None);
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        let mut out = Vec::new();
        for byte in wire.iter() {
            decoder.push(&[*byte]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                out.push(frame);
            }
        }
        assert_eq!(out, frames);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn unknown_types_and_json_after_the_handshake_are_refused() {
        for kind in [0x00u8, 0x13, 0xFF] {
            let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
            decoder.push(&[0, 0, 0, 0, kind, 0, 0]);
            assert_eq!(decoder.next_frame(), Err(FrameError::UnknownType(kind)));
            assert_eq!(decoder.buffered(), 0, "poisoned buffer is cleared");
        }
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        decoder.push(br#"{"type":"hello"}"#);
        assert_eq!(decoder.next_frame(), Err(FrameError::UnknownType(0x70)));
    }

    #[test]
    fn an_incomplete_frame_beyond_the_cap_overflows() {
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&[0, 0, 0, 1, 0x05, 0, 100]);
        decoder.push(&[0; 20]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(
            decoder.check_overflow(),
            Err(FrameError::BufferOverflow {
                buffered: 27,
                cap: 16
            })
        );
        assert!(
            FrameDecoder::new(DEFAULT_DECODE_CAP)
                .check_overflow()
                .is_ok()
        );
    }

    #[test]
    fn control_frames_are_the_spec_four() {
        let control: Vec<u8> = (1..=0x12u8)
            .filter_map(|b| FrameType::try_from(b).ok())
            .filter(|t| t.is_control())
            .map(FrameType::as_u8)
            .collect();
        assert_eq!(control, vec![0x03, 0x04, 0x06, 0x12]);
    }
}
