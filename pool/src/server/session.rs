//! One miner connection as a synchronous state machine: SV2 messages and new work in,
//! messages to send and events (shares to commit, blocks to submit) out. No I/O, time passed
//! in. The connection task ([`super::conn`]) wraps it.
//!
//! ```text
//!   AwaitSetup --SetupConnection(mining, v2)--> Ready --(protocol violation)--> Closed
//!        \--anything else / unsupported------------------------------------------^
//! ```
//!
//! In `Ready`: channels open and close; every new [`Work`] becomes jobs (future jobs and a
//! `SetNewPrevHash` on a new tip, active jobs otherwise); shares are validated by
//! `strata-work`; accepted shares leave as [`Event::Accepted`] and are acknowledged with
//! `SubmitShares.Success` only when the connection task reports them committed
//! ([`Session::on_committed`]); rejected shares get `SubmitShares.Error` at once.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bitcoin::{Network, ScriptBuf};
use strata_protocol::common::{
    CommonMessage, Protocol, SetupConnection, SetupConnectionError, SetupConnectionSuccess,
    ERROR_UNSUPPORTED_FEATURE_FLAGS,
};
use strata_protocol::extensions::{
    ExtensionsMessage, RequestExtensions, RequestExtensionsSuccess, FIELD_TYPE_USER_IDENTITY,
};
use strata_protocol::mining::{
    self as m, CloseChannel, MiningMessage, NewExtendedMiningJob, NewMiningJob,
    OpenExtendedMiningChannel, OpenExtendedMiningChannelSuccess, OpenMiningChannelError,
    OpenStandardMiningChannel, OpenStandardMiningChannelSuccess, SetCustomMiningJob,
    SetCustomMiningJobError, SetNewPrevHash, SetTarget, SubmitSharesExtended, SubmitSharesStandard,
    SubmitSharesSuccess, UpdateChannel, UpdateChannelError,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::{Message, EXTENSION_WORKER_HASHRATE};
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::coinbase::{Coinbase, CoinbaseParams};
use strata_work::extranonce::{PrefixAllocator, PrefixId};
use strata_work::merkle::merkle_root_from_path;
use strata_work::share::{AcceptedShare, BlockCandidate, Rejection};
use strata_work::target::Target;
use strata_work::vardiff::{Vardiff, VardiffConfig};

use crate::jds::DeclaredJob;
use crate::ledger::{ServerId, ShareRecord};
use crate::payout::{self, Split};
use crate::template::{Solution, Template};

mod custom;

/// Bytes of every channel's extranonce prefix: 4 bytes of connection id (in a cluster, the
/// server id and 3 bytes of connection id), 2 of channel.
pub const PREFIX_LEN: usize = 6;

/// The 4 bytes a connection's extranonce prefixes start with: the low 32 bits of its id, or
/// in a cluster the server's id and the low 24 bits of the connection's, so that no two
/// servers hand out the same search space (a server's connection ids repeat after 2^24
/// connections rather than 2^32).
pub fn connection_prefix(conn_id: u64, server: Option<ServerId>) -> [u8; 4] {
    let mut fixed = (conn_id as u32).to_be_bytes();
    if let Some(id) = server {
        fixed[0] = id.get();
    }
    fixed
}

/// Settings shared by every session of a pool.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Network of payout addresses.
    pub network: Network,
    /// The pool's own payout script (fees, unpaid remainders).
    pub pool_script: ScriptBuf,
    /// Pool fee in parts per million (solo mode).
    pub solo_fee_ppm: u32,
    /// Solo mode: each channel's coinbase pays the address in its user identity. Otherwise
    /// (PPLNS) every coinbase pays the shared split of the current [`Work`].
    pub solo: bool,
    /// Bytes pushed in the coinbase scriptSig after the height (pool tag).
    pub pool_tag: Vec<u8>,
    /// Full extranonce size of extended channels (prefix + miner bytes, at most 32).
    pub full_extranonce_len: usize,
    /// Channel limits (jobs kept, duplicate memory, version mask...).
    pub channel: ChannelConfig,
    /// Difficulty adjustment.
    pub vardiff: VardiffConfig,
    /// Channels one connection may open.
    pub max_channels: usize,
    /// The server's id in a cluster (the first byte of every extranonce prefix).
    pub server: Option<ServerId>,
    /// Whether connections may set `REQUIRES_WORK_SELECTION` and send `SetCustomMiningJob`
    /// with tokens of the pool's Job Declarator Server (`[jds]` enabled).
    pub work_selection: bool,
}

impl SessionConfig {
    /// A regtest configuration paying `pool_script` (tests and the demo).
    pub fn regtest(pool_script: ScriptBuf) -> Self {
        SessionConfig {
            network: Network::Regtest,
            pool_script,
            solo_fee_ppm: 0,
            solo: false,
            pool_tag: b"/strata/".to_vec(),
            full_extranonce_len: 16,
            channel: ChannelConfig::default(),
            vardiff: VardiffConfig::default(),
            max_channels: 1024,
            server: None,
            work_selection: false,
        }
    }
}

