//! The hub: the one task that owns the upstream channels' state (one or more extended
//! channels on the active pool), their extranonce splitters and the routing of forwarded
//! shares. Miner tasks talk to it with [`HubRequest`]s; a join puts the miner on a channel
//! and hands it that channel's `watch` of [`UpstreamWork`].
//!
//! Assignment: with `miners_per_channel = N > 0` a joining miner goes to the first channel
//! with fewer than N miners; when all are full the hub asks the upstream side for one more
//! channel ([`UpstreamCommand::Channels`]) and the miner waits for that channel to open (its
//! session waits for work anyway). A channel the pool refuses gets no work: miners already
//! on it (from an earlier pool) wait for the next pool, miners still waiting for it and later
//! ones go to the open channel with the fewest miners (above N) rather than asking for more
//! refusals. With N = 0 every miner is on channel 0. Miner ids are
//! unique within a channel; the hub's maps are keyed by (channel, id).
//!
//! # UpdateChannel
//!
//! Each channel's `UpdateChannel` carries the summed hashrate of its own miners, as their
//! reports give it ([`miner_hashrate`]). The pool starts a channel opened with a zero
//! nominal hashrate at its minimum difficulty, where nearly every miner share is forwarded,
//! so the first announcement is prompt; the later ones are debounced:
//!
//! ```text
//!  nothing announced ──first report with a hashrate──▶ wait FIRST_UPDATE_DELAY (1 s: the
//!        ▲                                             miners connecting together join it)
//!        │ announced 0 (every miner left)                 │ UpdateChannel(sum)
//!        │                                                ▼
//!        └──────────────────────────────── announced ──every update_interval: UpdateChannel
//!                                                         when the sum moved by more than
//!                                                         update_threshold
//! ```
//!
//! A rise beyond [`URGENT_RISE`] times the announcement is announced [`FIRST_UPDATE_DELAY`]
//! after the report that showed it, without waiting for the interval.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use strata_work::extranonce::{ExtranonceSplitter, MinerId, SplitConfig};
use strata_work::target::hashrate_from_target;
use strata_work::vardiff::Vardiff;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::monitor::Monitor;
use crate::upstream::{
    ShareRoute, UpstreamCommand, UpstreamEvent, CODE_STALE_UPSTREAM, PROXY_CODES,
};
use crate::work::{ForwardShare, UpstreamWork};

/// What a miner's session needs of its place in an upstream channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Its id (unique within its channel, stable for the connection's life, across upstream
    /// switches).
    pub miner: MinerId,
}

/// The hub's answer to a join: the miner's slot, its channel and that channel's work.
#[derive(Debug)]
pub struct Joined {
    /// The slot (for the miner's session).
    pub slot: Slot,
    /// The proxy-side index of the upstream channel the miner is on: stamp it on
    /// [`ForwardShare::channel`], and name it in [`HubRequest::Leave`] and
    /// [`HubRequest::Report`].
    pub channel: usize,
    /// The channel's current work (`None` while the channel has no usable upstream).
    pub work: watch::Receiver<Option<Arc<UpstreamWork>>>,
}

/// Why a miner cannot join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Every miner id of the upstream channel's extranonce space is taken.
    #[error("the upstream channel's extranonce space is full")]
    Full,
}

/// What a miner task tells the hub.
#[derive(Debug)]
pub enum HubRequest {
    /// A miner connected (SV1: at `mining.subscribe`): pick its channel and allocate its id.
    /// The answer may wait until its channel is open upstream.
    Join {
        /// Its address.
        peer: SocketAddr,
        /// The answer.
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    },
    /// A miner left: release its id.
    Leave {
        /// Its channel ([`Joined::channel`]).
        channel: usize,
        /// The miner.
        miner: MinerId,
    },
    /// A share meeting the upstream target: forward it (on [`ForwardShare::channel`]).
    Share(ForwardShare),
    /// Periodic figures of one miner (for UpdateChannel and the API).
    Report {
        /// Its channel ([`Joined::channel`]).
        channel: usize,
        /// The figures.
        report: MinerReport,
    },
}

/// What a miner task reports about its miner: as soon as it mines (SV2: at each channel
/// open), as soon as its hashrate estimate rests on enough shares ([`ESTIMATE_MIN_SHARES`]),
/// about every 10 s, and at disconnect.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MinerReport {
    /// The miner.
    #[serde(skip)]
    pub miner: MinerId,
    /// Worker name (SV1 `mining.authorize` user, SV2 user identity).
    pub worker: String,
    /// Remote address.
    pub address: String,
    /// SV1 user agent / SV2 vendor and firmware.
    pub user_agent: String,
    /// `sv1` or `sv2`.
    pub protocol: &'static str,
    /// Current share difficulty.
    pub difficulty: f64,
    /// Hashes per second as the proxy announces it upstream ([`miner_hashrate`]).
    pub hashrate: f64,
    /// Shares accepted locally.
    pub accepted: u64,
    /// Sum of the difficulties (share targets) of the accepted shares: the work behind the
    /// history's hashrate estimates.
    #[serde(skip)]
    pub accepted_work: f64,
    /// Shares rejected locally, by reason code.
    pub rejected: BTreeMap<String, u64>,
    /// Shares rejected as stale (also counted in `rejected`).
    pub stale: u64,
    /// UNIX ms of the last accepted share (0 = none).
    pub last_share_ms: u64,
    /// UNIX ms of the connection.
    pub connected_since_ms: u64,
    /// False in the last report of a disconnecting miner.
    pub connected: bool,
}

/// Shares the vardiff window must hold before its estimate replaces the hashrate the target
/// implies in [`miner_hashrate`] (the estimate's relative standard error is then
/// `1 / sqrt(16)` = 25 %; with the default 6 shares a minute a settled window holds about 60).
pub const ESTIMATE_MIN_SHARES: u64 = 16;

/// The hashrate (h/s) the proxy reports and announces for one SV1 miner or one SV2 channel,
/// from its vardiff.
///
/// Two sources. The vardiff estimate (shares in its window over their exposure) is 0 before
/// the first share and rough for the next few. The hashrate the current target implies at the
/// configured share rate ([`hashrate_from_target`]: difficulty × 2^32 × shares_per_minute /
/// 60) is known from the first moment: the SV2 device's own nominal hashrate, or the SV1
/// miner's starting (or suggested) difficulty, as good as that difficulty is, and right once
/// vardiff has settled.
///
/// Choice: the implied value while the window holds fewer than [`ESTIMATE_MIN_SHARES`]
/// shares, the estimate from then on. Not a blend: before vardiff settles the implied value
/// can be off by orders of magnitude (a 100 TH/s ASIC at the default SV1 starting difficulty
/// is over a hundred times faster than that difficulty implies), so it is not averaged into
/// an estimate that already rests on evidence; a miner far faster than its difficulty has
/// those shares within a second. A miner that stops hashing falls back to the implied value
/// once its window empties below the threshold, by then of a difficulty that vardiff has
/// halved while it was idle.
pub fn miner_hashrate(vardiff: &Vardiff, now: Instant) -> f64 {
    if vardiff.shares_in_window(now) >= ESTIMATE_MIN_SHARES {
        return vardiff.hashrate(now);
    }
    // the share rate was validated with the vardiff configuration
    hashrate_from_target(&vardiff.target(), vardiff.config().shares_per_minute).unwrap_or(0.0)
}

/// The handle miner tasks hold (each follows its channel's work from [`Joined::work`]).
#[derive(Debug, Clone)]
pub struct HubHandle {
    /// Requests to the hub.
    pub requests: mpsc::Sender<HubRequest>,
}

// -------------------------------------------------------------------------------------------
// the hub task
// -------------------------------------------------------------------------------------------

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How the upstream extranonce space is split among miners.
    pub split: SplitConfig,
    /// Miners per upstream channel (0 = every miner on one channel).
    pub miners_per_channel: u32,
    /// How often each channel's summed miner hashrate is considered for an `UpdateChannel`
    /// once it announced one (the first goes out [`FIRST_UPDATE_DELAY`] after the channel's
    /// first miner report with a hashrate, or after this interval if that is shorter).
    pub update_interval: Duration,
    /// Relative hashrate change that triggers an `UpdateChannel` (0.1 = 10 %).
    pub update_threshold: f64,
    /// Pool URLs in priority order (for the API).
    pub pools: Vec<String>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            split: SplitConfig::default(),
            miners_per_channel: 0,
            update_interval: Duration::from_secs(10),
            update_threshold: 0.1,
            pools: vec![],
        }
    }
}

