//! The upstream side: one or more SV2 extended channels on one connection to the most
//! preferred reachable pool, with failover.
//!
//! * [`PoolUrl`] parses `stratum2+tcp://host:port/AUTHORITY_KEY`.
//! * [`session::UpstreamSession`]: the sans-IO SV2 client of one pool connection
//!   (SetupConnection, extension 0x0002, OpenExtendedMiningChannel, job/prevhash/target
//!   tracking, share sequence numbers and their answers).
//! * [`run_upstreams`]: the task the hub talks to. It connects to pools in priority order,
//!   fails over, probes preferred pools while on a backup, and turns everything into
//!   [`UpstreamEvent`]s.
//!
//! ```text
//!                 ┌──────── no pool up: wait for the earliest retry ────────┐
//!                 ▼                                                         │
//!   ──▶ Candidate(best pool not in backoff) ──Opened──▶ Active ──dies──▶ Down(was_active)
//!            │ fails: Down, backoff that pool, next pool                     │
//!            └────────────────────────────────────────────────────────────────┘
//!   Active on a backup ──every probe_interval──▶ Probe(preferred pool)
//!        Probe open with work for `stable_for` ──▶ Probe becomes Active (new epoch),
//!        the old Active drains (answers for shares already sent) and closes.
//! ```
//!
//! Channels: the hub says how many it needs ([`UpstreamCommand::Channels`]); every
//! connection opens that many (proxy-side indices 0, 1, 2...; see [`session`]), so a new
//! active pool (failover, return to preferred) holds them all again. Channel 0 opening makes
//! a connection usable ([`UpstreamEvent::Active`]); each further channel of the active pool
//! is announced by [`UpstreamEvent::ChannelOpened`] (or [`UpstreamEvent::ChannelRefused`]).
//!
//! Epochs: each [`UpstreamEvent::Active`] carries a new `epoch` and the [`ShareRoute`] of
//! that epoch; the [`UpstreamWork`] of [`UpstreamEvent::Work`] carries the epoch too.
//!
//! Shares go straight to the active connection's task through its [`ShareRoute`], and its
//! answers straight back to the hub's event queue: the supervisor task is not woken per
//! share (each hand-off between tasks is a wake-up, and on a busy proxy they dominate the
//! cost of a forwarded share). [`ShareRoute::submit`] refuses at once a share of another
//! epoch or one the connection cannot take (`stale-upstream`, `upstream-busy`), handing it
//! back; every share it takes is answered by one [`UpstreamEvent::ShareResult`] (except at
//! shutdown).

pub mod session;
pub mod url;

mod conn;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_net::sv2::Sv2Options;
use strata_work::target::Target;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::work::{ForwardShare, UpstreamWork};
use conn::{ConnCommand, ConnEvent, ConnSettings};
pub use session::{
    ChannelInfo, UpstreamSession, CODE_NO_RESPONSE, CODE_STALE_UPSTREAM, CODE_UPSTREAM_CLOSED,
};
pub use url::{PoolUrl, PoolUrlError};

/// Default `min_extranonce_size`: 10 bytes = a 2-byte miner id (65 536 miners) + an 8-byte
/// SV1 `extranonce2` (the most cgminer-based firmware accepts). Our pool grants exactly 10
/// with its default 16-byte extranonce and 6-byte prefixes; a pool offering less refuses the
/// channel (`min-extranonce-size-too-large`) and the setting must be lowered (e.g. 6 = 2 + 4).
pub const DEFAULT_MIN_EXTRANONCE_SIZE: u16 = 10;

/// Capacity of each connection's share queue (shares waiting to be written).
const SHARE_QUEUE: usize = 4096;

/// Capacity of each connection's command queue (hashrate updates, one per channel at most
/// every second or so, and a drain).
const CONN_QUEUE: usize = 1024;

/// Where the shares of one epoch go: the queue of the connection that was active when the
/// epoch began (handed out by [`UpstreamEvent::Active`]). Cloning is cheap.
#[derive(Clone)]
pub struct ShareRoute {
    epoch: u64,
    tx: mpsc::Sender<ForwardShare>,
}