/// How the coinbases of a [`Work`] pay out.
#[derive(Debug, Clone)]
pub enum Payouts {
    /// Every coinbase carries these outputs (PPLNS split of the window at template time).
    Shared(Arc<Split>),
    /// Each channel pays the address of its own user identity (solo).
    Solo,
}

/// What the pool mines on: a template and its payouts. Sent to every session.
#[derive(Debug, Clone)]
pub struct Work {
    /// Increases with each new work.
    pub seq: u64,
    /// The template.
    pub template: Arc<Template>,
    /// The payout outputs.
    pub payouts: Payouts,
    /// PPLNS: the ledger share ids `(first, last)` the split was computed from.
    pub window: Option<(i64, i64)>,
    /// The coinbase every channel of the pool shares for this work (shared payouts), built
    /// by the first session that needs it: at a new tip a thousand sessions would otherwise
    /// each build the same one. Keyed by its extranonce size (other sizes build their own).
    pub shared_coinbase: SharedCoinbase,
}

/// See [`Work::shared_coinbase`]. `Default` is empty.
#[derive(Debug, Clone, Default)]
pub struct SharedCoinbase(Arc<OnceLock<(usize, Arc<Coinbase>)>>);

pub use strata_work::time::Now;

/// A share accepted by validation, waiting for its ledger commit before its acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAck {
    /// Channel of the share.
    pub channel_id: u32,
    /// Its sequence number.
    pub sequence_number: u32,
    /// Its difficulty.
    pub difficulty: f64,
}

/// A share that found a block: the solution for the template source and what the ledger
/// records about it.
#[derive(Debug, Clone)]
pub struct FoundBlock {
    /// Header and full coinbase.
    pub solution: Solution,
    /// Height of the block.
    pub height: u32,
    /// Block hash, display order hex.
    pub hash: String,
    /// Prev hash of the block (header order), to submit at most one block per tip.
    pub prev_hash: [u8; 32],
    /// User identity of the channel that found it.
    pub worker: String,
    /// The coinbase's payouts.
    pub split: Arc<Split>,
    /// Total coinbase value paid.
    pub reward_sats: u64,
    /// PPLNS: the ledger share ids the split was computed from.
    pub window: Option<(i64, i64)>,
    /// Template id (for the ledger; a custom job's is its token).
    pub template_id: u64,
    /// A custom job's block, serialized whole (its transactions are the declared ones, which
    /// the template source does not know): submitted as is.
    pub block: Option<Vec<u8>>,
}

/// Something the connection task must act on.
#[derive(Debug, Clone)]
pub enum Event {
    /// Send this message to the miner.
    Send(Message),
    /// A share was accepted: commit it, then call [`Session::on_committed`] with the ack.
    Accepted(Box<(ShareRecord, PendingAck)>),
    /// A share was rejected (already answered with `SubmitShares.Error`).
    Rejected {
        /// Worker (user identity) of the channel.
        worker: String,
        /// The `SubmitShares.Error` code.
        code: &'static str,
    },
    /// A share met the network target.
    Block(Box<FoundBlock>),
    /// A channel's difficulty or hashrate estimate changed (for statistics).
    Hashrate {
        /// Worker (user identity).
        worker: String,
        /// Estimated hashes per second of the channel.
        hashrate: f64,
    },
    /// A `SetCustomMiningJob` on a work-selecting connection: take its token's declared
    /// job from the JDS registry and call [`Session::on_custom_job`] with it (or `None`).
    CustomJob(Box<SetCustomMiningJob>),
    /// Close the connection after sending what precedes; the reason is logged.
    Close(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitSetup,
    Ready,
    Closed,
}

/// Per-channel data the mining core does not keep.
#[derive(Debug)]
struct Meta {
    worker: String,
    prefix: PrefixId,
    vardiff: Vardiff,
    standard: bool,
    /// Solo payout script (solo mode).
    payout: Option<ScriptBuf>,
}

/// The coinbase behind a job, kept to assemble the block.
#[derive(Debug)]
struct JobInfo {
    template: Arc<Template>,
    window: Option<(i64, i64)>,
    /// The pool's coinbase of the job, or a custom job's declaration (whose coinbase and
    /// transactions make the block).
    coinbase: JobCoinbase,
    split: Arc<Split>,
}

/// See [`JobInfo::coinbase`].
#[derive(Debug)]
enum JobCoinbase {
    Pool(Arc<Coinbase>),
    Custom(Arc<DeclaredJob>),
}

/// One miner connection's protocol state.
#[derive(Debug)]
pub struct Session {
    conn_id: u64,
    cfg: Arc<SessionConfig>,
    state: State,
    requires_standard_jobs: bool,
    /// The miner set `REQUIRES_WORK_SELECTION` (allowed by the configuration).
    work_selection: bool,
    worker_tlv: bool,
    channels: Channels,
    meta: HashMap<u32, Meta>,
    /// The group of this connection's standard channels.
    group_id: Option<u32>,
    next_channel_id: u32,
    prefixes: PrefixAllocator,
    jobs: HashMap<(u32, u32), JobInfo>,
    work: Option<Arc<Work>>,
}

fn send(out: &mut Vec<Event>, msg: impl Into<Message>) {
    out.push(Event::Send(msg.into()));
}

impl Session {
    /// A session for connection `conn_id` (its low 32 bits, or in a cluster the server id
    /// and its low 24 bits, make the extranonce prefixes of its channels unique across the
    /// pool: [`connection_prefix`]).
    pub fn new(conn_id: u64, cfg: Arc<SessionConfig>) -> Self {
        let fixed = connection_prefix(conn_id, cfg.server);
        let full = cfg.full_extranonce_len.clamp(PREFIX_LEN, 32);
        // `fixed` is 4 bytes and PREFIX_LEN 6 <= full <= 32: always valid
        let prefixes = PrefixAllocator::new(&fixed, PREFIX_LEN, full)
            .or_else(|_| PrefixAllocator::new(&fixed, PREFIX_LEN, PREFIX_LEN))
            .expect("a 6-byte prefix over a 4-byte fixed part fits any extranonce");
        Session {
            conn_id,
            cfg,
            state: State::AwaitSetup,
            requires_standard_jobs: false,
            work_selection: false,
            worker_tlv: false,
            channels: Channels::new(),
            meta: HashMap::new(),
            group_id: None,
            next_channel_id: 1,
            prefixes,
            jobs: HashMap::new(),
            work: None,
        }
    }

