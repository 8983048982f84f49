//! SV2 connections over tokio.
//!
//! ```text
//!  initiate(rd, wr, authority) ──act1──►            respond(rd, wr, &responder)
//!                              ◄──act2──
//!  (Sv2Reader, Sv2Writer)                           (Sv2Reader, Sv2Writer)
//!     │ Opener (receive key)                            │ Opener
//!     │ Sealer (send key)                               │ Sealer
//! ```
//!
//! The halves are independent values: move the reader into one task and the writer into
//! another (or keep both in one `select!` loop). [`Sv2Reader::read_frame`] is cancellation-safe:
//! every byte read is kept in the reader's buffer until a whole frame is there.
//! [`Sv2Writer::feed`] encodes and seals a frame into the writer's pending buffer (no I/O);
//! [`Sv2Writer::flush`] writes the pending bytes, advancing as the socket accepts them, so a
//! cancelled flush leaves the rest for the next one and never tears a frame.

use crate::NetError;
use bytes::{Bytes, BytesMut};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strata_noise::{
    Initiator, Opener, PublicKey, Responder, Sealer, ACT1_LEN, ACT2_LEN,
    DEFAULT_CLOCK_TOLERANCE_SECS,
};
use strata_protocol::frame::{Frame, FrameDecoder, Header, HEADER_LEN};
use strata_protocol::{Message, Sv2Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Default time allowed for a whole Noise handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a received frame's payload (1 MiB: far above any mining message).
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = strata_protocol::frame::DEFAULT_MAX_PAYLOAD_LEN;
/// How much the reader asks the socket for at least, per read.
const READ_CHUNK: usize = 8 * 1024;

/// Limits and clocks of a connection.
#[derive(Debug, Clone)]
pub struct Sv2Options {
    /// Time allowed for the whole handshake.
    pub handshake_timeout: Duration,
    /// Largest payload accepted from the peer; larger frames close the connection.
    pub max_payload_len: usize,
    /// Clock tolerance when checking the server certificate's validity window (initiator).
    pub clock_tolerance_secs: u32,
}

impl Default for Sv2Options {
    fn default() -> Self {
        Sv2Options {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
            clock_tolerance_secs: DEFAULT_CLOCK_TOLERANCE_SECS,
        }
    }
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

async fn with_timeout<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| NetError::HandshakeTimeout {
            secs: limit.as_secs_f64(),
        })?
}

fn eof_is_handshake_eof(e: std::io::Error) -> NetError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        NetError::HandshakeEof
    } else {
        NetError::Io(e)
    }
}

/// Run the Noise handshake as the initiator (client), pinning the pool's `authority` key, and
/// return the two halves of the encrypted connection. The certificate's validity window is
/// checked against the system clock.
pub async fn initiate<R, W>(
    mut rd: R,
    mut wr: W,
    authority: PublicKey,
    opts: &Sv2Options,
) -> Result<(Sv2Reader<R>, Sv2Writer<W>), NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let transport = with_timeout(opts.handshake_timeout, async {
        let (waiting, act1) = Initiator::new(authority);
        let waiting = waiting.with_clock_tolerance(opts.clock_tolerance_secs);
        wr.write_all(&act1).await?;
        wr.flush().await?;
        let mut act2 = [0u8; ACT2_LEN];
        rd.read_exact(&mut act2)
            .await
            .map_err(eof_is_handshake_eof)?;
        Ok(waiting.read_act2(&act2, unix_now())?)
    })
    .await?;
    Ok(encrypted_halves(rd, wr, transport, opts))
}

/// Run the Noise handshake as the responder (server) and return the two halves of the
/// encrypted connection. One [`Responder`] serves every connection.
pub async fn respond<R, W>(
    mut rd: R,
    mut wr: W,
    responder: &Responder,
    opts: &Sv2Options,
) -> Result<(Sv2Reader<R>, Sv2Writer<W>), NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let transport = with_timeout(opts.handshake_timeout, async {
        let mut act1 = [0u8; ACT1_LEN];
        rd.read_exact(&mut act1)
            .await
            .map_err(eof_is_handshake_eof)?;
        let (transport, act2) = responder.respond(&act1)?;
        wr.write_all(&act2).await?;
        wr.flush().await?;
        Ok(transport)
    })
    .await?;
    Ok(encrypted_halves(rd, wr, transport, opts))
}

fn encrypted_halves<R, W>(
    rd: R,
    wr: W,
    transport: strata_noise::Transport,
    opts: &Sv2Options,
) -> (Sv2Reader<R>, Sv2Writer<W>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (sealer, opener) = transport.split();
    (
        Sv2Reader::new(rd, Decoder::Noise(opener), opts.max_payload_len),
        Sv2Writer::new(wr, Some(sealer)),
    )
}

/// An unencrypted SV2 connection, for trusted LANs only (off unless configured).
pub fn plaintext<R, W>(rd: R, wr: W, opts: &Sv2Options) -> (Sv2Reader<R>, Sv2Writer<W>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    (
        Sv2Reader::new(
            rd,
            Decoder::Plain(FrameDecoder::new(opts.max_payload_len)),
            opts.max_payload_len,
        ),
        Sv2Writer::new(wr, None),
    )
}