impl ShareRoute {
    /// A route for `epoch` into a queue of `capacity` shares, and that queue's receiving end
    /// (what a connection task reads; also for tests that stand in for one).
    pub fn channel(epoch: u64, capacity: usize) -> (Self, mpsc::Receiver<ForwardShare>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ShareRoute { epoch, tx }, rx)
    }

    /// The epoch whose shares this route takes.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Queues `share` for the pool without waiting; its answer comes as an
    /// [`UpstreamEvent::ShareResult`]. Refused at once, the share comes back with the code:
    /// [`CODE_STALE_UPSTREAM`] (another epoch, or the connection has ended) or
    /// [`CODE_UPSTREAM_BUSY`] (the connection's queue is full).
    // the share comes back whole (by value, no allocation) on the rare refusal so that it is
    // counted; the per-share path returns `Ok(())`
    #[allow(clippy::result_large_err)]
    pub fn submit(&self, share: ForwardShare) -> Result<(), (ForwardShare, &'static str)> {
        if share.epoch != self.epoch {
            return Err((share, CODE_STALE_UPSTREAM));
        }
        self.tx.try_send(share).map_err(|e| match e {
            mpsc::error::TrySendError::Full(s) => (s, CODE_UPSTREAM_BUSY),
            mpsc::error::TrySendError::Closed(s) => (s, CODE_STALE_UPSTREAM),
        })
    }
}

impl std::fmt::Debug for ShareRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareRoute")
            .field("epoch", &self.epoch)
            .field("queued", &(self.tx.max_capacity() - self.tx.capacity()))
            .finish()
    }
}

/// Two routes are equal when they lead into the same queue for the same epoch.
impl PartialEq for ShareRoute {
    fn eq(&self, other: &Self) -> bool {
        self.epoch == other.epoch && self.tx.same_channel(&other.tx)
    }
}

/// The code of a share refused because the connection's queue was full.
pub const CODE_UPSTREAM_BUSY: &str = "upstream-busy";

/// Every code the proxy itself gives a forwarded share that got no answer from the pool (a
/// [`UpstreamEvent::ShareResult`] with another code carries the pool's own answer).
pub const PROXY_CODES: [&str; 4] = [
    CODE_STALE_UPSTREAM,
    CODE_UPSTREAM_BUSY,
    CODE_NO_RESPONSE,
    CODE_UPSTREAM_CLOSED,
];

