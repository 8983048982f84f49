//! The `tdp` template source: a Template Provider (Bitcoin Core's SV2 template provider, SRI's,
//! or any other) over SV2 Template Distribution
//! ([spec 7](https://github.com/stratum-mining/sv2-spec/blob/main/07-Template-Distribution-Protocol.md)).
//!
//! ```text
//!  TdpSource::connect                                    Template Provider
//!    TCP connect, Noise NX (or plaintext)     ────────►
//!    SetupConnection(protocol = 2, v2..v2)    ────────►
//!                                             ◄────────  SetupConnection.Success / .Error
//!    CoinbaseOutputConstraints                ────────►
//!  next_template (loop)
//!                                             ◄────────  NewTemplate(future) ──► kept by id
//!                                             ◄────────  SetNewPrevHash(id)  ──► template ready
//!                                             ◄────────  NewTemplate(now)    ──► template ready
//!    RequestTransactionData(id)               ────────►  (verify_templates)
//!                                             ◄────────  RequestTransactionData.Success / .Error
//!                                             returned once checked, in order
//!  submit
//!    SubmitSolution                           ────────►  (no answer: the TP builds and
//!                                                         broadcasts the block)
//! ```
//!
//! The protocol decisions live in a synchronous core (`TdpCore` in `core.rs`: messages in,
//! templates and requests out); [`TdpSource`] (this file) is the tokio shell around it. All state is in the source, so a
//! [`TemplateSource::next_template`] call dropped at any await point loses nothing: reads are
//! cancel-safe ([`strata_net::sv2::Sv2Reader::read_frame`]), requests are queued in the writer
//! before anything awaits and flushed by whichever call comes next.
//!
//! # How a `Template` is assembled
//!
//! `prev_hash` (header byte order, as sent), `nbits` and `min_ntime` come from the
//! `SetNewPrevHash` the template builds on (`min_ntime` is its `header_timestamp`); everything
//! else comes from `NewTemplate`. The height is decoded from the BIP34 push at the start of
//! `coinbase_prefix` (a template without one is a protocol error). `SetNewPrevHash.target` is
//! not carried: the pool derives the block target from `nbits`.
//!
//! A future template is returned when a `SetNewPrevHash` names it; a non-future template at
//! once (it builds on the current `SetNewPrevHash`). Templates not yet returned when a new tip
//! arrives are stale and dropped, as are the other future templates once one is activated
//! (spec 7.3).
//!
//! # Template verification
//!
//! With [`TdpConfig::verify_templates`] (the default) every template is held back until the TP
//! answers a `RequestTransactionData` for it, and returned only if the `merkle_path` it
//! announced is the one of the transactions it listed and, when the coinbase outputs carry a
//! BIP141 witness commitment, that commitment is the one of their wtxids (witness reserved value
//! of 32 zero bytes, spec 7.2). A mismatch is a [`SourceError::Protocol`]: the TP is lying or
//! broken and blocks built on its templates would be invalid. A `RequestTransactionData.Error`
//! (`stale-template-id`, `template-id-not-found`) is not fatal: the template is dropped (it is
//! no longer worth mining) and logged at debug level. Transactions are decoded with
//! consensus rules; bytes after a transaction are ignored (spec 7.5 allows consensus-optional
//! data to be appended). [`Template::tx_count`] is the length of the list, and the list (each
//! transaction's consensus serialization) is what [`TemplateSource::transactions`] gives for the
//! template returned last: a Job Declarator Client declares them in Full-Template mode.
//!
//! Without verification [`Template::tx_count`] is unknown and reported as a lower bound
//! derived from the merkle path: a path of `n > 0` hashes means at least `2^(n-1)`
//! transactions besides the coinbase (0 for an empty path).
//!
//! # Submitting
//!
//! `SubmitSolution` has no answer in Template Distribution: [`TemplateSource::submit`] returns
//! [`SubmitOutcome::Accepted`] with the block hash once the frame is written to the socket. The
//! acceptance is the TP's to decide; it shows in the `SetNewPrevHash` for the new block that
//! the next [`TemplateSource::next_template`] receives. Only templates returned on the current
//! tip or the one before are accepted for submission (others are [`SourceError::UnknownTemplate`]).
//!
//! # Failures and reconnecting
//!
//! Connection loss is a [`SourceError::Connection`]; a TP that breaks the protocol, a
//! [`SourceError::Protocol`]; a TP that cannot prove it holds a certificate signed by the pinned
//! authority key, a [`SourceError::Auth`]. After any of them the source stays failed (every
//! later call returns the same error): the pool drops it and calls [`TdpSource::connect`] again
//! with [`TdpSource::config`] (the TP sends its current best template on every new connection).

