//! Stratum V1 line framing for tokio: [`Sv1Codec`] wraps [`strata_sv1::LineDecoder`] (maximum
//! line length checked as bytes arrive) in the `tokio_util::codec` traits, so that
//! `FramedRead::new(socket, Sv1Codec::default())` yields one line at a time.
//!
//! Encoding takes lines already rendered by `strata-sv1` (each ending in `\n`).
//!
//! [`LineReader`] reads lines from a socket without holding a buffer between them (for
//! servers with many idle connections), and can give the kernel's receive time of what it
//! read (for latency measurements that should not count the reader's own scheduling).

use std::time::SystemTime;

use crate::NetError;
use bytes::{BufMut, BytesMut};
use strata_sv1::LineDecoder;
use tokio::io::Interest;
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::{Decoder, Encoder};

/// Bytes read from a socket at once by [`LineReader`] (on the stack of the reading task).
pub const READ_CHUNK: usize = 4096;

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

impl Sv1Codec {
    /// Also refuse a stream whose first line cannot start a JSON-RPC message
    /// ([`LineDecoder::json_first_line`]).
    pub fn json_first_line(mut self) -> Self {
        self.lines = self.lines.json_first_line();
        self
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

/// Lines from a socket without a buffer held between them: waits for readability, reads
/// into the stack and keeps only the bytes of an unfinished line (released once empty).
/// [`LineReader::next`] is cancel-safe (its only await is readiness).
///
/// A read shorter than [`READ_CHUNK`] drained the socket (a TCP read returns all that is
/// queued, up to the length), so the socket's readiness is cleared at once instead of after
/// one more `read` returning EAGAIN: one syscall less per line. Data arriving after the read
/// raises a new readiness event, which tokio keeps (it clears only the event the read was
/// made under).
#[derive(Debug)]
pub struct LineReader {
    rd: OwnedReadHalf,
    codec: Sv1Codec,
    partial: BytesMut,
    eof: bool,
    /// Reads ask the kernel for receive timestamps (`SO_TIMESTAMPNS`).
    stamped: bool,
    received: Option<SystemTime>,
}

impl LineReader {
    /// Lines from `rd`, each at most `max_line_len` bytes.
    pub fn new(rd: OwnedReadHalf, max_line_len: usize) -> Self {
        LineReader {
            rd,
            codec: Sv1Codec::new(max_line_len),
            partial: BytesMut::new(),
            eof: false,
            stamped: false,
            received: None,
        }
    }

    /// Also refuse a stream whose first line cannot start a JSON-RPC message, as soon as its
    /// first byte other than whitespace arrives ([`LineDecoder::json_first_line`]): a
    /// server's check on what its peers send.
    pub fn json_first_line(mut self) -> Self {
        self.codec = self.codec.json_first_line();
        self
    }

    /// Asks the kernel to timestamp what arrives (`SO_TIMESTAMPNS`, Linux only): from then on
    /// [`LineReader::received`] gives the receive time of the data of the latest read. Costs
    /// a `recvmsg` instead of a `recv` per read; for load generators, not servers.
    #[cfg(target_os = "linux")]
    pub fn timestamp_reads(&mut self) -> std::io::Result<()> {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        setsockopt(self.rd.as_ref(), ReceiveTimestampns, &true)?;
        self.stamped = true;
        Ok(())
    }

    /// Receive timestamps are Linux only.
    #[cfg(not(target_os = "linux"))]
    pub fn timestamp_reads(&mut self) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    /// When the kernel received the data of the latest read (the last packet of it), once
    /// [`LineReader::timestamp_reads`] is on; `None` before, without it, or when that read's
    /// data was not stamped (the kernel turns stamping on shortly after the first socket
    /// asks, so the first packets may come without).
    pub fn received(&self) -> Option<SystemTime> {
        self.received
    }

    /// The next line (without its end of line); `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Result<BytesMut, NetError>> {
        loop {
            if !self.partial.is_empty() {
                match self.codec.decode(&mut self.partial) {
                    Ok(Some(line)) => return Some(Ok(line)),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            if self.eof {
                return self.codec.decode_eof(&mut self.partial).transpose();
            }
            if self.partial.is_empty() && self.partial.capacity() > 0 {
                self.partial = BytesMut::new();
            }
            if let Err(e) = self.rd.readable().await {
                return Some(Err(e.into()));
            }
            if let Err(e) = self.read_ready() {
                return Some(Err(e.into()));
            }
        }
    }

    /// One non-blocking read into the stack, appended to the unfinished line.
    fn read_ready(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut got = None;
        let mut stamp = None;
        let rd = &self.rd;
        let stamped = self.stamped;
        let res = rd.as_ref().try_io(Interest::READABLE, || {
            let n = if stamped {
                let (n, at) = recv_stamped(rd, &mut chunk)?;
                stamp = at;
                n
            } else {
                rd.try_read(&mut chunk)?
            };
            got = Some(n);
            if n > 0 && n < READ_CHUNK {
                Err(std::io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match got {
            Some(0) => self.eof = true,
            Some(n) => self.partial.extend_from_slice(&chunk[..n]),
            None => {}
        }
        if got.is_some() {
            self.received = stamp;
        }
        match res {
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        }
    }
}

/// `recvmsg` with the `SCM_TIMESTAMPNS` control message: bytes read and their receive time.
#[cfg(target_os = "linux")]
fn recv_stamped(
    rd: &OwnedReadHalf,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<SystemTime>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    use std::time::Duration;
    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        rd.as_ref().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT,
    )?;
    let mut at = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmTimestampns(ts) = c {
            let (secs, nanos) = (ts.tv_sec(), ts.tv_nsec());
            if let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) {
                at = SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
            }
        }
    }
    Ok((msg.bytes, at))
}

#[cfg(not(target_os = "linux"))]
fn recv_stamped(
    rd: &OwnedReadHalf,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<SystemTime>)> {
    Ok((rd.try_read(buf)?, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, OwnedReadHalf) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let a = l.local_addr().expect("addr");
        let c = TcpStream::connect(a).await.expect("connect");
        let (s, _) = l.accept().await.expect("accept");
        (c, s.into_split().0)
    }

    #[tokio::test]
    async fn line_reader_joins_split_lines_and_holds_nothing_between_them() {
        let (mut c, rd) = pair().await;
        let mut r = LineReader::new(rd, 64);
        c.write_all(b"{\"id\":1,").await.expect("write");
        c.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.write_all(b"\"x\":2}\r\nsecond\nthi")
            .await
            .expect("write");
        assert_eq!(
            &r.next().await.expect("line").expect("ok")[..],
            b"{\"id\":1,\"x\":2}"
        );
        assert_eq!(&r.next().await.expect("line").expect("ok")[..], b"second");
        // the unfinished third line is all that is kept
        assert_eq!(&r.partial[..], b"thi");
        c.write_all(b"rd\n").await.expect("write");
        assert_eq!(&r.next().await.expect("line").expect("ok")[..], b"third");
        // waiting for the next line: no buffer held
        let waiting = tokio::time::timeout(Duration::from_millis(20), r.next()).await;
        assert!(waiting.is_err(), "no line yet");
        assert_eq!(r.partial.capacity(), 0);
        // data written after a drained read is still seen (readiness cleared early); a last
        // line without its end of line is still a line, then the end
        c.write_all(b"last").await.expect("write");
        c.shutdown().await.expect("shutdown");
        assert_eq!(&r.next().await.expect("line").expect("ok")[..], b"last");
        assert!(r.next().await.is_none());
        assert_eq!(r.received(), None, "no timestamps unless asked");
    }

    #[tokio::test]
    async fn line_reader_refuses_an_oversized_line() {
        let (mut c, rd) = pair().await;
        let mut r = LineReader::new(rd, 16);
        c.write_all(&[b'a'; 100]).await.expect("write");
        assert!(matches!(r.next().await, Some(Err(NetError::Line(_)))));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn line_reader_gives_the_kernel_receive_time() {
        let (mut c, rd) = pair().await;
        let mut r = LineReader::new(rd, 64);
        r.timestamp_reads().expect("SO_TIMESTAMPNS");
        // the kernel enables stamping asynchronously: wait for the first stamped line
        for _ in 0..200 {
            c.write_all(b"warm-up\n").await.expect("write");
            assert_eq!(&r.next().await.expect("line").expect("ok")[..], b"warm-up");
            if r.received().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = SystemTime::now();
        c.write_all(b"one\n").await.expect("write");
        // read well after the arrival: the stamp is the arrival, not the read
        tokio::time::sleep(Duration::from_millis(50)).await;
        let read_at = SystemTime::now();
        assert_eq!(&r.next().await.expect("line").expect("ok")[..], b"one");
        let at = r.received().expect("stamped");
        assert!(
            at >= before - Duration::from_millis(1),
            "{at:?} vs {before:?}"
        );
        assert!(
            at < read_at,
            "{at:?} is the arrival, before the read at {read_at:?}"
        );
        c.write_all(b"two\n").await.expect("write");
        assert_eq!(&r.next().await.expect("line").expect("ok")[..], b"two");
        assert!(r.received().expect("stamped") >= at);
    }
}