#[derive(Debug)]
enum Decoder {
    Noise(Opener),
    Plain(FrameDecoder),
}

/// The receiving half of an SV2 connection.
#[derive(Debug)]
pub struct Sv2Reader<R> {
    io: R,
    decoder: Decoder,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Sv2Reader<R> {
    fn new(io: R, mut decoder: Decoder, max_payload_len: usize) -> Self {
        if let Decoder::Noise(o) = &mut decoder {
            o.set_max_payload_len(max_payload_len);
        }
        Sv2Reader {
            io,
            decoder,
            buf: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    fn decode_buffered(&mut self) -> Result<Option<Frame>, NetError> {
        match &mut self.decoder {
            Decoder::Noise(opener) => Ok(opener.decode(&mut self.buf)?.map(|pf| Frame {
                header: pf.header,
                payload: pf.payload.freeze(),
            })),
            Decoder::Plain(dec) => Ok(dec.decode(&mut self.buf)?),
        }
    }

    /// The next frame, or `None` when the peer closed the connection cleanly between frames.
    ///
    /// Cancellation-safe: if the future is dropped, bytes already read stay buffered and the
    /// next call continues where this one stopped.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, NetError> {
        loop {
            if let Some(frame) = self.decode_buffered()? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(NetError::UnexpectedEof {
                        pending: self.buf.len(),
                    })
                };
            }
        }
    }

    /// The next frame already in the buffer, without reading the socket: after
    /// [`read_frame`](Self::read_frame), the other frames the same read brought (a caller
    /// can then answer them together, with one write).
    pub fn buffered_frame(&mut self) -> Result<Option<Frame>, NetError> {
        self.decode_buffered()
    }

    /// The next message (decoded strictly: trailing bytes are an error), with its header.
    /// Cancellation-safe like [`read_frame`](Self::read_frame).
    pub async fn read_message(&mut self) -> Result<Option<(Header, Message)>, NetError> {
        match self.read_frame().await? {
            None => Ok(None),
            Some(f) => Ok(Some((f.header, Message::decode(&f.header, &f.payload)?))),
        }
    }

    /// Bytes received but not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// The sending half of an SV2 connection.
#[derive(Debug)]
pub struct Sv2Writer<W> {
    io: W,
    sealer: Option<Sealer>,
    pending: BytesMut,
}

impl<W: AsyncWrite + Unpin> Sv2Writer<W> {
    fn new(io: W, sealer: Option<Sealer>) -> Self {
        Sv2Writer {
            io,
            sealer,
            pending: BytesMut::with_capacity(4096),
        }
    }

    /// Seal the frame being built at the end of `pending` (everything after `start`).
    fn seal_tail(&mut self, start: usize) -> Result<(), NetError> {
        if let Some(sealer) = &mut self.sealer {
            let mut frame = self.pending.split_off(start);
            let sealed = sealer.seal_frame(&mut frame);
            self.pending.unsplit(frame);
            if let Err(e) = sealed {
                self.pending.truncate(start);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Encode and seal `msg` into the pending buffer (no I/O). Frames are sealed in the order
    /// they are fed, which is the order the peer must open them in.
    pub fn feed<M: Sv2Message>(&mut self, msg: &M) -> Result<(), NetError> {
        let start = self.pending.len();
        self.pending.reserve(HEADER_LEN + msg.encoded_len() + 64);
        msg.encode_frame(&mut self.pending);
        self.seal_tail(start)
    }

    /// [`feed`](Self::feed) for a [`Message`].
    pub fn feed_message(&mut self, msg: &Message) -> Result<(), NetError> {
        let start = self.pending.len();
        self.pending.reserve(HEADER_LEN + msg.encoded_len() + 64);
        msg.encode_frame(&mut self.pending);
        self.seal_tail(start)
    }

    /// Feed a raw frame (e.g. a message of an unknown extension being forwarded as is).
    pub fn feed_frame(&mut self, header: Header, payload: &Bytes) -> Result<(), NetError> {
        let start = self.pending.len();
        let header = Header {
            msg_length: payload.len() as u32,
            ..header
        };
        header.encode(&mut self.pending);
        self.pending.extend_from_slice(payload);
        self.seal_tail(start)
    }

    /// Write everything pending and flush the socket. Cancellation-safe: bytes are removed
    /// from the pending buffer only once the socket took them.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        while !self.pending.is_empty() {
            let n = self.io.write_buf(&mut self.pending).await?;
            if n == 0 {
                return Err(NetError::Io(std::io::ErrorKind::WriteZero.into()));
            }
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Feed `msg` and flush.
    pub async fn send<M: Sv2Message>(&mut self, msg: &M) -> Result<(), NetError> {
        self.feed(msg)?;
        self.flush().await
    }

    /// Feed a [`Message`] and flush.
    pub async fn send_message(&mut self, msg: &Message) -> Result<(), NetError> {
        self.feed_message(msg)?;
        self.flush().await
    }

    /// Bytes sealed but not yet written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Shut the write side down after flushing.
    pub async fn shutdown(&mut self) -> Result<(), NetError> {
        self.flush().await?;
        self.io.shutdown().await?;
        Ok(())
    }
}
