//! One SV2 miner connection (SV2 firmware on the LAN) as a synchronous state machine:
//! messages from the miner, the hub's answer to a join, new upstream work and ticks go in;
//! messages to send, requests to the hub and shares to forward come out as [`Action`]s. No
//! I/O, time passed in. The connection task ([`super::sv2_conn`]) wraps it.
//!
//! ```text
//!   AwaitSetup --SetupConnection(mining, v2, no work selection)--> Ready ----> Closed
//!        \--anything else / unsupported flags / second setup / protocol violation--^
//!
//!   Ready, first OpenStandardMiningChannel:   Join ──on_slot(Ok)──▶ miner id known
//!   every open waits for (miner id, upstream work), then gets its Success and a job
//! ```
//!
//! # Channels
//!
//! The proxy serves **standard channels only** (header-only jobs, spec 5.2.1): an
//! `OpenExtendedMiningChannel` is answered with `OpenMiningChannel.Error`
//! [`ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED`]. A connection gets one miner id from the hub (at
//! its first channel open). Channel `c` of miner `m` mines on the full extranonce
//! `work.extranonce1(m) ‖ counter(c)`, the counter big-endian in `work.extranonce2_size`
//! bytes (the smallest counter not used by another open channel of the connection); that
//! full extranonce is the channel's `extranonce_prefix` and the bytes after the upstream
//! prefix (`miner id ‖ counter`, `work.extranonce_size` bytes) are the `extranonce` of the
//! forwarded `SubmitSharesExtended`.
//!
//! # Jobs
//!
//! Each [`UpstreamWork`] becomes one `NewMiningJob` per channel with the merkle root of
//! `coinbase_prefix ‖ full extranonce ‖ coinbase_suffix` up the work's merkle path: a future
//! job and a `SetNewPrevHash` when the work is clean, starts a new epoch or the channel has
//! no job on this prevhash yet; otherwise a job active at once (`min_ntime`). Each job is
//! recorded on a server-side [`strata_work::channel::Channel`], so shares are validated
//! against exactly what went on the wire (stale, duplicate, nTime, version, target). On a new
//! epoch the miner id stays but `extranonce1` may change: every channel whose full
//! extranonce changed gets a `SetExtranoncePrefix` before its new job.
//!
//! The version bits a standard job lets the miner roll are the channel configuration's
//! mask intersected with the upstream's (none when the upstream forbids rolling); a change
//! of that mask rebuilds the channel's state (its old jobs then answer `invalid-job-id`
//! instead of `stale-share`).
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
//! network target) leaves as [`Action::Forward`].
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

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::common::{
    CommonMessage, Protocol, SetupConnection, SetupConnectionError, SetupConnectionSuccess,
    ERROR_UNSUPPORTED_FEATURE_FLAGS,
};
use strata_protocol::extensions::{ExtensionsMessage, RequestExtensions, RequestExtensionsError};
use strata_protocol::mining::{
    self as m, CloseChannel, MiningMessage, NewMiningJob, OpenMiningChannelError,
    OpenStandardMiningChannel, OpenStandardMiningChannelSuccess, SetCustomMiningJob,
    SetCustomMiningJobError, SetExtranoncePrefix, SetNewPrevHash, SetTarget, SubmitSharesError,
    SubmitSharesStandard, SubmitSharesSuccess, UpdateChannel, UpdateChannelError,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::Message;
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::coinbase::txid_from_parts;
use strata_work::extranonce::MinerId;
use strata_work::merkle::merkle_root_from_path;
use strata_work::share::Rejection;
use strata_work::target::{hash_meets, Target};
use strata_work::vardiff::{Vardiff, VardiffConfig};

use crate::hub::{miner_hashrate, JoinError, MinerReport, Slot, ESTIMATE_MIN_SHARES};
use crate::work::{ForwardShare, RejectReason, UpstreamWork};

/// `OpenMiningChannel.Error` code answering `OpenExtendedMiningChannel`: the proxy serves
/// standard channels only (its miners are header-only devices; extended channels are what it
/// opens upstream).
pub const ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED: &str = "extended-channels-not-supported";

/// `CloseChannel` reason when an upstream switch leaves no room in the new extranonce space
/// for the channel's counter.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitSetup,
    Ready,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinState {
    NotAsked,
    Pending,
    Joined(MinerId),
}

/// An admitted `OpenStandardMiningChannel` waiting for the miner id or the first work.
#[derive(Debug)]
struct PendingOpen {
    request_id: u32,
    user: String,
    vardiff: Vardiff,
    max_target: Target,
}

/// Shares accepted since the last `SubmitShares.Success` of a channel.
#[derive(Debug, Clone, Copy)]
struct Ack {
    last_sequence_number: u32,
    count: u32,
    sum: f64,
}

/// Per-channel data the channel state does not keep.
#[derive(Debug)]
struct ChannelMeta {
    user: String,
    counter: u64,
    vardiff: Vardiff,
    max_target: Target,
    last_job_id: u32,
    /// Epoch of the channel's last job.
    epoch: Option<u64>,
    ack: Option<Ack>,
}

/// What a job was built from, to forward its shares.
#[derive(Debug, Clone)]
struct JobMeta {
    epoch: u64,
    upstream_job_id: u32,
    upstream_target: Target,
    /// `miner id ‖ counter`: the upstream `extranonce` of its shares.
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
    state: State,
    join: JoinState,
    user_agent: String,
    worker: String,
    channels: Channels,
    meta: BTreeMap<u32, ChannelMeta>,
    jobs: HashMap<(u32, u32), JobMeta>,
    pending: Vec<PendingOpen>,
    next_channel_id: u32,
    work: Option<Arc<UpstreamWork>>,
    counters: Counters,
    connected_since_ms: u64,
    /// The hub should have the miner's figures now (see [`Self::take_early_report`]).
    early_report: bool,
}

fn send(out: &mut Vec<Action>, msg: impl Into<Message>) {
    out.push(Action::Send(msg.into()));
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

/// The full extranonce of channel counter `counter` of `miner` under `work`:
/// `extranonce1(miner) ‖ counter` big-endian in `extranonce2_size` bytes. `None` if the
/// counter does not fit or the result exceeds 32 bytes.
pub fn full_extranonce(work: &UpstreamWork, miner: MinerId, counter: u64) -> Option<Vec<u8>> {
    let size = work.extranonce2_size;
    if size < 8 && counter >> (8 * size) != 0 {
        return None;
    }
    let mut e = work.extranonce1(miner);
    let be = counter.to_be_bytes();
    for i in (0..size).rev() {
        e.push(if i < 8 { be[7 - i] } else { 0 });
    }
    (e.len() <= B0_32::MAX).then_some(e)
}

impl Sv2DownSession {
    /// A session for the miner at `peer`, connected at `now`.
    pub fn new(peer: SocketAddr, cfg: Arc<Sv2DownConfig>, now: Now) -> Self {
        Sv2DownSession {
            peer,
            cfg,
            state: State::AwaitSetup,
            join: JoinState::NotAsked,
            user_agent: String::new(),
            worker: String::new(),
            channels: Channels::new(),
            meta: BTreeMap::new(),
            jobs: HashMap::new(),
            pending: Vec::new(),
            next_channel_id: 1,
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
        self.channels.len()
    }

    /// Whether `SetupConnection` succeeded.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the session ended (an [`Action::Close`] was emitted).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The full extranonce (the `extranonce_prefix`) of an open channel.
    pub fn extranonce_prefix(&self, channel_id: u32) -> Option<&[u8]> {
        self.channels
            .get(channel_id)
            .map(Channel::extranonce_prefix)
    }

    fn close(&mut self, out: &mut Vec<Action>, reason: String) {
        self.state = State::Closed;
        out.push(Action::Close(reason));
    }

    /// Handles one message from the miner.
    pub fn on_message(&mut self, msg: Message, now: Now, out: &mut Vec<Action>) {
        let name = msg.name();
        match (self.state, msg) {
            (State::Closed, _) => {}
            (State::AwaitSetup, Message::Common(CommonMessage::SetupConnection(s))) => {
                self.on_setup(&s, out)
            }
            (State::AwaitSetup, _) => self.close(out, format!("{name} before SetupConnection")),
            (State::Ready, Message::Common(CommonMessage::SetupConnection(_))) => {
                self.close(out, "second SetupConnection".into())
            }
            (State::Ready, Message::Extensions(ExtensionsMessage::RequestExtensions(r))) => {
                Self::refuse_extensions(&r, out)
            }
            (State::Ready, Message::Mining(mm)) => self.on_mining(mm, now, out),
            (State::Ready, _) => self.close(out, format!("unexpected {name} from a miner")),
        }
    }

    fn on_setup(&mut self, s: &SetupConnection, out: &mut Vec<Action>) {
        let error = |flags: u32, code: &str| SetupConnectionError {
            flags,
            error_code: Str0_255::truncated(code),
        };
        // anything but Mining, 3 and other values that name no sub-protocol included
        if let Some((refused, reason)) = s.refusal(Protocol::Mining) {
            send(out, refused);
            return self.close(out, reason);
        }
        let unsupported = s.flags & m::REQUIRES_WORK_SELECTION;
        if unsupported != 0 {
            send(out, error(unsupported, ERROR_UNSUPPORTED_FEATURE_FLAGS));
            return self.close(out, "miner requires work selection".into());
        }
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
        self.state = State::Ready;
        // standard jobs only, version rolling allowed: no flag to set
        send(
            out,
            SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            },
        );
    }

    /// No extension is supported on the miner side.
    fn refuse_extensions(r: &RequestExtensions, out: &mut Vec<Action>) {
        send(
            out,
            RequestExtensionsError {
                request_id: r.request_id,
                unsupported_extensions: r.requested_extensions.clone(),
                required_extensions: Default::default(),
            },
        );
    }

    fn on_mining(&mut self, mm: MiningMessage, now: Now, out: &mut Vec<Action>) {
        match mm {
            MiningMessage::OpenStandardMiningChannel(o) => self.open_standard(&o, now, out),
            MiningMessage::OpenExtendedMiningChannel(o) => send(
                out,
                OpenMiningChannelError {
                    request_id: o.request_id,
                    error_code: Str0_255::truncated(ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED),
                },
            ),
            MiningMessage::SubmitSharesStandard(s) => self.submit(&s, now, out),
            MiningMessage::SubmitSharesExtended(s) => {
                // no extended channel exists on this connection
                self.count_rejected(RejectReason::Malformed);
                send(
                    out,
                    SubmitSharesError {
                        channel_id: s.channel_id,
                        sequence_number: s.sequence_number,
                        error_code: Str0_255::truncated(m::ERROR_INVALID_CHANNEL_ID),
                    },
                );
            }
            MiningMessage::UpdateChannel(u) => self.update_channel(&u, now, out),
            MiningMessage::CloseChannel(c) => self.close_channel(&c),
            MiningMessage::SetCustomMiningJob(j) => Self::refuse_custom_job(&j, out),
            other => {
                let name = other.name();
                self.close(out, format!("unexpected {name} from a miner"));
            }
        }
    }

    fn refuse_custom_job(j: &SetCustomMiningJob, out: &mut Vec<Action>) {
        send(
            out,
            SetCustomMiningJobError {
                channel_id: j.channel_id,
                request_id: j.request_id,
                error_code: Str0_255::truncated(m::ERROR_JD_NOT_SUPPORTED),
            },
        );
    }

    // ---------------------------------------------------------------------------------------
    // channels
    // ---------------------------------------------------------------------------------------

    /// The target of a channel: the vardiff's, never harder than the upstream target, never
    /// easier than the device's maximum.
    fn clamp_target(&self, vardiff: Target, max_target: Target) -> Target {
        let floor = self
            .work
            .as_ref()
            .map_or(Target::ZERO, |w| w.upstream_target);
        vardiff.max(floor).min(max_target)
    }

    /// The version bits standard jobs of `work` let the miner roll.
    fn version_mask(&self, work: &UpstreamWork) -> u32 {
        if work.version_rolling_allowed {
            work.version_mask & self.cfg.channel.version_mask
        } else {
            0
        }
    }

    fn open_standard(&mut self, o: &OpenStandardMiningChannel, now: Now, out: &mut Vec<Action>) {
        let refuse = |out: &mut Vec<Action>, code: &str| {
            send(
                out,
                OpenMiningChannelError {
                    request_id: o.request_id,
                    error_code: Str0_255::truncated(code),
                },
            )
        };
        let user = o.user_identity.as_str();
        if self.channels.len() + self.pending.len() >= self.cfg.max_channels {
            return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
        }
        if user.trim().is_empty() {
            return refuse(out, m::ERROR_INVALID_USER_IDENTITY);
        }
        let hashrate = o.nominal_hash_rate;
        if !(hashrate.is_finite() && hashrate >= 0.0) {
            return refuse(out, m::ERROR_INVALID_NOMINAL_HASHRATE);
        }
        let max_target = Target::from_le_bytes(o.max_target.0);
        if max_target == Target::ZERO {
            return refuse(out, m::ERROR_MAX_TARGET_OUT_OF_RANGE);
        }
        let Ok(mut vardiff) =
            Vardiff::from_hashrate(self.cfg.vardiff, f64::from(hashrate), now.mono)
        else {
            return refuse(out, m::ERROR_INVALID_NOMINAL_HASHRATE);
        };
        vardiff.set_max_target(max_target, now.mono);
        if self.worker.is_empty() {
            self.worker = user.to_string();
        }
        self.pending.push(PendingOpen {
            request_id: o.request_id,
            user: user.to_string(),
            vardiff,
            max_target,
        });
        if self.join == JoinState::NotAsked {
            self.join = JoinState::Pending;
            out.push(Action::Join);
        }
        self.open_pending(out);
    }

    /// The hub's answer to [`Action::Join`]: opens the waiting channels (once there is work),
    /// or refuses them when the upstream channel is full (a later open asks again).
    pub fn on_slot(&mut self, slot: Result<Slot, JoinError>, out: &mut Vec<Action>) {
        if self.state == State::Closed {
            return; // the answer came after the close: nothing may follow it
        }
        match slot {
            Ok(slot) => {
                self.join = JoinState::Joined(slot.miner);
                if self.state == State::Ready {
                    self.open_pending(out);
                }
            }
            Err(e) => {
                self.join = JoinState::NotAsked;
                tracing::warn!(peer = %self.peer, error = %e, "no miner id for an SV2 miner");
                for p in self.pending.drain(..) {
                    send(
                        out,
                        OpenMiningChannelError {
                            request_id: p.request_id,
                            error_code: Str0_255::truncated(m::ERROR_CHANNEL_CAPACITY_EXHAUSTED),
                        },
                    );
                }
            }
        }
    }

    /// Opens the channels waiting for the miner id and the first work, if both are there.
    fn open_pending(&mut self, out: &mut Vec<Action>) {
        let (JoinState::Joined(miner), Some(work)) = (self.join, self.work.clone()) else {
            return;
        };
        for p in std::mem::take(&mut self.pending) {
            self.open_now(p, miner, &work, out);
        }
    }

    fn open_now(
        &mut self,
        p: PendingOpen,
        miner: MinerId,
        work: &Arc<UpstreamWork>,
        out: &mut Vec<Action>,
    ) {
        let refuse = |out: &mut Vec<Action>, code: &str| {
            send(
                out,
                OpenMiningChannelError {
                    request_id: p.request_id,
                    error_code: Str0_255::truncated(code),
                },
            )
        };
        let mut counter = 0u64;
        while self.meta.values().any(|m| m.counter == counter) {
            counter += 1;
        }
        let Some(extranonce) = full_extranonce(work, miner, counter) else {
            return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
        };
        let id = self.next_channel_id;
        self.next_channel_id = self.next_channel_id.checked_add(1).unwrap_or(1);
        let target = self.clamp_target(p.vardiff.target(), p.max_target);
        let config = ChannelConfig {
            version_mask: self.version_mask(work),
            ..self.cfg.channel
        };
        let channel = match Channel::new_standard(id, &extranonce, target, config) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "cannot open a standard channel");
                return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
            }
        };
        if let Err(e) = self.channels.insert(channel) {
            tracing::error!(peer = %self.peer, error = %e, "channel id in use");
            return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
        }
        self.meta.insert(
            id,
            ChannelMeta {
                user: p.user.clone(),
                counter,
                vardiff: p.vardiff,
                max_target: p.max_target,
                last_job_id: 0,
                epoch: None,
                ack: None,
            },
        );
        send(
            out,
            OpenStandardMiningChannelSuccess {
                request_id: p.request_id,
                channel_id: id,
                target: U256(target.to_le_bytes()),
                extranonce_prefix: B0_32::new(&extranonce).unwrap_or_default(),
                group_channel_id: 0,
            },
        );
        tracing::info!(peer = %self.peer, channel = id, worker = %p.user, counter, "standard channel opened");
        self.channel_job(id, work, out);
        // its nominal hashrate counts from now on: the hub hears of it at once
        self.early_report = true;
    }

    fn update_channel(&mut self, u: &UpdateChannel, now: Now, out: &mut Vec<Action>) {
        let refuse = |out: &mut Vec<Action>, code: &str| {
            send(
                out,
                UpdateChannelError {
                    channel_id: u.channel_id,
                    error_code: Str0_255::truncated(code),
                },
            )
        };
        if !self.meta.contains_key(&u.channel_id) {
            return refuse(out, m::ERROR_INVALID_CHANNEL_ID);
        }
        let max = Target::from_le_bytes(u.maximum_target.0);
        if max == Target::ZERO {
            return refuse(out, m::ERROR_MAX_TARGET_OUT_OF_RANGE);
        }
        let h = u.nominal_hash_rate;
        let vd = (h.is_finite() && h >= 0.0)
            .then(|| Vardiff::from_hashrate(self.cfg.vardiff, f64::from(h), now.mono).ok())
            .flatten();
        let Some(mut vd) = vd else {
            return refuse(out, m::ERROR_INVALID_NOMINAL_HASHRATE);
        };
        vd.set_max_target(max, now.mono);
        let target = self.clamp_target(vd.target(), max);
        if let Some(meta) = self.meta.get_mut(&u.channel_id) {
            meta.vardiff = vd;
            meta.max_target = max;
        }
        self.retarget(u.channel_id, target, out);
        // the channel counts at its new nominal hashrate from now on: the hub hears of it at
        // once (a device that ramps up would otherwise wait a report interval)
        self.early_report = true;
    }

    /// Sets a channel's target and tells the miner, if it changed.
    fn retarget(&mut self, channel_id: u32, target: Target, out: &mut Vec<Action>) {
        if let Some(c) = self.channels.get_mut(channel_id) {
            if c.target() != target && c.set_target(target).is_ok() {
                send(
                    out,
                    SetTarget {
                        channel_id,
                        maximum_target: U256(target.to_le_bytes()),
                    },
                );
            }
        }
    }

    fn close_channel(&mut self, c: &CloseChannel) {
        for id in self.channels.close(c.channel_id) {
            self.drop_channel(id);
            tracing::info!(
                peer = %self.peer,
                channel = id,
                reason = c.reason_code.as_str(),
                "channel closed by the miner"
            );
        }
    }

    fn drop_channel(&mut self, id: u32) {
        self.meta.remove(&id);
        self.jobs.retain(|&(cid, _), _| cid != id);
    }

    // ---------------------------------------------------------------------------------------
    // jobs
    // ---------------------------------------------------------------------------------------

    /// New upstream work (`None`: no usable upstream; shares are refused until work
    /// returns). Every open channel gets a job; waiting opens complete.
    pub fn on_work(&mut self, work: Option<Arc<UpstreamWork>>, out: &mut Vec<Action>) {
        let same = matches!((&self.work, &work), (Some(a), Some(b)) if a.epoch == b.epoch && a.seq == b.seq);
        self.work = work.clone();
        let Some(work) = work else { return };
        if same || self.state != State::Ready {
            return;
        }
        let ids: Vec<u32> = self.meta.keys().copied().collect();
        for id in ids {
            self.channel_job(id, &work, out);
        }
        self.open_pending(out);
    }

    /// Builds, records and sends the job of `work` for one channel (with what must precede
    /// it: a rebuilt channel, `SetExtranoncePrefix`, `SetTarget`) and its `SetNewPrevHash`
    /// when it starts a new prevhash or epoch.
    fn channel_job(&mut self, id: u32, work: &UpstreamWork, out: &mut Vec<Action>) {
        let JoinState::Joined(miner) = self.join else {
            return;
        };
        let Some(meta) = self.meta.get(&id) else {
            return;
        };
        let (counter, epoch, last_job_id) = (meta.counter, meta.epoch, meta.last_job_id);
        let Some(extranonce) = full_extranonce(work, miner, counter) else {
            // the new upstream's extranonce space has no room for this channel
            send(
                out,
                CloseChannel {
                    channel_id: id,
                    reason_code: Str0_255::truncated(REASON_EXTRANONCE_SPACE_EXHAUSTED),
                },
            );
            self.channels.close(id);
            self.drop_channel(id);
            tracing::warn!(peer = %self.peer, channel = id, "channel closed: no extranonce room upstream");
            return;
        };
        let mask = self.version_mask(work);
        let Some(ch) = self.channels.get(id) else {
            return;
        };
        let mut clean = work.clean
            || epoch != Some(work.epoch)
            || ch
                .prev_hash()
                .is_none_or(|p| p.prev_hash != work.prev_hash || p.nbits != work.nbits);
        if ch.config().version_mask != mask {
            // the channel's rollable bits are fixed at creation: rebuild it, its jobs go
            let config = ChannelConfig {
                version_mask: mask,
                ..*ch.config()
            };
            let rebuilt = Channel::new_standard(id, ch.extranonce_prefix(), ch.target(), config);
            match rebuilt {
                Ok(mut c) => {
                    c.set_next_job_id(last_job_id.checked_add(1).unwrap_or(1));
                    self.channels.close(id);
                    if self.channels.insert(c).is_err() {
                        return;
                    }
                    self.jobs.retain(|&(cid, _), _| cid != id);
                    clean = true;
                }
                Err(e) => {
                    tracing::error!(peer = %self.peer, channel = id, error = %e, "cannot rebuild the channel");
                    return;
                }
            }
        }
        if self.channels.get(id).map(Channel::extranonce_prefix) != Some(extranonce.as_slice()) {
            let msg = SetExtranoncePrefix {
                channel_id: id,
                extranonce_prefix: B0_32::new(&extranonce).unwrap_or_default(),
            };
            if let Err(e) = self.channels.on_set_extranonce_prefix(&msg) {
                tracing::error!(peer = %self.peer, channel = id, error = %e, "extranonce prefix refused");
                return;
            }
            send(out, msg);
        }
        if let Some(meta) = self.meta.get(&id) {
            let target = self.clamp_target(meta.vardiff.target(), meta.max_target);
            let current = self.channels.get(id).map_or(target, Channel::target);
            if current < work.upstream_target || current > meta.max_target {
                self.retarget(id, target, out);
            }
        }
        let Ok(job_id) = self.channels.next_job_id(id) else {
            return;
        };
        let txid = txid_from_parts(
            &work.coinbase_prefix,
            &[extranonce.as_slice()],
            &work.coinbase_suffix,
        );
        let root = merkle_root_from_path(txid, work.merkle_path.iter());
        let min_ntime = if clean {
            None
        } else {
            let prev = self
                .channels
                .get(id)
                .and_then(|c| c.prev_hash())
                .map_or(0, |p| p.min_ntime);
            Some(work.min_ntime.max(prev))
        };
        let job = NewMiningJob {
            channel_id: id,
            job_id,
            min_ntime,
            version: work.version,
            merkle_root: U256(root),
        };
        if let Err(e) = self.channels.on_new_mining_job(&job) {
            tracing::error!(peer = %self.peer, channel = id, error = %e, "job refused by the channel");
            return;
        }
        send(out, job);
        if clean {
            let prev = SetNewPrevHash {
                channel_id: id,
                job_id,
                prev_hash: U256(work.prev_hash),
                min_ntime: work.min_ntime,
                nbits: work.nbits,
            };
            if let Err(e) = self.channels.on_set_new_prev_hash(&prev) {
                tracing::error!(peer = %self.peer, channel = id, error = %e, "prevhash refused by the channel");
                return;
            }
            send(out, prev);
        }
        let skip = work.extranonce_prefix.len().min(extranonce.len());
        self.jobs.insert(
            (id, job_id),
            JobMeta {
                epoch: work.epoch,
                upstream_job_id: work.job_id,
                upstream_target: work.upstream_target,
                extranonce: Bytes::copy_from_slice(&extranonce[skip..]),
            },
        );
        if let Some(meta) = self.meta.get_mut(&id) {
            meta.epoch = Some(work.epoch);
            meta.last_job_id = job_id;
        }
        if let Some(c) = self.channels.get(id) {
            self.jobs.retain(|&(cid, jid), _| {
                cid != id || c.job(jid).is_some() || c.future_job(jid).is_some()
            });
        }
    }

    // ---------------------------------------------------------------------------------------
    // shares
    // ---------------------------------------------------------------------------------------

    fn count_rejected(&mut self, reason: RejectReason) {
        *self.counters.rejected.entry(reason).or_insert(0) += 1;
        if reason == RejectReason::Stale {
            self.counters.stale += 1;
        }
    }

    fn submit(&mut self, s: &SubmitSharesStandard, now: Now, out: &mut Vec<Action>) {
        if self.work.is_none() && self.channels.get(s.channel_id).is_some() {
            // the upstream is gone: the job cannot be credited anywhere
            self.count_rejected(RejectReason::NoUpstream);
            send(
                out,
                SubmitSharesError {
                    channel_id: s.channel_id,
                    sequence_number: s.sequence_number,
                    error_code: Str0_255::truncated(m::ERROR_STALE_SHARE),
                },
            );
            return;
        }
        let share = match self.channels.validate_standard(s, now.unix_ms) {
            Ok(share) => share,
            Err(r) => {
                self.count_rejected(reason_of(&r));
                tracing::debug!(peer = %self.peer, channel = s.channel_id, rejection = %r, "share rejected");
                send(out, r.to_message(s.channel_id, s.sequence_number));
                return;
            }
        };
        let job_target = self
            .channels
            .get(s.channel_id)
            .and_then(|c| c.job(share.job_id))
            .map(|j| j.target());
        self.counters.accepted += 1;
        self.counters.last_share_ms = now.unix_ms;
        self.counters.accepted_work += job_target.map_or(0.0, |t| t.difficulty());
        let Some(meta) = self.meta.get_mut(&s.channel_id) else {
            return;
        };
        if let Some(t) = job_target {
            meta.vardiff.on_share(now.mono, &t);
            if meta.vardiff.shares_in_window(now.mono) == ESTIMATE_MIN_SHARES {
                // the channel's estimate takes over from its nominal hashrate
                self.early_report = true;
            }
        }
        let ack = meta.ack.get_or_insert(Ack {
            last_sequence_number: s.sequence_number,
            count: 0,
            sum: 0.0,
        });
        ack.last_sequence_number = s.sequence_number;
        ack.count += 1;
        ack.sum += share.difficulty;
        let Some(job) = self.jobs.get(&(s.channel_id, share.job_id)) else {
            tracing::error!(peer = %self.peer, channel = s.channel_id, job = share.job_id, "accepted share of an unrecorded job");
            return;
        };
        let JoinState::Joined(miner) = self.join else {
            return;
        };
        if share.is_block.is_some() || hash_meets(&share.hash, &job.upstream_target) {
            out.push(Action::Forward(ForwardShare {
                channel: 0, // the miner task stamps its channel
                miner,
                worker: meta.user.clone(),
                epoch: job.epoch,
                job_id: job.upstream_job_id,
                nonce: s.nonce,
                ntime: s.ntime,
                version: s.version,
                extranonce: job.extranonce.clone(),
                difficulty: share.difficulty,
                received: now.mono,
            }));
        }
    }

    /// Acknowledges the shares accepted since the last call: one `SubmitShares.Success` per
    /// channel.
    pub fn flush_acks(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Closed {
            return;
        }
        for (&channel_id, meta) in self.meta.iter_mut() {
            if let Some(a) = meta.ack.take() {
                send(
                    out,
                    SubmitSharesSuccess {
                        channel_id,
                        last_sequence_number: a.last_sequence_number,
                        new_submits_accepted_count: a.count,
                        new_shares_sum: a.sum.round() as u64,
                    },
                );
            }
        }
    }

    /// Periodic work: vardiff retargets (`SetTarget`) and pending acknowledgements.
    pub fn on_tick(&mut self, now: Now, out: &mut Vec<Action>) {
        if self.state == State::Closed {
            return;
        }
        let ids: Vec<u32> = self.meta.keys().copied().collect();
        for id in ids {
            let Some(meta) = self.meta.get_mut(&id) else {
                continue;
            };
            let Some(new) = meta.vardiff.tick(now.mono) else {
                continue;
            };
            let max = meta.max_target;
            let target = self.clamp_target(new.target, max);
            self.retarget(id, target, out);
        }
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
            .channels
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
                .meta
                .values()
                .map(|m| miner_hashrate(&m.vardiff, now.mono))
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
            connected: self.state != State::Closed,
        })
    }
}