/// How long after a channel's first miner report with a hashrate (while it has announced
/// nothing) its first `UpdateChannel` goes out: long enough to include the miners that
/// connect together (a restarted proxy gets its farm back within a second or two), short
/// enough that the pool leaves its minimum difficulty, where nearly every miner share is
/// forwarded, within seconds.
pub const FIRST_UPDATE_DELAY: Duration = Duration::from_secs(1);

/// A channel whose miners' reported hashrate rose above this many times its announced one
/// announces again [`FIRST_UPDATE_DELAY`] after the report that showed it, without waiting
/// for `update_interval`: the pool's target is then far too easy and nearly every share is
/// forwarded. The common case is a farm coming back after a restart, whose ASICs are first
/// counted at the hashrate their starting difficulty implies (a hundred times too low) until
/// their vardiff estimates take over a second later. A fall waits for the interval (fewer
/// shares forwarded costs nothing meanwhile).
pub const URGENT_RISE: f64 = 2.0;

/// The hashrate a report adds to its channel's sum (0 once disconnected).
fn reported_rate(r: Option<&MinerReport>) -> f64 {
    r.filter(|r| r.connected).map_or(0.0, |r| r.hashrate)
}

/// One upstream pool as the API shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct UpstreamStatus {
    /// Its URL (authority key included).
    pub url: String,
    /// `active`, `down` or `standby`.
    pub state: String,
    /// The last reason it went down.
    pub last_error: Option<String>,
    /// The extended channel id of channel 0 while active.
    pub channel_id: Option<u32>,
    /// The upstream ids of every open channel while active, in channel index order.
    pub channel_ids: Vec<u32>,
    /// Every channel while active.
    pub channels: Vec<ChannelStatus>,
    /// Shares forwarded to it.
    pub shares_forwarded: u64,
    /// Shares it acknowledged.
    pub shares_accepted: u64,
    /// Shares it rejected, by code.
    pub shares_rejected: BTreeMap<String, u64>,
    /// The summed nominal hashrate last announced on its channels while active (h/s; 0
    /// otherwise).
    pub announced_hashrate: f64,
    /// From a miner's submit to this pool's answer, over the shares it answered while
    /// active (see [`AckLatency`]).
    pub ack_latency_ms: AckLatency,
}

/// One of the proxy's upstream channels as the API shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ChannelStatus {
    /// Its proxy-side index.
    pub index: usize,
    /// `open`, `opening` or `refused`.
    pub state: String,
    /// Its upstream channel id when open.
    pub channel_id: Option<u32>,
    /// Why the pool refused it (or why it cannot be used).
    pub error: Option<String>,
    /// Miners on it (joined or waiting for it to open).
    pub miners: usize,
    /// The nominal hashrate last announced for it (h/s).
    pub announced_hashrate: f64,
}

/// A miner as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MinerStatus {
    /// The miner's id (unique within its channel).
    pub id: u32,
    /// The proxy-side index of its upstream channel.
    pub channel: usize,
    /// Its latest report.
    #[serde(flatten)]
    pub report: MinerReport,
    /// Its shares forwarded upstream.
    pub forwarded: u64,
    /// Of those, acknowledged by the pool.
    pub upstream_accepted: u64,
    /// Rejected by the pool, or stale because the upstream changed.
    pub upstream_rejected: u64,
}

/// Proxy-wide figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProxyStats {
    /// Miners connected now.
    pub miners: usize,
    /// Index of the active pool, if any.
    pub active_pool: Option<usize>,
    /// Upstream channels the proxy holds (or is opening).
    pub channels: usize,
    /// Upstream epoch (increases at every switch).
    pub epoch: u64,
    /// Shares accepted locally (sum of the miners' reports).
    pub shares_accepted: u64,
    /// Shares rejected locally (including stale).
    pub shares_rejected: u64,
    /// Stale shares.
    pub shares_stale: u64,
    /// Shares forwarded upstream.
    pub shares_forwarded: u64,
    /// Shares the pools acknowledged.
    pub upstream_accepted: u64,
    /// Shares the pools rejected (or that went stale with their upstream).
    pub upstream_rejected: u64,
    /// Summed miner hashrate estimate (h/s).
    pub hashrate: f64,
    /// From a miner's submit to the pool's answer for the forwarded share.
    pub upstream_ack_latency_ms: AckLatency,
}

/// The latency from the proxy taking a miner's submit to the hub receiving the pool's
/// answer for the forwarded share (`SubmitShares.Success` or `.Error`), over every share the
/// pools answered since the proxy started (percentiles to two significant digits). Shares
/// the proxy itself gave up on (its `CODE_*`: not sent, or no answer) are not in it. It adds
/// the proxy's upstream path (hub, pool connection, encryption) and the pool's own answer
/// time to what the miner waits for (the miner's answer does not wait for the pool).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AckLatency {
    /// Answered shares measured.
    pub samples: u64,
    /// Median (ms).
    pub p50: f64,
    /// 90th percentile (ms).
    pub p90: f64,
    /// 99th percentile (ms).
    pub p99: f64,
    /// Largest (ms).
    pub max: f64,
    /// Cumulative counts at the Prometheus bucket bounds [`ACK_BUCKETS_S`] (seconds).
    #[serde(skip)]
    pub buckets: Vec<u64>,
    /// Sum of the latencies (seconds).
    #[serde(skip)]
    pub sum_s: f64,
}

/// The bucket bounds (seconds) of the `strata_proxy_upstream_ack_seconds` histogram.
pub const ACK_BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Acknowledgement latencies in microseconds (1 µs to an hour; longer ones count as an hour).
fn ack_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid")
}

impl AckLatency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |q: f64| ms(h.value_at_quantile(q));
        AckLatency {
            samples: h.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: ms(h.max()),
            buckets: ACK_BUCKETS_S
                .iter()
                .map(|le| h.count_between(0, (le * 1e6) as u64))
                .collect(),
            sum_s: h.mean() * h.len() as f64 / 1e6,
        }
    }
}

/// Questions the API asks the hub.
#[derive(Debug)]
pub enum HubQuery {
    /// Proxy-wide figures.
    Stats(oneshot::Sender<ProxyStats>),
    /// Every connected miner.
    Miners(oneshot::Sender<Vec<MinerStatus>>),
    /// Every upstream pool.
    Upstreams(oneshot::Sender<Vec<UpstreamStatus>>),
    /// The open history step (for hashrate windows).
    Live(oneshot::Sender<crate::history::sampler::Live>),
    /// Active and recent alerts.
    Alerts(oneshot::Sender<crate::alerts::AlertsView>),
    /// Recent failovers, newest first.
    Failovers(oneshot::Sender<Vec<crate::alerts::FailoverRecord>>),
    /// Alert and history figures for `/metrics`.
    Monitor(oneshot::Sender<crate::monitor::MonitorStats>),
}

#[derive(Debug)]
struct MinerEntry {
    report: Option<MinerReport>,
    forwarded: u64,
    upstream_accepted: u64,
    upstream_rejected: u64,
}

/// A miner waiting for its channel to open.
type Waiter = (SocketAddr, oneshot::Sender<Result<Joined, JoinError>>);

/// A channel's side on the active pool.
#[derive(Debug, Clone, Copy)]
struct Upstream {
    channel_id: u32,
}

/// One upstream channel as the hub keeps it (across pools: the splitter keeps the miners'
/// ids when the channel reopens on another pool).
#[derive(Debug)]
struct HubChannel {
    splitter: Option<ExtranonceSplitter>,
    /// Open on the active pool.
    upstream: Option<Upstream>,
    /// The active pool refused to open it.
    refused: Option<String>,
    last_work: Option<UpstreamWork>,
    work_tx: watch::Sender<Option<Arc<UpstreamWork>>>,
    /// Miners waiting for the channel's first opening.
    waiting: Vec<Waiter>,
    /// Miners on the channel: joined, or waiting for it.
    assigned: usize,
    announced_hashrate: f64,
    /// Summed hashrate of the channel's connected miners as reported, kept up to date report
    /// by report (and recomputed exactly at each look): how a sharp rise is noticed between
    /// two looks.
    reported: f64,
    /// When the announcement is next considered: [`FIRST_UPDATE_DELAY`] after the first
    /// report with a hashrate while nothing is announced, then every `update_interval`;
    /// `None` while nothing is announced and no miner reported a hashrate.
    update_at: Option<Instant>,
}

impl HubChannel {
    fn new() -> Self {
        HubChannel {
            splitter: None,
            upstream: None,
            refused: None,
            last_work: None,
            work_tx: watch::Sender::new(None),
            waiting: Vec::new(),
            assigned: 0,
            announced_hashrate: 0.0,
            reported: 0.0,
            update_at: None,
        }
    }

