//! The JDC core: a synchronous state machine (see the [module docs](super)).
//!
//! ```text
//!            start ──▶ Waiting ──no custom job within startup_grace──▶ Solo
//!                        │                                              ▲  │
//!                        └─channel 0's first custom job accepted──▶ Pool ─┘  │
//!                                 ▲    (pool down, JDS down or refusing) │
//!                                 └──────── custom job accepted again ◀──┘
//! ```
//!
//! Each switch starts a new epoch of the hub (miners drop their jobs, stay connected).
//! Per upstream channel a pipeline takes the current template through a token, a
//! declaration and a custom job; [`Jdc::next_wake`] says when timers are due.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_protocol::common::{CommonMessage, SetupConnection, PROTOCOL_JOB_DECLARATION};
use strata_protocol::job_declaration::{self as jd, JobDeclarationMessage};
use strata_protocol::wire::{Str0_255, B0_255};
use strata_protocol::Message;
use strata_work::channel::ExtendedWork;
use strata_work::header::BIP320_VERSION_MASK;
use strata_work::target::Target;

use super::coinbase::{HeaderFields, JobCoinbase, SharedCoinbase};
use super::{Action, DeclareMode, Input, JdcConfig, NodeTemplate};
use crate::upstream::{ShareRoute, UpstreamCommand, UpstreamEvent, CODE_STALE_UPSTREAM};
use crate::work::{ForwardShare, UpstreamWork};

mod jds;
mod upstream;
mod work;

/// The URL the hub reports the JDC's solo upstream with (its pool index is the number of
/// pools, given to [`Jdc::new`]).
pub const SOLO_POOL: &str = "solo";

/// Where the miners' work comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing yet (start): waiting for the pool's first custom job or the grace period.
    Waiting,
    /// Custom jobs on the pool.
    Pool,
    /// The farm's node, paying the solo address.
    Solo,
}

/// The JDS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JdsState {
    /// Not connected; reconnect at this time.
    Down { retry_at: Instant },
    /// Connect asked for.
    Connecting { since: Instant },
    /// SetupConnection sent.
    AwaitSetup { since: Instant },
    /// Usable.
    Ready,
}

/// The active pool's side.
#[derive(Debug)]
struct PoolSide {
    epoch: u64,
    route: ShareRoute,
    pool: usize,
    url: String,
    chans: Vec<Option<PoolChan>>,
}

/// An open channel on the active pool.
#[derive(Debug, Clone)]
struct PoolChan {
    channel_id: u32,
    prefix: Bytes,
    size: u16,
    target: Target,
    version_mask: u32,
}

/// An unused token.
#[derive(Debug, Clone)]
struct Token {
    token: B0_255,
    outputs: Vec<bitcoin::TxOut>,
    at: Instant,
}

/// Where a channel's pipeline is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Nothing in flight.
    Idle,
    /// DeclareMiningJob sent.
    Declaring { request_id: u32, sent: Instant },
    /// SetCustomMiningJob sent.
    Setting { request_id: u32, sent: Instant },
    /// The template's custom job is set.
    Done,
}

/// One channel's pipeline on the pool.
#[derive(Debug)]
struct Pipe {
    /// The template in flight or done.
    template: Option<Arc<NodeTemplate>>,
    stage: Stage,
    /// The coinbase declared or set for it.
    coinbase: Option<SharedCoinbase>,
    /// The pool's job id once set.
    job_id: Option<u32>,
    /// Stale-tip retries used on this template.
    stale_tries: u32,
    /// Not before this (a stale-tip retry).
    retry_at: Option<Instant>,
}

impl Pipe {
    fn new() -> Self {
        Pipe {
            template: None,
            stage: Stage::Idle,
            coinbase: None,
            job_id: None,
            stale_tries: 0,
            retry_at: None,
        }
    }
}

/// A job the miners got, to recognise blocks among their shares.
#[derive(Debug, Clone)]
struct JobRecord {
    job_id: u32,
    template: Arc<NodeTemplate>,
    coinbase: SharedCoinbase,
    extranonce_prefix: Bytes,
}

