//! Stratum V1 line framing for tokio: [`Sv1Codec`] wraps [`strata_sv1::LineDecoder`] (maximum
//! line length checked as bytes arrive) in the `tokio_util::codec` traits, so that
//! `FramedRead::new(socket, Sv1Codec::default())` yields one line at a time.
//!
//! Encoding takes lines already rendered by `strata-sv1` (each ending in `\n`).

use crate::NetError;
use bytes::{BufMut, BytesMut};
use strata_sv1::LineDecoder;
use tokio_util::codec::{Decoder, Encoder};

/// The SV1 line codec.
#[derive(Debug, Clone, Default)]
pub struct Sv1Codec {
    lines: LineDecoder,
}

impl Sv1Codec {
    /// A codec that rejects lines longer than `max_line_len` bytes.
    pub fn new(max_line_len: usize) -> Self {
        Sv1Codec {
            lines: LineDecoder::new(max_line_len),
        }
    }
}

impl Decoder for Sv1Codec {
    /// One line, without its `\n` / `\r\n`.
    type Item = BytesMut;
    type Error = NetError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, NetError> {
        Ok(self.lines.decode(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, NetError> {
        Ok(self.lines.decode_eof(src)?)
    }
}

impl Encoder<&[u8]> for Sv1Codec {
    type Error = NetError;

    /// Append an already rendered line (it should end in `\n`).
    fn encode(&mut self, line: &[u8], dst: &mut BytesMut) -> Result<(), NetError> {
        dst.put_slice(line);
        Ok(())
    }
}
