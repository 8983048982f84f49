//! One SV2 client connection (SV2 firmware on the LAN, or another proxy) as a synchronous
//! state machine: the SV2 mining-server core ([`strata_server::ServerCore`]) with the proxy's
//! work (its upstream channel's job, in its slice of that channel's extranonce space) and
//! share sink (forwarded upstream). Messages from the client, the hub's answer to a join,
//! new upstream work and ticks go in; messages to send, requests to the hub and shares to
//! forward come out as [`Action`]s. No I/O, time passed in. The connection task
//! ([`super::sv2_conn`]) wraps it.
//!
//! ```text
//!   AwaitSetup --SetupConnection(mining, v2, no work selection)--> Ready ----> Closed
//!        \--anything else / unsupported flags / second setup / protocol violation--^
//!
//!   Ready, first open:   Join ──on_slot(Ok)──▶ miner id known
//!   every open waits for (miner id, upstream work), then gets its Success and a job
//! ```
//!
//! # Channels
//!
//! A connection gets one miner id from the hub (at its first channel open): its space is
//! `work.extranonce1(m)` followed by `work.extranonce2_size` bytes (`e2`), the bytes an SV1
//! miner would roll. The connection's channels split those `e2` bytes:
//!
//! * a **standard** channel (header-only jobs, spec 5.2.1) with counter `c` mines on the full
//!   extranonce `extranonce1(m) ‖ c`, the counter big-endian in `e2` bytes (the smallest
//!   counter no other channel uses); that full extranonce is its `extranonce_prefix`;
//! * an **extended** channel (spec 5.2.2: a proxy behind this one, or firmware that rolls its
//!   own extranonce) gets a block `b` (1..=255): its `extranonce_prefix` is
//!   `extranonce1(m) ‖ b` and it rolls the other `e2 - 1` bytes (its `extranonce_size`, fixed
//!   for its life; zero-padded after `b` if a later upstream gives more room). Blocks are
//!   never the first byte of a standard channel's counter, so no two channels share a full
//!   extranonce.
//!
//! The `extranonce` of the forwarded `SubmitSharesExtended` is the full extranonce after the
//! upstream prefix (`miner id ‖ counter`, or `miner id ‖ b ‖ padding ‖ rolled bytes`).
//!
//! # Jobs
//!
//! Each [`UpstreamWork`] becomes one job per channel (a `NewMiningJob` with the merkle root of
//! `coinbase_prefix ‖ full extranonce ‖ coinbase_suffix`, or a `NewExtendedMiningJob` with
//! the upstream coinbase parts): a future job and a `SetNewPrevHash` when the work is clean,
//! starts a new epoch or the channel has no job on this prevhash yet; otherwise a job active
//! at once (`min_ntime`). On a new epoch the miner id stays but `extranonce1` may change:
//! every channel whose prefix changed gets a `SetExtranoncePrefix` before its new job; a
//! channel the new space has no room for is closed ([`REASON_EXTRANONCE_SPACE_EXHAUSTED`]).
//!
//! The version bits a job lets the client roll are the channel configuration's mask
//! intersected with the upstream's (none when the upstream forbids rolling); a change of that
//! mask rebuilds the channel's state (its old jobs then answer `invalid-job-id` instead of
//! `stale-share`).
//!
//! # Targets
//!
//! Per channel vardiff ([`strata_work::vardiff`]) from the nominal hashrate, retargeted by
//! [`Sv2DownSession::on_tick`] and `UpdateChannel` (`SetTarget`). A channel's target is never
//! harder than the upstream target (shares between the two would be work the upstream never
//! sees) and never easier than the device's `max_target`.
//!
//! # Shares
//!
//! Accepted shares are acknowledged right after local validation (the proxy credits them
//! locally), batched per channel until [`Sv2DownSession::flush_acks`] (the connection task
//! calls it after each burst of frames); rejected shares get `SubmitShares.Error` at once
//! with the spec / SRI code. A share whose hash meets the upstream target of its job (or the
//! network target) leaves as [`Action::Forward`], named after the worker identity of its
//! submit (extension 0x0002, which a proxy behind this one sends) or else its channel's user
//! identity.
//!
//! # Reports
//!
//! [`Sv2DownSession::report`] sums the channels' hashrates ([`crate::hub::miner_hashrate`]:
//! the one a channel's target implies, i.e. the device's nominal hashrate, until its vardiff
//! window holds [`ESTIMATE_MIN_SHARES`] shares, then the estimate). Besides the connection
//! task's periodic reports, [`Sv2DownSession::take_early_report`] has one when a channel
//! opens, when the device announces a new nominal hashrate (`UpdateChannel`) and when a
//! channel's window first holds that many shares, so that the upstream channel's
//! `UpdateChannel` does not wait a full report interval.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::common::CommonMessage;
use strata_protocol::mining::{self as m, SetCustomMiningJobError};
use strata_protocol::wire::Str0_255;
use strata_protocol::Message;
use strata_server::{AckPolicy, Admission, Request, ServerConfig, ServerCore};
use strata_work::channel::{Channel, ChannelConfig};
use strata_work::extranonce::MinerId;
use strata_work::share::Rejection;
use strata_work::target::Target;
use strata_work::vardiff::VardiffConfig;