    /// The connection id.
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// Open channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Whether `SetupConnection` succeeded.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the session ended (a `Close` event was emitted).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn close(&mut self, out: &mut Vec<Event>, reason: String) {
        self.state = State::Closed;
        out.push(Event::Close(reason));
    }

    /// Handles one message from the miner; `tlvs` is the frame's TLV tail (extension
    /// 0x0002's user identity on `SubmitSharesExtended`).
    pub fn on_message(&mut self, msg: Message, tlvs: &[u8], now: Now, out: &mut Vec<Event>) {
        if self.state == State::Closed {
            return;
        }
        let name = msg.name();
        match (self.state, msg) {
            (State::AwaitSetup, Message::Common(CommonMessage::SetupConnection(s))) => {
                self.on_setup(&s, out)
            }
            (State::AwaitSetup, _) => {
                self.close(out, format!("{name} before SetupConnection"));
            }
            (State::Ready, Message::Common(CommonMessage::SetupConnection(_))) => {
                self.close(out, "second SetupConnection".into());
            }
            (State::Ready, Message::Extensions(ExtensionsMessage::RequestExtensions(r))) => {
                self.on_request_extensions(&r, out)
            }
            (State::Ready, Message::Mining(mm)) => self.on_mining(mm, tlvs, now, out),
            (State::Ready, _) => {
                self.close(out, format!("unexpected {name} from a miner"));
            }
            (State::Closed, _) => {}
        }
    }

