//! A WebSocket (RFC 6455) frame codec, without I/O.
//!
//! The relay cannot use a validating WebSocket library: Phlix servers send relay frames in
//! TEXT messages that are not UTF-8 (SPEC A.6, I.9), and their Workerman client may not mask
//! its frames (SPEC L). This codec treats text and binary payloads alike as bytes, accepts
//! unmasked client frames, checks lengths before buffering, and never panics on input.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};

/// The GUID of the opening handshake (RFC 6455 §1.3).
const HANDSHAKE_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
#[must_use]
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(HANDSHAKE_GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// Frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong.
    #[must_use]
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One decoded frame, payload already unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsFrame {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload: Bytes,
}

/// Why a peer's frames are refused; each maps to a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// Reserved bits set, unknown opcode, fragmented or oversized control frame (1002).
    Protocol(&'static str),
    /// A frame larger than the configured maximum (1009).
    TooBig(u64),
}

impl WsError {
    /// The close code to answer with.
    #[must_use]
    pub fn close_code(self) -> u16 {
        match self {
            Self::Protocol(_) => close_code::PROTOCOL,
            Self::TooBig(_) => close_code::TOO_BIG,
        }
    }
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Protocol(what) => write!(f, "websocket protocol error: {what}"),
            Self::TooBig(len) => write!(f, "websocket frame of {len} bytes exceeds the limit"),
        }
    }
}

impl std::error::Error for WsError {}

/// Close codes used by the relay.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    /// Try again later (connect throttle).
    pub const AGAIN: u16 = 1013;
    /// HELLO refused for an authorisation reason (SPEC L).
    pub const UNAUTHORIZED: u16 = 4401;
    /// HELLO refused for any other reason (SPEC L).
    pub const BAD_HELLO: u16 = 4400;
}

/// XORs `data` with the 4-byte mask, starting at mask position `offset`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let mut rotated = [0u8; 4];
    for (i, slot) in rotated.iter_mut().enumerate() {
        *slot = key[(i + offset) % 4];
    }
    // Eight bytes at a time (the key twice); 8 is a multiple of 4, so the tail starts again
    // at the rotated key's first byte.
    let mut eight = [0u8; 8];
    eight[..4].copy_from_slice(&rotated);
    eight[4..].copy_from_slice(&rotated);
    let word = u64::from_ne_bytes(eight);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i % 4];
    }
}

/// Incremental decoder: push bytes as they arrive, take whole frames out.
#[derive(Debug)]
pub struct WsDecoder {
    buf: BytesMut,
    max_frame: u64,
}

