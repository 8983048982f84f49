//! The SV1 miner session, sans-IO: lines from the miner, the hub's answer to a join and the
//! upstream work go in, with the time; lines to send, hub requests and a close come out as
//! [`Sv1Action`]s. The tokio shell is [`super::sv1_conn`].
//!
//! ```text
//!  configure? ─ authorize? ─ subscribe ──Join──▶ hub ──on_slot──▶ ┐
//!                                                   (wait for work) ├─▶ subscribe answered
//!                                                       on_work ──▶ ┘   set_difficulty, notify
//!  on_work ──▶ notify (clean when the prevhash / epoch changed)
//!             set_extranonce + notify      (new extranonce1, miner subscribed to extranonce)
//!             client.reconnect + Close     (new extranonce1, miner did not subscribe)
//!  submit ──▶ local validation ──▶ true / [code, message, null]   (+ Forward when it meets
//!                                                                   the upstream target)
//!  on_tick ──▶ vardiff: set_difficulty + the current job again as a new notify (clean=false)
//!             Close when not subscribed and authorized within handshake_timeout
//! ```
//!
//! # Reports
//!
//! The shell sends [`Sv1Session::report`] to the hub every `report_interval`, and at once
//! whenever [`Sv1Session::take_early_report`] has one: when the miner starts mining (its
//! subscribe answered with the first difficulty and job; the hashrate is then the one that
//! difficulty implies) and when its vardiff window first holds [`ESTIMATE_MIN_SHARES`]
//! shares (the estimate takes over, see [`crate::hub::miner_hashrate`]). Both feed the
//! upstream channel's first `UpdateChannel`, which the pool needs within seconds of a
//! (re)start, not after a full interval.
//!
//! # Local validation
//!
//! The miner's `extranonce1` is its id in the upstream channel's extranonce space (the
//! hub's splitter); the upstream channel's own prefix is sent at the end of `coinbase1`. A
//! failover to a pool whose extranonce space has the same size therefore changes neither
//! `extranonce1` nor `extranonce2_size`: the miner keeps its connection and only gets clean
//! jobs.
//!
//! Each session keeps one client-side extended [`Channel`] of strata-work whose extranonce
//! prefix is the upstream prefix ‖ the miner's `extranonce1` and whose extranonce size is its
//! `extranonce2_size`,
//! fed with a `NewExtendedMiningJob` (and, for a clean job, a `SetNewPrevHash`) built from
//! every [`UpstreamWork`] under a session-local job id. A `mining.submit` becomes a
//! `SubmitSharesExtended` validated by [`validate_extended`]: unknown and stale jobs,
//! extranonce2 size, nTime window, version bits, target and duplicates are all strata-work's
//! checks. The channel is rebuilt when the epoch, the miner's extranonce or the version mask
//! changes; the ids of its jobs are then remembered as stale.
//!
//! # Wire choices
//!
//! * Job ids are the local job id in lower-case hex without leading zeros (`"1"`, `"2a"`),
//!   counting up from 1 and never reused within a session.
//! * Share errors: 21 job not found (unknown job, stale job, no upstream), 22 duplicate,
//!   23 low difficulty, 24 unauthorized worker, 25 not subscribed, 20 anything else (version
//!   bits, nTime, extranonce2 size, malformed parameters). Unknown methods get JSON-RPC
//!   -32601, malformed parameters -32602, unparseable lines -32700 with id `null`.
//! * Every request is answered with its id echoed verbatim, `null` included.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_protocol::mining::{NewExtendedMiningJob, SetNewPrevHash, SubmitSharesExtended};
use strata_protocol::{Seq0_255, B0_32, B0_64K, U256};
use strata_sv1::{
    extensions, negotiate_version_mask, ClientMessage, ClientMethod, Configure, ConfigureResult,
    Difficulty, Id, Notify, ParseError, Reconnect, Response, ServerMethod, SetExtranonce,
    StratumError, Submit, SubscribeResult, Text, VERSION_MASK_BIP320,
};
use strata_work::channel::{Channel, ChannelConfig};
use strata_work::extranonce::MinerId;
use strata_work::share::{validate_extended, Rejection};
use strata_work::target::Target;
use strata_work::vardiff::{Vardiff, VardiffConfig, VardiffError};