    /// Sends the channel's current work (or `None`) to its miners.
    fn publish(&self, epoch: u64) {
        let work = self.last_work.as_ref().and_then(|w| {
            let split = self.splitter.as_ref()?;
            // no work without an open upstream channel; the work keeps its job's own target
            // (a `SetTarget` applies to the jobs activated after it, spec 5.3.21, which carry it)
            self.upstream.as_ref()?;
            Some(Arc::new(UpstreamWork {
                epoch,
                id_width: split.id_width(),
                extranonce2_size: split.extranonce2_size(),
                ..w.clone()
            }))
        });
        self.work_tx.send_replace(work);
    }

    /// The channel has no upstream any more (a new epoch, or the pool is down).
    fn clear(&mut self, epoch: u64) {
        self.upstream = None;
        self.refused = None;
        self.last_work = None;
        self.publish(epoch);
    }
}

/// An upstream channel as [`UpstreamEvent::Active`] and [`UpstreamEvent::ChannelOpened`]
/// describe it.
struct Opened {
    channel_id: u32,
    extranonce_prefix: bytes::Bytes,
    extranonce_size: u16,
}

/// The hub's state (sans-IO apart from the channels it is handed).
#[derive(Debug)]
struct Hub {
    cfg: HubConfig,
    /// The upstream channels, by proxy-side index (channel 0 always exists).
    channels: Vec<HubChannel>,
    miners: HashMap<(usize, MinerId), MinerEntry>,
    /// Statistics of miners that left (kept in the totals).
    departed: ProxyStats,
    epoch: u64,
    active_pool: Option<usize>,
    /// Where shares of `epoch` go while `active_pool` is set.
    route: Option<ShareRoute>,
    upstreams: Vec<UpstreamStatus>,
    /// Unbounded, so that the hub never waits on the upstream side: that side waits on the
    /// hub to take its events (share results, work), and a bounded queue each way let the
    /// two wait on each other for good (seen at 40,000 forwards/s with the pool refusing
    /// them). It stays short: the upstream task takes each command at once. Shares do not
    /// go this way but through [`Hub::route`], never waited on either.
    commands: mpsc::UnboundedSender<UpstreamCommand>,
    /// The earliest [`HubChannel::update_at`]: when [`Hub::channel_updates`] is next due.
    next_update: Option<Instant>,
    /// Submit-to-answer latencies (µs) of the shares the pools answered.
    ack_latency: Histogram<u64>,
    /// The same per pool (by index).
    pool_ack_latency: Vec<Histogram<u64>>,
    /// History, alerts and failovers.
    monitor: Monitor,
}

impl Hub {
    fn new(cfg: HubConfig, commands: mpsc::UnboundedSender<UpstreamCommand>) -> Self {
        let cfg_pools = cfg.pools.clone();
        let upstreams = cfg
            .pools
            .iter()
            .map(|url| UpstreamStatus {
                url: url.clone(),
                state: "standby".into(),
                ..UpstreamStatus::default()
            })
            .collect();
        Hub {
            cfg,
            channels: vec![HubChannel::new()],
            miners: HashMap::new(),
            departed: ProxyStats::default(),
            epoch: 0,
            active_pool: None,
            route: None,
            upstreams,
            commands,
            next_update: None,
            ack_latency: ack_histogram(),
            pool_ack_latency: cfg_pools.iter().map(|_| ack_histogram()).collect(),
            monitor: Monitor::detached(crate::monitor::unix_now()),
        }
    }

    /// The channel a joining miner goes to; `true` when it is a new one.
    fn pick_channel(&mut self) -> (usize, bool) {
        let n = self.cfg.miners_per_channel as usize;
        if n == 0 {
            return (0, false);
        }
        if let Some(c) = self
            .channels
            .iter()
            .position(|c| c.assigned < n && c.refused.is_none())
        {
            return (c, false);
        }
        // the pool refuses channels: more miners on the open ones rather than more refusals
        if self.channels.iter().any(|c| c.refused.is_some()) {
            if let Some(c) = self.least_loaded_open() {
                return (c, false);
            }
        }
        self.channels.push(HubChannel::new());
        (self.channels.len() - 1, true)
    }