/// The Job Declarator Client core.
#[derive(Debug)]
pub struct Jdc {
    cfg: JdcConfig,
    /// The hub's pool index of the solo upstream.
    solo_pool: usize,
    mode: Mode,
    hub_epoch: u64,
    /// The JDC's own share queue (handed to the hub per epoch).
    route: ShareRoute,
    /// Channels the hub wants.
    channels: usize,
    template: Option<Arc<NodeTemplate>>,
    jds: JdsState,
    jds_backoff: Duration,
    next_request: u32,
    tokens: VecDeque<Token>,
    token_requests: Vec<(u32, Instant)>,
    pool: Option<PoolSide>,
    /// Not before this after a refusal (backoff).
    pool_retry_at: Option<Instant>,
    pool_backoff: Duration,
    pipes: Vec<Pipe>,
    jobs: Vec<VecDeque<JobRecord>>,
    /// Last prev hash published per channel (solo: `clean`).
    last_tip: Vec<Option<[u8; 32]>>,
    /// At start: mine solo from this time on if the pool has no custom job by then.
    solo_at: Option<Instant>,
    last_failure: Option<String>,
    next_job_id: u32,
    seq: u64,
    /// A template on a new tip, and when it came (until its custom job is set on channel 0).
    new_tip: Option<([u8; 32], Instant)>,
    /// DeclareMiningJob round trips (µs).
    declare_rtt: hdrhistogram::Histogram<u64>,
    /// New tip to custom job (µs).
    tip_to_job: hdrhistogram::Histogram<u64>,
}

/// Latencies in microseconds, 1 µs to an hour.
fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 2)
        .expect("constant bounds are valid")
}

fn record(h: &mut hdrhistogram::Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
}

impl Jdc {
    /// A core started at `now`. `route` is the JDC's share queue; `solo_pool` the pool
    /// index the hub reports the solo upstream with (the number of pools).
    pub fn new(cfg: JdcConfig, route: ShareRoute, solo_pool: usize, now: Instant) -> Self {
        Jdc {
            solo_at: Some(now + cfg.startup_grace),
            jds_backoff: cfg.retry_min,
            pool_backoff: cfg.retry_min,
            cfg,
            solo_pool,
            mode: Mode::Waiting,
            hub_epoch: 0,
            route,
            channels: 1,
            template: None,
            jds: JdsState::Down { retry_at: now },
            next_request: 1,
            tokens: VecDeque::new(),
            token_requests: Vec::new(),
            pool: None,
            pool_retry_at: None,
            pipes: vec![Pipe::new()],
            jobs: vec![VecDeque::new()],
            last_tip: vec![None],
            last_failure: None,
            next_job_id: 1,
            seq: 0,
            new_tip: None,
            declare_rtt: histogram(),
            tip_to_job: histogram(),
        }
    }

    /// Its mode, latencies and last failure.
    pub fn stats(&self) -> super::JdcStats {
        super::JdcStats {
            mode: Some(self.mode),
            declare_round_trip: super::Latency::of(&self.declare_rtt),
            tip_to_custom_job: super::Latency::of(&self.tip_to_job),
            last_failure: self.last_failure.clone(),
        }
    }

    /// Where the miners' work comes from now.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Why the pool was last given up (JDS or pool failure, refusal), if ever.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Unused tokens held.
    pub fn tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Handles one input at `now`; the actions go to `out`.
    pub fn handle(&mut self, input: Input, now: Instant, out: &mut Vec<Action>) {
        match input {
            Input::Template(t) => self.on_template(t, now, out),
            Input::JdsConnected => self.on_jds_connected(now, out),
            Input::JdsMessage(m) => self.on_jds_message(m, now, out),
            Input::JdsDown(reason) => {
                if !matches!(self.jds, JdsState::Down { .. }) {
                    self.jds_failed(format!("JDS connection lost: {reason}"), now, out);
                }
            }
            Input::Upstream(ev) => self.on_upstream(ev, now, out),
            Input::Command(c) => self.on_command(c, now, out),
            Input::Share(s) => self.on_share(s, out),
        }
        self.advance(now, out);
    }