use crate::hub::{miner_hashrate, JoinError, MinerReport, Slot, ESTIMATE_MIN_SHARES};
use crate::work::{ForwardShare, RejectReason, UpstreamWork};

mod jobs;
mod shares;

pub use jobs::{extended_prefix, full_extranonce};

/// `CloseChannel` reason when an upstream switch leaves no room in the new extranonce space
/// for the channel.
pub const REASON_EXTRANONCE_SPACE_EXHAUSTED: &str = "extranonce-space-exhausted";

/// Settings shared by every SV2 downstream session of a proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct Sv2DownConfig {
    /// Channel limits (jobs kept, duplicate memory, nTime window). Its `version_mask` is
    /// intersected with the upstream's.
    pub channel: ChannelConfig,
    /// Difficulty adjustment per channel.
    pub vardiff: VardiffConfig,
    /// Channels one connection may open (pending opens included).
    pub max_channels: usize,
}

impl Default for Sv2DownConfig {
    fn default() -> Self {
        Sv2DownConfig {
            channel: ChannelConfig::default(),
            vardiff: VardiffConfig::default(),
            max_channels: 64,
        }
    }
}

impl Sv2DownConfig {
    /// The server core's share of these settings.
    fn server(&self) -> ServerConfig {
        ServerConfig {
            channel: self.channel,
            vardiff: self.vardiff,
            max_channels: self.max_channels,
            work_selection: false,
            worker_identity: true,
            acks: AckPolicy::Batched,
        }
    }
}

pub use strata_work::time::Now;

/// What the connection task must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message to the miner.
    Send(Message),
    /// Ask the hub for a miner id ([`crate::hub::HubRequest::Join`]) and pass its answer to
    /// [`Sv2DownSession::on_slot`].
    Join,
    /// A share meeting the upstream target: hand it to the hub
    /// ([`crate::hub::HubRequest::Share`]).
    Forward(ForwardShare),
    /// Close the connection after sending what precedes; the reason is logged.
    Close(String),
}