    fn on_setup(&mut self, s: &SetupConnection, out: &mut Vec<Event>) {
        let error = |flags: u32, code: &str| SetupConnectionError {
            flags,
            error_code: Str0_255::truncated(code),
        };
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
            send(out, error(unsupported, ERROR_UNSUPPORTED_FEATURE_FLAGS));
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

    fn on_request_extensions(&mut self, r: &RequestExtensions, out: &mut Vec<Event>) {
        let supported: Vec<u16> = r
            .requested_extensions
            .iter()
            .copied()
            .filter(|&e| e == EXTENSION_WORKER_HASHRATE)
            .collect();
        self.worker_tlv = !supported.is_empty();
        let n = supported.len();
        send(
            out,
            RequestExtensionsSuccess {
                request_id: r.request_id,
                // at most one element: always fits
                supported_extensions: supported.try_into().unwrap_or_default(),
            },
        );
        tracing::debug!(conn = self.conn_id, supported = n, "extensions negotiated");
    }

    fn on_mining(&mut self, mm: MiningMessage, tlvs: &[u8], now: Now, out: &mut Vec<Event>) {
        match mm {
            MiningMessage::OpenStandardMiningChannel(o) => self.open_standard(&o, now, out),
            MiningMessage::OpenExtendedMiningChannel(o) => self.open_extended(&o, now, out),
            MiningMessage::SubmitSharesStandard(s) => self.submit_standard(&s, now, out),
            MiningMessage::SubmitSharesExtended(s) => self.submit_extended(&s, tlvs, now, out),
            MiningMessage::UpdateChannel(u) => self.update_channel(&u, now, out),
            MiningMessage::CloseChannel(c) => self.close_channel(&c),
            MiningMessage::SetCustomMiningJob(j) if self.work_selection => {
                out.push(Event::CustomJob(Box::new(j)))
            }
            MiningMessage::SetCustomMiningJob(j) => self.refuse_custom_job(&j, out),
            other => {
                let name = other.name();
                self.close(out, format!("unexpected {name} from a miner"));
            }
        }
    }

    fn refuse_custom_job(&mut self, j: &SetCustomMiningJob, out: &mut Vec<Event>) {
        send(
            out,
            SetCustomMiningJobError {
                channel_id: j.channel_id,
                request_id: j.request_id,
                error_code: Str0_255::truncated(m::ERROR_JD_NOT_SUPPORTED),
            },
        );
    }

    /// Checks an open request; returns the initial vardiff (target within max_target) or the
    /// `OpenMiningChannel.Error` code.
    fn admit(
        &self,
        user: &str,
        hashrate: f32,
        max_target: &U256,
        now: Now,
    ) -> Result<(Vardiff, Option<ScriptBuf>), &'static str> {
        if self.channels.len() >= self.cfg.max_channels {
            return Err(m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
        }
        // PPLNS takes any identity, an empty one too (SRI's mining_device sends one): one
        // that is no address is paid to the pool; solo needs an address
        let payout = if self.cfg.solo {
            Some(
                payout::payout_script(user, self.cfg.network)
                    .ok_or(m::ERROR_INVALID_USER_IDENTITY)?,
            )
        } else {
            None
        };
        if !(hashrate.is_finite() && hashrate >= 0.0) {
            return Err(m::ERROR_INVALID_NOMINAL_HASHRATE);
        }
        let max = Target::from_le_bytes(max_target.0);
        if max == Target::ZERO {
            return Err(m::ERROR_MAX_TARGET_OUT_OF_RANGE);
        }
        let mut vd = Vardiff::from_hashrate(self.cfg.vardiff, f64::from(hashrate), now.mono)
            .map_err(|_| m::ERROR_INVALID_NOMINAL_HASHRATE)?;
        vd.set_max_target(max, now.mono);
        if vd.target() > max {
            return Err(m::ERROR_MAX_TARGET_OUT_OF_RANGE);
        }
        Ok((vd, payout))
    }

    fn alloc_channel_id(&mut self) -> u32 {
        let id = self.next_channel_id;
        self.next_channel_id = self.next_channel_id.wrapping_add(1).max(1);
        id
    }

    fn open_standard(&mut self, o: &OpenStandardMiningChannel, now: Now, out: &mut Vec<Event>) {
        let user = o.user_identity.as_str();
        let refuse = |out: &mut Vec<Event>, code: &str| {
            send(
                out,
                OpenMiningChannelError {
                    request_id: o.request_id,
                    error_code: Str0_255::truncated(code),
                },
            )
        };
        let (vardiff, payout) = match self.admit(user, o.nominal_hash_rate, &o.max_target, now) {
            Ok(v) => v,
            Err(code) => return refuse(out, code),
        };
        let Ok(prefix) = self.prefixes.allocate() else {
            return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
        };
        let prefix_bytes = self.prefixes.standard_prefix(prefix.id);
        let id = self.alloc_channel_id();
        let target = vardiff.target();
        let channel = match Channel::new_standard(
            id,
            prefix_bytes.as_slice(),
            target,
            self.cfg.channel,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(conn = self.conn_id, error = %e, "cannot open a standard channel");
                let _ = self.prefixes.release(prefix.id);
                return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
            }
        };
        let _ = self.channels.insert(channel);
        let group_id = match self.group_id {
            Some(g) => g,
            None => {
                let g = self.alloc_channel_id();
                let _ = self.channels.create_group(g, Some(prefix_bytes.len()));
                self.group_id = Some(g);
                g
            }
        };
        let _ = self.channels.add_to_group(group_id, id);
        self.meta.insert(
            id,
            Meta {
                worker: user.to_string(),
                prefix: prefix.id,
                vardiff,
                standard: true,
                payout,
            },
        );
        send(
            out,
            OpenStandardMiningChannelSuccess {
                request_id: o.request_id,
                channel_id: id,
                target: U256(target.to_le_bytes()),
                extranonce_prefix: prefix_bytes.to_b0_32(),
                group_channel_id: group_id,
            },
        );
        tracing::info!(
            conn = self.conn_id,
            channel = id,
            worker = user,
            "standard channel opened"
        );
        if let Some(work) = self.work.clone() {
            self.first_job(id, &work, now, out);
        }
    }

