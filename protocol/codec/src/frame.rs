//! Plaintext SV2 frames ([spec 3.2](https://github.com/stratum-mining/sv2-spec/blob/main/03-Protocol-Overview.md#32-framing)).
//!
//! ```text
//! +----------------+----------+------------+----------------------+
//! | extension_type | msg_type | msg_length | payload              |
//! | U16 (bit 15 =  | U8       | U24        | msg_length bytes     |
//! |  channel_msg)  |          |            |                      |
//! +----------------+----------+------------+----------------------+
//! ```
//!
//! On the wire the channel_msg flag is `extension_type & 0x8000` (docs/spec-notes.md §1);
//! [`Header`] keeps it apart from the extension id so that look-ups never see it.

use crate::error::DecodeError;
use bytes::{BufMut, Bytes, BytesMut};

/// The channel_msg bit of the wire `extension_type`.
pub const CHANNEL_MSG_BIT: u16 = 0x8000;
/// Size of a frame header.
pub const HEADER_LEN: usize = 6;
/// Largest payload the U24 `msg_length` can describe.
pub const MAX_PAYLOAD_LEN: usize = 0x00ff_ffff;
/// Default maximum payload a [`FrameDecoder`] accepts (1 MiB: far above any mining message,
/// far below the 16 MiB a hostile peer could announce).
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 1 << 20;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Extension id, without the channel_msg bit (0 for the base protocols).
    pub extension_type: u16,
    /// True when the message is addressed to a channel (its payload starts with a U32
    /// channel_id).
    pub channel_msg: bool,
    /// Message type within the extension.
    pub msg_type: u8,
    /// Payload length in bytes (at most [`MAX_PAYLOAD_LEN`]).
    pub msg_length: u32,
}

impl Header {
    /// Parse the 6 header bytes.
    pub fn from_bytes(b: [u8; HEADER_LEN]) -> Self {
        let ext = u16::from_le_bytes([b[0], b[1]]);
        Header {
            extension_type: ext & !CHANNEL_MSG_BIT,
            channel_msg: ext & CHANNEL_MSG_BIT != 0,
            msg_type: b[2],
            msg_length: u32::from_le_bytes([b[3], b[4], b[5], 0]),
        }
    }

    /// The 6 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let ext = self.extension_type | if self.channel_msg { CHANNEL_MSG_BIT } else { 0 };
        let e = ext.to_le_bytes();
        let l = self.msg_length.to_le_bytes();
        [e[0], e[1], self.msg_type, l[0], l[1], l[2]]
    }

    /// Append the header bytes to `buf`.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(&self.to_bytes());
    }
}

/// A complete plaintext frame: its header and the payload, split off the receive buffer
/// without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// Exactly `header.msg_length` bytes.
    pub payload: Bytes,
}

/// Why a byte stream is not a sequence of acceptable frames. The stream is dead after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The header announces a payload larger than this decoder accepts.
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced payload length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
}

/// Incremental plaintext frame decoder (tokio-util codec contract: `Ok(None)` means "need more
/// bytes"; an error means the stream is dead).
///
/// The payload limit is checked from the header, before the buffer is asked to grow.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_PAYLOAD_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that rejects payloads above `max_payload_len` bytes.
    pub fn new(max_payload_len: usize) -> Self {
        FrameDecoder {
            max_payload_len: max_payload_len.min(MAX_PAYLOAD_LEN),
        }
    }

    /// The configured limit.
    pub fn max_payload_len(&self) -> usize {
        self.max_payload_len
    }

    /// Split one frame off the front of `src`, if a whole one is there.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(&src[..HEADER_LEN]);
        let header = Header::from_bytes(hb);
        let len = header.msg_length as usize;
        if len > self.max_payload_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_payload_len,
            });
        }
        let total = HEADER_LEN + len;
        if src.len() < total {
            // Ask for what the frame needs, and no more (len is bounded above).
            src.reserve(total - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(total);
        let payload = frame.split_off(HEADER_LEN).freeze();
        Ok(Some(Frame { header, payload }))
    }
}

/// Parse a whole frame held in one slice (tools, tests): the payload must be exactly
/// `msg_length` bytes.
pub fn parse_frame(bytes: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            field: "frame header",
            needed: HEADER_LEN - bytes.len(),
        });
    }
    let mut hb = [0u8; HEADER_LEN];
    hb.copy_from_slice(&bytes[..HEADER_LEN]);
    let header = Header::from_bytes(hb);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != header.msg_length as usize {
        return Err(DecodeError::LengthMismatch {
            declared: header.msg_length as usize,
            actual: payload.len(),
        });
    }
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_msg_bit_is_msb_of_extension_type() {
        let h = Header::from_bytes([0x00, 0x80, 0x1a, 0x20, 0x00, 0x00]);
        assert_eq!(h.extension_type, 0);
        assert!(h.channel_msg);
        assert_eq!(h.msg_type, 0x1a);
        assert_eq!(h.msg_length, 0x20);
        assert_eq!(h.to_bytes(), [0x00, 0x80, 0x1a, 0x20, 0x00, 0x00]);
        let h = Header::from_bytes([0x02, 0x80, 0x00, 0x01, 0x02, 0x03]);
        assert_eq!(h.extension_type, 2);
        assert_eq!(h.msg_length, 0x030201);
    }

    #[test]
    fn every_split_of_a_stream_yields_the_same_frames() {
        let mut stream = Vec::new();
        let frames: Vec<Frame> = (0..4u8)
            .map(|i| Frame {
                header: Header {
                    extension_type: u16::from(i),
                    channel_msg: i % 2 == 0,
                    msg_type: i,
                    msg_length: u32::from(i) * 3,
                },
                payload: Bytes::from(vec![i; usize::from(i) * 3]),
            })
            .collect();
        for f in &frames {
            f.header.encode(&mut stream);
            stream.extend_from_slice(&f.payload);
        }
        for split in 0..=stream.len() {
            let mut dec = FrameDecoder::default();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    out.push(f);
                }
            }
            assert_eq!(out, frames, "split at {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn oversized_frame_rejected_before_growing() {
        let mut dec = FrameDecoder::new(1000);
        let mut buf = BytesMut::from(&[0u8, 0, 0x15, 0xff, 0xff, 0xff][..]);
        let cap = buf.capacity();
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::TooLarge {
                len: 0xff_ffff,
                max: 1000
            })
        );
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn parse_frame_checks_length() {
        assert!(matches!(
            parse_frame(&[0, 0, 0, 2, 0, 0, 1]),
            Err(DecodeError::LengthMismatch {
                declared: 2,
                actual: 1
            })
        ));
        assert!(matches!(
            parse_frame(&[0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
