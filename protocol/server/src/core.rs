//! The connection state, the dispatch of client messages, channels and shares.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use strata_protocol::common::{
    CommonMessage, Protocol, SetupConnection, SetupConnectionError, SetupConnectionSuccess,
    ERROR_UNSUPPORTED_FEATURE_FLAGS,
};
use strata_protocol::extensions::{
    ExtensionsMessage, RequestExtensions, RequestExtensionsSuccess, FIELD_TYPE_USER_IDENTITY,
};
use strata_protocol::mining::{
    self as m, CloseChannel, MiningMessage, OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError, OpenStandardMiningChannelSuccess, SetCustomMiningJobError, SetTarget,
    SubmitSharesError, SubmitSharesSuccess, UpdateChannel, UpdateChannelError,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::{Message, EXTENSION_WORKER_HASHRATE};
use strata_work::channel::{Channel, ChannelKind, Channels};
use strata_work::share::{AcceptedShare, Rejection};
use strata_work::target::Target;
use strata_work::vardiff::Vardiff;

use crate::{
    Accepted, AckPolicy, Admission, ChannelRequest, Now, Output, PendingAck, Placement, Request,
    ServerConfig, Submit,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitSetup,
    Ready,
    Closed,
}

/// Shares accepted since a channel's last `SubmitShares.Success` ([`AckPolicy::Batched`]).
#[derive(Debug, Clone, Copy)]
struct Ack {
    last_sequence_number: u32,
    count: u32,
    sum: f64,
}

/// What the core keeps per channel beside its job state, and the role's data `C`.
#[derive(Debug)]
pub struct ChannelState<C> {
    /// The user identity the channel was opened with.
    pub user: String,
    /// Its vardiff.
    pub vardiff: Vardiff,
    /// The device's maximum target.
    pub max_target: Target,
    /// The hardest target the role allows (see [`Placement::floor`]).
    pub floor: Target,
    /// Whether it is a standard channel.
    pub standard: bool,
    /// The role's data.
    pub data: C,
    ack: Option<Ack>,
    pub(crate) last_job_id: u32,
}

impl<C> ChannelState<C> {
    /// `target` within the channel's bounds: never harder than the floor, never easier than
    /// the device's maximum.
    pub fn clamp(&self, target: Target) -> Target {
        target.max(self.floor).min(self.max_target)
    }
}

/// One client connection of the mining-server role: `C` is the role's data per channel,
/// `J` per job.
#[derive(Debug)]
pub struct ServerCore<C, J> {
    cfg: Arc<ServerConfig>,
    state: State,
    requires_standard_jobs: bool,
    work_selection: bool,
    worker_tlv: bool,
    pub(crate) channels: Channels,
    pub(crate) meta: BTreeMap<u32, ChannelState<C>>,
    pub(crate) jobs: HashMap<(u32, u32), J>,
    /// The group of the connection's channels (standard ones placed in it, extended ones
    /// added by [`ServerCore::group_extended`]).
    pub(crate) group_id: Option<u32>,
    next_channel_id: u32,
}

pub(crate) fn send<O: Output>(out: &mut Vec<O>, msg: impl Into<Message>) {
    out.push(O::send(msg.into()));
}

impl<C, J> ServerCore<C, J> {
    /// A connection waiting for `SetupConnection`.
    pub fn new(cfg: Arc<ServerConfig>) -> Self {
        ServerCore {
            cfg,
            state: State::AwaitSetup,
            requires_standard_jobs: false,
            work_selection: false,
            worker_tlv: false,
            channels: Channels::new(),
            meta: BTreeMap::new(),
            jobs: HashMap::new(),
            group_id: None,
            next_channel_id: 1,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// Whether `SetupConnection` succeeded (and the connection is not closed).
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the connection ended (a close was emitted).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The client set `REQUIRES_STANDARD_JOBS`.
    pub fn requires_standard_jobs(&self) -> bool {
        self.requires_standard_jobs
    }

    /// The client set `REQUIRES_WORK_SELECTION` (allowed by the configuration).
    pub fn work_selection(&self) -> bool {
        self.work_selection
    }

    /// Open channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The job state of a channel.
    pub fn channel(&self, channel_id: u32) -> Option<&Channel> {
        self.channels.get(channel_id)
    }

    /// The job state of a channel, to record what the role sends itself (custom jobs).
    pub fn channel_mut(&mut self, channel_id: u32) -> Option<&mut Channel> {
        self.channels.get_mut(channel_id)
    }

    /// Every channel's job state.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// What the core keeps for a channel.
    pub fn state(&self, channel_id: u32) -> Option<&ChannelState<C>> {
        self.meta.get(&channel_id)
    }

    /// What the core keeps for a channel, mutable.
    pub fn state_mut(&mut self, channel_id: u32) -> Option<&mut ChannelState<C>> {
        self.meta.get_mut(&channel_id)
    }

    /// Every channel's state, by increasing id.
    pub fn states(&self) -> impl Iterator<Item = (u32, &ChannelState<C>)> + '_ {
        self.meta.iter().map(|(&id, s)| (id, s))
    }

    /// Open channel ids, increasing.
    pub fn channel_ids(&self) -> Vec<u32> {
        self.meta.keys().copied().collect()
    }

    /// The group of the connection's channels, once one joined it.
    pub fn group_id(&self) -> Option<u32> {
        self.group_id
    }

    /// Ends the connection: emits a close with `reason`; every later input is ignored.
    pub fn close<O: Output>(&mut self, out: &mut Vec<O>, reason: String) {
        self.state = State::Closed;
        out.push(O::close(reason));
    }

    /// Handles one message from the client; `tlvs` is the frame's TLV tail (extension
    /// 0x0002's user identity on `SubmitSharesExtended`). What the role must decide comes
    /// back as a [`Request`].
    pub fn on_message<O: Output>(
        &mut self,
        msg: Message,
        tlvs: &[u8],
        now: Now,
        out: &mut Vec<O>,
    ) -> Option<Request<C>> {
        let name = msg.name();
        match (self.state, msg) {
            (State::Closed, _) => None,
            (State::AwaitSetup, Message::Common(CommonMessage::SetupConnection(s))) => {
                self.on_setup(&s, out);
                None
            }
            (State::AwaitSetup, _) => {
                self.close(out, format!("{name} before SetupConnection"));
                None
            }
            (State::Ready, Message::Common(CommonMessage::SetupConnection(_))) => {
                self.close(out, "second SetupConnection".into());
                None
            }
            (State::Ready, Message::Extensions(ExtensionsMessage::RequestExtensions(r))) => {
                self.on_request_extensions(&r, out);
                None
            }
            (State::Ready, Message::Mining(mm)) => self.on_mining(mm, tlvs, now, out),
            (State::Ready, _) => {
                self.close(out, format!("unexpected {name} from a miner"));
                None
            }
        }
    }

    fn on_setup<O: Output>(&mut self, s: &SetupConnection, out: &mut Vec<O>) {
        // anything but Mining, 3 and other values that name no sub-protocol included
        if let Some((refused, reason)) = s.refusal(Protocol::Mining) {
            send(out, refused);
            return self.close(out, reason);
        }
        let unsupported = if self.cfg.work_selection {
            0
        } else {
            s.flags & m::REQUIRES_WORK_SELECTION
        };
        if unsupported != 0 {
            send(
                out,
                SetupConnectionError {
                    flags: unsupported,
                    error_code: Str0_255::truncated(ERROR_UNSUPPORTED_FEATURE_FLAGS),
                },
            );
            return self.close(out, "miner requires work selection".into());
        }
        self.requires_standard_jobs = s.flags & m::REQUIRES_STANDARD_JOBS != 0;
        self.work_selection = s.flags & m::REQUIRES_WORK_SELECTION != 0;
        self.state = State::Ready;
        // version rolling is always allowed (REQUIRES_FIXED_VERSION unset)
        send(
            out,
            SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            },
        );
    }

    fn on_request_extensions<O: Output>(&mut self, r: &RequestExtensions, out: &mut Vec<O>) {
        if !self.cfg.worker_identity {
            send(
                out,
                strata_protocol::extensions::RequestExtensionsError {
                    request_id: r.request_id,
                    unsupported_extensions: r.requested_extensions.clone(),
                    required_extensions: Default::default(),
                },
            );
            return;
        }
        let supported: Vec<u16> = r
            .requested_extensions
            .iter()
            .copied()
            .filter(|&e| e == EXTENSION_WORKER_HASHRATE)
            .collect();
        self.worker_tlv = !supported.is_empty();
        // at most as many elements as requested: always fits
        send(
            out,
            RequestExtensionsSuccess {
                request_id: r.request_id,
                supported_extensions: supported.try_into().unwrap_or_default(),
            },
        );
    }

    fn on_mining<O: Output>(
        &mut self,
        mm: MiningMessage,
        tlvs: &[u8],
        now: Now,
        out: &mut Vec<O>,
    ) -> Option<Request<C>> {
        match mm {
            MiningMessage::OpenStandardMiningChannel(o) => self.admit(
                o.request_id,
                o.user_identity.as_str(),
                ChannelRequest::Standard,
                o.nominal_hash_rate,
                &o.max_target,
                now,
                out,
            ),
            MiningMessage::OpenExtendedMiningChannel(o) => self.admit(
                o.request_id,
                o.user_identity.as_str(),
                ChannelRequest::Extended {
                    min_extranonce_size: o.min_extranonce_size,
                },
                o.nominal_hash_rate,
                &o.max_target,
                now,
                out,
            ),
            MiningMessage::SubmitSharesStandard(s) => {
                let verdict = self.channels.validate_standard(&s, now.unix_ms);
                self.after_validation(Submit::Standard(s), verdict, None, now, out)
            }
            MiningMessage::SubmitSharesExtended(s) => {
                let worker = match self.worker_identity(tlvs) {
                    Ok(w) => w,
                    Err(e) => {
                        self.close(out, format!("malformed TLVs on SubmitSharesExtended: {e}"));
                        return None;
                    }
                };
                let verdict = self.channels.validate_extended(&s, now.unix_ms);
                self.after_validation(Submit::Extended(s), verdict, worker, now, out)
            }
            MiningMessage::UpdateChannel(u) => self.update_channel(&u, now, out),
            MiningMessage::CloseChannel(c) => self.close_channel(&c),
            MiningMessage::SetCustomMiningJob(j) if self.work_selection => {
                Some(Request::CustomJob(Box::new(j)))
            }
            MiningMessage::SetCustomMiningJob(j) => {
                send(
                    out,
                    SetCustomMiningJobError {
                        channel_id: j.channel_id,
                        request_id: j.request_id,
                        error_code: Str0_255::truncated(m::ERROR_JD_NOT_SUPPORTED),
                    },
                );
                None
            }
            other => {
                let name = other.name();
                self.close(out, format!("unexpected {name} from a miner"));
                None
            }
        }
    }

    /// The user identity TLV of an extended submit, if negotiated and present.
    fn worker_identity(&self, tlvs: &[u8]) -> Result<Option<String>, String> {
        if !self.worker_tlv || tlvs.is_empty() {
            return Ok(None);
        }
        match strata_protocol::tlv::find(tlvs, EXTENSION_WORKER_HASHRATE, FIELD_TYPE_USER_IDENTITY)
        {
            Ok(Some(t)) => Ok(std::str::from_utf8(t.value()).ok().map(str::to_string)),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    // ---------------------------------------------------------------------------------------
    // channels
    // ---------------------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn admit<O: Output>(
        &mut self,
        request_id: u32,
        user: &str,
        kind: ChannelRequest,
        hashrate: f32,
        max_target: &U256,
        now: Now,
        out: &mut Vec<O>,
    ) -> Option<Request<C>> {
        let verdict = (|| {
            if self.channels.len() >= self.cfg.max_channels {
                return Err(m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
            }
            if !(hashrate.is_finite() && hashrate >= 0.0) {
                return Err(m::ERROR_INVALID_NOMINAL_HASHRATE);
            }
            let max = Target::from_le_bytes(max_target.0);
            if max == Target::ZERO {
                return Err(m::ERROR_MAX_TARGET_OUT_OF_RANGE);
            }
            let mut vardiff =
                Vardiff::from_hashrate(self.cfg.vardiff, f64::from(hashrate), now.mono)
                    .map_err(|_| m::ERROR_INVALID_NOMINAL_HASHRATE)?;
            vardiff.set_max_target(max, now.mono);
            if vardiff.target() > max {
                return Err(m::ERROR_MAX_TARGET_OUT_OF_RANGE);
            }
            Ok((vardiff, max))
        })();
        match verdict {
            Ok((vardiff, max_target)) => Some(Request::Open(Box::new(Admission {
                request_id,
                user: user.to_string(),
                kind,
                vardiff,
                max_target,
            }))),
            Err(code) => {
                self.refuse_open(request_id, code, out);
                None
            }
        }
    }

    /// Answers an open request with `OpenMiningChannel.Error`.
    pub fn refuse_open<O: Output>(&mut self, request_id: u32, code: &str, out: &mut Vec<O>) {
        send(
            out,
            OpenMiningChannelError {
                request_id,
                error_code: Str0_255::truncated(code),
            },
        );
    }

    /// Whether the connection has room for `pending` more channels than it has.
    pub fn has_room(&self, pending: usize) -> bool {
        self.channels.len() + pending < self.cfg.max_channels
    }

    pub(crate) fn alloc_channel_id(&mut self) -> u32 {
        loop {
            let id = self.next_channel_id;
            self.next_channel_id = self.next_channel_id.wrapping_add(1).max(1);
            if self.channels.get(id).is_none() && self.channels.group(id).is_none() {
                return id;
            }
        }
    }

    /// Opens the admitted channel where the role placed it and answers the client; returns
    /// the channel id, or the `OpenMiningChannel.Error` code it answered with (the role then
    /// releases what it allocated for the placement).
    pub fn open<O: Output>(
        &mut self,
        a: Admission,
        place: Placement<C>,
        out: &mut Vec<O>,
    ) -> Result<u32, &'static str> {
        let id = self.alloc_channel_id();
        let target = a.vardiff.target().max(place.floor).min(a.max_target);
        let prefix = place.extranonce_prefix.as_slice();
        let channel = match a.kind {
            ChannelRequest::Standard => Channel::new_standard(id, prefix, target, self.cfg.channel),
            ChannelRequest::Extended { .. } => Channel::new_extended(
                id,
                prefix,
                u8::try_from(place.extranonce_size).unwrap_or(u8::MAX),
                target,
                self.cfg.channel,
            ),
        };
        let channel = match channel {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(channel = id, error = %e, "cannot open a channel");
                self.refuse_open(a.request_id, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED, out);
                return Err(m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
            }
        };
        if let Err(e) = self.channels.insert(channel) {
            tracing::error!(channel = id, error = %e, "channel id in use");
            self.refuse_open(a.request_id, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED, out);
            return Err(m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
        }
        let standard = a.kind == ChannelRequest::Standard;
        let group_id = if standard && place.group {
            let g = match self.group_id {
                Some(g) => g,
                None => {
                    let g = self.alloc_channel_id();
                    let _ = self.channels.create_group(g, Some(prefix.len()));
                    self.group_id = Some(g);
                    g
                }
            };
            let _ = self.channels.add_to_group(g, id);
            g
        } else {
            0
        };
        let extranonce_prefix = B0_32::new(prefix).unwrap_or_default();
        let msg: Message = match a.kind {
            ChannelRequest::Standard => OpenStandardMiningChannelSuccess {
                request_id: a.request_id,
                channel_id: id,
                target: U256(target.to_le_bytes()),
                extranonce_prefix,
                group_channel_id: group_id,
            }
            .into(),
            ChannelRequest::Extended { .. } => OpenExtendedMiningChannelSuccess {
                request_id: a.request_id,
                channel_id: id,
                target: U256(target.to_le_bytes()),
                extranonce_size: place.extranonce_size,
                extranonce_prefix,
                group_channel_id: group_id,
            }
            .into(),
        };
        send(out, msg);
        tracing::info!(
            channel = id,
            worker = a.user,
            standard,
            extranonce_size = place.extranonce_size,
            "channel opened"
        );
        self.meta.insert(
            id,
            ChannelState {
                user: a.user,
                vardiff: a.vardiff,
                max_target: a.max_target,
                floor: place.floor,
                standard,
                data: place.data,
                ack: None,
                last_job_id: 0,
            },
        );
        Ok(id)
    }

    fn update_channel<O: Output>(
        &mut self,
        u: &UpdateChannel,
        now: Now,
        out: &mut Vec<O>,
    ) -> Option<Request<C>> {
        let refuse = |out: &mut Vec<O>, code: &str| {
            send(
                out,
                UpdateChannelError {
                    channel_id: u.channel_id,
                    error_code: Str0_255::truncated(code),
                },
            );
            None
        };
        let vardiff_cfg = self.cfg.vardiff;
        let Some(meta) = self.meta.get_mut(&u.channel_id) else {
            return refuse(out, m::ERROR_INVALID_CHANNEL_ID);
        };
        let max = Target::from_le_bytes(u.maximum_target.0);
        if max == Target::ZERO {
            return refuse(out, m::ERROR_MAX_TARGET_OUT_OF_RANGE);
        }
        let h = u.nominal_hash_rate;
        let vd = (h.is_finite() && h >= 0.0)
            .then(|| Vardiff::from_hashrate(vardiff_cfg, f64::from(h), now.mono).ok())
            .flatten();
        let Some(mut vd) = vd else {
            return refuse(out, m::ERROR_INVALID_NOMINAL_HASHRATE);
        };
        vd.set_max_target(max, now.mono);
        meta.vardiff = vd;
        meta.max_target = max;
        let target = meta.clamp(meta.vardiff.target());
        self.retarget(u.channel_id, target, out);
        Some(Request::Updated {
            channel_id: u.channel_id,
        })
    }

    /// Sets a channel's target and tells the client (`SetTarget`), if it changed.
    pub fn retarget<O: Output>(&mut self, channel_id: u32, target: Target, out: &mut Vec<O>) {
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

    fn close_channel(&mut self, c: &CloseChannel) -> Option<Request<C>> {
        let closed = self.remove_channel(c.channel_id);
        for (id, _) in &closed {
            tracing::info!(
                channel = id,
                reason = c.reason_code.as_str(),
                "channel closed by the miner"
            );
        }
        (!closed.is_empty()).then_some(Request::Closed(closed))
    }

    /// Forgets a channel (or every member of a group) and its jobs; returns their states.
    pub fn remove_channel(&mut self, channel_id: u32) -> Vec<(u32, ChannelState<C>)> {
        let mut closed = Vec::new();
        for id in self.channels.close(channel_id) {
            self.jobs.retain(|&(cid, _), _| cid != id);
            if let Some(state) = self.meta.remove(&id) {
                closed.push((id, state));
            }
        }
        closed
    }

    /// Closes a channel from the server side (`CloseChannel` with `reason`); returns its
    /// state.
    pub fn close_channel_with<O: Output>(
        &mut self,
        channel_id: u32,
        reason: &str,
        out: &mut Vec<O>,
    ) -> Option<ChannelState<C>> {
        send(
            out,
            CloseChannel {
                channel_id,
                reason_code: Str0_255::truncated(reason),
            },
        );
        self.remove_channel(channel_id)
            .into_iter()
            .find_map(|(id, s)| (id == channel_id).then_some(s))
    }

    // ---------------------------------------------------------------------------------------
    // shares
    // ---------------------------------------------------------------------------------------

    fn after_validation<O: Output>(
        &mut self,
        submit: Submit,
        verdict: Result<AcceptedShare, Rejection>,
        worker: Option<String>,
        now: Now,
        out: &mut Vec<O>,
    ) -> Option<Request<C>> {
        let channel_id = submit.channel_id();
        let sequence_number = submit.sequence_number();
        let share = match verdict {
            Ok(s) => s,
            Err(rejection) => {
                send(out, rejection.to_message(channel_id, sequence_number));
                return Some(Request::Rejected {
                    channel_id,
                    rejection,
                });
            }
        };
        let job_target = self
            .channels
            .get(channel_id)
            .and_then(|c| c.job(share.job_id))
            .map(|j| j.target())
            .or_else(|| Target::from_difficulty(share.difficulty).ok())
            .unwrap_or(Target::MAX);
        if let Some(meta) = self.meta.get_mut(&channel_id) {
            meta.vardiff.on_share(now.mono, &job_target);
            if self.cfg.acks == AckPolicy::Batched {
                let ack = meta.ack.get_or_insert(Ack {
                    last_sequence_number: sequence_number,
                    count: 0,
                    sum: 0.0,
                });
                ack.last_sequence_number = sequence_number;
                ack.count += 1;
                ack.sum += share.difficulty;
            }
        }
        Some(Request::Accepted(Box::new(Accepted {
            share,
            submit,
            job_target,
            worker,
        })))
    }

    /// Acknowledges the shares batched since the last call ([`AckPolicy::Batched`]): one
    /// `SubmitShares.Success` per channel.
    pub fn flush_acks<O: Output>(&mut self, out: &mut Vec<O>) {
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

    /// Shares the role stored ([`AckPolicy::AfterCommit`]): one `SubmitShares.Success` per
    /// channel (shares of closed channels are dropped silently: the client left).
    pub fn on_committed<O: Output>(&mut self, acks: &[PendingAck], out: &mut Vec<O>) {
        if self.state == State::Closed {
            return;
        }
        let mut per: Vec<(u32, u32, u32, f64)> = Vec::new();
        for a in acks {
            match per.iter_mut().find(|p| p.0 == a.channel_id) {
                Some(p) => {
                    p.1 = a.sequence_number;
                    p.2 += 1;
                    p.3 += a.difficulty;
                }
                None => per.push((a.channel_id, a.sequence_number, 1, a.difficulty)),
            }
        }
        for (channel_id, last, count, sum) in per {
            if !self.meta.contains_key(&channel_id) {
                continue;
            }
            send(
                out,
                SubmitSharesSuccess {
                    channel_id,
                    last_sequence_number: last,
                    new_submits_accepted_count: count,
                    new_shares_sum: sum.round() as u64,
                },
            );
        }
    }

    /// Shares the role failed to store: not acknowledged; the client is told with
    /// `SubmitShares.Error` (`internal-error`) so it does not count them.
    pub fn on_commit_failed<O: Output>(&mut self, acks: &[PendingAck], out: &mut Vec<O>) {
        if self.state == State::Closed {
            return;
        }
        for a in acks {
            send(
                out,
                SubmitSharesError {
                    channel_id: a.channel_id,
                    sequence_number: a.sequence_number,
                    error_code: Str0_255::truncated("internal-error"),
                },
            );
        }
    }

    /// Periodic work: each channel's vardiff retarget (`SetTarget`, within the channel's
    /// bounds); `each` sees every channel first (statistics).
    pub fn on_tick<O: Output>(
        &mut self,
        now: Now,
        out: &mut Vec<O>,
        mut each: impl FnMut(u32, &ChannelState<C>, &mut Vec<O>),
    ) {
        if self.state == State::Closed {
            return;
        }
        for id in self.channel_ids() {
            let Some(meta) = self.meta.get_mut(&id) else {
                continue;
            };
            let new = meta.vardiff.tick(now.mono);
            each(id, meta, out);
            let Some(new) = new else { continue };
            let target = meta.clamp(new.target);
            self.retarget(id, target, out);
        }
    }

    /// The extended or standard kind of a channel.
    pub fn kind(&self, channel_id: u32) -> Option<ChannelKind> {
        self.channels.get(channel_id).map(Channel::kind)
    }
}
