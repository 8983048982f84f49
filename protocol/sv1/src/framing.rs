//! Line framing, sans-IO, with the tokio-util `Decoder` contract.
//!
//! ```text
//!   src: BytesMut ──decode──▶ Ok(Some(line))   one line, terminator stripped, split off (no copy)
//!                         ├─▶ Ok(None)         need more bytes (nothing consumed but blank lines)
//!                         ├─▶ Err(TooLong)     the stream is dead
//!                         └─▶ Err(NotJson)     the first line cannot be JSON-RPC (when asked:
//!                                              `json_first_line`), the stream is dead
//! ```

use bytes::BytesMut;

use crate::error::LineError;

/// The default longest line: 64 KiB. A `mining.notify` from a pool that pays many outputs in the
/// coinbase runs to tens of kilobytes; a miner's lines are far shorter (a server may configure
/// 4 KiB for them).
pub const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024;

/// Splits a byte stream into lines ending in `\n` or `\r\n`, skipping blank lines.
///
/// The maximum applies to the line without its terminator and is enforced as soon as the buffer
/// holds more than that without a newline, so a peer cannot make the buffer grow without bound.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    /// The longest line accepted, in bytes, terminator excluded.
    pub max_line_len: usize,
    /// How far `src` has already been searched for a newline.
    scanned: usize,
    /// No line returned yet and its first byte must be `{` ([`Self::json_first_line`]).
    expect_json: bool,
}

impl Default for LineDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE_LEN)
    }
}

impl LineDecoder {
    /// A decoder accepting lines of up to `max_line_len` bytes.
    pub fn new(max_line_len: usize) -> Self {
        Self {
            max_line_len,
            scanned: 0,
            expect_json: false,
        }
    }

    /// Also refuse a stream whose first line's first byte other than whitespace is not `{`
    /// ([`LineError::NotJson`]), as soon as that byte arrives: a server's way to drop a peer
    /// that does not speak JSON-RPC (random bytes, another protocol) without waiting for a
    /// newline that may never come. Later lines are not checked.
    pub fn json_first_line(mut self) -> Self {
        self.expect_json = true;
        self
    }

    /// The next non-blank line, without its `\n`/`\r\n`; `Ok(None)` when `src` holds no complete
    /// line yet. Must be called with the same `src` (plus appended bytes) each time.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, LineError> {
        if self.expect_json {
            if let Some(&byte) = src.iter().find(|b| !b.is_ascii_whitespace()) {
                if byte != b'{' {
                    return Err(LineError::NotJson { byte });
                }
            }
        }
        loop {
            let from = self.scanned.min(src.len());
            let Some(pos) = src[from..].iter().position(|&b| b == b'\n') else {
                self.scanned = src.len();
                let pending = src.len() - usize::from(src.last() == Some(&b'\r'));
                if pending > self.max_line_len {
                    return Err(self.too_long(src.len()));
                }
                return Ok(None);
            };
            let nl = from + pos;
            self.scanned = 0;
            let mut line = src.split_to(nl + 1);
            line.truncate(nl);
            if line.last() == Some(&b'\r') {
                line.truncate(nl - 1);
            }
            if line.len() > self.max_line_len {
                return Err(self.too_long(line.len()));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.expect_json = false;
            return Ok(Some(line));
        }
    }

    /// At end of stream: the last line even without a terminator (tokio-util's `decode_eof`).
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, LineError> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        self.scanned = 0;
        let mut rest = src.split();
        if rest.last() == Some(&b'\r') {
            rest.truncate(rest.len() - 1);
        }
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        Ok(Some(rest))
    }

    fn too_long(&self, len: usize) -> LineError {
        LineError::TooLong {
            max_line_len: self.max_line_len,
            len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(d: &mut LineDecoder, src: &mut BytesMut) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(l) = d.decode(src).unwrap() {
            out.push(l.to_vec());
        }
        out
    }

    #[test]
    fn json_first_line_refuses_other_first_bytes_at_once() {
        // random bytes, no newline: refused on the first byte
        let mut d = LineDecoder::new(100).json_first_line();
        let mut src = BytesMut::from(&b"\x16\x03\x01"[..]);
        assert_eq!(d.decode(&mut src), Err(LineError::NotJson { byte: 0x16 }));
        // whitespace first, then not `{`
        let mut d = LineDecoder::new(100).json_first_line();
        let mut src = BytesMut::from(&b" \r\n  GET / HTTP/1.1"[..]);
        assert_eq!(d.decode(&mut src), Err(LineError::NotJson { byte: b'G' }));
        // nothing but whitespace yet: wait
        let mut d = LineDecoder::new(100).json_first_line();
        let mut src = BytesMut::from(&b"\n  "[..]);
        assert_eq!(d.decode(&mut src), Ok(None));
        // a JSON first line, then anything: later lines are the caller's to judge
        src.extend_from_slice(b"{\"id\":1}\nnot json\n");
        assert_eq!(&d.decode(&mut src).unwrap().unwrap()[..], b"  {\"id\":1}");
        assert_eq!(&d.decode(&mut src).unwrap().unwrap()[..], b"not json");
        // unasked, nothing is checked
        let mut d = LineDecoder::new(100);
        let mut src = BytesMut::from(&b"hello\n"[..]);
        assert_eq!(&d.decode(&mut src).unwrap().unwrap()[..], b"hello");
    }

    #[test]
    fn splits_lines_and_skips_blank_ones() {
        let mut d = LineDecoder::new(100);
        let mut src = BytesMut::from(&b"a\r\n\n \r\nbc\nd"[..]);
        assert_eq!(
            all_lines(&mut d, &mut src),
            vec![b"a".to_vec(), b"bc".to_vec()]
        );
        assert_eq!(&src[..], b"d");
        assert_eq!(d.decode_eof(&mut src).unwrap().unwrap(), &b"d"[..]);
        assert!(d.decode_eof(&mut src).unwrap().is_none());
    }

    #[test]
    fn every_split_gives_the_same_lines() {
        let input = b"{\"id\":1}\r\n\r\nxyz\n\nlast\n";
        for cut in 0..=input.len() {
            let mut d = LineDecoder::new(16);
            let mut src = BytesMut::new();
            let mut out = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                src.extend_from_slice(part);
                out.extend(all_lines(&mut d, &mut src));
            }
            assert_eq!(
                out,
                vec![b"{\"id\":1}".to_vec(), b"xyz".to_vec(), b"last".to_vec()],
                "cut at {cut}"
            );
            assert!(src.is_empty());
        }
    }

    #[test]
    fn long_line_is_an_error_before_its_newline() {
        let mut d = LineDecoder::new(4);
        let mut src = BytesMut::from(&b"abcd"[..]);
        assert_eq!(d.decode(&mut src), Ok(None));
        src.extend_from_slice(b"\r"); // a pending \r does not count
        assert_eq!(d.decode(&mut src), Ok(None));
        src.extend_from_slice(b"\n");
        assert_eq!(d.decode(&mut src).unwrap().unwrap(), &b"abcd"[..]);

        let mut src = BytesMut::from(&b"abcde"[..]);
        assert_eq!(
            d.decode(&mut src),
            Err(LineError::TooLong {
                max_line_len: 4,
                len: 5
            })
        );
        let mut d = LineDecoder::new(4);
        let mut src = BytesMut::from(&b"abcde\nx\n"[..]);
        assert!(d.decode(&mut src).is_err());
    }
}