use std::time::Duration;

use strata_net::sv2::{Sv2Options, Sv2Reader, Sv2Writer};
use strata_net::NetError;
use strata_protocol::common::{CommonMessage, SetupConnection, PROTOCOL_TEMPLATE_DISTRIBUTION};
use strata_protocol::template_distribution::{
    CoinbaseOutputConstraints, RequestTransactionData, SubmitSolution,
};
use strata_protocol::{DecodeError, Message, Str0_255, B0_64K};
use strata_work::sha256d::sha256d;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::{CoinbaseConstraints, Solution, SourceError, SubmitOutcome, Template, TemplateSource};

mod core;
#[cfg(test)]
mod tests;

use self::core::TdpCore;

/// The Template Distribution protocol version this source speaks (`SetupConnection`
/// `min_version` = `max_version`).
pub const PROTOCOL_VERSION: u16 = 2;

/// Largest frame payload accepted from the TP. `RequestTransactionData.Success` carries a
/// whole block's transactions (at most 4 MB serialized), so the default 1 MiB cap of
/// `strata-net` is too small here.
pub const MAX_PAYLOAD_LEN: usize = 8 << 20;

/// How to reach and talk to a Template Provider.
#[derive(Debug, Clone)]
pub struct TdpConfig {
    /// `host:port` of the TP (a `SocketAddr`'s `to_string()` works; IPv6 hosts in brackets).
    /// The host and port are also what `SetupConnection` reports as the endpoint.
    pub address: String,
    /// The TP's authority public key. `Some`: the connection is encrypted (Noise NX, this
    /// source is the initiator) and the TP must present a certificate signed by this key.
    /// `None`: plaintext SV2 framing with no authentication at all — only for a TP on the same
    /// host (`127.0.0.1`), never across a network.
    pub authority: Option<strata_noise::PublicKey>,
    /// What the pool adds to the coinbase, sent as `CoinbaseOutputConstraints`.
    pub constraints: CoinbaseConstraints,
    /// Check every template against its transactions before returning it (see the module
    /// docs). Default `true`.
    pub verify_templates: bool,
    /// Time allowed for the TCP connect.
    pub connect_timeout: Duration,
    /// Time allowed for the Noise handshake, and again for the `SetupConnection` exchange.
    pub handshake_timeout: Duration,
}

