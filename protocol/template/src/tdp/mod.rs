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
//! The protocol decisions live in a synchronous core (`TdpCore`: messages in, templates and
//! requests out); [`TdpSource`] is the tokio shell around it. All state is in the source, so a
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
//! data to be appended). [`Template::tx_count`] is the length of the list.
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

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bitcoin::consensus::encode::deserialize_partial;
use bitcoin::hashes::Hash;
use bitcoin::Transaction;
use strata_net::sv2::{Sv2Options, Sv2Reader, Sv2Writer};
use strata_net::NetError;
use strata_protocol::common::{CommonMessage, SetupConnection, PROTOCOL_TEMPLATE_DISTRIBUTION};
use strata_protocol::template_distribution::{
    CoinbaseOutputConstraints, NewTemplate, RequestTransactionData, RequestTransactionDataError,
    RequestTransactionDataSuccess, SetNewPrevHash, SubmitSolution, TemplateDistributionMessage,
};
use strata_protocol::{DecodeError, Message, Str0_255, B0_64K};
use strata_work::coinbase::decode_outputs;
use strata_work::merkle::{
    is_witness_commitment, merkle_path_for_coinbase, witness_commitment, witness_merkle_root,
};
use strata_work::sha256d::sha256d;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::{
    bip34_height, CoinbaseConstraints, Solution, SourceError, SubmitOutcome, Template,
    TemplateSource,
};

/// The Template Distribution protocol version this source speaks (`SetupConnection`
/// `min_version` = `max_version`).
pub const PROTOCOL_VERSION: u16 = 2;

/// Largest frame payload accepted from the TP. `RequestTransactionData.Success` carries a
/// whole block's transactions (at most 4 MB serialized), so the default 1 MiB cap of
/// `strata-net` is too small here.
pub const MAX_PAYLOAD_LEN: usize = 8 << 20;

/// Most future templates kept while waiting for the `SetNewPrevHash` that activates one; the
/// oldest is dropped beyond this.
const MAX_FUTURE_TEMPLATES: usize = 16;

/// Most templates built but not returned yet; the oldest is dropped beyond this (only reached
/// when the pool stops calling `next_template`, or the TP never answers
/// `RequestTransactionData`).
const MAX_QUEUED_TEMPLATES: usize = 64;

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

/// The chain tip a `SetNewPrevHash` announced: the header fields a template takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tip {
    prev_hash: [u8; 32],
    nbits: u32,
    min_ntime: u32,
}

impl Tip {
    fn of(m: &SetNewPrevHash) -> Self {
        Tip {
            prev_hash: m.prev_hash.0,
            nbits: m.n_bits,
            min_ntime: m.header_timestamp,
        }
    }
}

/// A `NewTemplate`, decoded and checked, waiting for (or with) its tip.
#[derive(Debug, Clone)]
struct Announced {
    id: u64,
    height: u32,
    version: u32,
    coinbase_tx_version: u32,
    coinbase_prefix: Vec<u8>,
    coinbase_tx_input_sequence: u32,
    coinbase_tx_value_remaining: u64,
    coinbase_tx_outputs: Vec<bitcoin::TxOut>,
    coinbase_tx_locktime: u32,
    merkle_path: Vec<[u8; 32]>,
}

impl Announced {
    fn decode(m: &NewTemplate) -> Result<Self, SourceError> {
        let id = m.template_id;
        let prefix = m.coinbase_prefix.as_slice();
        let height = bip34_height(prefix).map_err(|reason| {
            SourceError::Protocol(format!("NewTemplate {id}: coinbase_prefix {reason}"))
        })?;
        let outputs = decode_outputs(
            m.coinbase_tx_outputs.as_slice(),
            m.coinbase_tx_outputs_count,
        )
        .map_err(|e| {
            SourceError::Protocol(format!("NewTemplate {id}: coinbase_tx_outputs: {e}"))
        })?;
        Ok(Announced {
            id,
            height,
            version: m.version,
            coinbase_tx_version: m.coinbase_tx_version,
            coinbase_prefix: prefix.to_vec(),
            coinbase_tx_input_sequence: m.coinbase_tx_input_sequence,
            coinbase_tx_value_remaining: m.coinbase_tx_value_remaining,
            coinbase_tx_outputs: outputs,
            coinbase_tx_locktime: m.coinbase_tx_locktime,
            merkle_path: m.merkle_path.iter().map(|h| h.0).collect(),
        })
    }