impl WsDecoder {
    /// A decoder refusing frames whose payload exceeds `max_frame` bytes.
    #[must_use]
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_frame: max_frame as u64,
        }
    }

    /// The buffer to read socket bytes into (append-only).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Frees a buffer grown by a burst once it holds nothing (idle connections stay small).
    pub fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            self.buf = BytesMut::new();
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`WsError`] when the peer breaks the protocol; the connection must then be closed.
    pub fn next_frame(&mut self) -> Result<Option<WsFrame>, WsError> {
        let (b0, b1) = match self.buf.get(..2) {
            Some(&[b0, b1]) => (b0, b1),
            _ => return Ok(None),
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = Opcode::from_u8(b0 & 0x0F).ok_or(WsError::Protocol("unknown opcode"))?;
        let masked = b1 & 0x80 != 0;
        let (len, mut at) = match b1 & 0x7F {
            126 => match self.buf.get(2..4) {
                Some(ext) => (u64::from(u16::from_be_bytes([ext[0], ext[1]])), 4),
                None => return Ok(None),
            },
            127 => match self.buf.get(2..10) {
                Some(ext) => {
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(ext);
                    (u64::from_be_bytes(bytes), 10)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        if opcode.is_control() && (len > 125 || !fin) {
            return Err(WsError::Protocol("invalid control frame"));
        }
        if len > self.max_frame {
            return Err(WsError::TooBig(len));
        }
        let mask = if masked {
            let Some(key) = self.buf.get(at..at + 4) else {
                return Ok(None);
            };
            let key = [key[0], key[1], key[2], key[3]];
            at += 4;
            Some(key)
        } else {
            None
        };
        // `len <= max_frame`, which fits in usize.
        let len = usize::try_from(len).map_err(|_| WsError::TooBig(len))?;
        if self.buf.len() < at + len {
            self.buf.reserve(at + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(at);
        let mut payload = self.buf.split_to(len);
        if let Some(key) = mask {
            apply_mask(&mut payload, key, 0);
        }
        Ok(Some(WsFrame {
            fin,
            opcode,
            payload: payload.freeze(),
        }))
    }
}

/// Writes a frame header; `mask` is `Some` for client frames (the caller masks the payload).
pub fn encode_header(
    fin: bool,
    opcode: Opcode,
    len: usize,
    mask: Option<[u8; 4]>,
    dst: &mut BytesMut,
) {
    dst.put_u8(if fin { 0x80 } else { 0 } | opcode.as_u8());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        // Fits in 7 bits.
        dst.put_u8(mask_bit | (len as u8));
    } else if let Ok(short) = u16::try_from(len) {
        dst.put_u8(mask_bit | 126);
        dst.put_u16(short);
    } else {
        dst.put_u8(mask_bit | 127);
        dst.put_u64(len as u64);
    }
    if let Some(key) = mask {
        dst.put_slice(&key);
    }
}

/// Encodes a whole frame (server side: unmasked; client side: masked with `mask`).
pub fn encode_frame(opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>, dst: &mut BytesMut) {
    encode_header(true, opcode, payload.len(), mask, dst);
    let start = dst.len();
    dst.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut dst[start..], key, 0);
    }
}

/// A close frame payload: code (big-endian) and a reason of at most 123 bytes.
#[must_use]
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = BytesMut::with_capacity(2 + end);
    payload.put_u16(code);
    payload.put_slice(&reason.as_bytes()[..end]);
    payload.freeze()
}

/// Code and reason of a received close payload (1005 "no status" when empty).
#[must_use]
pub fn parse_close(payload: &[u8]) -> (u16, String) {
    match payload {
        [hi, lo, reason @ ..] => (
            u16::from_be_bytes([*hi, *lo]),
            String::from_utf8_lossy(reason).into_owned(),
        ),
        _ => (1005, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn masked_and_unmasked_frames_round_trip_at_every_length_class() {
        for len in [0usize, 1, 125, 126, 65_535, 65_536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut wire = BytesMut::new();
                encode_frame(Opcode::Binary, &payload, mask, &mut wire);
                let mut decoder = WsDecoder::new(1 << 20);
                // Byte-by-byte for small frames, in one go for large ones.
                if len < 300 {
                    for byte in wire.iter() {
                        assert_eq!(
                            decoder.next_frame().unwrap(),
                            None,
                            "incomplete frame yields nothing"
                        );
                        decoder.push(&[*byte]);
                    }
                } else {
                    decoder.push(&wire);
                }
                let frame = decoder.next_frame().unwrap().unwrap();
                assert!(frame.fin);
                assert_eq!(frame.opcode, Opcode::Binary);
                assert_eq!(&frame.payload[..], &payload[..], "len {len} mask {mask:?}");
                assert_eq!(decoder.next_frame().unwrap(), None);
            }
        }
    }

    #[test]
    fn text_frames_are_not_utf8_validated() {
        let mut wire = BytesMut::new();
        encode_frame(
            Opcode::Text,
            &[0xFF, 0xFE, 0x00, 0x05],
            Some([9, 9, 9, 9]),
            &mut wire,
        );
        let mut decoder = WsDecoder::new(1024);
        decoder.push(&wire);
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(frame.opcode, Opcode::Text);
        assert_eq!(&frame.payload[..], &[0xFF, 0xFE, 0x00, 0x05]);
    }

    #[test]
    fn protocol_violations_are_refused() {
        let cases: [(&[u8], WsError); 4] = [
            (&[0xC2, 0x00], WsError::Protocol("reserved bits set")),
            (&[0x83, 0x00], WsError::Protocol("unknown opcode")),
            (&[0x09, 0x00], WsError::Protocol("invalid control frame")),
            (
                &[0x89, 0x7E, 0x00, 0x7E],
                WsError::Protocol("invalid control frame"),
            ),
        ];
        for (wire, err) in cases {
            let mut decoder = WsDecoder::new(1024);
            decoder.push(wire);
            assert_eq!(decoder.next_frame(), Err(err), "{wire:?}");
        }
        let mut decoder = WsDecoder::new(1024);
        decoder.push(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(decoder.next_frame(), Err(WsError::TooBig(65_536)));
        assert_eq!(WsError::TooBig(1).close_code(), 1009);
    }

    #[test]
    fn wide_masking_matches_byte_by_byte_masking() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 100, 1031] {
            for offset in 0..4 {
                let original: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
                let mut fast = original.clone();
                apply_mask(&mut fast, key, offset);
                let slow: Vec<u8> = original
                    .iter()
                    .enumerate()
                    .map(|(i, byte)| byte ^ key[(i + offset) % 4])
                    .collect();
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn masks_apply_from_any_offset() {
        let mut data = *b"abcdefghij";
        apply_mask(&mut data, [1, 2, 3, 4], 0);
        apply_mask(&mut data[..3], [1, 2, 3, 4], 0);
        apply_mask(&mut data[3..], [1, 2, 3, 4], 3);
        assert_eq!(&data, b"abcdefghij");
    }

    #[test]
    fn close_payloads_round_trip_and_truncate_on_char_boundaries() {
        let payload = close_payload(4401, "unauthorized");
        assert_eq!(parse_close(&payload), (4401, "unauthorized".to_owned()));
        assert_eq!(parse_close(&[]), (1005, String::new()));
        let long = "é".repeat(100);
        assert!(close_payload(1000, &long).len() <= 125);
    }
}