use crate::hub::{miner_hashrate, JoinError, MinerReport, Slot, ESTIMATE_MIN_SHARES};
use crate::work::{ForwardShare, RejectReason, UpstreamWork};

mod jobs;
mod shares;

use jobs::upstream_mask;
pub use shares::{reject_code, reject_reason};

/// The channel id of the session's local channel (there is one per session).
const LOCAL_CHANNEL_ID: u32 = 1;

/// Most worker names one connection may authorize.
const MAX_WORKERS: usize = 16;

/// Longest worker name or user agent kept, in bytes.
const MAX_NAME_LEN: usize = 256;

/// Settings of the SV1 downstream; [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Sv1Config {
    /// Per-miner vardiff (default: [`VardiffConfig::default`] with 6 shares per minute and
    /// `power_of_two: false`; set `power_of_two` for firmware that wants integer power-of-two
    /// difficulties).
    pub vardiff: VardiffConfig,
    /// The difficulty a miner starts at (default 1024), unless it suggests one.
    pub initial_difficulty: f64,
    /// Jobs kept per miner; a share for an older job gets "job not found" (default 8).
    pub max_jobs: usize,
    /// Version bits the proxy lets miners roll; the negotiated mask is the miner's request ∩
    /// this ∩ the upstream's mask (default BIP320 `0x1fffe000`).
    pub version_mask: u32,
    /// Longest line accepted from a miner, in bytes; a longer one closes that miner (default
    /// 4096).
    pub max_line_len: usize,
    /// A miner that sends nothing for this long is closed (default 10 minutes).
    pub idle_timeout: Duration,
    /// A connection that has not both subscribed and authorized this long after it was
    /// opened is closed (default 30 s): port scanners, connections that send nothing or
    /// garbage. Such a connection never holds a miner slot (slots are taken at subscribe).
    pub handshake_timeout: Duration,
    /// Unparseable lines tolerated per connection; the next one closes it (default 16).
    pub max_malformed_lines: u32,
    /// A write that does not complete in this time (a miner that never reads) closes the
    /// miner (default 30 s).
    pub write_timeout: Duration,
    /// How often a miner's figures go to the hub (default 10 s); besides, they go at once
    /// when it starts mining and when its hashrate estimate first rests on enough shares
    /// ([`Sv1Session::take_early_report`]).
    pub report_interval: Duration,
}

impl Default for Sv1Config {
    fn default() -> Self {
        Sv1Config {
            vardiff: VardiffConfig {
                shares_per_minute: 6.0,
                power_of_two: false,
                ..VardiffConfig::default()
            },
            initial_difficulty: 1024.0,
            max_jobs: 8,
            version_mask: VERSION_MASK_BIP320,
            max_line_len: 4096,
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(30),
            max_malformed_lines: 16,
            write_timeout: Duration::from_secs(30),
            report_interval: Duration::from_secs(10),
        }
    }
}

impl Sv1Config {
    /// The sessions' configuration for the `[sv1]` settings (the rest at the defaults above),
    /// reporting every `report_interval`: what the proxy runs its SV1 miners with.
    pub fn from_settings(s: &crate::config::Sv1Settings, report_interval: Duration) -> Self {
        let defaults = Sv1Config::default();
        Sv1Config {
            vardiff: VardiffConfig {
                shares_per_minute: s.shares_per_minute,
                min_difficulty: s.min_difficulty,
                max_difficulty: s.max_difficulty,
                power_of_two: s.power_of_two,
                ..defaults.vardiff
            },
            initial_difficulty: s.initial_difficulty,
            max_line_len: s.max_line_len,
            idle_timeout: Duration::from_secs(s.idle_timeout_secs.max(1)),
            handshake_timeout: Duration::from_secs(s.handshake_timeout_secs.max(1)),
            max_malformed_lines: s.max_malformed_lines,
            write_timeout: Duration::from_secs(s.write_timeout_secs.max(1)),
            report_interval,
            ..defaults
        }
    }
}

