//! The SV2 miner core: sans-IO. Messages from the server go in through
//! [`Sv2Miner::handle`]; hashing is a bounded step, [`Sv2Miner::mine`]; what the miner wants
//! to send, report or do comes out of [`Sv2Miner::poll_output`]. Time is passed in ([`Now`]).
//!
//! ```text
//!  connect() ──SetupConnection──► AwaitingSetup ──.Success──► Opening ──Open*.Success──► Open
//!                                     │ .Error: fatal            │ .Error: fatal     │
//!                                     ▼                          ▲                   │
//!                              MinerError::SetupRejected         └──CloseChannel─────┘
//!  Reconnect (any state): Sv2Output::Reconnect; the shell calls connect() again.
//! ```
//!
//! Jobs, prevhashes, targets, extranonce prefixes and group channels are tracked with
//! [`strata_work::channel::Channels`], the same state the pool validates shares against. The
//! miner hashes the channel's active job at the target that job was activated with (spec
//! 5.3.21: `SetTarget` applies to jobs activated later); when the active job or the prevhash
//! changes, the old work is dropped at once.
//!
//! The search space of a job: the 2^32 nonces, then (each time they run out) a fresh
//! "roll": the next value of a per-miner counter spread over the version bits the job lets us
//! roll (its mask intersected with BIP320's `0x1fffe000`, none if the server set
//! `REQUIRES_FIXED_VERSION`) and, on extended channels, written little-endian into the
//! extranonce; with neither available, nTime goes up by one. Every work starts from a fresh
//! roll, so no two headers of a connection repeat.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::common::{
    CommonMessage, SetupConnection, SetupConnectionSuccess, PROTOCOL_MINING,
};
use strata_protocol::mining::{
    MiningMessage, OpenExtendedMiningChannel, OpenStandardMiningChannel, SubmitSharesError,
    SubmitSharesExtended, SubmitSharesStandard, SubmitSharesSuccess, REQUIRES_EXTENDED_CHANNELS,
    REQUIRES_FIXED_VERSION, REQUIRES_VERSION_ROLLING,
};
use strata_protocol::{Message, Str0_255, B0_32, U256};
use strata_work::channel::{Channel, ChannelConfig, ChannelError, Channels};
use strata_work::coinbase::txid_from_parts;
use strata_work::header::{BIP320_VERSION_MASK, HEADER_LEN};
use strata_work::merkle::merkle_root_from_path;
use strata_work::target::Target;

use crate::error::MinerError;
use crate::report::{since_clock_base, Event, MinerStats};
use crate::search::{display_hash, spread_bits, HeaderSearch};
use crate::{Mined, Now};

/// SV2 protocol version spoken (spec 3.6.1).
pub const PROTOCOL_VERSION: u16 = 2;
/// Default `min_extranonce_size` of `OpenExtendedMiningChannel`.
pub const DEFAULT_MIN_EXTRANONCE_SIZE: u16 = 8;
/// Submitted shares remembered for latency measurement until acknowledged.
const MAX_PENDING: usize = 1 << 16;

/// Which channel a miner opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelRequest {
    /// `OpenStandardMiningChannel`: header-only jobs (or a group's extended jobs converted by
    /// the client).
    Standard,
    /// `OpenExtendedMiningChannel` asking for at least this many extranonce bytes.
    Extended {
        /// `min_extranonce_size`.
        min_extranonce_size: u16,
    },
}

impl ChannelRequest {
    /// `standard` or `extended`.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelRequest::Standard => "standard",
            ChannelRequest::Extended { .. } => "extended",
        }
    }
}

/// Configuration of one SV2 miner.
#[derive(Debug, Clone)]
pub struct Sv2Config {
    /// The miner's index (`miner=` in output lines, `device_id`).
    pub index: usize,
    /// `user_identity` of the channel (at most 255 bytes).
    pub user: String,
    /// The channel to open.
    pub channel: ChannelRequest,
    /// `nominal_hash_rate` advertised, h/s.
    pub nominal_hashrate: f32,
    /// Record submit-to-acknowledgement latencies in [`MinerStats::latencies_us`].
    pub record_latency: bool,
}

/// What the core wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Sv2Output {
    /// Send this message.
    Send(Message),
    /// Report this event.
    Event(Event),
    /// Close the connection and connect to this endpoint (`None`: the current host / port),
    /// then call [`Sv2Miner::connect`].
    Reconnect {
        /// New host.
        host: Option<String>,
        /// New port.
        port: Option<u16>,
    },
}