impl strata_server::Output for Action {
    fn send(msg: Message) -> Self {
        Action::Send(msg)
    }
    fn close(reason: String) -> Self {
        Action::Close(reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinState {
    NotAsked,
    Pending,
    Joined(MinerId),
}

/// Where a channel sits in the connection's `e2` bytes (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A standard channel's counter.
    Standard(u64),
    /// An extended channel's block and the bytes it rolls.
    Extended {
        /// The byte after `extranonce1`.
        block: u8,
        /// Its `extranonce_size`.
        size: u16,
    },
}

/// The proxy's data of one channel.
#[derive(Debug)]
struct ProxyChannel {
    place: Place,
    /// Epoch of the channel's last job.
    epoch: Option<u64>,
}

/// What a job was built from, to forward its shares.
#[derive(Debug, Clone)]
struct JobMeta {
    epoch: u64,
    upstream_job_id: u32,
    upstream_target: Target,
    /// The job's extranonce prefix after the upstream prefix: the start of the upstream
    /// `extranonce` of its shares (all of it for a standard channel).
    extranonce: Bytes,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: u64,
    accepted_work: f64,
    rejected: BTreeMap<RejectReason, u64>,
    stale: u64,
    last_share_ms: u64,
}

/// One SV2 miner connection's protocol state.
#[derive(Debug)]
pub struct Sv2DownSession {
    peer: SocketAddr,
    cfg: Arc<Sv2DownConfig>,
    core: ServerCore<ProxyChannel, JobMeta>,
    join: JoinState,
    user_agent: String,
    worker: String,
    pending: Vec<Admission>,
    work: Option<Arc<UpstreamWork>>,
    counters: Counters,
    connected_since_ms: u64,
    /// The hub should have the miner's figures now (see [`Self::take_early_report`]).
    early_report: bool,
}

/// Why a share did not count, for statistics.
fn reason_of(r: &Rejection) -> RejectReason {
    match r {
        Rejection::StaleShare { .. } => RejectReason::Stale,
        Rejection::InvalidJobId { .. } => RejectReason::UnknownJob,
        Rejection::DuplicateShare { .. } => RejectReason::Duplicate,
        Rejection::DifficultyTooLow => RejectReason::LowDifficulty,
        Rejection::InvalidVersion { .. } | Rejection::VersionRollingNotAllowed { .. } => {
            RejectReason::BadVersion
        }
        Rejection::NtimeTooEarly { .. } | Rejection::NtimeTooLate { .. } => RejectReason::BadNtime,
        _ => RejectReason::Malformed,
    }
}

impl Sv2DownSession {
    /// A session for the miner at `peer`, connected at `now`.
    pub fn new(peer: SocketAddr, cfg: Arc<Sv2DownConfig>, now: Now) -> Self {
        Sv2DownSession {
            peer,
            core: ServerCore::new(Arc::new(cfg.server())),
            cfg,
            join: JoinState::NotAsked,
            user_agent: String::new(),
            worker: String::new(),
            pending: Vec::new(),
            work: None,
            counters: Counters::default(),
            connected_since_ms: now.unix_ms,
            early_report: false,
        }
    }

    /// The miner id, once the hub gave one.
    pub fn miner(&self) -> Option<MinerId> {
        match self.join {
            JoinState::Joined(m) => Some(m),
            _ => None,
        }
    }

    /// Open channels.
    pub fn channel_count(&self) -> usize {
        self.core.channel_count()
    }

    /// Whether `SetupConnection` succeeded.
    pub fn is_ready(&self) -> bool {
        self.core.is_ready()
    }

    /// Whether the session ended (an [`Action::Close`] was emitted).
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The extranonce prefix of an open channel (a standard channel's full extranonce).
    pub fn extranonce_prefix(&self, channel_id: u32) -> Option<&[u8]> {
        self.core
            .channel(channel_id)
            .map(Channel::extranonce_prefix)
    }

    /// Handles one message from the miner.
    pub fn on_message(&mut self, msg: Message, now: Now, out: &mut Vec<Action>) {
        self.on_frame(msg, &[], now, out);
    }

    /// Handles one message from the miner with its frame's TLV tail (a proxy behind this one
    /// names each share's worker there, extension 0x0002).
    pub fn on_frame(&mut self, msg: Message, tlvs: &[u8], now: Now, out: &mut Vec<Action>) {
        if let Message::Common(CommonMessage::SetupConnection(s)) = &msg {
            if !self.core.is_ready() && !self.core.is_closed() {
                let parts = [
                    s.vendor.as_str(),
                    s.hardware_version.as_str(),
                    s.firmware.as_str(),
                ];
                self.user_agent = parts
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
        if self.refuse_without_upstream(&msg, out) {
            return;
        }
        let Some(request) = self.core.on_message(msg, tlvs, now, out) else {
            return;
        };
        match request {
            Request::Open(a) => self.admit(*a, out),
            Request::Accepted(a) => self.accepted(&a, now, out),
            Request::Rejected {
                channel_id,
                rejection,
            } => {
                self.count_rejected(reason_of(&rejection));
                tracing::debug!(peer = %self.peer, channel = channel_id, %rejection, "share rejected");
            }
            Request::Closed(closed) => {
                for (id, _) in closed {
                    tracing::info!(peer = %self.peer, channel = id, "channel closed by the miner");
                }
            }
            Request::Updated { .. } => {
                // the channel counts at its new nominal hashrate from now on: the hub hears
                // of it at once (a device that ramps up would otherwise wait an interval)
                self.early_report = true;
            }
            Request::CustomJob(j) => {
                // work selection is never negotiated here: the core does not pass these on
                out.push(Action::Send(
                    SetCustomMiningJobError {
                        channel_id: j.channel_id,
                        request_id: j.request_id,
                        error_code: Str0_255::truncated(m::ERROR_JD_NOT_SUPPORTED),
                    }
                    .into(),
                ));
            }
        }
    }

    /// An admitted open: its identity checked, then held until the miner id and the first
    /// work are there.
    fn admit(&mut self, a: Admission, out: &mut Vec<Action>) {
        if !self.core.has_room(self.pending.len()) {
            return self
                .core
                .refuse_open(a.request_id, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED, out);
        }
        if a.user.trim().is_empty() {
            return self
                .core
                .refuse_open(a.request_id, m::ERROR_INVALID_USER_IDENTITY, out);
        }
        if self.worker.is_empty() {
            self.worker = a.user.clone();
        }
        self.pending.push(a);
        if self.join == JoinState::NotAsked {
            self.join = JoinState::Pending;
            out.push(Action::Join);
        }
        self.open_pending(out);
    }

    /// The hub's answer to [`Action::Join`]: opens the waiting channels (once there is work),
    /// or refuses them when the upstream channel is full (a later open asks again).
    pub fn on_slot(&mut self, slot: Result<Slot, JoinError>, out: &mut Vec<Action>) {
        if self.core.is_closed() {
            return; // the answer came after the close: nothing may follow it
        }
        match slot {
            Ok(slot) => {
                self.join = JoinState::Joined(slot.miner);
                if self.core.is_ready() {
                    self.open_pending(out);
                }
            }
            Err(e) => {
                self.join = JoinState::NotAsked;
                tracing::warn!(peer = %self.peer, error = %e, "no miner id for an SV2 miner");
                for p in std::mem::take(&mut self.pending) {
                    self.core
                        .refuse_open(p.request_id, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED, out);
                }
            }
        }
    }

    /// Acknowledges the shares accepted since the last call: one `SubmitShares.Success` per
    /// channel.
    pub fn flush_acks(&mut self, out: &mut Vec<Action>) {
        self.core.flush_acks(out);
    }

    /// Periodic work: vardiff retargets (`SetTarget`) and pending acknowledgements.
    pub fn on_tick(&mut self, now: Now, out: &mut Vec<Action>) {
        if self.core.is_closed() {
            return;
        }
        self.core.on_tick(now, out, |_, _, _| {});
        self.flush_acks(out);
    }

    /// The report the hub should get now rather than at the next periodic one, once after
    /// each channel opened or took an `UpdateChannel` and after a channel's vardiff window
    /// first held [`ESTIMATE_MIN_SHARES`] shares (see the module docs).
    pub fn take_early_report(&mut self, now: Now) -> Option<MinerReport> {
        if !std::mem::take(&mut self.early_report) {
            return None;
        }
        self.report(now)
    }

    /// The miner's figures for the hub (`None` before it has a miner id).
    pub fn report(&self, now: Now) -> Option<MinerReport> {
        let miner = self.miner()?;
        let difficulty = self
            .core
            .channels()
            .iter()
            .map(|c| c.target().difficulty())
            .reduce(f64::min)
            .unwrap_or(0.0);
        Some(MinerReport {
            miner,
            worker: self.worker.clone(),
            address: self.peer.to_string(),
            user_agent: self.user_agent.clone(),
            protocol: "sv2",
            difficulty,
            hashrate: self
                .core
                .states()
                .map(|(_, s)| miner_hashrate(&s.vardiff, now.mono))
                .sum(),
            accepted: self.counters.accepted,
            accepted_work: self.counters.accepted_work,
            rejected: self
                .counters
                .rejected
                .iter()
                .map(|(r, n)| (r.code().to_string(), *n))
                .collect(),
            stale: self.counters.stale,
            last_share_ms: self.counters.last_share_ms,
            connected_since_ms: self.connected_since_ms,
            connected: !self.core.is_closed(),
        })
    }
}