    fn on(self, tip: &Tip) -> Template {
        let tx_count = tx_count_lower_bound(self.merkle_path.len());
        Template {
            id: self.id,
            height: self.height,
            prev_hash: tip.prev_hash,
            version: self.version,
            nbits: tip.nbits,
            min_ntime: tip.min_ntime,
            coinbase_tx_version: self.coinbase_tx_version,
            coinbase_prefix: self.coinbase_prefix,
            coinbase_tx_input_sequence: self.coinbase_tx_input_sequence,
            coinbase_tx_value_remaining: self.coinbase_tx_value_remaining,
            coinbase_tx_outputs: self.coinbase_tx_outputs,
            coinbase_tx_locktime: self.coinbase_tx_locktime,
            merkle_path: self.merkle_path,
            tx_count,
        }
    }
}

/// Fewest non-coinbase transactions a block can have with a merkle path of `path_len`
/// hashes: `2^(path_len - 1)` (0 for an empty path), saturating.
fn tx_count_lower_bound(path_len: usize) -> u32 {
    match path_len {
        0 => 0,
        n if n > 32 => u32::MAX,
        n => 1u32 << (n - 1),
    }
}

/// Checks a template against the transactions the TP listed for it and returns their count.
fn check_transactions(t: &Template, list: &[strata_protocol::B0_16M]) -> Result<u32, String> {
    let mut txs = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let (tx, _) = deserialize_partial::<Transaction>(raw.as_slice())
            .map_err(|e| format!("transaction {i} does not decode: {e}"))?;
        txs.push(tx);
    }
    let txids: Vec<[u8; 32]> = txs
        .iter()
        .map(|tx| tx.compute_txid().to_byte_array())
        .collect();
    if merkle_path_for_coinbase(&txids) != t.merkle_path {
        return Err(format!(
            "merkle_path ({} hashes) is not the one of the {} transactions listed",
            t.merkle_path.len(),
            txs.len()
        ));
    }
    // BIP141: the commitment is the last output carrying the commitment header.
    let commitment = t
        .coinbase_tx_outputs
        .iter()
        .rev()
        .find(|o| is_witness_commitment(o.script_pubkey.as_bytes()));
    match commitment {
        Some(out) => {
            let wtxids: Vec<[u8; 32]> = txs
                .iter()
                .map(|tx| tx.compute_wtxid().to_byte_array())
                .collect();
            let expected = witness_commitment(&witness_merkle_root(&wtxids), &[0u8; 32]);
            if out.script_pubkey.as_bytes()[6..38] != expected {
                return Err("witness commitment is not the one of the transactions listed".into());
            }
        }
        None => {
            if txs
                .iter()
                .any(|tx| tx.input.iter().any(|i| !i.witness.is_empty()))
            {
                return Err(
                    "transactions carry witnesses but the coinbase has no witness commitment"
                        .into(),
                );
            }
        }
    }
    u32::try_from(txs.len()).map_err(|_| "too many transactions".to_string())
}

/// A template made ready, waiting to be returned.
#[derive(Debug)]
struct Queued {
    template: Template,
    /// Still waiting for `RequestTransactionData.Success`.
    awaiting_data: bool,
}

/// The sans-IO Template Distribution client: messages in, templates and transaction-data
/// requests out.
#[derive(Debug)]
struct TdpCore {
    verify: bool,
    /// The current tip (the last `SetNewPrevHash`).
    tip: Option<Tip>,
    /// The tip before it (solutions on it may still be submitted).
    previous_tip: Option<[u8; 32]>,
    /// Future templates by id, waiting for their `SetNewPrevHash`.
    future: BTreeMap<u64, Announced>,
    /// Ready templates, in order.
    queue: VecDeque<Queued>,
    /// Template ids to send `RequestTransactionData` for.
    requests: Vec<u64>,
    /// Templates returned, with their prev_hash (pruned to the last two tips).
    issued: Vec<(u64, [u8; 32])>,
    /// The last `NewTemplate.template_id` (they must increase).
    last_id: Option<u64>,
}