    fn open_extended(&mut self, o: &OpenExtendedMiningChannel, now: Now, out: &mut Vec<Event>) {
        let user = o.user_identity.as_str();
        let refuse = |out: &mut Vec<Event>, code: &str| {
            send(
                out,
                OpenMiningChannelError {
                    request_id: o.request_id,
                    error_code: Str0_255::truncated(code),
                },
            )
        };
        let (vardiff, payout) = match self.admit(user, o.nominal_hash_rate, &o.max_target, now) {
            Ok(v) => v,
            Err(code) => return refuse(out, code),
        };
        let Ok(size) = self.prefixes.extranonce_size_for(o.min_extranonce_size) else {
            return refuse(out, m::ERROR_MIN_EXTRANONCE_SIZE_TOO_LARGE);
        };
        let Ok(prefix) = self.prefixes.allocate() else {
            return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
        };
        let prefix_bytes = self.prefixes.prefix(prefix.id);
        let id = self.alloc_channel_id();
        let target = vardiff.target();
        let channel = match Channel::new_extended(
            id,
            prefix_bytes.as_slice(),
            size as u8,
            target,
            self.cfg.channel,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(conn = self.conn_id, error = %e, "cannot open an extended channel");
                let _ = self.prefixes.release(prefix.id);
                return refuse(out, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED);
            }
        };
        let _ = self.channels.insert(channel);
        self.meta.insert(
            id,
            Meta {
                worker: user.to_string(),
                prefix: prefix.id,
                vardiff,
                standard: false,
                payout,
            },
        );
        send(
            out,
            OpenExtendedMiningChannelSuccess {
                request_id: o.request_id,
                channel_id: id,
                target: U256(target.to_le_bytes()),
                extranonce_size: size,
                extranonce_prefix: prefix_bytes.to_b0_32(),
                group_channel_id: 0,
            },
        );
        tracing::info!(
            conn = self.conn_id,
            channel = id,
            worker = user,
            extranonce_size = size,
            "extended channel opened"
        );
        if let Some(work) = self.work.clone() {
            self.first_job(id, &work, now, out);
        }
    }

    fn update_channel(&mut self, u: &UpdateChannel, now: Now, out: &mut Vec<Event>) {
        let refuse = |out: &mut Vec<Event>, code: &str| {
            send(
                out,
                UpdateChannelError {
                    channel_id: u.channel_id,
                    error_code: Str0_255::truncated(code),
                },
            )
        };
        let Some(meta) = self.meta.get_mut(&u.channel_id) else {
            return refuse(out, m::ERROR_INVALID_CHANNEL_ID);
        };
        let max = Target::from_le_bytes(u.maximum_target.0);
        if max == Target::ZERO {
            return refuse(out, m::ERROR_MAX_TARGET_OUT_OF_RANGE);
        }
        let h = u.nominal_hash_rate;
        let Ok(mut vd) = Vardiff::from_hashrate(self.cfg.vardiff, f64::from(h), now.mono)
            .map_err(|_| ())
            .and_then(|v| (h.is_finite() && h >= 0.0).then_some(v).ok_or(()))
        else {
            return refuse(out, m::ERROR_INVALID_NOMINAL_HASHRATE);
        };
        vd.set_max_target(max, now.mono);
        let target = vd.target().min(max);
        meta.vardiff = vd;
        if let Some(c) = self.channels.get_mut(u.channel_id) {
            if c.target() != target && c.set_target(target).is_ok() {
                send(
                    out,
                    SetTarget {
                        channel_id: u.channel_id,
                        maximum_target: U256(target.to_le_bytes()),
                    },
                );
            }
        }
    }

    fn close_channel(&mut self, c: &CloseChannel) {
        for id in self.channels.close(c.channel_id) {
            if let Some(meta) = self.meta.remove(&id) {
                let _ = self.prefixes.release(meta.prefix);
            }
            self.jobs.retain(|&(cid, _), _| cid != id);
            tracing::info!(
                conn = self.conn_id,
                channel = id,
                reason = c.reason_code.as_str(),
                "channel closed by the miner"
            );
        }
    }

    // ---------------------------------------------------------------------------------------
    // jobs
    // ---------------------------------------------------------------------------------------

    fn split_for(&self, work: &Work, payout: Option<&ScriptBuf>, worker: &str) -> Arc<Split> {
        match (&work.payouts, payout) {
            (Payouts::Shared(s), _) => s.clone(),
            (Payouts::Solo, _) => Arc::new(payout::solo_split(
                work.template.coinbase_tx_value_remaining,
                worker,
                &self.cfg.pool_script,
                self.cfg.solo_fee_ppm,
                self.cfg.network,
            )),
        }
    }

    /// The coinbase of `work` paying `split` with room for `extranonce_len` bytes: the
    /// work's shared one when `split` is the work's shared split.
    fn coinbase(
        &self,
        work: &Work,
        split: &Arc<Split>,
        extranonce_len: usize,
    ) -> Option<Arc<Coinbase>> {
        let shared = matches!(&work.payouts, Payouts::Shared(s) if Arc::ptr_eq(s, split));
        if !shared {
            return self.build_coinbase(&work.template, split, extranonce_len);
        }
        if let Some((len, c)) = work.shared_coinbase.0.get() {
            if *len == extranonce_len {
                return Some(c.clone());
            }
            return self.build_coinbase(&work.template, split, extranonce_len);
        }
        let built = self.build_coinbase(&work.template, split, extranonce_len)?;
        let (len, c) = work
            .shared_coinbase
            .0
            .get_or_init(|| (extranonce_len, built.clone()));
        Some(if *len == extranonce_len {
            c.clone()
        } else {
            built
        })
    }

    fn build_coinbase(
        &self,
        t: &Template,
        split: &Split,
        extranonce_len: usize,
    ) -> Option<Arc<Coinbase>> {
        let params = CoinbaseParams {
            version: t.coinbase_tx_version,
            script_sig_prefix: t.coinbase_prefix.clone(),
            pool_tag: self.cfg.pool_tag.clone(),
            extranonce_len,
            sequence: t.coinbase_tx_input_sequence,
            pool_outputs: split.outputs.clone(),
            template_outputs: t.coinbase_tx_outputs.clone(),
            lock_time: t.coinbase_tx_locktime,
            witness_reserved_value: [0; 32],
        };
        match Coinbase::build(&params) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::error!(template = t.id, error = %e, "cannot build the coinbase");
                None
            }
        }
    }

    /// Whether the connection's standard channels get their jobs through the group.
    fn group_jobs(&self) -> bool {
        !self.requires_standard_jobs && !self.cfg.solo
    }

    /// Sends `work` to one new channel: a future job and the `SetNewPrevHash` activating it.
    fn first_job(&mut self, channel_id: u32, work: &Arc<Work>, now: Now, out: &mut Vec<Event>) {
        if let Some(job_id) = self.channel_job(channel_id, work, None, out) {
            self.prev_hash(channel_id, job_id, work, now, out);
        }
    }

    /// Builds and records a job for one channel; `min_ntime` None = future job.
    fn channel_job(
        &mut self,
        channel_id: u32,
        work: &Arc<Work>,
        min_ntime: Option<u32>,
        out: &mut Vec<Event>,
    ) -> Option<u32> {
        let t = &work.template;
        let meta = self.meta.get(&channel_id)?;
        let split = self.split_for(work, meta.payout.as_ref(), &meta.worker);
        let ch = self.channels.get(channel_id)?;
        let prefix = ch.extranonce_prefix().to_vec();
        let full = ch.full_extranonce_size();
        let coinbase = self.coinbase(work, &split, full)?;
        let job_id = self.channels.next_job_id(channel_id).ok()?;
        let msg: Message = if meta.standard {
            let txid = coinbase.txid(&[&prefix]).ok()?;
            let root = merkle_root_from_path(txid, t.merkle_path.iter());
            let job = NewMiningJob {
                channel_id,
                job_id,
                min_ntime,
                version: t.version,
                merkle_root: U256(root),
            };
            if let Err(e) = self.channels.on_new_mining_job(&job) {
                tracing::error!(conn = self.conn_id, channel = channel_id, error = %e, "job refused by the channel");
                return None;
            }
            job.into()
        } else {
            let job = self.extended_job(channel_id, job_id, min_ntime, t, &coinbase)?;
            if let Err(e) = self.channels.on_new_extended_mining_job(&job) {
                tracing::error!(conn = self.conn_id, channel = channel_id, error = %e, "job refused by the channel");
                return None;
            }
            job.into()
        };
        self.jobs.insert(
            (channel_id, job_id),
            JobInfo {
                template: t.clone(),
                window: work.window,
                coinbase: JobCoinbase::Pool(coinbase),
                split,
            },
        );
        out.push(Event::Send(msg));
        Some(job_id)
    }

    fn extended_job(
        &self,
        channel_id: u32,
        job_id: u32,
        min_ntime: Option<u32>,
        t: &Template,
        coinbase: &Coinbase,
    ) -> Option<NewExtendedMiningJob> {
        Some(NewExtendedMiningJob {
            channel_id,
            job_id,
            min_ntime,
            version: t.version,
            version_rolling_allowed: true,
            merkle_path: t
                .merkle_path
                .iter()
                .map(|h| U256(*h))
                .collect::<Vec<_>>()
                .try_into()
                .ok()?,
            coinbase_tx_prefix: coinbase.prefix().to_vec().try_into().ok()?,
            coinbase_tx_suffix: coinbase.suffix().to_vec().try_into().ok()?,
        })
    }

    /// Builds and records the group job for the standard members.
    fn group_job(
        &mut self,
        group_id: u32,
        work: &Arc<Work>,
        min_ntime: Option<u32>,
        out: &mut Vec<Event>,
    ) -> Option<u32> {
        let t = &work.template;
        let split = self.split_for(work, None, "");
        let full = self.channels.group(group_id)?.full_extranonce_size()?;
        let coinbase = self.coinbase(work, &split, full)?;
        let job_id = self.channels.next_job_id(group_id).ok()?;
        let job = self.extended_job(group_id, job_id, min_ntime, t, &coinbase)?;
        if let Err(e) = self.channels.on_new_extended_mining_job(&job) {
            tracing::error!(conn = self.conn_id, group = group_id, error = %e, "group job refused");
            return None;
        }
        self.jobs.insert(
            (group_id, job_id),
            JobInfo {
                template: t.clone(),
                window: work.window,
                coinbase: JobCoinbase::Pool(coinbase),
                split,
            },
        );
        out.push(Event::Send(job.into()));
        Some(job_id)
    }

    fn prev_hash(&mut self, id: u32, job_id: u32, work: &Work, now: Now, out: &mut Vec<Event>) {
        let t = &work.template;
        let msg = SetNewPrevHash {
            channel_id: id,
            job_id,
            prev_hash: U256(t.prev_hash),
            min_ntime: t.min_ntime.max(now.unix_secs()),
            nbits: t.nbits,
        };
        match self.channels.on_set_new_prev_hash(&msg) {
            Ok(()) => out.push(Event::Send(msg.into())),
            Err(e) => {
                tracing::error!(conn = self.conn_id, channel = id, error = %e, "prevhash refused")
            }
        }
    }

    /// New work for every channel: on a new tip, future jobs and `SetNewPrevHash`; on the
    /// same tip, jobs active at once.
    pub fn on_work(&mut self, work: Arc<Work>, now: Now, out: &mut Vec<Event>) {
        let new_tip = self
            .work
            .as_ref()
            .is_none_or(|w| w.template.prev_hash != work.template.prev_hash);
        self.work = Some(work.clone());
        if self.state != State::Ready || self.channels.is_empty() {
            return;
        }
        if new_tip {
            let tip = work.template.prev_hash;
            self.jobs.retain(|_, j| j.template.prev_hash == tip);
        }
        let min_ntime = (!new_tip).then(|| {
            let prev = self
                .channels
                .iter()
                .filter_map(|c| c.prev_hash().map(|p| p.min_ntime))
                .max()
                .unwrap_or(0);
            work.template.min_ntime.max(now.unix_secs()).max(prev)
        });
        let mut ids: Vec<u32> = self.meta.keys().copied().collect();
        ids.sort_unstable();
        let group = self.group_id.filter(|g| {
            self.group_jobs()
                && self
                    .channels
                    .group(*g)
                    .is_some_and(|g| !g.members().is_empty())
        });
        if let Some(g) = group {
            if let Some(job_id) = self.group_job(g, &work, min_ntime, out) {
                if new_tip {
                    self.prev_hash(g, job_id, &work, now, out);
                }
            }
        }
        for id in ids {
            let standard = self.meta.get(&id).is_some_and(|m| m.standard);
            if standard && group.is_some() {
                continue;
            }
            if let Some(job_id) = self.channel_job(id, &work, min_ntime, out) {
                if new_tip {
                    self.prev_hash(id, job_id, &work, now, out);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // shares
    // ---------------------------------------------------------------------------------------

    fn submit_standard(&mut self, s: &SubmitSharesStandard, now: Now, out: &mut Vec<Event>) {
        let verdict = self.channels.validate_standard(s, now.unix_ms);
        self.after_validation(s.channel_id, s.sequence_number, verdict, None, now, out);
    }

    fn submit_extended(
        &mut self,
        s: &SubmitSharesExtended,
        tlvs: &[u8],
        now: Now,
        out: &mut Vec<Event>,
    ) {
        let worker = if self.worker_tlv && !tlvs.is_empty() {
            match strata_protocol::tlv::find(
                tlvs,
                EXTENSION_WORKER_HASHRATE,
                FIELD_TYPE_USER_IDENTITY,
            ) {
                Ok(Some(t)) => std::str::from_utf8(t.value()).ok().map(str::to_string),
                Ok(None) => None,
                Err(e) => {
                    return self.close(out, format!("malformed TLVs on SubmitSharesExtended: {e}"));
                }
            }
        } else {
            None
        };
        let verdict = self.channels.validate_extended(s, now.unix_ms);
        self.after_validation(s.channel_id, s.sequence_number, verdict, worker, now, out);
    }

    fn after_validation(
        &mut self,
        channel_id: u32,
        sequence_number: u32,
        verdict: Result<AcceptedShare, Rejection>,
        tlv_worker: Option<String>,
        now: Now,
        out: &mut Vec<Event>,
    ) {
        let Some(meta) = self.meta.get_mut(&channel_id) else {
            // unknown channel: validation said so
            if let Err(r) = verdict {
                send(out, r.to_message(channel_id, sequence_number));
                out.push(Event::Rejected {
                    worker: String::new(),
                    code: r.error_code(),
                });
            }
            return;
        };
        let share = match verdict {
            Ok(s) => s,
            Err(r) => {
                send(out, r.to_message(channel_id, sequence_number));
                out.push(Event::Rejected {
                    worker: meta.worker.clone(),
                    code: r.error_code(),
                });
                return;
            }
        };
        let job_target = Target::from_difficulty(share.difficulty).unwrap_or(Target::MAX);
        meta.vardiff.on_share(now.mono, &job_target);
        let worker = match tlv_worker {
            Some(w) if !w.is_empty() => format!("{}/{}", meta.worker, w),
            _ => meta.worker.clone(),
        };
        // PPLNS pays the channel's identity, never a proxy's worker label
        let channel_identity = meta.worker.clone();
        let height = self
            .jobs
            .get(&(channel_id, share.job_id))
            .or_else(|| {
                self.channels
                    .get(channel_id)
                    .and_then(|c| c.group_id())
                    .and_then(|g| self.jobs.get(&(g, share.job_id)))
            })
            .map_or(0, |j| j.template.height);
        if let Some(block) = share.is_block.as_deref() {
            if let Some(found) = self.found_block(block, &worker) {
                out.push(Event::Block(Box::new(found)));
            }
        }
        out.push(Event::Accepted(Box::new((
            ShareRecord {
                worker,
                channel_identity,
                connection_id: self.conn_id,
                channel_id,
                job_id: share.job_id,
                sequence_number,
                height,
                difficulty: share.difficulty,
                hash: share.hash,
                time_ms: now.unix_ms,
                block: share.is_block.is_some(),
            },
            PendingAck {
                channel_id,
                sequence_number,
                difficulty: share.difficulty,
            },
        ))));
    }

    fn found_block(&self, b: &BlockCandidate, worker: &str) -> Option<FoundBlock> {
        let ch = self.channels.get(b.channel_id)?;
        let job = self
            .jobs
            .get(&(b.channel_id, b.job_id))
            .or_else(|| ch.group_id().and_then(|g| self.jobs.get(&(g, b.job_id))));
        let Some(job) = job else {
            tracing::error!(
                channel = b.channel_id,
                job = b.job_id,
                "block candidate for a job without a coinbase"
            );
            return None;
        };
        let extranonce: Vec<u8> = match &b.coinbase {
            Some(parts) => parts.extranonce.as_slice().to_vec(),
            None => ch.extranonce_prefix().to_vec(),
        };
        let (coinbase, block) = match &job.coinbase {
            JobCoinbase::Pool(c) => {
                let mut coinbase = Vec::new();
                if let Err(e) = c.write_full(&[&extranonce], &mut coinbase) {
                    tracing::error!(error = %e, "cannot assemble the block's coinbase");
                    return None;
                }
                (coinbase, None)
            }
            JobCoinbase::Custom(d) => {
                let coinbase = match d.coinbase.with_extranonce(&extranonce) {
                    Ok(tx) => bitcoin::consensus::serialize(&tx),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot assemble a custom job's coinbase");
                        return None;
                    }
                };
                let txs: Vec<Vec<u8>> = d
                    .transactions
                    .iter()
                    .map(|t| bitcoin::consensus::serialize(&**t))
                    .collect();
                let block = b.assemble(&coinbase, &txs);
                (coinbase, Some(block))
            }
        };
        let mut display = b.hash;
        display.reverse();
        Some(FoundBlock {
            solution: Solution {
                template_id: job.template.id,
                header: b.header.to_bytes(),
                coinbase,
            },
            height: job.template.height,
            hash: hex::encode(display),
            prev_hash: job.template.prev_hash,
            worker: worker.to_string(),
            split: job.split.clone(),
            reward_sats: job.template.coinbase_tx_value_remaining,
            window: job.window,
            template_id: job.template.id,
            block,
        })
    }

    /// Shares committed to the ledger: acknowledges them with one `SubmitShares.Success` per
    /// channel (shares of closed channels are dropped silently: the miner left).
    pub fn on_committed(&mut self, acks: &[PendingAck], out: &mut Vec<Event>) {
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

    /// Shares the ledger failed to commit: they are not acknowledged; the miner is told with
    /// `SubmitShares.Error` so it does not count them.
    pub fn on_commit_failed(&mut self, acks: &[PendingAck], out: &mut Vec<Event>) {
        if self.state == State::Closed {
            return;
        }
        for a in acks {
            send(
                out,
                strata_protocol::mining::SubmitSharesError {
                    channel_id: a.channel_id,
                    sequence_number: a.sequence_number,
                    error_code: Str0_255::truncated("internal-error"),
                },
            );
        }
    }

    /// Periodic work: vardiff retargets (`SetTarget`) and hashrate estimates.
    pub fn on_tick(&mut self, now: Now, out: &mut Vec<Event>) {
        if self.state == State::Closed {
            return;
        }
        let mut ids: Vec<u32> = self.meta.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(meta) = self.meta.get_mut(&id) else {
                continue;
            };
            let new = meta.vardiff.tick(now.mono);
            out.push(Event::Hashrate {
                worker: meta.worker.clone(),
                hashrate: meta.vardiff.hashrate(now.mono),
            });
            let Some(new) = new else { continue };
            if let Some(c) = self.channels.get_mut(id) {
                let target = new.target.min(c.max_target());
                if c.set_target(target).is_ok() {
                    send(
                        out,
                        SetTarget {
                            channel_id: id,
                            maximum_target: U256(target.to_le_bytes()),
                        },
                    );
                }
            }
        }
    }

    /// Extranonce prefix of a channel (tests).
    pub fn extranonce_prefix(&self, channel_id: u32) -> Option<B0_32> {
        self.channels
            .get(channel_id)
            .and_then(|c| B0_32::new(c.extranonce_prefix()).ok())
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::*;

    #[test]
    fn cluster_servers_never_share_a_connection_prefix() {
        let one = ServerId::new(1);
        let two = ServerId::new(2);
        assert_eq!(connection_prefix(0x0102_0304, None), [1, 2, 3, 4]);
        assert_eq!(connection_prefix(0x0102_0304, one), [1, 2, 3, 4]);
        assert_eq!(connection_prefix(0x0102_0304, two), [2, 2, 3, 4]);
        // the same connection number on two servers, and a server's ids past 2^24
        assert_ne!(connection_prefix(7, one), connection_prefix(7, two));
        assert_eq!(
            connection_prefix(7 + (1 << 24), two),
            connection_prefix(7, two)
        );
    }
}