/// Settings of [`run_upstreams`]. `Default` gives the documented defaults and no pool.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Pools, most preferred first.
    pub pools: Vec<PoolUrl>,
    /// `user_identity` of the upstream channel (pool account). Default empty (pools refuse).
    pub user_identity: String,
    /// Nominal hashrate announced at open, hashes per second (default 0; see
    /// [`UpstreamCommand::UpdateHashrate`]).
    pub nominal_hashrate: f64,
    /// Channels opened on each connection from the start (default 1; the hub asks for more
    /// with [`UpstreamCommand::Channels`]).
    pub channels: usize,
    /// `min_extranonce_size` (default [`DEFAULT_MIN_EXTRANONCE_SIZE`]).
    pub min_extranonce_size: u16,
    /// Negotiate extension 0x0002 and tag shares with the miner's worker name (default true).
    pub worker_identity: bool,
    /// First reconnect delay of a pool after a failure (default 1 s); doubles per consecutive
    /// failure up to [`UpstreamConfig::backoff_max`], each delay jittered by ±25 %.
    pub backoff_min: Duration,
    /// Longest reconnect delay (default 30 s).
    pub backoff_max: Duration,
    /// While on a backup pool, probe more preferred pools and switch back (default true).
    pub return_to_preferred: bool,
    /// Time between probes of preferred pools (default 30 s).
    pub probe_interval: Duration,
    /// How long a probed pool must hold an open channel with work before the switch back;
    /// also how long a connection must have lived for its pool's backoff to reset
    /// (default 60 s).
    pub stable_for: Duration,
    /// TCP connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Noise handshake timeout (default 5 s).
    pub handshake_timeout: Duration,
    /// From the handshake to an open channel (default 10 s).
    pub setup_timeout: Duration,
    /// From channel 0 opening to its first job (default 15 s).
    pub first_job_timeout: Duration,
    /// Time a socket write may block (default 10 s).
    pub write_timeout: Duration,
    /// Shares awaiting the pool's answer per connection (default 8192).
    pub max_pending_shares: usize,
    /// After a switch, how long the old connection may take to answer shares already sent
    /// (default 5 s); unanswered ones come back as `upstream-closed`.
    pub drain_timeout: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            pools: Vec::new(),
            user_identity: String::new(),
            nominal_hashrate: 0.0,
            channels: 1,
            min_extranonce_size: DEFAULT_MIN_EXTRANONCE_SIZE,
            worker_identity: true,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            return_to_preferred: true,
            probe_interval: Duration::from_secs(30),
            stable_for: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            setup_timeout: Duration::from_secs(10),
            first_job_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
            max_pending_shares: 8192,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What the upstream side tells the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    /// A pool's channel 0 is now the active upstream: a new epoch starts. Work of earlier
    /// epochs is void (on every channel); shares of earlier epochs are refused
    /// (`stale-upstream`). The pool's further channels follow as
    /// [`UpstreamEvent::ChannelOpened`].
    Active {
        /// The new epoch (stamp it on [`UpstreamWork::epoch`] and expect it back on
        /// [`ForwardShare::epoch`]).
        epoch: u64,
        /// Where this epoch's shares go, on every channel.
        route: ShareRoute,
        /// Index of the pool in [`UpstreamConfig::pools`].
        pool: usize,
        /// The pool's URL.
        url: String,
        /// The upstream channel id of channel 0.
        channel_id: u32,
        /// The channel's `extranonce_prefix`.
        extranonce_prefix: Bytes,
        /// Bytes the proxy splits among the channel's miners.
        extranonce_size: u16,
        /// The target the pool opened the channel with (a later `SetTarget` reaches the
        /// miners in the work of the jobs after it, [`UpstreamWork::upstream_target`]).
        target: Target,
    },
    /// A further channel (index 1, 2...) of the active pool is open.
    ChannelOpened {
        /// The epoch it belongs to.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// Its upstream channel id.
        channel_id: u32,
        /// Its `extranonce_prefix`.
        extranonce_prefix: Bytes,
        /// Bytes the proxy splits among the channel's miners.
        extranonce_size: u16,
        /// The target the pool opened it with (later ones: as for [`UpstreamEvent::Active`]).
        target: Target,
    },
    /// The active pool refused to open channel `channel` (`OpenMiningChannel.Error`): its
    /// miners get no work on this pool.
    ChannelRefused {
        /// The epoch it belongs to.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// The pool's error code.
        reason: String,
    },
    /// New current work of channel `channel` in the active epoch (`epoch` set; `id_width`
    /// and `extranonce2_size` are 0 for the hub to fill).
    Work {
        /// The channel's proxy-side index.
        channel: usize,
        /// The work.
        work: UpstreamWork,
    },
    /// A channel's extranonce prefix changed (`SetExtranoncePrefix`): re-carve its miners'
    /// extranonce1; the next [`UpstreamEvent::Work`] carries it.
    ExtranoncePrefix {
        /// The epoch it belongs to.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// The new prefix (the size is unchanged).
        extranonce_prefix: Bytes,
    },
    /// The answer for a share taken by [`ShareRoute::submit`].
    ShareResult {
        /// The share.
        share: ForwardShare,
        /// Accepted by the pool.
        accepted: bool,
        /// Why not: the pool's `SubmitShares.Error` code, or `stale-upstream` (not
        /// forwarded: its channel is not open, or the connection ended before writing it),
        /// `upstream-closed` (sent, but the connection ended before an answer),
        /// `no-response` (too many unanswered shares).
        code: Option<String>,
    },
    /// A connection to a pool failed or ended. With `was_active`, there is no upstream until
    /// the next [`UpstreamEvent::Active`].
    Down {
        /// Index of the pool.
        pool: usize,
        /// The pool's URL.
        url: String,
        /// What happened (also logged).
        reason: String,
        /// Whether it was the active upstream.
        was_active: bool,
    },
}

/// What the hub tells the upstream side.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamCommand {
    /// The nominal hashrate of a channel's miners changed: `UpdateChannel` on that channel
    /// of the active pool, and the value announced by later opens of the channel.
    UpdateHashrate {
        /// The channel's proxy-side index.
        channel: usize,
        /// Hashes per second.
        hashrate: f64,
    },
    /// Hold this many channels (indices `0..n`) on the active pool and on every pool
    /// connected later. Channels are never closed by asking for fewer.
    Channels(usize),
}