impl TdpCore {
    fn new(verify: bool) -> Self {
        TdpCore {
            verify,
            tip: None,
            previous_tip: None,
            future: BTreeMap::new(),
            queue: VecDeque::new(),
            requests: Vec::new(),
            issued: Vec::new(),
            last_id: None,
        }
    }

    /// Template ids to request transaction data for (drained).
    fn take_requests(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.requests)
    }

    /// The next template ready to be returned, if any.
    fn pop_ready(&mut self) -> Option<Template> {
        if self.queue.front().is_some_and(|q| !q.awaiting_data) {
            let template = self.queue.pop_front()?.template;
            self.issued.push((template.id, template.prev_hash));
            debug!(
                template_id = template.id,
                height = template.height,
                "template ready"
            );
            Some(template)
        } else {
            None
        }
    }

    /// Whether a solution on `template_id` can be submitted: the template was returned and
    /// builds on the current tip or the one before.
    fn is_submittable(&self, template_id: u64) -> bool {
        self.issued.iter().any(|(id, _)| *id == template_id)
    }

    fn enqueue(&mut self, template: Template) {
        if self.queue.len() >= MAX_QUEUED_TEMPLATES {
            if let Some(old) = self.queue.pop_front() {
                warn!(
                    template_id = old.template.id,
                    "dropping an unreturned template: too many queued"
                );
            }
        }
        if self.verify {
            self.requests.push(template.id);
        }
        self.queue.push_back(Queued {
            template,
            awaiting_data: self.verify,
        });
    }

    fn handle(&mut self, msg: TemplateDistributionMessage) -> Result<(), SourceError> {
        match msg {
            TemplateDistributionMessage::NewTemplate(m) => self.on_new_template(&m),
            TemplateDistributionMessage::SetNewPrevHash(m) => self.on_set_new_prev_hash(&m),
            TemplateDistributionMessage::RequestTransactionDataSuccess(m) => {
                self.on_transaction_data(&m)
            }
            TemplateDistributionMessage::RequestTransactionDataError(m) => {
                self.on_transaction_data_error(&m);
                Ok(())
            }
            other => {
                warn!(
                    message = other.name(),
                    "ignoring a client message sent by the template provider"
                );
                Ok(())
            }
        }
    }

    fn on_new_template(&mut self, m: &NewTemplate) -> Result<(), SourceError> {
        let id = m.template_id;
        if let Some(last) = self.last_id.filter(|&last| id <= last) {
            return Err(SourceError::Protocol(format!(
                "NewTemplate {id} after NewTemplate {last}: template ids must increase"
            )));
        }
        self.last_id = Some(id);
        let announced = Announced::decode(m)?;
        debug!(
            template_id = id,
            future = m.future_template,
            height = announced.height,
            "NewTemplate"
        );
        if m.future_template {
            if self.future.len() >= MAX_FUTURE_TEMPLATES {
                self.future.pop_first();
            }
            self.future.insert(id, announced);
            return Ok(());
        }
        let Some(tip) = self.tip else {
            return Err(SourceError::Protocol(format!(
                "NewTemplate {id} is not a future template but no SetNewPrevHash came before it"
            )));
        };
        self.enqueue(announced.on(&tip));
        Ok(())
    }

    fn on_set_new_prev_hash(&mut self, m: &SetNewPrevHash) -> Result<(), SourceError> {
        let Some(announced) = self.future.remove(&m.template_id) else {
            return Err(SourceError::Protocol(format!(
                "SetNewPrevHash names template {}, which was not announced as a future template",
                m.template_id
            )));
        };
        let tip = Tip::of(m);
        info!(
            template_id = m.template_id,
            height = announced.height,
            "new tip from the template provider"
        );
        // the other future templates were for other tips (spec 7.3)
        self.future.clear();
        if self.tip.map(|t| t.prev_hash) != Some(tip.prev_hash) {
            self.previous_tip = self.tip.map(|t| t.prev_hash);
            let (current, previous) = (tip.prev_hash, self.previous_tip);
            self.issued
                .retain(|(_, h)| *h == current || Some(*h) == previous);
            // templates on older tips that were not returned yet are stale
            self.queue.retain(|q| {
                let keep = q.template.prev_hash == current;
                if !keep {
                    debug!(template_id = q.template.id, "dropping a stale template");
                }
                keep
            });
        }
        self.tip = Some(tip);
        self.enqueue(announced.on(&tip));
        Ok(())
    }

    fn on_transaction_data(
        &mut self,
        m: &RequestTransactionDataSuccess,
    ) -> Result<(), SourceError> {
        let Some(q) = self
            .queue
            .iter_mut()
            .find(|q| q.awaiting_data && q.template.id == m.template_id)
        else {
            debug!(
                template_id = m.template_id,
                "transaction data for a template not waiting for it"
            );
            return Ok(());
        };
        let tx_count =
            check_transactions(&q.template, m.transaction_list.as_slice()).map_err(|reason| {
                SourceError::Protocol(format!("template {}: {reason}", m.template_id))
            })?;
        q.template.tx_count = tx_count;
        q.awaiting_data = false;
        Ok(())
    }

    fn on_transaction_data_error(&mut self, m: &RequestTransactionDataError) {
        let before = self.queue.len();
        self.queue
            .retain(|q| !(q.awaiting_data && q.template.id == m.template_id));
        debug!(
            template_id = m.template_id,
            error_code = %m.error_code,
            dropped = before != self.queue.len(),
            "RequestTransactionData.Error: template not verifiable, not returned"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_count_bound_matches_tree_depth() {
        for tx_count in 0u32..200 {
            let path = merkle_path_for_coinbase(&vec![[7u8; 32]; tx_count as usize]);
            let bound = tx_count_lower_bound(path.len());
            assert!(
                bound <= tx_count,
                "{tx_count} txs, path {}, bound {bound}",
                path.len()
            );
            // the bound is tight: it is itself a count with a path of the same length
            let tight = merkle_path_for_coinbase(&vec![[7u8; 32]; bound as usize]);
            assert_eq!(tight.len(), path.len());
        }
        assert_eq!(tx_count_lower_bound(255), u32::MAX);
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("127.0.0.1:8442").ok(), Some(("127.0.0.1", 8442)));
        assert_eq!(endpoint("[::1]:8442").ok(), Some(("::1", 8442)));
        assert_eq!(endpoint("tp.example:1").ok(), Some(("tp.example", 1)));
        assert!(endpoint("nope").is_err());
        assert!(endpoint("h:99999").is_err());
    }

    fn new_template(id: u64, future: bool) -> NewTemplate {
        NewTemplate {
            template_id: id,
            future_template: future,
            version: 0x2000_0000,
            coinbase_tx_version: 2,
            coinbase_prefix: strata_protocol::B0_255::new(
                strata_work::coinbase::bip34_height_push(100),
            )
            .expect("prefix"),
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: 5_000_000_000,
            coinbase_tx_outputs_count: 0,
            coinbase_tx_outputs: B0_64K::new(Vec::new()).expect("outputs"),
            coinbase_tx_locktime: 0,
            merkle_path: strata_protocol::Seq0_255::new(Vec::new()).expect("path"),
        }
    }

    fn prev_hash(id: u64, tip: u8) -> SetNewPrevHash {
        SetNewPrevHash {
            template_id: id,
            prev_hash: strata_protocol::U256([tip; 32]),
            header_timestamp: 1_700_000_000,
            n_bits: 0x207f_ffff,
            target: strata_protocol::U256([0xff; 32]),
        }
    }

    fn feed(
        core: &mut TdpCore,
        m: impl Into<TemplateDistributionMessage>,
    ) -> Result<(), SourceError> {
        core.handle(m.into())
    }

    #[test]
    fn peers_breaking_the_order_are_protocol_errors() {
        let mut core = TdpCore::new(false);
        let err = feed(&mut core, new_template(1, false)).expect_err("no tip yet");
        assert!(matches!(err, SourceError::Protocol(m) if m.contains("no SetNewPrevHash")));

        let mut core = TdpCore::new(false);
        let err = feed(&mut core, prev_hash(7, 1)).expect_err("unknown template");
        assert!(matches!(err, SourceError::Protocol(m) if m.contains("template 7")));

        let mut core = TdpCore::new(false);
        feed(&mut core, new_template(5, true)).expect("first");
        let err = feed(&mut core, new_template(5, true)).expect_err("same id");
        assert!(matches!(err, SourceError::Protocol(m) if m.contains("must increase")));

        let mut core = TdpCore::new(false);
        let mut bad = new_template(1, true);
        bad.coinbase_prefix = strata_protocol::B0_255::new(vec![0x6a]).expect("prefix");
        let err = feed(&mut core, bad).expect_err("no height");
        assert!(matches!(err, SourceError::Protocol(m) if m.contains("BIP34")));
    }

    #[test]
    fn templates_come_out_once_in_order_and_stale_ones_are_dropped() {
        let mut core = TdpCore::new(true);
        feed(&mut core, new_template(1, true)).expect("nt");
        assert_eq!(core.pop_ready(), None, "future template waits");
        feed(&mut core, prev_hash(1, 0xaa)).expect("snph");
        feed(&mut core, new_template(2, false)).expect("nt");
        assert_eq!(core.take_requests(), vec![1, 2]);
        assert_eq!(core.pop_ready(), None, "waiting for transaction data");
        let empty = RequestTransactionDataSuccess {
            template_id: 1,
            excess_data: B0_64K::new(Vec::new()).expect("excess"),
            transaction_list: strata_protocol::Seq0_64K::new(Vec::new()).expect("list"),
        };
        feed(&mut core, empty.clone()).expect("data 1");
        let t = core.pop_ready().expect("template 1");
        assert_eq!(
            (t.id, t.prev_hash, t.height, t.tx_count),
            (1, [0xaa; 32], 100, 0)
        );
        assert!(core.is_submittable(1));
        assert_eq!(core.pop_ready(), None);

        // a new tip before template 2 was verified: 2 is stale and never comes out
        feed(&mut core, new_template(3, true)).expect("nt");
        feed(&mut core, prev_hash(3, 0xbb)).expect("snph");
        let data_3 = RequestTransactionDataSuccess {
            template_id: 3,
            ..empty.clone()
        };
        let data_2 = RequestTransactionDataSuccess {
            template_id: 2,
            ..empty
        };
        feed(&mut core, data_2).expect("late data for a dropped template is ignored");
        feed(&mut core, data_3.clone()).expect("data 3");
        assert_eq!(core.pop_ready().map(|t| t.id), Some(3));
        assert_eq!(core.pop_ready(), None);
        // a repeated answer does not bring it back
        feed(&mut core, data_3).expect("duplicate");
        assert_eq!(core.pop_ready(), None);

        // solutions: the current tip and the one before are accepted, older ones are not
        assert!(core.is_submittable(1) && core.is_submittable(3));
        assert!(!core.is_submittable(2), "never returned");
        feed(&mut core, new_template(4, true)).expect("nt");
        feed(&mut core, prev_hash(4, 0xcc)).expect("snph");
        assert!(!core.is_submittable(1), "two tips ago");
        assert!(core.is_submittable(3));
    }

    #[test]
    fn transaction_data_error_drops_only_that_template() {
        let mut core = TdpCore::new(true);
        feed(&mut core, new_template(1, true)).expect("nt");
        feed(&mut core, prev_hash(1, 0xaa)).expect("snph");
        feed(&mut core, new_template(2, false)).expect("nt");
        feed(
            &mut core,
            RequestTransactionDataError {
                template_id: 1,
                error_code: Str0_255::new("stale-template-id").expect("code"),
            },
        )
        .expect("not fatal");
        feed(
            &mut core,
            RequestTransactionDataSuccess {
                template_id: 2,
                excess_data: B0_64K::new(Vec::new()).expect("excess"),
                transaction_list: strata_protocol::Seq0_64K::new(Vec::new()).expect("list"),
            },
        )
        .expect("data 2");
        assert_eq!(core.pop_ready().map(|t| t.id), Some(2));
    }
}