/// Where the core is in the connection's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sv2State {
    /// Not connected yet.
    Disconnected,
    /// `SetupConnection` sent.
    AwaitingSetup,
    /// `Open*MiningChannel` sent with this request id.
    Opening {
        /// The request id.
        request_id: u32,
    },
    /// The channel is open.
    Open {
        /// The channel id.
        channel_id: u32,
    },
}

/// Coinbase parts of an extended channel's job.
#[derive(Debug, Clone)]
struct CoinbaseWork {
    prefix: Bytes,
    suffix: Bytes,
    path: Arc<[[u8; 32]]>,
    extranonce_prefix: Vec<u8>,
    extranonce_size: usize,
}

/// The header space being searched: one job of the channel under one prevhash.
#[derive(Debug, Clone)]
struct Sv2Work {
    channel_id: u32,
    job_id: u32,
    prev_hash: [u8; 32],
    nbits: u32,
    job_version: u32,
    mask: u32,
    ntime: u32,
    target: Target,
    network_target: Target,
    merkle_root: [u8; 32],
    coinbase: Option<CoinbaseWork>,
    version: u32,
    extranonce: Vec<u8>,
    search: HeaderSearch,
}

impl Sv2Work {
    /// Applies roll `roll` (version bits, extranonce) and restarts the nonce search.
    fn roll(&mut self, roll: u64) {
        self.version = (self.job_version & !self.mask) | spread_bits(roll, self.mask);
        let root = match &self.coinbase {
            Some(cb) if cb.extranonce_size > 0 => {
                let mut en = vec![0u8; cb.extranonce_size];
                let r = roll.to_le_bytes();
                let n = en.len().min(r.len());
                en[..n].copy_from_slice(&r[..n]);
                self.extranonce = en;
                self.extended_root()
            }
            Some(_) => {
                self.extranonce.clear();
                self.extended_root()
            }
            None => self.merkle_root,
        };
        let rolls_something = self.mask != 0
            || self
                .coinbase
                .as_ref()
                .is_some_and(|c| c.extranonce_size > 0);
        if !rolls_something && self.search.is_exhausted() {
            self.ntime = self.ntime.wrapping_add(1);
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&self.version.to_le_bytes());
        header[4..36].copy_from_slice(&self.prev_hash);
        header[36..68].copy_from_slice(&root);
        header[68..72].copy_from_slice(&self.ntime.to_le_bytes());
        header[72..76].copy_from_slice(&self.nbits.to_le_bytes());
        self.search = HeaderSearch::new(header, self.target);
    }

    fn extended_root(&self) -> [u8; 32] {
        match &self.coinbase {
            Some(cb) => {
                let txid = txid_from_parts(
                    &cb.prefix,
                    &[&cb.extranonce_prefix, &self.extranonce],
                    &cb.suffix,
                );
                merkle_root_from_path(txid, cb.path.iter())
            }
            None => self.merkle_root,
        }
    }
}

/// A simulated SV2 mining device on one connection: one channel, real hashing.
#[derive(Debug)]
pub struct Sv2Miner {
    config: Sv2Config,
    user: Str0_255,
    channel_request: ChannelRequest,
    state: Sv2State,
    channels: Channels,
    fixed_version: bool,
    next_request_id: u32,
    next_seq: u32,
    pending: VecDeque<(u32, std::time::Instant)>,
    work: Option<Sv2Work>,
    roll: u64,
    outputs: VecDeque<Sv2Output>,
    stats: MinerStats,
}