/// Reconnect delays of one pool: exponential from `min` to `max`, jittered ±25 %.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// No failure yet.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// Records a failure; returns the delay before the next attempt. `jitter` in `[0, 1)`
    /// scales the delay by `0.75 + 0.5 * jitter`.
    pub fn failure(&mut self, jitter: f64) -> Duration {
        let exp = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let base = self
            .min
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .as_secs_f64();
        Duration::from_secs_f64(base * (0.75 + 0.5 * jitter.clamp(0.0, 1.0)))
    }

    /// The connection held: the next failure starts over from `min`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Connecting to become the active upstream.
    Candidate,
    /// The active upstream.
    Active,
    /// A preferred pool tried in the background.
    Probe,
    /// Replaced: answering shares already sent, then closing.
    Draining,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    pool: usize,
    role: Role,
    tx: mpsc::Sender<ConnCommand>,
    /// Its share queue (handed to the hub as a [`ShareRoute`] when it becomes active).
    shares: mpsc::Sender<ForwardShare>,
    cancel: CancellationToken,
    /// When channel 0 opened.
    opened_at: Option<Instant>,
    /// Open channels, by index.
    infos: BTreeMap<usize, ChannelInfo>,
    /// Each channel's current work, by index.
    work: BTreeMap<usize, UpstreamWork>,
    /// Channels the pool refused, by index, with the code.
    refused: BTreeMap<usize, String>,
}

#[derive(Debug)]
struct Slot {
    url: PoolUrl,
    redirect: Option<PoolUrl>,
    backoff: Backoff,
    retry_at: Instant,
}

/// The hub is gone.
struct HubGone;

struct Supervisor {
    cfg: UpstreamConfig,
    settings: ConnSettings,
    slots: Vec<Slot>,
    conns: Vec<Conn>,
    next_id: u64,
    epoch: u64,
    next_probe_at: Instant,
    events: mpsc::Sender<UpstreamEvent>,
    conn_tx: mpsc::Sender<(u64, ConnEvent)>,
    /// Channels wanted on every connection.
    channels: watch::Sender<usize>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// Runs the upstream side until `shutdown` (or until the hub drops `events`): keeps one
/// channel open on the most preferred reachable pool of `cfg.pools`, reports through
/// `events`, takes hashrate updates from `commands` and shares through the
/// [`ShareRoute`] of each [`UpstreamEvent::Active`] (see the module docs).
pub async fn run_upstreams(
    cfg: UpstreamConfig,
    events: mpsc::Sender<UpstreamEvent>,
    mut commands: mpsc::UnboundedReceiver<UpstreamCommand>,
    shutdown: CancellationToken,
) {
    let now = Instant::now();
    let (conn_tx, mut conn_rx) = mpsc::channel(1024);
    let channels = cfg.channels.max(1);
    let settings = ConnSettings {
        session: session::SessionConfig {
            user_identity: cfg.user_identity.clone(),
            nominal_hashrate: cfg.nominal_hashrate as f32,
            channels,
            min_extranonce_size: cfg.min_extranonce_size,
            request_worker_identity: cfg.worker_identity,
            max_pending_shares: cfg.max_pending_shares,
            setup_timeout: cfg.setup_timeout,
            first_job_timeout: cfg.first_job_timeout,
            ..session::SessionConfig::default()
        },
        connect_timeout: cfg.connect_timeout,
        net: Sv2Options {
            handshake_timeout: cfg.handshake_timeout,
            ..Sv2Options::default()
        },
        write_timeout: cfg.write_timeout,
    };
    let slots = cfg
        .pools
        .iter()
        .map(|url| Slot {
            url: url.clone(),
            redirect: None,
            backoff: Backoff::new(cfg.backoff_min, cfg.backoff_max),
            retry_at: now,
        })
        .collect();
    let mut sup = Supervisor {
        next_probe_at: now + cfg.probe_interval,
        cfg,
        settings,
        slots,
        conns: Vec::new(),
        next_id: 1,
        epoch: 0,
        events,
        conn_tx,
        channels: watch::Sender::new(channels),
        tasks: TaskTracker::new(),
        shutdown: shutdown.child_token(),
    };
    if sup.slots.is_empty() {
        tracing::error!("no upstream pool configured");
    }
    let mut commands_open = true;
    loop {
        if shutdown.is_cancelled() || sup.plan(Instant::now()).await.is_err() {
            break;
        }
        let wake = sup.next_wake();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let step = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some((id, ev)) = conn_rx.recv() => sup.on_conn_event(id, ev).await,
            cmd = commands.recv(), if commands_open => match cmd {
                Some(c) => sup.on_command(c).await,
                None => {
                    commands_open = false;
                    Ok(())
                }
            },
            () = sleep => Ok(()),
        };
        if step.is_err() {
            break;
        }
    }
    sup.shutdown.cancel();
    sup.tasks.close();
    drop(conn_rx);
    sup.tasks.wait().await;
}