/// Why a session could not be created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Sv1Error {
    /// The vardiff settings or the initial difficulty are unusable.
    #[error("invalid vardiff configuration: {source}")]
    Vardiff {
        /// The vardiff error.
        #[source]
        source: VardiffError,
    },
}

pub use strata_work::time::Now;

/// What the session wants done, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Sv1Action {
    /// Send this JSON line (without its newline).
    Send(String),
    /// Ask the hub for a slot ([`crate::hub::HubRequest::Join`]) and pass the answer to
    /// [`Sv1Session::on_slot`].
    Join,
    /// Forward this share upstream ([`crate::hub::HubRequest::Share`]). It precedes the
    /// miner's `true`: a shell that cannot hand it to the hub must not send what follows.
    Forward(ForwardShare),
    /// Send what was queued, then close the connection.
    Close {
        /// Why (for logs).
        reason: String,
    },
}

/// Where the session stands with the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinState {
    /// Not subscribed yet.
    Idle,
    /// Join asked, no answer yet.
    Pending,
    /// The miner's id.
    Joined(MinerId),
    /// The hub refused (the session is closing).
    Refused,
}

/// BIP310 version rolling as negotiated.
#[derive(Debug, Clone, Copy)]
struct Rolling {
    /// The miner's requested mask ∩ the proxy's mask.
    mask: u32,
    /// The mask the miner was last told (configure answer or `mining.set_version_mask`).
    announced: u32,
}

/// One job sent to the miner.
#[derive(Debug, Clone, Copy)]
struct SentJob {
    local_id: u32,
    upstream_job_id: u32,
}

/// The mining state, from the subscribe answer on: the local channel and what it was built
/// for.
#[derive(Debug)]
struct Mining {
    channel: Channel,
    epoch: u64,
    extranonce1: Vec<u8>,
    /// Length of the upstream prefix at the start of `extranonce1`.
    upstream_prefix_len: usize,
    extranonce2_size: usize,
    /// The version mask of the channel's jobs.
    mask: u32,
    prev_hash: [u8; 32],
    nbits: u32,
    /// `min_ntime` of the current prevhash.
    prev_min_ntime: u32,
    /// `seq` of the last work turned into a job.
    last_seq: u64,
    /// Jobs of this channel, oldest first.
    jobs: VecDeque<SentJob>,
    /// The job the miner works on (re-sent at a retarget).
    current: Option<u32>,
    /// The share sequence number given to the channel (informational).
    sequence: u32,
}

impl Mining {
    /// The `extranonce1` the miner is told: its id bytes after the upstream prefix.
    fn visible_extranonce1(&self) -> &[u8] {
        self.extranonce1
            .get(self.upstream_prefix_len..)
            .unwrap_or_default()
    }
}

/// SV1 `coinbase1`: the job's coinbase prefix followed by the upstream channel's extranonce
/// prefix, so that `extranonce1` is only the miner's id and stays the same across pools with
/// extranonce spaces of one size (failover without reconnecting miners).
fn coinbase1(w: &UpstreamWork) -> Bytes {
    let mut c = Vec::with_capacity(w.coinbase_prefix.len() + w.extranonce_prefix.len());
    c.extend_from_slice(&w.coinbase_prefix);
    c.extend_from_slice(&w.extranonce_prefix);
    Bytes::from(c)
}

/// Counters of one miner.
#[derive(Debug, Clone, Default)]
struct Stats {
    accepted: u64,
    accepted_work: f64,
    rejected: BTreeMap<RejectReason, u64>,
    stale: u64,
    last_share_ms: u64,
}