    /// The open channel with the fewest miners.
    fn least_loaded_open(&self) -> Option<usize> {
        self.channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.upstream.is_some())
            .min_by_key(|(_, c)| c.assigned)
            .map(|(i, _)| i)
    }

    /// A miner joins: answered at once when its channel has been open, else when it opens.
    /// Returns the command asking for a new channel, if one is needed.
    fn join(
        &mut self,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    ) -> Option<UpstreamCommand> {
        let (c, new) = self.pick_channel();
        self.channels[c].assigned += 1;
        if self.channels[c].splitter.is_some() {
            self.answer(c, peer, reply);
        } else {
            tracing::debug!(%peer, channel = c, "miner waits for its upstream channel");
            self.channels[c].waiting.push((peer, reply));
        }
        new.then(|| {
            tracing::info!(
                channel = c,
                miners_per_channel = self.cfg.miners_per_channel,
                "every channel is full: asking for one more"
            );
            UpstreamCommand::Channels(self.channels.len())
        })
    }

    /// Allocates a miner id on channel `c` and sends the answer.
    fn answer(
        &mut self,
        c: usize,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    ) {
        let joined = self.allocate(c, peer);
        if joined.is_err() {
            self.channels[c].assigned = self.channels[c].assigned.saturating_sub(1);
        }
        match reply.send(joined) {
            Ok(()) | Err(Err(_)) => {}
            // the miner went away while waiting: its id is free again
            Err(Ok(j)) => self.forget(c, j.slot.miner),
        }
    }

    fn allocate(&mut self, c: usize, peer: SocketAddr) -> Result<Joined, JoinError> {
        let ch = &mut self.channels[c];
        let split = ch.splitter.as_mut().ok_or(JoinError::Full)?;
        let (miner, _) = split.allocate().map_err(|_| JoinError::Full)?;
        let work = ch.work_tx.subscribe();
        // listed at once; the miner's own reports fill in the rest
        let joined = MinerReport {
            miner,
            worker: String::new(),
            address: peer.to_string(),
            user_agent: String::new(),
            protocol: "",
            difficulty: 0.0,
            hashrate: 0.0,
            accepted: 0,
            accepted_work: 0.0,
            rejected: BTreeMap::new(),
            stale: 0,
            last_share_ms: 0,
            connected_since_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            connected: true,
        };
        self.miners.insert(
            (c, miner),
            MinerEntry {
                report: Some(joined),
                forwarded: 0,
                upstream_accepted: 0,
                upstream_rejected: 0,
            },
        );
        Ok(Joined {
            slot: Slot { miner },
            channel: c,
            work,
        })
    }

    /// A miner left channel `c`: its figures go to the totals, its id is released.
    fn forget(&mut self, c: usize, miner: MinerId) {
        let Some(m) = self.miners.remove(&(c, miner)) else {
            return;
        };
        self.monitor.on_leave((c, miner.0));
        if let Some(ch) = self.channels.get_mut(c) {
            ch.reported -= reported_rate(m.report.as_ref());
        }
        if let Some(r) = m.report {
            self.departed.shares_accepted += r.accepted;
            self.departed.shares_rejected += r.rejected.values().sum::<u64>();
            self.departed.shares_stale += r.stale;
        }
        self.departed.shares_forwarded += m.forwarded;
        self.departed.upstream_accepted += m.upstream_accepted;
        self.departed.upstream_rejected += m.upstream_rejected;
        if let Some(ch) = self.channels.get_mut(c) {
            ch.assigned = ch.assigned.saturating_sub(1);
            if let Some(s) = ch.splitter.as_mut() {
                let _ = s.release(miner);
            }
        }
    }

    /// Channel `c` opened on the active pool: carve its extranonce space (keeping the ids of
    /// miners already on it), then serve the miners waiting for it.
    fn open_channel(&mut self, c: usize, o: Opened) {
        let epoch = self.epoch;
        let Some(ch) = self.channels.get_mut(c) else {
            tracing::warn!(channel = c, "an upstream channel the hub did not ask for");
            return;
        };
        let carved = match ch.splitter.as_mut() {
            Some(s) => s
                .set_upstream(&o.extranonce_prefix, o.extranonce_size)
                .map(|_| ()),
            None => {
                ExtranonceSplitter::new(self.cfg.split, &o.extranonce_prefix, o.extranonce_size)
                    .map(|s| ch.splitter = Some(s))
            }
        };
        if let Err(e) = carved {
            tracing::error!(
                channel = c,
                error = %e,
                "the pool's extranonce space cannot be split among miners: the channel's miners get no work"
            );
            ch.refused = Some(format!("extranonce space unusable: {e}"));
            ch.upstream = None;
            ch.last_work = None;
            ch.publish(epoch);
            return;
        }
        ch.upstream = Some(Upstream {
            channel_id: o.channel_id,
        });
        ch.refused = None;
        ch.last_work = None;
        ch.publish(epoch);
        for (peer, reply) in std::mem::take(&mut ch.waiting) {
            self.answer(c, peer, reply);
        }
    }

    fn on_event(&mut self, ev: UpstreamEvent) {
        match ev {
            UpstreamEvent::Active {
                epoch,
                route,
                pool,
                url,
                channel_id,
                extranonce_prefix,
                extranonce_size,
                ..
            } => {
                self.monitor.on_active(&url, crate::monitor::unix_now());
                self.epoch = epoch;
                self.active_pool = Some(pool);
                self.route = Some(route);
                for ch in &mut self.channels {
                    ch.clear(epoch);
                }
                tracing::info!(pool, channel_id, epoch, "upstream active");
                for (i, u) in self.upstreams.iter_mut().enumerate() {
                    if i == pool {
                        u.state = "active".into();
                    } else if u.state == "active" {
                        u.state = "standby".into();
                    }
                }
                self.open_channel(
                    0,
                    Opened {
                        channel_id,
                        extranonce_prefix,
                        extranonce_size,
                    },
                );
            }
            UpstreamEvent::ChannelOpened {
                epoch,
                channel,
                channel_id,
                extranonce_prefix,
                extranonce_size,
                ..
            } => {
                if epoch == self.epoch {
                    tracing::info!(channel, channel_id, epoch, "upstream channel open");
                    self.open_channel(
                        channel,
                        Opened {
                            channel_id,
                            extranonce_prefix,
                            extranonce_size,
                        },
                    );
                }
            }
            UpstreamEvent::ChannelRefused {
                epoch,
                channel,
                reason,
            } => {
                if epoch != self.epoch {
                    return;
                }
                if let Some(ch) = self.channels.get_mut(channel) {
                    tracing::error!(
                        channel,
                        %reason,
                        miners = ch.assigned,
                        "the pool refused an upstream channel: its miners get no work"
                    );
                    ch.refused = Some(reason);
                    ch.upstream = None;
                    ch.last_work = None;
                    ch.publish(epoch);
                    // miners still waiting for it have no id yet: they go to an open channel
                    // (above the per-channel count) rather than wait for a channel that
                    // does not come; miners already on it keep their id for the next pool
                    let waiting = std::mem::take(&mut ch.waiting);
                    ch.assigned -= waiting.len().min(ch.assigned);
                    if let Some(to) = self.least_loaded_open().filter(|_| !waiting.is_empty()) {
                        tracing::warn!(
                            from = channel,
                            to,
                            miners = waiting.len(),
                            "waiting miners moved to an open channel"
                        );
                    }
                    for (peer, reply) in waiting {
                        match self.least_loaded_open() {
                            Some(to) => {
                                self.channels[to].assigned += 1;
                                self.answer(to, peer, reply);
                            }
                            None => {
                                let ch = &mut self.channels[channel];
                                ch.assigned += 1;
                                ch.waiting.push((peer, reply));
                            }
                        }
                    }
                }
            }
            UpstreamEvent::Work { channel, work } => {
                if work.epoch == self.epoch {
                    if let Some(ch) = self.channels.get_mut(channel) {
                        ch.last_work = Some(work);
                        ch.publish(self.epoch);
                    }
                }
            }
            UpstreamEvent::ExtranoncePrefix {
                epoch,
                channel,
                extranonce_prefix,
            } => {
                if epoch != self.epoch {
                    return;
                }
                if let Some(s) = self
                    .channels
                    .get_mut(channel)
                    .and_then(|ch| ch.splitter.as_mut())
                {
                    let size = s.extranonce_size() as u16;
                    if let Err(e) = s.set_upstream(&extranonce_prefix, size) {
                        tracing::error!(channel, error = %e, "the new extranonce prefix cannot be split");
                    }
                }
                // the next job carries the new prefix; miners follow it
            }
            UpstreamEvent::ShareResult {
                share,
                accepted,
                code,
            } => self.on_share_result(&share, accepted, code),
            UpstreamEvent::Down {
                pool,
                url,
                reason,
                was_active,
            } => {
                tracing::warn!(pool, %url, %reason, "upstream down");
                self.monitor.on_down(&url, &reason, was_active);
                if let Some(u) = self.upstreams.get_mut(pool) {
                    u.state = "down".into();
                    u.last_error = Some(reason);
                }
                if self.active_pool == Some(pool) {
                    self.active_pool = None;
                    self.route = None;
                    for ch in &mut self.channels {
                        ch.clear(self.epoch);
                    }
                }
            }
        }
    }

    /// The pool's (or the upstream side's) answer for a forwarded share.
    fn on_share_result(&mut self, share: &ForwardShare, accepted: bool, code: Option<String>) {
        if accepted || code.as_deref().is_some_and(|c| !PROXY_CODES.contains(&c)) {
            let us = share.received.elapsed().as_micros();
            let us = u64::try_from(us).unwrap_or(u64::MAX).max(1);
            self.ack_latency.saturating_record(us);
            if let Some(h) = self
                .active_pool
                .and_then(|p| self.pool_ack_latency.get_mut(p))
            {
                h.saturating_record(us);
            }
        }
        if let Some(m) = self.miners.get_mut(&(share.channel, share.miner)) {
            if accepted {
                m.upstream_accepted += 1;
            } else {
                m.upstream_rejected += 1;
            }
        }
        if let Some(u) = self.active_pool.and_then(|p| self.upstreams.get_mut(p)) {
            if accepted {
                u.shares_accepted += 1;
            } else {
                *u.shares_rejected
                    .entry(code.unwrap_or_else(|| "rejected".into()))
                    .or_default() += 1;
            }
        }
    }

    fn on_request(&mut self, req: HubRequest) {
        match req {
            HubRequest::Join { peer, reply } => {
                if let Some(cmd) = self.join(peer, reply) {
                    if self.commands.send(cmd).is_err() {
                        tracing::error!("upstream task gone");
                    }
                }
            }
            HubRequest::Leave { channel, miner } => self.forget(channel, miner),
            HubRequest::Share(share) => {
                let key = (share.channel, share.miner);
                if let Some(m) = self.miners.get_mut(&key) {
                    m.forwarded += 1;
                }
                let open = self
                    .channels
                    .get(share.channel)
                    .is_some_and(|c| c.upstream.is_some());
                if share.epoch != self.epoch || self.active_pool.is_none() || !open {
                    if let Some(m) = self.miners.get_mut(&key) {
                        m.upstream_rejected += 1;
                    }
                    tracing::debug!(
                        miner = share.miner.0,
                        channel = share.channel,
                        "share of an old upstream epoch or a closed channel not forwarded"
                    );
                    return;
                }
                if let Some(u) = self.active_pool.and_then(|p| self.upstreams.get_mut(p)) {
                    u.shares_forwarded += 1;
                }
                let sent = match &self.route {
                    Some(route) => route.submit(share),
                    None => Err((share, CODE_STALE_UPSTREAM)),
                };
                if let Err((share, code)) = sent {
                    self.on_share_result(&share, false, Some(code.into()));
                }
            }
            HubRequest::Report { channel, report } => {
                self.on_report(channel, report, Instant::now());
            }
        }
    }

    /// A miner's report. The first one with a hashrate on a channel that has announced
    /// nothing schedules the channel's first `UpdateChannel`.
    fn on_report(&mut self, channel: usize, report: MinerReport, now: Instant) {
        if !self.miners.contains_key(&(channel, report.miner)) {
            return;
        }
        self.monitor.on_report((channel, report.miner.0), &report);
        let Some(m) = self.miners.get_mut(&(channel, report.miner)) else {
            return;
        };
        let wakes = report.connected && report.hashrate > 0.0;
        let change = reported_rate(Some(&report)) - reported_rate(m.report.as_ref());
        m.report = Some(report);
        let delay = FIRST_UPDATE_DELAY.min(self.cfg.update_interval);
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.reported += change;
            let at = now + delay;
            let first = wakes && ch.update_at.is_none();
            let urgent = ch.announced_hashrate > 0.0
                && ch.reported > URGENT_RISE * ch.announced_hashrate
                && ch.update_at.is_some_and(|t| t > at);
            if first || urgent {
                ch.update_at = Some(at);
                self.next_update = Some(self.next_update.map_or(at, |t| t.min(at)));
            }
        }
    }

    /// Summed hashrate of the connected miners, per channel.
    fn hashrates(&self) -> Vec<f64> {
        let mut h = vec![0.0; self.channels.len()];
        for ((c, _), m) in &self.miners {
            if let (Some(r), Some(sum)) = (m.report.as_ref(), h.get_mut(*c)) {
                if r.connected {
                    *sum += r.hashrate;
                }
            }
        }
        h
    }

    /// The `UpdateChannel`s due at `now`: each open channel whose time has come
    /// ([`HubChannel::update_at`]) and whose miners' summed hashrate moved from 0, or by more
    /// than the threshold, since its last announcement. Schedules each channel's next look.
    fn channel_updates(&mut self, now: Instant) -> Vec<UpstreamCommand> {
        let threshold = self.cfg.update_threshold;
        let interval = self.cfg.update_interval;
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        let rates = self.hashrates();
        for (c, (ch, h)) in self.channels.iter_mut().zip(rates).enumerate() {
            // exact again (the running sum drifts by rounding)
            ch.reported = h;
            if ch.update_at.is_some_and(|at| at <= now) {
                let old = ch.announced_hashrate;
                let changed = if old <= 0.0 {
                    h > 0.0
                } else {
                    ((h - old) / old).abs() > threshold
                };
                if changed && ch.upstream.is_some() {
                    ch.announced_hashrate = h;
                    due.push(UpstreamCommand::UpdateHashrate {
                        channel: c,
                        hashrate: h,
                    });
                }
                // with something announced, looked at again after a full interval; with
                // nothing (all miners gone, or no upstream for the first one yet), at the
                // next report with a hashrate
                ch.update_at = (ch.announced_hashrate > 0.0).then(|| now + interval);
            }
            if let Some(at) = ch.update_at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        self.next_update = next;
        due
    }

    fn maybe_update_channels(&mut self, now: Instant) {
        for cmd in self.channel_updates(now) {
            if self.commands.send(cmd).is_err() {
                return;
            }
        }
    }

    fn stats(&self) -> ProxyStats {
        let mut s = ProxyStats {
            miners: self.miners.len(),
            active_pool: self.active_pool,
            channels: self.channels.len(),
            epoch: self.epoch,
            hashrate: self.hashrates().iter().sum(),
            upstream_ack_latency_ms: AckLatency::of(&self.ack_latency),
            ..self.departed.clone()
        };
        for m in self.miners.values() {
            if let Some(r) = &m.report {
                s.shares_accepted += r.accepted;
                s.shares_rejected += r.rejected.values().sum::<u64>();
                s.shares_stale += r.stale;
            }
            s.shares_forwarded += m.forwarded;
            s.upstream_accepted += m.upstream_accepted;
            s.upstream_rejected += m.upstream_rejected;
        }
        s
    }

    fn miners(&self) -> Vec<MinerStatus> {
        let mut out: Vec<MinerStatus> = self
            .miners
            .iter()
            .filter_map(|((c, id), m)| {
                Some(MinerStatus {
                    id: id.0,
                    channel: *c,
                    report: m.report.clone()?,
                    forwarded: m.forwarded,
                    upstream_accepted: m.upstream_accepted,
                    upstream_rejected: m.upstream_rejected,
                })
            })
            .collect();
        out.sort_by_key(|m| (m.channel, m.id));
        out
    }

    fn upstreams(&self) -> Vec<UpstreamStatus> {
        let mut out = self.upstreams.clone();
        for (u, h) in out.iter_mut().zip(&self.pool_ack_latency) {
            u.ack_latency_ms = AckLatency::of(h);
        }
        if let Some(u) = self.active_pool.and_then(|p| out.get_mut(p)) {
            u.announced_hashrate = self
                .channels
                .iter()
                .filter(|c| c.upstream.is_some())
                .map(|c| c.announced_hashrate)
                .sum();
            u.channel_id = self.channels[0].upstream.map(|up| up.channel_id);
            u.channel_ids = self
                .channels
                .iter()
                .filter_map(|c| c.upstream.map(|up| up.channel_id))
                .collect();
            u.channels = self
                .channels
                .iter()
                .enumerate()
                .map(|(index, c)| ChannelStatus {
                    index,
                    state: if c.upstream.is_some() {
                        "open"
                    } else if c.refused.is_some() {
                        "refused"
                    } else {
                        "opening"
                    }
                    .into(),
                    channel_id: c.upstream.map(|up| up.channel_id),
                    error: c.refused.clone(),
                    miners: c.assigned,
                    announced_hashrate: c.announced_hashrate,
                })
                .collect();
        }
        out
    }
}