impl Supervisor {
    async fn emit(&self, ev: UpstreamEvent) -> Result<(), HubGone> {
        self.events.send(ev).await.map_err(|_| HubGone)
    }

    fn find(&self, role: Role) -> Option<usize> {
        self.conns.iter().position(|c| c.role == role)
    }

    fn active_pool(&self) -> Option<usize> {
        self.find(Role::Active).map(|i| self.conns[i].pool)
    }

    fn spawn(&mut self, pool: usize, role: Role) {
        let id = self.next_id;
        self.next_id += 1;
        let slot = &mut self.slots[pool];
        let url = slot.redirect.take().unwrap_or_else(|| slot.url.clone());
        let (tx, rx) = mpsc::channel(CONN_QUEUE);
        let (route, shares) = ShareRoute::channel(0, SHARE_QUEUE);
        let cancel = self.shutdown.child_token();
        tracing::info!(pool, url = %url.address(), ?role, "connecting to pool");
        self.tasks.spawn(conn::run(
            id,
            url,
            Arc::new(self.settings.clone()),
            conn::Queues {
                commands: rx,
                shares,
                channels: self.channels.subscribe(),
                events: self.conn_tx.clone(),
                results: self.events.clone(),
            },
            cancel.clone(),
        ));
        self.conns.push(Conn {
            id,
            pool,
            role,
            tx,
            shares: route.tx,
            cancel,
            opened_at: None,
            infos: BTreeMap::new(),
            work: BTreeMap::new(),
            refused: BTreeMap::new(),
        });
    }

    /// Starts the connections the state calls for.
    async fn plan(&mut self, now: Instant) -> Result<(), HubGone> {
        // 1. a stable probe takes over
        if let Some(i) = self.find(Role::Probe) {
            let c = &self.conns[i];
            if c.work.contains_key(&0)
                && c.opened_at.is_some_and(|t| now >= t + self.cfg.stable_for)
            {
                self.promote(i).await?;
            }
        }
        // 2. nothing active or connecting: the probe (if up) or the best pool available
        if self.find(Role::Active).is_none() && self.find(Role::Candidate).is_none() {
            if let Some(i) = self.find(Role::Probe) {
                if self.conns[i].infos.contains_key(&0) {
                    self.promote(i).await?;
                } else {
                    self.conns[i].role = Role::Candidate;
                }
            } else if let Some(p) = self.best_available(now, self.slots.len()) {
                self.spawn(p, Role::Candidate);
            }
        }
        // 3. on a backup: probe a preferred pool now and then
        if self.cfg.return_to_preferred && self.find(Role::Probe).is_none() {
            if let Some(a) = self.active_pool() {
                if a > 0 && now >= self.next_probe_at {
                    if let Some(p) = self.best_available(now, a) {
                        self.next_probe_at = now + self.cfg.probe_interval;
                        self.spawn(p, Role::Probe);
                    }
                }
            }
        }
        Ok(())
    }

    /// The most preferred pool below index `below` that is out of backoff and has no live
    /// connection.
    fn best_available(&self, now: Instant, below: usize) -> Option<usize> {
        (0..below.min(self.slots.len())).find(|&p| {
            self.slots[p].retry_at <= now
                && !self
                    .conns
                    .iter()
                    .any(|c| c.pool == p && c.role != Role::Draining)
        })
    }