impl TdpConfig {
    /// A configuration with the defaults: default coinbase constraints, verification on,
    /// 10 s connect and handshake timeouts.
    pub fn new(address: impl Into<String>, authority: Option<strata_noise::PublicKey>) -> Self {
        TdpConfig {
            address: address.into(),
            authority,
            constraints: CoinbaseConstraints::default(),
            verify_templates: true,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A Template Provider connection (see the module docs). One task owns it.
#[derive(Debug)]
pub struct TdpSource {
    config: TdpConfig,
    reader: Sv2Reader<OwnedReadHalf>,
    writer: Sv2Writer<OwnedWriteHalf>,
    core: TdpCore,
    /// Set by the first fatal error; every later call returns it again.
    broken: Option<Broken>,
}

#[derive(Debug, Clone)]
enum Broken {
    Connection(String),
    Protocol(String),
}

impl Broken {
    fn of(e: &SourceError) -> Option<Self> {
        match e {
            SourceError::Connection(m) => Some(Broken::Connection(m.clone())),
            SourceError::Protocol(m) => Some(Broken::Protocol(m.clone())),
            _ => None,
        }
    }

    fn to_error(&self) -> SourceError {
        match self {
            Broken::Connection(m) => SourceError::Connection(m.clone()),
            Broken::Protocol(m) => SourceError::Protocol(m.clone()),
        }
    }
}

/// Splits `host:port` (`[v6]:port` too) into the endpoint fields of `SetupConnection`.
fn endpoint(address: &str) -> Result<(&str, u16), SourceError> {
    let bad = || SourceError::Connection(format!("address {address:?} is not host:port"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host, port))
}

fn connection_error(e: NetError) -> SourceError {
    match e {
        NetError::Frame(_) | NetError::Decode(_) => {
            SourceError::Protocol(format!("template provider sent an invalid frame: {e}"))
        }
        other => SourceError::Connection(format!("template provider connection: {other}")),
    }
}

fn str0_255(field: &str, s: &str) -> Result<Str0_255, SourceError> {
    Str0_255::new(s).map_err(|e| SourceError::Connection(format!("{field}: {e}")))
}

impl TdpSource {
    /// Connects to the TP: TCP, the Noise handshake (or plaintext when
    /// [`TdpConfig::authority`] is `None`), `SetupConnection` for Template Distribution
    /// version 2 and `CoinbaseOutputConstraints`. Returns once the TP accepted the connection;
    /// its first template arrives through [`TemplateSource::next_template`].
    ///
    /// Errors: [`SourceError::Connection`] (unreachable, timeout, closed),
    /// [`SourceError::Auth`] (the TP's certificate is not signed by the authority key),
    /// [`SourceError::Protocol`] (`SetupConnection.Error`, with its error code, or an
    /// unexpected answer).
    pub async fn connect(config: TdpConfig) -> Result<TdpSource, SourceError> {
        let (host, port) = endpoint(&config.address)?;
        let tcp = tokio::time::timeout(config.connect_timeout, TcpStream::connect(&config.address))
            .await
            .map_err(|_| {
                SourceError::Connection(format!(
                    "connect to {} timed out after {:?}",
                    config.address, config.connect_timeout
                ))
            })?
            .map_err(|e| SourceError::Connection(format!("connect to {}: {e}", config.address)))?;
        tcp.set_nodelay(true)
            .map_err(|e| SourceError::Connection(format!("set TCP_NODELAY: {e}")))?;
        let (rd, wr) = tcp.into_split();
        let opts = Sv2Options {
            handshake_timeout: config.handshake_timeout,
            max_payload_len: MAX_PAYLOAD_LEN,
            ..Sv2Options::default()
        };
        let (mut reader, mut writer) = match config.authority {
            Some(authority) => strata_net::sv2::initiate(rd, wr, authority, &opts)
                .await
                .map_err(|e| match e {
                    NetError::Noise(e) => SourceError::Auth(format!(
                        "template provider at {} failed the noise handshake: {e}",
                        config.address
                    )),
                    other => SourceError::Connection(format!(
                        "noise handshake with {}: {other}",
                        config.address
                    )),
                })?,
            None => strata_net::sv2::plaintext(rd, wr, &opts),
        };

        let setup = SetupConnection {
            protocol: PROTOCOL_TEMPLATE_DISTRIBUTION,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: 0,
            endpoint_host: str0_255("endpoint host", host)?,
            endpoint_port: port,
            vendor: str0_255("vendor", "strata")?,
            hardware_version: str0_255("hardware version", "")?,
            firmware: str0_255(
                "firmware",
                concat!("strata-pool ", env!("CARGO_PKG_VERSION")),
            )?,
            device_id: str0_255("device id", "")?,
        };
        writer.send(&setup).await.map_err(connection_error)?;
        tokio::time::timeout(config.handshake_timeout, Self::setup_answer(&mut reader))
            .await
            .map_err(|_| {
                SourceError::Connection(format!(
                    "no SetupConnection answer from {} within {:?}",
                    config.address, config.handshake_timeout
                ))
            })??;

        writer
            .send(&CoinbaseOutputConstraints {
                coinbase_output_max_additional_size: config.constraints.max_additional_size,
                coinbase_output_max_additional_sigops: config.constraints.max_additional_sigops,
            })
            .await
            .map_err(connection_error)?;
        info!(address = %config.address, encrypted = config.authority.is_some(), "connected to the template provider");
        let core = TdpCore::new(config.verify_templates);
        Ok(TdpSource {
            config,
            reader,
            writer,
            core,
            broken: None,
        })
    }

    async fn setup_answer(reader: &mut Sv2Reader<OwnedReadHalf>) -> Result<(), SourceError> {
        let (_, msg) = reader
            .read_message()
            .await
            .map_err(connection_error)?
            .ok_or_else(|| {
                SourceError::Connection(
                    "template provider closed the connection during SetupConnection".into(),
                )
            })?;
        match msg {
            Message::Common(CommonMessage::SetupConnectionSuccess(ok)) => {
                if ok.used_version != PROTOCOL_VERSION {
                    return Err(SourceError::Protocol(format!(
                        "template provider chose version {}, we asked for {PROTOCOL_VERSION}",
                        ok.used_version
                    )));
                }
                Ok(())
            }
            Message::Common(CommonMessage::SetupConnectionError(err)) => {
                Err(SourceError::Protocol(format!(
                    "template provider refused SetupConnection: {} (flags {:#x})",
                    err.error_code, err.flags
                )))
            }
            other => Err(SourceError::Protocol(format!(
                "template provider answered SetupConnection with {}",
                other.name()
            ))),
        }
    }

    /// The configuration this source was connected with (to reconnect with).
    pub fn config(&self) -> &TdpConfig {
        &self.config
    }

    fn fail(&mut self, e: SourceError) -> SourceError {
        if self.broken.is_none() {
            self.broken = Broken::of(&e);
            warn!(error = %e, "template provider source failed");
        }
        e
    }

    async fn next_template_inner(&mut self) -> Result<Template, SourceError> {
        loop {
            // Queue the requests the core decided on before any await: a dropped call leaves
            // them in the writer, and the next call flushes them.
            for template_id in self.core.take_requests() {
                self.writer
                    .feed(&RequestTransactionData { template_id })
                    .map_err(connection_error)?;
            }
            if self.writer.pending() > 0 {
                self.writer.flush().await.map_err(connection_error)?;
            }
            if let Some(template) = self.core.pop_ready() {
                return Ok(template);
            }
            let frame = self
                .reader
                .read_frame()
                .await
                .map_err(connection_error)?
                .ok_or_else(|| {
                    SourceError::Connection("template provider closed the connection".into())
                })?;
            match Message::decode(&frame.header, &frame.payload) {
                Ok(Message::TemplateDistribution(m)) => self.core.handle(m)?,
                Ok(other) => warn!(
                    message = other.name(),
                    "ignoring a message from the template provider"
                ),
                Err(DecodeError::UnknownMessage {
                    extension_type,
                    msg_type,
                }) => debug!(
                    extension_type,
                    msg_type, "ignoring an unknown message from the template provider"
                ),
                Err(e) => {
                    return Err(SourceError::Protocol(format!(
                        "template provider sent an undecodable message: {e}"
                    )))
                }
            }
        }
    }

    async fn submit_inner(&mut self, solution: Solution) -> Result<SubmitOutcome, SourceError> {
        let header = &solution.header;
        let u32_at =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let coinbase_len = solution.coinbase.len();
        let coinbase_tx = B0_64K::new(solution.coinbase).map_err(|_| {
            SourceError::Protocol(format!(
                "a coinbase of {coinbase_len} bytes does not fit SubmitSolution (B0_64K)"
            ))
        })?;
        let msg = SubmitSolution {
            template_id: solution.template_id,
            version: u32_at(0),
            header_timestamp: u32_at(68),
            header_nonce: u32_at(76),
            coinbase_tx,
        };
        self.writer.feed(&msg).map_err(connection_error)?;
        self.writer.flush().await.map_err(connection_error)?;
        let mut hash = sha256d(header);
        hash.reverse();
        let hash = hex::encode(hash);
        info!(template_id = solution.template_id, %hash, "block submitted to the template provider");
        Ok(SubmitOutcome::Accepted { hash })
    }
}

impl TemplateSource for TdpSource {
    fn name(&self) -> &'static str {
        "tdp"
    }

    fn transactions(&self, template_id: u64) -> Option<&[Vec<u8>]> {
        self.core.transactions(template_id)
    }

    /// The next template, in the order the TP made them ready (see the module docs).
    /// Cancel-safe.
    async fn next_template(&mut self) -> Result<Template, SourceError> {
        if let Some(b) = &self.broken {
            return Err(b.to_error());
        }
        match self.next_template_inner().await {
            Ok(t) => Ok(t),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Sends `SubmitSolution` and returns [`SubmitOutcome::Accepted`] once it is written (the
    /// TP does not answer; see the module docs). A call dropped before completion leaves the
    /// message queued; the next call of either method sends it.
    async fn submit(&mut self, solution: Solution) -> Result<SubmitOutcome, SourceError> {
        if let Some(b) = &self.broken {
            return Err(b.to_error());
        }
        if !self.core.is_submittable(solution.template_id) {
            return Err(SourceError::UnknownTemplate(solution.template_id));
        }
        match self.submit_inner(solution).await {
            Ok(o) => Ok(o),
            Err(e) => Err(self.fail(e)),
        }
    }
}