impl Sv2Miner {
    /// A miner; call [`connect`](Self::connect) once the transport is up. Fails if the user
    /// identity is longer than 255 bytes.
    pub fn new(config: Sv2Config) -> Result<Self, MinerError> {
        let user = Str0_255::new(config.user.clone()).map_err(|_| MinerError::InvalidUser {
            user: config.user.clone(),
        })?;
        Ok(Sv2Miner {
            channel_request: config.channel,
            config,
            user,
            state: Sv2State::Disconnected,
            channels: Channels::new(),
            fixed_version: false,
            next_request_id: 1,
            next_seq: 0,
            pending: VecDeque::new(),
            work: None,
            roll: 0,
            outputs: VecDeque::new(),
            stats: MinerStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Sv2Config {
        &self.config
    }

    /// The connection state.
    pub fn state(&self) -> Sv2State {
        self.state
    }

    /// The channel state (jobs, prevhash, targets) as the miner sees it.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// The open channel, if any.
    pub fn channel_id(&self) -> Option<u32> {
        match self.state {
            Sv2State::Open { channel_id } => Some(channel_id),
            _ => None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &MinerStats {
        &self.stats
    }

    /// Whether there is a job to hash (channel open, active job, prevhash).
    pub fn has_work(&self) -> bool {
        self.work.is_some()
    }

    /// `(channel_id, job_id)` of the work being hashed.
    pub fn current_job(&self) -> Option<(u32, u32)> {
        self.work.as_ref().map(|w| (w.channel_id, w.job_id))
    }

    /// The target of the work being hashed.
    pub fn current_target(&self) -> Option<Target> {
        self.work.as_ref().map(|w| w.target)
    }

    /// Shares submitted but neither acknowledged nor rejected yet.
    pub fn pending_shares(&self) -> usize {
        self.pending.len()
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Sv2Output> {
        self.outputs.pop_front()
    }

    /// Starts a connection to `host:port` (the transport is up): forgets every channel and
    /// unacknowledged share of a previous connection and queues `SetupConnection`.
    pub fn connect(&mut self, host: &str, port: u16) {
        self.state = Sv2State::AwaitingSetup;
        self.channels = Channels::new();
        self.channel_request = self.config.channel;
        self.fixed_version = false;
        self.next_seq = 0;
        self.pending.clear();
        self.work = None;
        self.outputs.clear();
        let s = |v: &str| Str0_255::new(v.to_owned()).unwrap_or_default();
        let setup = SetupConnection {
            protocol: PROTOCOL_MINING,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: REQUIRES_VERSION_ROLLING,
            endpoint_host: s(host),
            endpoint_port: port,
            vendor: s("strata"),
            hardware_version: s("strata-miner simulated device"),
            firmware: s(concat!("strata-miner ", env!("CARGO_PKG_VERSION"))),
            device_id: s(&format!("sim-{}", self.config.index)),
        };
        self.outputs.push_back(Sv2Output::Send(setup.into()));
    }

    fn event(&mut self, e: Event) {
        self.outputs.push_back(Sv2Output::Event(e));
    }

    fn warn(&mut self, message: &'static str, error: String) {
        tracing::warn!(miner = self.config.index, message, %error, "server message not applied");
        self.stats.protocol_warnings += 1;
        self.event(Event::ProtocolWarning { message, error });
    }

    fn apply(&mut self, message: &'static str, r: Result<(), ChannelError>) {
        if let Err(e) = r {
            self.warn(message, e.to_string());
        }
    }

    /// Handles one message from the server. An error means the miner cannot go on
    /// (`SetupConnection.Error`, `OpenMiningChannel.Error`, an unusable channel); messages it
    /// cannot apply (a job for an unknown channel...) are reported as
    /// [`Event::ProtocolWarning`] and mining goes on.
    pub fn handle(&mut self, msg: Message, now: Now) -> Result<(), MinerError> {
        match msg {
            Message::Common(c) => self.on_common(c)?,
            Message::Mining(m) => self.on_mining(m, now)?,
            other => self.warn(other.name(), "unexpected message".into()),
        }
        self.refresh_work(now);
        Ok(())
    }

    fn on_common(&mut self, msg: CommonMessage) -> Result<(), MinerError> {
        match msg {
            CommonMessage::SetupConnectionSuccess(m) => self.on_setup_success(m),
            CommonMessage::SetupConnectionError(m) => {
                let code = m.error_code.as_str().to_owned();
                self.event(Event::SetupError {
                    code: code.clone(),
                    flags: m.flags,
                });
                return Err(MinerError::SetupRejected {
                    code,
                    flags: m.flags,
                });
            }
            CommonMessage::ChannelEndpointChanged(m) => self.event(Event::EndpointChanged {
                channel: m.channel_id,
            }),
            CommonMessage::Reconnect(m) => {
                let host = Some(m.new_host.as_str().to_owned()).filter(|h| !h.is_empty());
                let port = Some(m.new_port).filter(|&p| p != 0);
                self.outputs.push_back(Sv2Output::Reconnect { host, port });
            }
            other => self.warn(other.name(), "unexpected message".into()),
        }
        Ok(())
    }

    fn on_setup_success(&mut self, m: SetupConnectionSuccess) {
        self.event(Event::SetupSuccess {
            version: m.used_version,
            flags: m.flags,
        });
        if self.state != Sv2State::AwaitingSetup {
            self.warn("SetupConnection.Success", "not awaiting one".into());
            return;
        }
        self.fixed_version = m.flags & REQUIRES_FIXED_VERSION != 0;
        if m.flags & REQUIRES_EXTENDED_CHANNELS != 0
            && self.channel_request == ChannelRequest::Standard
        {
            self.warn(
                "SetupConnection.Success",
                "server requires extended channels; opening an extended channel".into(),
            );
            self.channel_request = ChannelRequest::Extended {
                min_extranonce_size: DEFAULT_MIN_EXTRANONCE_SIZE,
            };
        }
        self.open_channel();
    }

    fn open_channel(&mut self) {
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.state = Sv2State::Opening { request_id };
        let msg: Message = match self.channel_request {
            ChannelRequest::Standard => OpenStandardMiningChannel {
                request_id,
                user_identity: self.user.clone(),
                nominal_hash_rate: self.config.nominal_hashrate,
                max_target: U256(Target::MAX.to_le_bytes()),
            }
            .into(),
            ChannelRequest::Extended {
                min_extranonce_size,
            } => OpenExtendedMiningChannel {
                request_id,
                user_identity: self.user.clone(),
                nominal_hash_rate: self.config.nominal_hashrate,
                max_target: U256(Target::MAX.to_le_bytes()),
                min_extranonce_size,
            }
            .into(),
        };
        self.outputs.push_back(Sv2Output::Send(msg));
    }

    fn channel_config(&self) -> ChannelConfig {
        ChannelConfig {
            version_mask: if self.fixed_version {
                0
            } else {
                ChannelConfig::default().version_mask
            },
            ..ChannelConfig::default()
        }
    }

    fn expects_open(&mut self, request_id: u32, name: &'static str) -> bool {
        if matches!(self.state, Sv2State::Opening { request_id: r } if r == request_id) {
            true
        } else {
            self.warn(name, format!("unexpected request id {request_id}"));
            false
        }
    }

    fn install(
        &mut self,
        channel: Result<Channel, ChannelError>,
        channel_id: u32,
        group: u32,
        extranonce_size: u16,
    ) -> Result<(), MinerError> {
        let bad = |source| MinerError::BadChannel { channel_id, source };
        let channel = channel.map_err(bad)?;
        let kind = match channel.kind() {
            strata_work::channel::ChannelKind::Standard => "standard",
            _ => "extended",
        };
        let event = Event::ChannelOpened {
            channel: channel_id,
            kind,
            difficulty: channel.target().difficulty(),
            extranonce_prefix: channel.extranonce_prefix().to_vec(),
            extranonce_size,
            group,
        };
        self.channels.insert(channel).map_err(bad)?;
        self.state = Sv2State::Open { channel_id };
        self.stats.established = true;
        self.event(event);
        if group != 0 && group != channel_id {
            let r = self.channels.add_to_group(group, channel_id);
            self.apply("Open*MiningChannel.Success", r);
        }
        Ok(())
    }

    fn on_mining(&mut self, msg: MiningMessage, now: Now) -> Result<(), MinerError> {
        match msg {
            MiningMessage::OpenStandardMiningChannelSuccess(m) => {
                if self.expects_open(m.request_id, "OpenStandardMiningChannel.Success") {
                    let ch = Channel::new_standard(
                        m.channel_id,
                        m.extranonce_prefix.as_slice(),
                        Target::from(m.target),
                        self.channel_config(),
                    );
                    self.install(ch, m.channel_id, m.group_channel_id, 0)?;
                }
            }
            MiningMessage::OpenExtendedMiningChannelSuccess(m) => {
                if self.expects_open(m.request_id, "OpenExtendedMiningChannel.Success") {
                    let prefix = m.extranonce_prefix.as_slice();
                    let ch = u8::try_from(m.extranonce_size)
                        .map_err(|_| ChannelError::ExtranonceTooLong {
                            len: prefix.len() + usize::from(m.extranonce_size),
                            max: B0_32::MAX,
                        })
                        .and_then(|size| {
                            Channel::new_extended(
                                m.channel_id,
                                prefix,
                                size,
                                Target::from(m.target),
                                self.channel_config(),
                            )
                        });
                    self.install(ch, m.channel_id, m.group_channel_id, m.extranonce_size)?;
                }
            }
            MiningMessage::OpenMiningChannelError(m) => {
                let code = m.error_code.as_str().to_owned();
                if self.expects_open(m.request_id, "OpenMiningChannel.Error") {
                    self.event(Event::OpenChannelError { code: code.clone() });
                    return Err(MinerError::ChannelRejected { code });
                }
            }
            MiningMessage::NewMiningJob(m) => {
                self.event(Event::NewJob {
                    channel: Some(m.channel_id),
                    job: m.job_id.to_string(),
                    flag: m.min_ntime.is_none(),
                });
                let r = self.channels.on_new_mining_job(&m);
                self.apply("NewMiningJob", r);
            }
            MiningMessage::NewExtendedMiningJob(m) => {
                self.event(Event::NewJob {
                    channel: Some(m.channel_id),
                    job: m.job_id.to_string(),
                    flag: m.min_ntime.is_none(),
                });
                let r = self.channels.on_new_extended_mining_job(&m);
                self.apply("NewExtendedMiningJob", r);
            }
            MiningMessage::SetNewPrevHash(m) => {
                self.event(Event::NewPrevHash {
                    channel: m.channel_id,
                    job: m.job_id,
                    nbits: m.nbits,
                });
                let r = self.channels.on_set_new_prev_hash(&m);
                self.apply("SetNewPrevHash", r);
            }
            MiningMessage::SetTarget(m) => {
                self.event(Event::TargetChanged {
                    channel: Some(m.channel_id),
                    difficulty: Target::from(m.maximum_target).difficulty(),
                });
                let r = self.channels.on_set_target(&m);
                self.apply("SetTarget", r);
            }
            MiningMessage::SetExtranoncePrefix(m) => {
                self.event(Event::Extranonce {
                    channel: Some(m.channel_id),
                    prefix: m.extranonce_prefix.as_slice().to_vec(),
                    size: None,
                });
                let r = self.channels.on_set_extranonce_prefix(&m);
                self.apply("SetExtranoncePrefix", r);
            }
            MiningMessage::SetGroupChannel(m) => {
                self.event(Event::GroupChannel {
                    group: m.group_channel_id,
                    channels: m.channel_ids.to_vec(),
                });
                let r = self.channels.on_set_group_channel(&m);
                self.apply("SetGroupChannel", r);
            }
            MiningMessage::CloseChannel(m) => {
                let removed = self.channels.close(m.channel_id);
                match self.channel_id() {
                    Some(ours) if removed.contains(&ours) => {
                        self.event(Event::ChannelClosed {
                            channel: ours,
                            reason: m.reason_code.as_str().to_owned(),
                        });
                        self.pending.clear();
                        self.work = None;
                        self.open_channel();
                    }
                    _ if removed.is_empty() => {
                        self.warn("CloseChannel", format!("unknown channel {}", m.channel_id))
                    }
                    _ => {}
                }
            }
            MiningMessage::UpdateChannelError(m) => self.event(Event::UpdateChannelError {
                channel: m.channel_id,
                code: m.error_code.as_str().to_owned(),
            }),
            MiningMessage::SubmitSharesSuccess(m) => self.on_success(&m, now),
            MiningMessage::SubmitSharesError(m) => self.on_reject(&m),
            other => self.warn(other.name(), "unexpected message".into()),
        }
        Ok(())
    }

    fn on_success(&mut self, m: &SubmitSharesSuccess, now: Now) {
        let count = u64::from(m.new_submits_accepted_count);
        self.stats.acknowledged += count;
        self.stats.shares_sum += m.new_shares_sum;
        while let Some(&(seq, at)) = self.pending.front() {
            if seq > m.last_sequence_number {
                break;
            }
            self.pending.pop_front();
            if self.config.record_latency {
                let us = now.instant.saturating_duration_since(at).as_micros();
                self.stats
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
                self.stats.latency_at_us.push(since_clock_base(at));
            }
        }
        let acked = self.stats.acknowledged;
        self.event(Event::ShareAccepted {
            channel: Some(m.channel_id),
            seq: u64::from(m.last_sequence_number),
            count,
            acked,
        });
    }

    fn on_reject(&mut self, m: &SubmitSharesError) {
        let code = m.error_code.as_str();
        self.stats.reject(code);
        self.pending.retain(|&(s, _)| s != m.sequence_number);
        self.event(Event::ShareRejected {
            channel: Some(m.channel_id),
            seq: u64::from(m.sequence_number),
            code: code.to_owned(),
        });
    }

    /// Points the search at the channel's active job; drops work that is no longer active.
    fn refresh_work(&mut self, now: Now) {
        let Some(channel_id) = self.channel_id() else {
            self.work = None;
            return;
        };
        let Some(ch) = self.channels.get(channel_id) else {
            self.work = None;
            return;
        };
        let (Some(job), Some(prev)) = (ch.active_job(), ch.prev_hash()) else {
            self.work = None;
            return;
        };
        if self.work.as_ref().is_some_and(|w| {
            w.channel_id == channel_id && w.job_id == job.id() && w.prev_hash == prev.prev_hash
        }) {
            return;
        }
        let coinbase = match (ch.kind(), job.extended()) {
            (strata_work::channel::ChannelKind::Extended { extranonce_size }, Some(x)) => {
                Some(CoinbaseWork {
                    prefix: x.coinbase_prefix.clone(),
                    suffix: x.coinbase_suffix.clone(),
                    path: x.merkle_path.clone(),
                    extranonce_prefix: job.extranonce_prefix().to_vec(),
                    extranonce_size: usize::from(extranonce_size),
                })
            }
            _ => None,
        };
        let min_ntime = job.min_ntime().unwrap_or(prev.min_ntime);
        let mut work = Sv2Work {
            channel_id,
            job_id: job.id(),
            prev_hash: prev.prev_hash,
            nbits: prev.nbits,
            job_version: job.version(),
            mask: job.version_mask() & BIP320_VERSION_MASK,
            ntime: min_ntime.max(now.unix_secs),
            target: job.target(),
            network_target: prev.network_target,
            merkle_root: job.merkle_root(),
            coinbase,
            version: job.version(),
            extranonce: Vec::new(),
            search: HeaderSearch::new([0u8; HEADER_LEN], Target::ZERO),
        };
        self.roll = self.roll.wrapping_add(1);
        work.roll(self.roll);
        self.work = Some(work);
    }

    /// Hashes at most `budget` nonces of the current work, stopping at the first share, which
    /// is queued as `SubmitSharesStandard` / `SubmitSharesExtended` (with
    /// [`Event::ShareSubmitted`] and, if it meets the network target,
    /// [`Event::BlockCandidate`]).
    pub fn mine(&mut self, budget: u64, now: Now) -> Mined {
        self.refresh_work(now);
        let mut mined = Mined::default();
        while mined.hashes < budget {
            let Some(work) = self.work.as_mut() else {
                break;
            };
            let step = work.search.step(budget - mined.hashes);
            mined.hashes += step.hashes;
            if let Some((nonce, hash)) = step.found {
                self.submit(nonce, hash, now);
                mined.share = true;
                break;
            }
            if work.search.is_exhausted() {
                self.roll = self.roll.wrapping_add(1);
                work.roll(self.roll);
            }
        }
        self.stats.hashes += mined.hashes;
        mined
    }

    fn submit(&mut self, nonce: u32, hash: [u8; 32], now: Now) {
        let Some(w) = self.work.as_ref() else {
            return;
        };
        let seq = self.next_seq;
        let msg: Message = match &w.coinbase {
            Some(_) => match B0_32::new(&w.extranonce) {
                Ok(extranonce) => SubmitSharesExtended {
                    channel_id: w.channel_id,
                    sequence_number: seq,
                    job_id: w.job_id,
                    nonce,
                    ntime: w.ntime,
                    version: w.version,
                    extranonce,
                }
                .into(),
                Err(e) => {
                    self.warn("SubmitSharesExtended", e.to_string());
                    return;
                }
            },
            None => SubmitSharesStandard {
                channel_id: w.channel_id,
                sequence_number: seq,
                job_id: w.job_id,
                nonce,
                ntime: w.ntime,
                version: w.version,
            }
            .into(),
        };
        let (channel_id, job_id, is_block) =
            (w.channel_id, w.job_id, w.network_target.is_met_by(&hash));
        self.next_seq = seq.wrapping_add(1);
        self.stats.submitted += 1;
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((seq, now.instant));
        self.outputs.push_back(Sv2Output::Send(msg));
        self.event(Event::ShareSubmitted {
            channel: Some(channel_id),
            seq: u64::from(seq),
            job: job_id.to_string(),
            nonce,
        });
        if is_block {
            self.stats.blocks += 1;
            self.event(Event::BlockCandidate {
                channel: Some(channel_id),
                hash: display_hash(&hash),
            });
        }
    }
}