    /// Timers due at `now`.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.advance(now, out);
    }

    /// When [`on_timer`](Self::on_timer) is next due (`None`: no timer).
    pub fn next_wake(&self) -> Option<Instant> {
        let mut at: Vec<Instant> = Vec::new();
        match self.jds {
            JdsState::Down { retry_at } => at.push(retry_at),
            JdsState::Connecting { since } | JdsState::AwaitSetup { since } => {
                at.push(since + self.cfg.answer_timeout)
            }
            JdsState::Ready => {}
        }
        if self.mode == Mode::Waiting && self.template.is_some() {
            // (without a template there is nothing to mine solo: the template wakes it)
            at.extend(self.solo_at);
        }
        at.extend(self.pool_retry_at);
        at.extend(self.tokens.front().map(|t| t.at + self.cfg.token_max_age));
        at.extend(
            self.token_requests
                .iter()
                .map(|(_, t)| *t + self.cfg.answer_timeout),
        );
        for p in &self.pipes {
            at.extend(p.retry_at);
            if let Stage::Declaring { sent, .. } | Stage::Setting { sent, .. } = p.stage {
                at.push(sent + self.cfg.answer_timeout);
            }
        }
        at.into_iter().min()
    }

    fn request_id(&mut self) -> u32 {
        let id = self.next_request;
        self.next_request = self.next_request.wrapping_add(1).max(1);
        id
    }

    fn on_template(&mut self, t: Arc<NodeTemplate>, now: Instant, out: &mut Vec<Action>) {
        let tip = t.template.prev_hash;
        if self.template.as_ref().map(|o| o.template.prev_hash) != Some(tip) {
            // measured only while on the pool's custom jobs: a return from solo mining or the
            // first job after start is the pool's reconnection, not a tip's way to the miners
            self.new_tip = (self.mode == Mode::Pool).then_some((tip, now));
        }
        tracing::debug!(
            id = t.template.id,
            height = t.template.height,
            txs = t.template.tx_count,
            "JDC template"
        );
        self.template = Some(t);
        for p in &mut self.pipes {
            p.stale_tries = 0;
            p.retry_at = None;
        }
        if self.mode == Mode::Solo {
            for c in 0..self.channels {
                self.publish_solo(c, out);
            }
        }
    }

    /// Makes progress: JDS reconnects, tokens, declarations, timeouts, the solo decision.
    fn advance(&mut self, now: Instant, out: &mut Vec<Action>) {
        // timeouts first: a silent JDS or pool is a failure
        match self.jds {
            JdsState::Down { retry_at } if retry_at <= now => {
                self.jds = JdsState::Connecting { since: now };
                out.push(Action::ConnectJds);
            }
            JdsState::Connecting { since } | JdsState::AwaitSetup { since }
                if since + self.cfg.answer_timeout <= now =>
            {
                self.jds_failed(
                    "the JDS did not complete its setup in time".into(),
                    now,
                    out,
                );
            }
            _ => {}
        }
        if self
            .token_requests
            .iter()
            .any(|(_, t)| *t + self.cfg.answer_timeout <= now)
        {
            self.jds_failed(
                "the JDS did not answer AllocateMiningJobToken in time".into(),
                now,
                out,
            );
        }
        let late = self.pipes.iter().position(|p| {
            matches!(p.stage, Stage::Declaring { sent, .. } | Stage::Setting { sent, .. }
                if sent + self.cfg.answer_timeout <= now)
        });
        if let Some(c) = late {
            let what = if matches!(self.pipes[c].stage, Stage::Declaring { .. }) {
                "DeclareMiningJob"
            } else {
                "SetCustomMiningJob"
            };
            self.pool_failed(
                format!("no answer to {what} on channel {c} in time"),
                now,
                out,
            );
        }
        if self.pool_retry_at.is_some_and(|t| t <= now) {
            self.pool_retry_at = None;
        }
        // a retry that is due is a pipeline free to start (it may still wait for a token)
        for p in &mut self.pipes {
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
            }
        }
        let max_age = self.cfg.token_max_age;
        self.tokens.retain(|t| t.at + max_age > now);
        if self.jds == JdsState::Ready {
            self.ask_tokens(now, out);
            self.start_jobs(now, out);
        }
        if self.mode == Mode::Waiting
            && self.template.is_some()
            && self.solo_at.is_some_and(|t| t <= now)
        {
            let why = self
                .last_failure
                .clone()
                .unwrap_or_else(|| "no custom job on the pool yet".into());
            self.go_solo(&why, out);
        }
    }

    /// The pool or its JDS gave up on us: mine solo, try again after a backoff.
    fn pool_failed(&mut self, reason: String, now: Instant, out: &mut Vec<Action>) {
        tracing::error!(%reason, retry_in = ?self.pool_backoff, "Job Declaration failed: mining solo on the farm's node");
        self.last_failure = Some(reason.clone());
        self.pool_retry_at = Some(now + self.pool_backoff);
        self.pool_backoff = (self.pool_backoff * 2).min(self.cfg.retry_max);
        for p in &mut self.pipes {
            *p = Pipe::new();
        }
        self.go_solo(&reason, out);
    }

    /// The JDS connection is unusable: close it, reconnect after a backoff, mine solo.
    fn jds_failed(&mut self, reason: String, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::CloseJds(reason.clone()));
        self.jds = JdsState::Down {
            retry_at: now + self.jds_backoff,
        };
        self.jds_backoff = (self.jds_backoff * 2).min(self.cfg.retry_max);
        self.tokens.clear();
        self.token_requests.clear();
        self.pool_failed(reason, now, out);
    }

    /// Switches the hub to the solo upstream (no-op when solo already).
    fn go_solo(&mut self, reason: &str, out: &mut Vec<Action>) {
        if self.mode == Mode::Solo || self.template.is_none() {
            if self.mode == Mode::Pool {
                // no template to mine solo with: the miners wait
                self.mode = Mode::Waiting;
            }
            return;
        }
        tracing::warn!(%reason, "miners switched to solo mining on the farm's node");
        self.mode = Mode::Solo;
        self.new_epoch();
        let size = self.cfg.solo_extranonce_size;
        let target = self.network_target();
        out.push(Action::ToHub(UpstreamEvent::Active {
            epoch: self.hub_epoch,
            route: self.route.with_epoch(self.hub_epoch),
            pool: self.solo_pool,
            url: SOLO_POOL.into(),
            channel_id: 0,
            extranonce_prefix: solo_prefix(0),
            extranonce_size: size,
            target,
        }));
        for c in 1..self.channels {
            out.push(Action::ToHub(UpstreamEvent::ChannelOpened {
                epoch: self.hub_epoch,
                channel: c,
                channel_id: c as u32,
                extranonce_prefix: solo_prefix(c),
                extranonce_size: size,
                target,
            }));
        }
        for c in 0..self.channels {
            self.publish_solo(c, out);
        }
    }

    /// Switches the hub to the pool (channel 0's custom job was just accepted).
    fn go_pool(&mut self, out: &mut Vec<Action>) {
        let Some(pool) = &self.pool else {
            return;
        };
        let Some(Some(c0)) = pool.chans.first() else {
            return;
        };
        tracing::info!(url = %pool.url, "miners on the pool's custom jobs (Job Declaration)");
        self.pool_backoff = self.cfg.retry_min;
        let (url, pool_index) = (pool.url.clone(), pool.pool);
        let c0 = c0.clone();
        let others: Vec<(usize, PoolChan)> = pool
            .chans
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(i, c)| c.clone().map(|c| (i, c)))
            .collect();
        self.mode = Mode::Pool;
        self.new_epoch();
        out.push(Action::ToHub(UpstreamEvent::Active {
            epoch: self.hub_epoch,
            route: self.route.with_epoch(self.hub_epoch),
            pool: pool_index,
            url,
            channel_id: c0.channel_id,
            extranonce_prefix: c0.prefix.clone(),
            extranonce_size: c0.size,
            target: c0.target,
        }));
        for (i, c) in others {
            out.push(Action::ToHub(UpstreamEvent::ChannelOpened {
                epoch: self.hub_epoch,
                channel: i,
                channel_id: c.channel_id,
                extranonce_prefix: c.prefix,
                extranonce_size: c.size,
                target: c.target,
            }));
        }
        for c in 0..self.pipes.len() {
            self.publish_pool(c, out);
        }
    }

    fn new_epoch(&mut self) {
        self.hub_epoch += 1;
        for j in &mut self.jobs {
            j.clear();
        }
        for t in &mut self.last_tip {
            *t = None;
        }
    }

    fn network_target(&self) -> Target {
        self.template
            .as_ref()
            .and_then(|t| Target::from_compact(t.template.nbits).ok())
            .unwrap_or(Target::MAX)
    }

    fn ensure_channels(&mut self, n: usize) {
        while self.pipes.len() < n {
            self.pipes.push(Pipe::new());
            self.jobs.push(VecDeque::new());
            self.last_tip.push(None);
        }
    }

    /// A share the hub forwards: a block goes to the farm's node (and the JDS); the share
    /// goes to the pool (pool mode) or is answered here (solo).
    fn on_share(&mut self, mut share: ForwardShare, out: &mut Vec<Action>) {
        if share.epoch != self.hub_epoch || self.mode == Mode::Waiting {
            out.push(Action::ToHub(UpstreamEvent::ShareResult {
                share,
                accepted: false,
                code: Some(CODE_STALE_UPSTREAM.into()),
            }));
            return;
        }
        self.check_block(&share, out);
        match (self.mode, self.pool.as_ref()) {
            (Mode::Pool, Some(p)) => {
                share.epoch = p.epoch;
                if let Err((mut share, code)) = p.route.submit(share) {
                    share.epoch = self.hub_epoch;
                    out.push(Action::ToHub(UpstreamEvent::ShareResult {
                        share,
                        accepted: false,
                        code: Some(code.into()),
                    }));
                }
            }
            (Mode::Solo, _) => out.push(Action::ToHub(UpstreamEvent::ShareResult {
                share,
                accepted: true,
                code: None,
            })),
            _ => out.push(Action::ToHub(UpstreamEvent::ShareResult {
                share,
                accepted: false,
                code: Some(CODE_STALE_UPSTREAM.into()),
            })),
        }
    }
}