/// How long until UNIX second `t` (zero once past).
fn until_unix(t: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(t).saturating_sub(now)
}

/// Starts the hub task (with `monitor`: history, alerts, failovers): returns the handle
/// miner tasks use and the query channel of the API.
pub fn spawn(
    cfg: HubConfig,
    monitor: Monitor,
    mut events: mpsc::Receiver<UpstreamEvent>,
    commands: mpsc::UnboundedSender<UpstreamCommand>,
    shutdown: CancellationToken,
) -> (HubHandle, mpsc::Sender<HubQuery>) {
    let (req_tx, mut req_rx) = mpsc::channel::<HubRequest>(4096);
    let (query_tx, mut query_rx) = mpsc::channel::<HubQuery>(64);
    let mut hub = Hub::new(cfg, commands);
    hub.monitor = monitor;
    tokio::spawn(async move {
        // reset to the hub's next update only when that changes (not at every request)
        let wake = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(wake);
        // the monitor's steps are in UNIX seconds: each sleep is measured on the wall clock
        // when it is set, and lasts a step at most (a clock set back delays the step, it
        // does not stop the sampling)
        let step = Duration::from_secs(hub.monitor.resolution());
        let tick = tokio::time::sleep(until_unix(hub.monitor.next_tick()).min(step));
        tokio::pin!(tick);
        loop {
            let next_update = hub.next_update;
            if let Some(at) = next_update.map(tokio::time::Instant::from_std) {
                if wake.deadline() != at {
                    wake.as_mut().reset(at);
                }
            }
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => hub.on_event(ev),
                    None => break,
                },
                req = req_rx.recv() => match req {
                    Some(req) => hub.on_request(req),
                    None => break,
                },
                Some(q) = query_rx.recv() => match q {
                    HubQuery::Stats(r) => { let _ = r.send(hub.stats()); }
                    HubQuery::Miners(r) => { let _ = r.send(hub.miners()); }
                    HubQuery::Upstreams(r) => { let _ = r.send(hub.upstreams()); }
                    HubQuery::Live(r) => { let _ = r.send(hub.monitor.live()); }
                    HubQuery::Alerts(r) => { let _ = r.send(hub.monitor.alerts()); }
                    HubQuery::Failovers(r) => { let _ = r.send(hub.monitor.failovers()); }
                    HubQuery::Monitor(r) => { let _ = r.send(hub.monitor.stats()); }
                },
                () = &mut tick => {
                    hub.monitor.tick(crate::monitor::unix_now());
                    let wait = until_unix(hub.monitor.next_tick()).min(step);
                    tick.as_mut().reset(tokio::time::Instant::now() + wait);
                }
                () = &mut wake, if next_update.is_some() => {
                    // never before the deadline the timer was set for (no spinning on it)
                    let now = next_update.map_or_else(Instant::now, |at| at.max(Instant::now()));
                    hub.maybe_update_channels(now);
                }
                _ = shutdown.cancelled() => break,
            }
        }
        hub.monitor.flush(crate::monitor::unix_now());
        tracing::debug!("hub stopped");
    });
    (HubHandle { requests: req_tx }, query_tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_work::target::Target;

    fn peer(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], n))
    }

    fn hub(miners_per_channel: u32) -> (Hub, mpsc::UnboundedReceiver<UpstreamCommand>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let cfg = HubConfig {
            miners_per_channel,
            pools: vec!["stratum2+tcp://pool:1/KEY".into()],
            ..HubConfig::default()
        };
        (Hub::new(cfg, tx), rx)
    }

    /// Pool 0 active, its share queue gone (shares come back as `stale-upstream`).
    fn active(epoch: u64, channel_id: u32, prefix: u8) -> UpstreamEvent {
        active_via(ShareRoute::channel(epoch, 1).0, channel_id, prefix)
    }

    /// Pool 0 active, its shares going to `route`.
    fn active_via(route: ShareRoute, channel_id: u32, prefix: u8) -> UpstreamEvent {
        UpstreamEvent::Active {
            epoch: route.epoch(),
            route,
            pool: 0,
            url: "stratum2+tcp://pool:1/KEY".into(),
            channel_id,
            extranonce_prefix: bytes::Bytes::from(vec![prefix; 6]),
            extranonce_size: 10,
            target: Target::MAX,
        }
    }

    fn opened(epoch: u64, channel: usize, channel_id: u32, prefix: u8) -> UpstreamEvent {
        UpstreamEvent::ChannelOpened {
            epoch,
            channel,
            channel_id,
            extranonce_prefix: bytes::Bytes::from(vec![prefix; 6]),
            extranonce_size: 10,
            target: Target::MAX,
        }
    }

    /// Upstream work of job `job_id` with extranonce prefix `[prefix; 6]`.
    fn work(job_id: u32, prefix: u8, upstream_target: Target) -> UpstreamWork {
        UpstreamWork {
            epoch: 1,
            seq: u64::from(job_id),
            job_id,
            version: 0x2000_0000,
            version_rolling_allowed: true,
            version_mask: 0x1fff_e000,
            prev_hash: [1; 32],
            nbits: 0x207f_ffff,
            min_ntime: 1,
            coinbase_prefix: bytes::Bytes::from_static(&[1]),
            coinbase_suffix: bytes::Bytes::from_static(&[2]),
            merkle_path: Arc::from(vec![]),
            extended: strata_work::channel::ExtendedWork::new(
                bytes::Bytes::from_static(&[1]),
                bytes::Bytes::from_static(&[2]),
                Arc::from(vec![]),
            ),
            extranonce_prefix: bytes::Bytes::from(vec![prefix; 6]),
            extranonce_size: 10,
            id_width: 0,
            extranonce2_size: 0,
            upstream_target,
            clean: true,
        }
    }

    type Reply = oneshot::Receiver<Result<Joined, JoinError>>;

    /// A join; returns the pending answer and the command it caused.
    fn join(h: &mut Hub, n: u16) -> (Reply, Option<UpstreamCommand>) {
        let (tx, rx) = oneshot::channel();
        let cmd = h.join(peer(n), tx);
        (rx, cmd)
    }

    fn joined(rx: &mut Reply) -> Joined {
        rx.try_recv()
            .expect("answered")
            .expect("joined without error")
    }

    fn report(miner: MinerId, hashrate: f64) -> MinerReport {
        MinerReport {
            miner,
            worker: format!("rig{}", miner.0),
            address: String::new(),
            user_agent: String::new(),
            protocol: "sv1",
            difficulty: 1.0,
            hashrate,
            accepted: 0,
            accepted_work: 0.0,
            rejected: BTreeMap::new(),
            stale: 0,
            last_share_ms: 0,
            connected_since_ms: 0,
            connected: true,
        }
    }

    /// The upstream side takes no shares while it has events for the hub (share results of
    /// a pool refusing a flood of forwards): the hub still takes every share and every
    /// event. With bounded queues both ways the two waited on each other for good.
    #[tokio::test]
    async fn the_hub_takes_events_while_the_upstream_side_takes_no_shares() {
        const SHARES: u32 = 10_000;
        let (events_tx, events_rx) = mpsc::channel(2);
        let (commands_tx, _commands_rx) = mpsc::unbounded_channel();
        let (route, mut shares_rx) = ShareRoute::channel(1, SHARES as usize);
        let shutdown = CancellationToken::new();
        let cfg = HubConfig {
            pools: vec!["stratum2+tcp://pool:1/KEY".into()],
            ..HubConfig::default()
        };
        let (handle, _queries) = spawn(
            cfg,
            Monitor::detached(0),
            events_rx,
            commands_tx,
            shutdown.clone(),
        );
        events_tx
            .send(active_via(route, 7, 0xaa))
            .await
            .expect("hub up");
        let (reply_tx, reply_rx) = oneshot::channel();
        handle
            .requests
            .send(HubRequest::Join {
                peer: peer(1),
                reply: reply_tx,
            })
            .await
            .expect("hub up");
        let joined = reply_rx.await.expect("answered").expect("joined");
        let share = |nonce| ForwardShare {
            channel: joined.channel,
            miner: joined.slot.miner,
            worker: "rig".into(),
            epoch: 1,
            job_id: 1,
            nonce,
            ntime: 0,
            version: 0x2000_0000,
            extranonce: bytes::Bytes::from_static(&[0; 4]),
            difficulty: 1.0,
            received: Instant::now(),
        };
        let flood = tokio::time::timeout(Duration::from_secs(10), async {
            for nonce in 0..SHARES {
                handle
                    .requests
                    .send(HubRequest::Share(share(nonce)))
                    .await
                    .expect("hub up");
                // the upstream side's answer for an earlier share, through a queue of two
                events_tx
                    .send(UpstreamEvent::ShareResult {
                        share: share(nonce),
                        accepted: false,
                        code: Some("invalid-share".into()),
                    })
                    .await
                    .expect("hub up");
            }
        })
        .await;
        assert!(flood.is_ok(), "the hub stopped taking shares or events");
        let mut forwarded = 0;
        let all = tokio::time::timeout(Duration::from_secs(10), async {
            while forwarded < SHARES && shares_rx.recv().await.is_some() {
                forwarded += 1;
            }
        })
        .await;
        assert!(all.is_ok(), "{forwarded} shares forwarded");
        shutdown.cancel();
    }

    /// Each share the pool answers (accepted or refused) adds the time since the proxy took
    /// it from the miner; a share the proxy gave up on itself (`stale-upstream`) adds nothing.
    #[test]
    fn accepted_shares_time_their_acknowledgement() {
        let (mut h, _rx) = hub(0);
        let (route, _shares) = ShareRoute::channel(1, 16);
        h.on_event(active_via(route, 7, 0xaa));
        let (mut reply, _) = join(&mut h, 1);
        let joined = joined(&mut reply);
        let share = |ago_ms: u64| ForwardShare {
            channel: joined.channel,
            miner: joined.slot.miner,
            worker: "rig".into(),
            epoch: 1,
            job_id: 1,
            nonce: 0,
            ntime: 0,
            version: 0x2000_0000,
            extranonce: bytes::Bytes::from_static(&[0; 4]),
            difficulty: 1.0,
            received: Instant::now() - Duration::from_millis(ago_ms),
        };
        let result = |ago_ms, code: Option<&str>| UpstreamEvent::ShareResult {
            share: share(ago_ms),
            accepted: code.is_none(),
            code: code.map(Into::into),
        };
        assert_eq!(
            h.stats().upstream_ack_latency_ms,
            AckLatency::of(&ack_histogram())
        );
        for ago in [3, 4, 6] {
            h.on_event(result(ago, None));
        }
        h.on_event(result(8, Some("stale-share")));
        h.on_event(result(500, Some(CODE_STALE_UPSTREAM)));
        let a = h.stats().upstream_ack_latency_ms;
        assert_eq!(a.samples, 4, "{a:?}");
        // two significant digits (the clock moved on a little since each share was made)
        assert!((3.9..4.5).contains(&a.p50), "{a:?}");
        assert!((7.9..8.5).contains(&a.p99) && a.p99 <= a.max, "{a:?}");
        // Prometheus: cumulative counts at 5 ms and 10 ms, the sum in seconds
        let at = |le: f64| a.buckets[ACK_BUCKETS_S.iter().position(|b| *b == le).unwrap()];
        assert_eq!((at(0.002), at(0.005), at(0.01)), (0, 2, 4), "{a:?}");
        assert!((0.0209..0.0225).contains(&a.sum_s), "{a:?}");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["samples"], 4);
        assert!(json.get("buckets").is_none(), "{json}");
        // the active pool's own figure: the same shares
        assert_eq!(h.upstreams()[0].ack_latency_ms.samples, 4);
        // the pool goes down: answers arriving meanwhile count for no pool
        h.on_event(UpstreamEvent::Down {
            pool: 0,
            url: "stratum2+tcp://pool:1/KEY".into(),
            reason: "eof".into(),
            was_active: true,
        });
        h.on_event(result(3, None));
        assert_eq!(h.upstreams()[0].ack_latency_ms.samples, 4);
        assert_eq!(h.stats().upstream_ack_latency_ms.samples, 5);
    }

    /// `/api/v1/upstreams`: the active pool's announced hashrate is the sum over its open
    /// channels; a pool that is not active announces nothing.
    #[test]
    fn the_active_pool_shows_its_announced_hashrate() {
        let (mut h, _rx) = hub(1);
        h.on_event(active(1, 7, 0xaa));
        let (mut a, _) = join(&mut h, 1);
        let ja = joined(&mut a);
        let (_b, _) = join(&mut h, 2);
        h.on_event(opened(1, 1, 8, 0xbb));
        h.on_report(ja.channel, report(ja.slot.miner, 100.0), Instant::now());
        let t = Instant::now() + Duration::from_secs(60);
        let _ = h.channel_updates(t);
        assert_eq!(h.upstreams()[0].announced_hashrate, 100.0);
        h.on_event(UpstreamEvent::Down {
            pool: 0,
            url: "stratum2+tcp://pool:1/KEY".into(),
            reason: "eof".into(),
            was_active: true,
        });
        assert_eq!(h.upstreams()[0].announced_hashrate, 0.0);
    }

    #[test]
    fn two_miners_per_channel_the_third_asks_for_a_second_channel() {
        let (mut h, _rx) = hub(2);
        h.on_event(active(1, 7, 0xaa));
        let (mut a, cmd_a) = join(&mut h, 1);
        let (mut b, cmd_b) = join(&mut h, 2);
        assert_eq!((cmd_a, cmd_b), (None, None));
        let (ja, jb) = (joined(&mut a), joined(&mut b));
        assert_eq!((ja.channel, jb.channel), (0, 0));
        assert_ne!(ja.slot.miner, jb.slot.miner);

        // the third finds every channel full: one more is asked for, the miner waits
        let (mut c, cmd_c) = join(&mut h, 3);
        assert_eq!(cmd_c, Some(UpstreamCommand::Channels(2)));
        assert!(matches!(
            c.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ));
        // a fourth fits the new channel: no further request
        let (mut d, cmd_d) = join(&mut h, 4);
        assert_eq!(cmd_d, None);
        // channel 1 opens: both waiting miners are answered on it, with its own work
        h.on_event(opened(1, 1, 8, 0xcc));
        let (jc, jd) = (joined(&mut c), joined(&mut d));
        assert_eq!((jc.channel, jd.channel), (1, 1));
        // ids are per channel: the hub tells them apart by (channel, id)
        assert_eq!(jc.slot.miner, ja.slot.miner);
        assert_eq!(h.miners.len(), 4);
        let ups = h.upstreams();
        assert_eq!(ups[0].channel_ids, vec![7, 8]);
        assert_eq!(ups[0].channel_id, Some(7));
        assert_eq!(
            ups[0].channels.iter().map(|c| c.miners).collect::<Vec<_>>(),
            vec![2, 2]
        );

        // work reaches each channel's miners only, with that channel's prefix
        let mut w = work(5, 0xcc, Target::MAX);
        h.on_event(UpstreamEvent::Work {
            channel: 1,
            work: w.clone(),
        });
        assert!(ja.work.borrow().is_none());
        let got = jc.work.borrow().clone().expect("channel 1 work");
        assert_eq!(&got.extranonce_prefix[..], &[0xcc; 6]);
        assert!(got.id_width > 0 && got.extranonce2_size > 0);
        w.extranonce_prefix = bytes::Bytes::from(vec![0xaa; 6]);
        h.on_event(UpstreamEvent::Work {
            channel: 0,
            work: w,
        });
        assert!(jb.work.borrow().is_some());

        // a miner of channel 0 leaves: the next one takes its place there
        h.forget(0, ja.slot.miner);
        let (mut e, cmd_e) = join(&mut h, 5);
        assert_eq!(cmd_e, None);
        assert_eq!(joined(&mut e).channel, 0);
    }

    /// A `SetTarget` applies to the jobs activated after it (spec 5.3.21): it never reaches
    /// the hub (the upstream session keeps it in its channel state, which
    /// `tests/upstream_session.rs` checks); each work the hub publishes is judged at its own
    /// job's target, and the next work, which the session builds with the new target, carries
    /// it.
    #[test]
    fn a_set_target_waits_for_the_next_job() {
        let (mut h, _rx) = hub(0);
        h.on_event(active(1, 7, 0xaa));
        let (mut a, _) = join(&mut h, 1);
        let mut rx = joined(&mut a).work;
        let job_target = Target::from_le_bytes([0x11; 32]);
        let work = |job_id, upstream_target| UpstreamEvent::Work {
            channel: 0,
            work: work(job_id, 0xaa, upstream_target),
        };
        h.on_event(work(5, job_target));
        assert!(rx.has_changed().unwrap());
        let got = rx.borrow_and_update().clone().expect("work");
        assert_eq!(got.upstream_target, job_target);
        // the pool makes shares easier (a SetTarget the hub does not see): the current job is
        // still judged at its own target, and the miners are not woken until the next job
        assert!(!rx.has_changed().unwrap(), "miners woken without new work");
        h.on_event(work(6, Target::MAX));
        let got = rx.borrow_and_update().clone().expect("work");
        assert_eq!((got.job_id, got.upstream_target), (6, Target::MAX));
    }

    #[test]
    fn zero_means_every_miner_on_channel_zero() {
        let (mut h, _rx) = hub(0);
        let (mut a, _) = join(&mut h, 1);
        // no upstream yet: the miner waits
        assert!(a.try_recv().is_err());
        h.on_event(active(1, 7, 0xaa));
        assert_eq!(joined(&mut a).channel, 0);
        for n in 2..50 {
            let (mut r, cmd) = join(&mut h, n);
            assert_eq!(cmd, None);
            assert_eq!(joined(&mut r).channel, 0);
        }
        assert_eq!(h.channels.len(), 1);
    }

    #[test]
    fn a_refused_channel_sends_its_waiting_miners_to_an_open_one() {
        let (mut h, _rx) = hub(1);
        h.on_event(active(1, 7, 0xaa));
        let (mut a, _) = join(&mut h, 1);
        let ja = joined(&mut a);
        let (mut b, cmd) = join(&mut h, 2);
        assert_eq!(cmd, Some(UpstreamCommand::Channels(2)));
        h.on_event(UpstreamEvent::ChannelRefused {
            epoch: 1,
            channel: 1,
            reason: "max-channels".into(),
        });
        // the waiting miner goes to the open channel, above the per-channel count
        let jb = joined(&mut b);
        assert_eq!((ja.channel, jb.channel), (0, 0));
        let ups = h.upstreams();
        assert_eq!(ups[0].channels[1].state, "refused");
        assert_eq!(ups[0].channels[1].error.as_deref(), Some("max-channels"));
        assert_eq!(ups[0].channels[0].state, "open");
        assert_eq!(ups[0].channels[0].miners, 2);
        // and so do later miners, without asking for more refusals
        let (mut c, cmd) = join(&mut h, 3);
        assert_eq!(cmd, None);
        assert_eq!(joined(&mut c).channel, 0);
        // a new pool opens channel 1: the next miner goes there
        h.on_event(active(2, 70, 0xbb));
        h.on_event(opened(2, 1, 71, 0xbc));
        let (mut d, cmd) = join(&mut h, 4);
        assert_eq!(cmd, None);
        assert_eq!(joined(&mut d).channel, 1);
        // an event of an old epoch changes nothing
        h.on_event(UpstreamEvent::ChannelRefused {
            epoch: 1,
            channel: 1,
            reason: "late".into(),
        });
        assert_eq!(h.upstreams()[0].channels[1].state, "open");
    }

    #[test]
    fn a_miners_hashrate_is_the_implied_one_until_its_window_holds_enough_shares() {
        let t0 = Instant::now();
        let cfg = strata_work::vardiff::VardiffConfig::default();
        let mut v = Vardiff::new(cfg, 1024.0, t0).unwrap();
        // difficulty x 2^32 x shares_per_minute / 60, up to the target's rounding
        let implied = hashrate_from_target(&v.target(), cfg.shares_per_minute).unwrap();
        let formula = 1024.0 * 2f64.powi(32) * cfg.shares_per_minute / 60.0;
        assert!((implied - formula).abs() < 1e-3 * formula);
        assert_eq!(v.hashrate(t0), 0.0, "no estimate without shares");
        assert_eq!(miner_hashrate(&v, t0), implied);
        // shares every 100 ms: far more than the difficulty is for
        let target = v.target();
        let at = |k: u64| t0 + Duration::from_millis(100 * k);
        for k in 1..ESTIMATE_MIN_SHARES {
            v.on_share(at(k), &target);
            assert_eq!(miner_hashrate(&v, at(k)), implied, "{k} shares");
        }
        let n = ESTIMATE_MIN_SHARES;
        v.on_share(at(n), &target);
        assert_eq!(miner_hashrate(&v, at(n)), v.hashrate(at(n)));
        assert!(v.hashrate(at(n)) > 50.0 * implied);
    }

    /// Joins `n` miners on an open channel 0; their ids.
    fn joined_miners(h: &mut Hub, n: u16) -> Vec<MinerId> {
        (1..=n)
            .map(|p| {
                let (mut r, _) = join(h, p);
                joined(&mut r).slot.miner
            })
            .collect()
    }

    fn update(channel: usize, hashrate: f64) -> UpstreamCommand {
        UpstreamCommand::UpdateHashrate { channel, hashrate }
    }

    #[test]
    fn update_channel_per_channel_with_its_miners_hashrate() {
        let (mut h, _rx) = hub(2);
        h.on_event(active(1, 7, 0xaa));
        let mut ids = vec![];
        for n in 1..=3 {
            let (mut r, _) = join(&mut h, n);
            if n == 3 {
                h.on_event(opened(1, 1, 8, 0xcc));
            }
            let j = joined(&mut r);
            ids.push((j.channel, j.slot.miner));
        }
        let t0 = Instant::now();
        for (i, (c, m)) in ids.iter().enumerate() {
            h.on_report(*c, report(*m, 100.0 * (i as f64 + 1.0)), t0);
        }
        let first = t0 + FIRST_UPDATE_DELAY;
        assert_eq!(h.next_update, Some(first));
        assert!(h.channel_updates(t0).is_empty(), "not before the delay");
        assert_eq!(
            h.channel_updates(first),
            vec![update(0, 300.0), update(1, 300.0)]
        );
        assert_eq!(h.upstreams()[0].channels[1].announced_hashrate, 300.0);

        // debounced: nothing new before an interval has passed, then only beyond the threshold
        let interval = h.cfg.update_interval;
        assert_eq!(h.next_update, Some(first + interval));
        let (c, m) = ids[2];
        h.on_report(c, report(m, 400.0), first + Duration::from_secs(1));
        let (c0, m0) = ids[0];
        h.on_report(c0, report(m0, 105.0), first + Duration::from_secs(1));
        assert!(h
            .channel_updates(first + interval - Duration::from_millis(1))
            .is_empty());
        assert_eq!(
            h.channel_updates(first + interval),
            vec![update(1, 400.0)],
            "channel 0 moved by 2.5 %, channel 1 by a third"
        );
        assert_eq!(h.next_update, Some(first + 2 * interval));
    }

    #[test]
    fn the_first_update_channel_goes_out_a_second_after_the_first_report_with_a_hashrate() {
        let (mut h, _rx) = hub(0);
        h.on_event(active(1, 7, 0xaa));
        let ids = joined_miners(&mut h, 3);
        // joins alone (their listing has no hashrate) schedule nothing
        assert_eq!(h.next_update, None);
        let t0 = Instant::now();
        h.on_report(0, report(ids[0], 0.0), t0);
        assert_eq!(h.next_update, None, "a report without a hashrate");
        h.on_report(0, report(ids[0], 1e12), t0);
        assert_eq!(h.next_update, Some(t0 + FIRST_UPDATE_DELAY));
        // the miners connecting meanwhile are part of the first announcement
        let t1 = t0 + Duration::from_millis(600);
        h.on_report(0, report(ids[1], 2e12), t1);
        h.on_report(0, report(ids[2], 3e12), t1);
        assert_eq!(h.next_update, Some(t0 + FIRST_UPDATE_DELAY));
        assert!(h.channel_updates(t1).is_empty());
        assert_eq!(
            h.channel_updates(t0 + FIRST_UPDATE_DELAY),
            vec![update(0, 6e12)]
        );
        assert_eq!(h.upstreams()[0].channels[0].announced_hashrate, 6e12);
    }

    /// ASICs are first counted at the hashrate their starting difficulty implies, then at
    /// their estimates a second later, a hundred times higher: that rise goes out after the
    /// short delay, not after `update_interval`; a fall waits for the interval.
    #[test]
    fn a_sharp_rise_is_announced_without_waiting_for_the_interval() {
        let (mut h, _rx) = hub(0);
        h.on_event(active(1, 7, 0xaa));
        let ids = joined_miners(&mut h, 2);
        let t0 = Instant::now();
        h.on_report(0, report(ids[0], 1e12), t0);
        h.on_report(0, report(ids[1], 1e12), t0);
        let first = t0 + FIRST_UPDATE_DELAY;
        assert_eq!(h.channel_updates(first), vec![update(0, 2e12)]);
        let interval = h.cfg.update_interval;
        assert_eq!(h.next_update, Some(first + interval));
        // a rise under URGENT_RISE waits for the interval
        let t1 = first + Duration::from_millis(200);
        h.on_report(0, report(ids[0], 2.5e12), t1);
        assert_eq!(h.next_update, Some(first + interval));
        // the estimates take over: far above twice the announcement
        let t2 = t1 + Duration::from_millis(300);
        h.on_report(0, report(ids[1], 100e12), t2);
        assert_eq!(h.next_update, Some(t2 + FIRST_UPDATE_DELAY));
        assert!(
            h.channel_updates(t2).is_empty(),
            "not before the short delay"
        );
        assert_eq!(
            h.channel_updates(t2 + FIRST_UPDATE_DELAY),
            vec![update(0, 102.5e12)]
        );
        // a fall, however large, waits for the interval
        let t3 = t2 + FIRST_UPDATE_DELAY + Duration::from_millis(100);
        h.on_report(0, report(ids[1], 1e12), t3);
        assert_eq!(h.next_update, Some(t2 + FIRST_UPDATE_DELAY + interval));
        // a miner leaving takes its hashrate out of the running sum
        h.forget(0, ids[0]);
        h.on_report(0, report(ids[1], 3e12), t3);
        assert_eq!(
            h.next_update,
            Some(t2 + FIRST_UPDATE_DELAY + interval),
            "3e12 alone is not twice 102.5e12"
        );
    }

    #[test]
    fn a_channel_whose_miners_all_left_announces_zero_then_its_next_miner_promptly() {
        let (mut h, _rx) = hub(0);
        h.on_event(active(1, 7, 0xaa));
        let ids = joined_miners(&mut h, 1);
        let t0 = Instant::now();
        h.on_report(0, report(ids[0], 500.0), t0);
        let first = t0 + FIRST_UPDATE_DELAY;
        assert_eq!(h.channel_updates(first), vec![update(0, 500.0)]);
        // the last report of a leaving miner does not count
        let mut last = report(ids[0], 500.0);
        last.connected = false;
        h.on_report(0, last, first + Duration::from_secs(2));
        h.forget(0, ids[0]);
        let interval = h.cfg.update_interval;
        assert_eq!(h.channel_updates(first + interval), vec![update(0, 0.0)]);
        assert_eq!(
            h.next_update, None,
            "nothing to look at until a miner reports"
        );
        // a miner comes back: its first report is announced after the short delay again
        let back = joined_miners(&mut h, 1);
        let t2 = first + interval + Duration::from_secs(3);
        h.on_report(0, report(back[0], 700.0), t2);
        assert_eq!(h.next_update, Some(t2 + FIRST_UPDATE_DELAY));
        assert_eq!(
            h.channel_updates(t2 + FIRST_UPDATE_DELAY),
            vec![update(0, 700.0)]
        );
    }

    #[test]
    fn a_first_report_while_the_channel_has_no_upstream_waits_for_the_next_report() {
        let (mut h, _rx) = hub(0);
        h.on_event(active(1, 7, 0xaa));
        let ids = joined_miners(&mut h, 1);
        h.on_event(UpstreamEvent::Down {
            pool: 0,
            url: "stratum2+tcp://pool:1/KEY".into(),
            reason: "gone".into(),
            was_active: true,
        });
        let t0 = Instant::now();
        h.on_report(0, report(ids[0], 500.0), t0);
        let first = t0 + FIRST_UPDATE_DELAY;
        assert!(h.channel_updates(first).is_empty(), "no pool to tell");
        // no timer left running on it (no spinning while the pool is down)
        assert_eq!(h.next_update, None);
        h.on_event(active(2, 9, 0xab));
        let t1 = first + Duration::from_secs(10);
        h.on_report(0, report(ids[0], 500.0), t1);
        assert_eq!(
            h.channel_updates(t1 + FIRST_UPDATE_DELAY),
            vec![update(0, 500.0)]
        );
    }
}