/// One SV1 miner connection's protocol state (see the module docs).
#[derive(Debug)]
pub struct Sv1Session {
    cfg: Arc<Sv1Config>,
    peer: SocketAddr,
    connected_ms: u64,
    /// When the connection was opened (the handshake timeout runs from here).
    connected_at: Instant,
    user_agent: String,
    workers: Vec<String>,
    /// A subscribe waiting for the slot or the first work.
    pending_subscribe: Option<Id>,
    join: JoinState,
    extranonce_subscribed: bool,
    rolling: Option<Rolling>,
    vardiff: Vardiff,
    work: Option<Arc<UpstreamWork>>,
    mining: Option<Mining>,
    next_job_id: u32,
    /// Ids of jobs of rebuilt channels (stale), oldest first.
    retired: VecDeque<u32>,
    stats: Stats,
    malformed: u32,
    closed: bool,
    /// The hub should have the miner's figures now (see [`Self::take_early_report`]).
    early_report: bool,
}

impl Sv1Session {
    /// A session for a miner connected from `peer` at `now`.
    pub fn new(cfg: Arc<Sv1Config>, peer: SocketAddr, now: Now) -> Result<Self, Sv1Error> {
        let vardiff = Vardiff::new(cfg.vardiff, cfg.initial_difficulty, now.mono)
            .map_err(|source| Sv1Error::Vardiff { source })?;
        Ok(Sv1Session {
            cfg,
            peer,
            connected_ms: now.unix_ms,
            connected_at: now.mono,
            user_agent: String::new(),
            workers: Vec::new(),
            pending_subscribe: None,
            join: JoinState::Idle,
            extranonce_subscribed: false,
            rolling: None,
            vardiff,
            work: None,
            mining: None,
            next_job_id: 1,
            retired: VecDeque::new(),
            stats: Stats::default(),
            malformed: 0,
            closed: false,
            early_report: false,
        })
    }

    /// The miner's id once the hub gave it a slot.
    pub fn miner(&self) -> Option<MinerId> {
        match self.join {
            JoinState::Joined(m) => Some(m),
            _ => None,
        }
    }

    /// The current share difficulty.
    pub fn difficulty(&self) -> f64 {
        self.vardiff.difficulty()
    }

    /// The negotiated version-rolling mask in force (0 without rolling).
    pub fn version_mask(&self) -> u32 {
        self.mining
            .as_ref()
            .map_or_else(|| self.rolling.map_or(0, |r| r.announced), |m| m.mask)
    }

    /// Whether the session asked to be closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// When [`Self::on_tick`] next has something to consider (a vardiff check, or the
    /// handshake timeout).
    pub fn next_tick(&self) -> Instant {
        let check = self.vardiff.next_check();
        if self.handshaken() {
            check
        } else {
            check.min(self.connected_at + self.cfg.handshake_timeout)
        }
    }

    /// Whether the miner subscribed and authorized (a worker).
    fn handshaken(&self) -> bool {
        self.join != JoinState::Idle && !self.workers.is_empty()
    }

    /// The miner's figures for the hub (`None` before it has an id).
    pub fn report(&self, now: Now) -> Option<MinerReport> {
        let miner = self.miner()?;
        Some(MinerReport {
            miner,
            worker: self.workers.first().cloned().unwrap_or_default(),
            address: self.peer.to_string(),
            user_agent: self.user_agent.clone(),
            protocol: "sv1",
            difficulty: self.vardiff.difficulty(),
            hashrate: miner_hashrate(&self.vardiff, now.mono),
            accepted: self.stats.accepted,
            accepted_work: self.stats.accepted_work,
            rejected: self
                .stats
                .rejected
                .iter()
                .map(|(r, n)| (r.code().to_owned(), *n))
                .collect(),
            stale: self.stats.stale,
            last_share_ms: self.stats.last_share_ms,
            connected_since_ms: self.connected_ms,
            connected: !self.closed,
        })
    }