/// A solo channel's extranonce prefix: its index, 2 bytes big-endian.
fn solo_prefix(channel: usize) -> Bytes {
    Bytes::copy_from_slice(&(channel as u16).to_be_bytes())
}

/// The hub's work of a job.
#[allow(clippy::too_many_arguments)]
fn upstream_work(
    epoch: u64,
    seq: u64,
    job_id: u32,
    t: &NodeTemplate,
    coinbase: &JobCoinbase,
    prefix: Bytes,
    size: u16,
    target: Target,
    version_mask: u32,
    clean: bool,
) -> UpstreamWork {
    let path: Arc<[[u8; 32]]> = t.template.merkle_path.clone().into();
    let extended = ExtendedWork::new(
        Bytes::copy_from_slice(coinbase.coinbase.prefix()),
        Bytes::copy_from_slice(coinbase.coinbase.suffix()),
        path.clone(),
    );
    UpstreamWork {
        epoch,
        seq,
        job_id,
        version: t.template.version,
        version_rolling_allowed: version_mask != 0,
        version_mask,
        prev_hash: t.template.prev_hash,
        nbits: t.template.nbits,
        min_ntime: t.template.min_ntime,
        coinbase_prefix: extended.coinbase_prefix.clone(),
        coinbase_suffix: extended.coinbase_suffix.clone(),
        merkle_path: path,
        extended,
        extranonce_prefix: prefix,
        extranonce_size: size,
        id_width: 0,
        extranonce2_size: 0,
        upstream_target: target,
        clean,
        route: None,
    }
}

fn header_fields(t: &NodeTemplate, s: &ForwardShare) -> HeaderFields {
    HeaderFields {
        version: s.version,
        prev_hash: t.template.prev_hash,
        ntime: s.ntime,
        nbits: t.template.nbits,
        nonce: s.nonce,
    }
}