    /// When [`plan`](Self::plan) may have something new to do.
    fn next_wake(&self) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        if let Some(i) = self.find(Role::Probe) {
            if let Some(t) = self.conns[i].opened_at {
                at(t + self.cfg.stable_for);
            }
        }
        let earliest_retry = |below: usize| self.slots.iter().take(below).map(|s| s.retry_at).min();
        if self.find(Role::Active).is_none() && self.find(Role::Candidate).is_none() {
            if let Some(t) = earliest_retry(self.slots.len()) {
                at(t);
            }
        } else if let Some(a) = self.active_pool() {
            if self.cfg.return_to_preferred && a > 0 && self.find(Role::Probe).is_none() {
                if let Some(t) = earliest_retry(a) {
                    at(t.max(self.next_probe_at));
                }
            }
        }
        wake
    }

    /// Makes conn `i` the active upstream: a new epoch; the old active drains.
    async fn promote(&mut self, i: usize) -> Result<(), HubGone> {
        let drain = self.cfg.drain_timeout;
        for c in self.conns.iter_mut().filter(|c| c.role == Role::Active) {
            c.role = Role::Draining;
            let _ = c.tx.try_send(ConnCommand::Drain { timeout: drain });
        }
        let c = &mut self.conns[i];
        c.role = Role::Active;
        let Some(info) = c.infos.get(&0).cloned() else {
            return Ok(());
        };
        self.epoch += 1;
        let epoch = self.epoch;
        let route = ShareRoute {
            epoch,
            tx: c.shares.clone(),
        };
        let pool = c.pool;
        let others: Vec<ChannelInfo> = c.infos.values().skip(1).cloned().collect();
        let refused: Vec<(usize, String)> =
            c.refused.iter().map(|(i, r)| (*i, r.clone())).collect();
        let work: Vec<(usize, UpstreamWork)> =
            c.work.iter().map(|(i, w)| (*i, w.clone())).collect();
        let url = self.slots[pool].url.to_string();
        tracing::info!(
            pool,
            url = %self.slots[pool].url.address(),
            epoch,
            channel = info.channel_id,
            channels = others.len() + 1,
            extranonce_size = info.extranonce_size,
            "upstream active"
        );
        if pool > 0 {
            self.next_probe_at = Instant::now() + self.cfg.probe_interval;
        }
        self.emit(UpstreamEvent::Active {
            epoch,
            route,
            pool,
            url,
            channel_id: info.channel_id,
            extranonce_prefix: info.extranonce_prefix,
            extranonce_size: info.extranonce_size,
            target: info.target,
        })
        .await?;
        for info in others {
            self.emit(opened_event(epoch, info)).await?;
        }
        for (channel, reason) in refused {
            self.emit(UpstreamEvent::ChannelRefused {
                epoch,
                channel,
                reason,
            })
            .await?;
        }
        for (channel, mut w) in work {
            w.epoch = epoch;
            w.clean = true;
            self.emit(UpstreamEvent::Work { channel, work: w }).await?;
        }
        Ok(())
    }

    async fn on_conn_event(&mut self, id: u64, ev: ConnEvent) -> Result<(), HubGone> {
        let Some(i) = self.conns.iter().position(|c| c.id == id) else {
            return Ok(());
        };
        let epoch = self.epoch;
        match ev {
            ConnEvent::Opened(info) => {
                let c = &mut self.conns[i];
                let index = info.index;
                c.refused.remove(&index);
                c.infos.insert(index, info.clone());
                if index == 0 {
                    c.opened_at = Some(Instant::now());
                    if c.role == Role::Candidate {
                        self.promote(i).await?;
                    } else {
                        tracing::info!(pool = c.pool, "probe: preferred pool opened a channel");
                    }
                } else if c.role == Role::Active {
                    tracing::info!(
                        pool = c.pool,
                        channel = index,
                        channel_id = info.channel_id,
                        "further upstream channel open"
                    );
                    self.emit(opened_event(epoch, info)).await?;
                }
            }
            ConnEvent::Refused { channel, code } => {
                let c = &mut self.conns[i];
                c.refused.insert(channel, code.clone());
                if c.role == Role::Active {
                    self.emit(UpstreamEvent::ChannelRefused {
                        epoch,
                        channel,
                        reason: code,
                    })
                    .await?;
                }
            }
            ConnEvent::Work { channel, mut work } => {
                let c = &mut self.conns[i];
                c.work.insert(channel, work.clone());
                if c.role == Role::Active {
                    work.epoch = epoch;
                    self.emit(UpstreamEvent::Work { channel, work }).await?;
                }
            }
            ConnEvent::ExtranoncePrefix { channel, prefix } => {
                let c = &mut self.conns[i];
                if let Some(info) = c.infos.get_mut(&channel) {
                    info.extranonce_prefix = prefix.clone();
                }
                if c.role == Role::Active {
                    self.emit(UpstreamEvent::ExtranoncePrefix {
                        epoch,
                        channel,
                        extranonce_prefix: prefix,
                    })
                    .await?;
                }
            }
            ConnEvent::Ended { reason, redirect } => {
                let c = self.conns.remove(i);
                c.cancel.cancel();
                if c.role == Role::Draining {
                    tracing::debug!(pool = c.pool, "replaced upstream closed");
                    return Ok(());
                }
                let now = Instant::now();
                let slot = &mut self.slots[c.pool];
                if let Some((host, port)) = redirect {
                    let mut url = slot.url.clone();
                    if !host.is_empty() {
                        url.host = host;
                    }
                    if port != 0 {
                        url.port = port;
                    }
                    slot.redirect = Some(url);
                    slot.retry_at = now;
                } else {
                    if c.opened_at.is_some_and(|t| now >= t + self.cfg.stable_for) {
                        slot.backoff.reset();
                    }
                    slot.retry_at = now + slot.backoff.failure(rand::random::<f64>());
                }
                let url = slot.url.to_string();
                let was_active = c.role == Role::Active;
                tracing::warn!(
                    pool = c.pool,
                    url = %slot.url.address(),
                    role = ?c.role,
                    retry_in_ms = slot.retry_at.saturating_duration_since(now).as_millis() as u64,
                    %reason,
                    "pool connection down"
                );
                self.emit(UpstreamEvent::Down {
                    pool: c.pool,
                    url,
                    reason,
                    was_active,
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn on_command(&mut self, cmd: UpstreamCommand) -> Result<(), HubGone> {
        match cmd {
            UpstreamCommand::UpdateHashrate { channel, hashrate } => {
                let h = hashrate as f32;
                if h.is_finite() && h >= 0.0 {
                    let session = &mut self.settings.session;
                    if session.channel_hashrates.len() <= channel {
                        session
                            .channel_hashrates
                            .resize(channel + 1, session.nominal_hashrate);
                    }
                    session.channel_hashrates[channel] = h;
                    if let Some(i) = self.find(Role::Active) {
                        let _ = self.conns[i].tx.try_send(ConnCommand::UpdateHashrate {
                            channel,
                            hashrate: h,
                        });
                    }
                }
                Ok(())
            }
            UpstreamCommand::Channels(n) => {
                if n > *self.channels.borrow() {
                    tracing::info!(channels = n, "upstream channels wanted");
                    self.settings.session.channels = n;
                    // every live connection follows (and one started later opens them all)
                    self.channels.send_replace(n);
                }
                Ok(())
            }
        }
    }
}

fn opened_event(epoch: u64, info: ChannelInfo) -> UpstreamEvent {
    UpstreamEvent::ChannelOpened {
        epoch,
        channel: info.index,
        channel_id: info.channel_id,
        extranonce_prefix: info.extranonce_prefix,
        extranonce_size: info.extranonce_size,
        target: info.target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        assert_eq!(b.failure(0.5), Duration::from_secs(1));
        assert_eq!(b.failure(0.5), Duration::from_secs(2));
        assert_eq!(b.failure(0.5), Duration::from_secs(4));
        assert_eq!(b.failure(0.5), Duration::from_secs(8));
        assert_eq!(b.failure(0.5), Duration::from_secs(8));
        assert_eq!(b.failure(0.0), Duration::from_secs(6));
        assert_eq!(b.failure(1.0), Duration::from_secs(10));
        assert_eq!(b.failures(), 7);
        b.reset();
        assert_eq!(b.failure(0.5), Duration::from_secs(1));
    }
}