    /// The report the hub should get now rather than at the next `report_interval`, once:
    /// when the miner started mining, and when its vardiff window first holds
    /// [`ESTIMATE_MIN_SHARES`] shares (see the module docs). The shell sends it without
    /// dropping it when the hub is busy.
    pub fn take_early_report(&mut self, now: Now) -> Option<MinerReport> {
        if !std::mem::take(&mut self.early_report) {
            return None;
        }
        self.report(now)
    }

    /// Shares rejected for `reason` so far.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.stats.rejected.get(&reason).copied().unwrap_or(0)
    }

    /// Shares accepted so far.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted
    }

    /// The proxy is shutting down: tell the miner to reconnect (to the same address, where
    /// the proxy will be back or a peer takes over) and close.
    pub fn shutdown(&mut self, out: &mut Vec<Sv1Action>) {
        if self.closed {
            return;
        }
        send_method(out, ServerMethod::Reconnect(Reconnect::default()));
        self.close(out, "proxy shutting down");
    }

    fn close(&mut self, out: &mut Vec<Sv1Action>, reason: impl Into<String>) {
        self.closed = true;
        out.push(Sv1Action::Close {
            reason: reason.into(),
        });
    }

    // -----------------------------------------------------------------------------------------
    // lines from the miner
    // -----------------------------------------------------------------------------------------

    /// Handles one line from the miner (without its newline).
    pub fn handle_line(&mut self, line: &[u8], now: Now, out: &mut Vec<Sv1Action>) {
        if self.closed {
            return;
        }
        match ClientMessage::parse_slice(line) {
            Ok(ClientMessage::Request(req)) => self.on_request(req.id, req.method, now, out),
            Ok(ClientMessage::Response(r)) => {
                tracing::debug!(peer = %self.peer, id = %r.id, "response from a miner ignored");
            }
            Err(e) => self.on_malformed(e, out),
        }
    }

    fn on_malformed(&mut self, e: ParseError, out: &mut Vec<Sv1Action>) {
        if let ParseError::InvalidParams { id, method, .. } = &e {
            // the miner speaks the protocol; answer the request
            if *method == strata_sv1::methods::SUBMIT {
                self.count_reject(RejectReason::Malformed);
                respond_err(out, id.clone(), StratumError::OTHER, e.to_string());
            } else {
                respond_err(out, id.clone(), StratumError::INVALID_PARAMS, e.to_string());
            }
            return;
        }
        self.malformed += 1;
        tracing::debug!(peer = %self.peer, error = %e, count = self.malformed, "malformed line");
        respond_err(out, Id::Null, StratumError::PARSE_ERROR, e.to_string());
        if self.malformed > self.cfg.max_malformed_lines {
            self.close(out, format!("{} malformed lines", self.malformed));
        }
    }

    fn on_request(&mut self, id: Id, method: ClientMethod, now: Now, out: &mut Vec<Sv1Action>) {
        match method {
            ClientMethod::Submit(s) => self.on_submit(id, &s, now, out),
            ClientMethod::Subscribe(s) => {
                if let Some(ua) = s.user_agent {
                    self.user_agent = truncate(&ua, MAX_NAME_LEN);
                }
                self.pending_subscribe = Some(id);
                match self.join {
                    JoinState::Idle => {
                        self.join = JoinState::Pending;
                        out.push(Sv1Action::Join);
                    }
                    JoinState::Pending | JoinState::Refused => {}
                    JoinState::Joined(_) => {
                        // a second subscribe: answer it and restart the job stream
                        if self.mining.is_some() {
                            self.answer_subscribe(out);
                            if let Some(w) = self.work.clone() {
                                self.push_job(&w, true, out);
                            }
                        } else {
                            self.try_start(now, out);
                        }
                    }
                }
            }
            ClientMethod::Authorize(a) => {
                let user = truncate(&a.user, MAX_NAME_LEN);
                if !self.workers.contains(&user) {
                    if self.workers.len() >= MAX_WORKERS {
                        respond_err(
                            out,
                            id,
                            StratumError::UNAUTHORIZED,
                            "too many workers on one connection",
                        );
                        return;
                    }
                    self.workers.push(user);
                }
                respond(out, Response::bool(id, true));
            }
            ClientMethod::Configure(c) => self.on_configure(id, &c, now, out),
            ClientMethod::ExtranonceSubscribe => {
                self.extranonce_subscribed = true;
                respond(out, Response::bool(id, true));
            }
            ClientMethod::SuggestDifficulty(d) => {
                respond(out, Response::bool(id, true));
                self.vardiff.set_difficulty(d.get(), now.mono);
                self.apply_difficulty(out);
            }
            ClientMethod::Unknown { method, .. } => {
                tracing::debug!(peer = %self.peer, %method, "unknown method");
                respond(out, Response::error(id, StratumError::method_not_found()));
            }
            other => {
                tracing::debug!(peer = %self.peer, method = other.name(), "unsupported method");
                respond(out, Response::error(id, StratumError::method_not_found()));
            }
        }
    }

    fn on_configure(&mut self, id: Id, c: &Configure, now: Now, out: &mut Vec<Sv1Action>) {
        let mut result = ConfigureResult::default();
        if let Some((requested, min_bits)) = c.version_rolling() {
            let allowed =
                self.cfg.version_mask & self.work.as_deref().map_or(u32::MAX, upstream_mask);
            match negotiate_version_mask(requested, allowed, min_bits) {
                Some(mask) => {
                    self.rolling = Some(Rolling {
                        mask: requested & self.cfg.version_mask,
                        announced: mask,
                    });
                    result.version_rolling = Some(true);
                    result.version_rolling_mask = Some(mask);
                }
                None => {
                    self.rolling = None;
                    result.version_rolling = Some(false);
                }
            }
        }
        let mut min_difficulty = None;
        if c.requests(extensions::MINIMUM_DIFFICULTY) {
            min_difficulty = c.minimum_difficulty.map(Difficulty::get);
            result.minimum_difficulty = Some(min_difficulty.is_some());
        }
        if c.requests(extensions::SUBSCRIBE_EXTRANONCE) {
            self.extranonce_subscribed = true;
            result.subscribe_extranonce = Some(true);
        }
        respond(out, Response::configure(id, &result));
        if let Some(d) = min_difficulty {
            if let Ok(t) = Target::from_difficulty(d) {
                if self.vardiff.set_max_target(t, now.mono).is_some() {
                    self.apply_difficulty(out);
                }
            }
        }
        // a configure after the jobs started may change the mask of the channel
        if let Some(w) = self.work.clone() {
            if self.mining.is_some() {
                self.on_new_work(&w, out);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // hub and upstream
    // -----------------------------------------------------------------------------------------

    /// The hub's answer to [`Sv1Action::Join`].
    pub fn on_slot(&mut self, slot: Result<Slot, JoinError>, now: Now, out: &mut Vec<Sv1Action>) {
        if self.closed || self.join != JoinState::Pending {
            return;
        }
        match slot {
            Ok(s) => {
                self.join = JoinState::Joined(s.miner);
                self.try_start(now, out);
            }
            Err(e) => {
                self.join = JoinState::Refused;
                if let Some(id) = self.pending_subscribe.take() {
                    respond_err(out, id, StratumError::OTHER, e.to_string());
                }
                self.close(out, format!("join refused: {e}"));
            }
        }
    }

    /// New upstream work (`None`: no usable upstream; the miner stays, gets no jobs, and its
    /// shares are refused until work comes back).
    pub fn on_work(
        &mut self,
        work: Option<&Arc<UpstreamWork>>,
        now: Now,
        out: &mut Vec<Sv1Action>,
    ) {
        self.work = work.cloned();
        if self.closed {
            return;
        }
        let Some(w) = work else {
            return;
        };
        if self.mining.is_some() {
            self.on_new_work(w, out);
        } else {
            self.try_start(now, out);
        }
    }

    /// Vardiff and the handshake timeout: call at [`Self::next_tick`] or any time.
    pub fn on_tick(&mut self, now: Now, out: &mut Vec<Sv1Action>) {
        if self.closed {
            return;
        }
        if !self.handshaken()
            && now.mono.saturating_duration_since(self.connected_at) >= self.cfg.handshake_timeout
        {
            let reason = format!(
                "no subscribe and authorize within {:?}",
                self.cfg.handshake_timeout
            );
            return self.close(out, reason);
        }
        if let Some(nt) = self.vardiff.tick(now.mono) {
            tracing::debug!(peer = %self.peer, difficulty = nt.difficulty, "vardiff retarget");
            self.apply_difficulty(out);
        }
    }

    /// Answers a waiting subscribe once there is a slot and work, and starts the jobs.
    fn try_start(&mut self, now: Now, out: &mut Vec<Sv1Action>) {
        let (JoinState::Joined(miner), Some(w)) = (self.join, self.work.clone()) else {
            return;
        };
        if self.pending_subscribe.is_none() || self.mining.is_some() {
            return;
        }
        let Some(mining) = self.build_mining(&w, miner) else {
            if let Some(id) = self.pending_subscribe.take() {
                respond_err(out, id, StratumError::OTHER, "upstream extranonce unusable");
            }
            self.close(out, "upstream extranonce space unusable for sv1");
            return;
        };
        self.mining = Some(mining);
        // vardiff's first-share rule counts the silence from the first job, not from the
        // connection (a miner may take its time to subscribe)
        self.vardiff.restart_silence(now.mono);
        self.answer_subscribe(out);
        self.announce_mask(out);
        send_method(out, ServerMethod::SetDifficulty(self.wire_difficulty()));
        self.push_job(&w, true, out);
        // the hub learns of a new miner's hashrate now, for the channel's first UpdateChannel
        self.early_report = true;
    }

    fn answer_subscribe(&mut self, out: &mut Vec<Sv1Action>) {
        let (Some(id), Some(m), Some(miner)) = (
            self.pending_subscribe.take(),
            self.mining.as_ref(),
            self.miner(),
        ) else {
            return;
        };
        let result = SubscribeResult::new(
            Text::from(format!("{:08x}", miner.0)),
            Bytes::copy_from_slice(m.visible_extranonce1()),
            u32::try_from(m.extranonce2_size).unwrap_or(u32::MAX),
        );
        respond(out, Response::subscribe(id, &result));
    }

    /// Tells the miner the effective mask if it differs from what it was told.
    fn announce_mask(&mut self, out: &mut Vec<Sv1Action>) {
        let Some(mask) = self.mining.as_ref().map(|m| m.mask) else {
            return;
        };
        if let Some(r) = self.rolling.as_mut() {
            if r.announced != mask {
                r.announced = mask;
                send_method(out, ServerMethod::SetVersionMask(mask));
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn line_of(encode: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut buf = Vec::with_capacity(128);
    encode(&mut buf);
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn respond(out: &mut Vec<Sv1Action>, r: Response) {
    out.push(Sv1Action::Send(line_of(|b| r.encode(b))));
}

fn respond_err(out: &mut Vec<Sv1Action>, id: Id, code: i64, message: impl Into<String>) {
    respond(
        out,
        Response::error(id, StratumError::new(code, Text::from(message.into()))),
    );
}

fn send_method(out: &mut Vec<Sv1Action>, m: ServerMethod) {
    out.push(Sv1Action::Send(line_of(|b| m.encode(&Id::Null, b))));
}
