//! # strata-net
//!
//! The only tokio in `protocol/`: thin async shells around the sans-IO cores.
//!
//! * [`sv2`]: an SV2 connection over any `AsyncRead`/`AsyncWrite` pair (a TCP stream's
//!   `into_split()` halves in practice): the Noise handshake as initiator or responder under a
//!   timeout, then an [`sv2::Sv2Reader`] and an [`sv2::Sv2Writer`], each owning only its own
//!   direction's key. Reads are cancellation-safe (`select!`-friendly); writes queue whole
//!   sealed frames and flush them, so a cancelled flush loses nothing either. A plaintext mode
//!   exists for trusted LANs.
//! * [`sv1`]: a `tokio_util::codec` line codec for Stratum V1 with a maximum line length.
//! * [`keys`]: a server's authority key, static key and certificate kept in a data
//!   directory (pool, proxy), or a certificate signed offline by `strata cert`, and the task
//!   that renews or re-reads the certificate while the server runs.
//! * [`cert`]: the sans-IO part of that: certificate files and the renewal decision.
//! * [`tcp`]: socket options the shells set ([`tcp::ack_now`]).
//! * [`limit`]: connections per IP address for listeners ([`limit::IpLimiter`], whose slots
//!   free themselves on drop).
//! * `http_auth` (feature `http`): the bearer token a server's HTTP API requires beyond
//!   loopback.
//! * `web` (feature `http`): the static assets of the servers' web pages (stylesheet, SVG
//!   line chart, sortable tables, the API from a browser with its token) and the responses
//!   serving them.
//!
//! ```no_run
//! # async fn demo(authority: strata_noise::PublicKey) -> Result<(), strata_net::NetError> {
//! use strata_net::sv2::{initiate, Sv2Options};
//! use strata_protocol::common::SetupConnectionSuccess;
//!
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:34254").await?;
//! let (rd, wr) = tcp.into_split();
//! let (mut reader, mut writer) = initiate(rd, wr, authority, &Sv2Options::default()).await?;
//! writer.send(&SetupConnectionSuccess { used_version: 2, flags: 0 }).await?;
//! while let Some((header, msg)) = reader.read_message().await? {
//!     println!("{} on channel_msg={}", msg.name(), header.channel_msg);
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cert;
pub mod config;
#[cfg(feature = "http")]
pub mod http_auth;
pub mod keys;
pub mod limit;
pub mod signal;
pub mod sv1;
pub mod sv2;
pub mod tcp;
#[cfg(feature = "http")]
pub mod web;

/// Errors of the async layer. Any of them ends the connection it came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The Noise handshake did not complete in time.
    #[error("noise handshake timed out after {secs:.1}s")]
    HandshakeTimeout {
        /// The timeout that expired.
        secs: f64,
    },
    /// The peer closed the connection during the handshake.
    #[error("peer closed the connection during the handshake")]
    HandshakeEof,
    /// Handshake or transport cryptography failed (bad certificate, tampering, ...).
    #[error("noise: {0}")]
    Noise(#[from] strata_noise::NoiseError),
    /// A plaintext frame was unacceptable (too large).
    #[error("frame: {0}")]
    Frame(#[from] strata_protocol::FrameError),
    /// A frame's payload is not a valid message.
    #[error("message: {0}")]
    Decode(#[from] strata_protocol::DecodeError),
    /// The peer closed the connection in the middle of a frame.
    #[error("peer closed the connection with {pending} bytes of an incomplete frame")]
    UnexpectedEof {
        /// Bytes of the incomplete frame.
        pending: usize,
    },
    /// An SV1 line was unacceptable.
    #[error("sv1: {0}")]
    Line(#[from] strata_sv1::LineError),
}
