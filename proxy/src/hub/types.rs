//! What the hub's users send it and read from it: joins, reports, queries and the
//! statuses the API shows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use strata_work::extranonce::{MinerId, SplitConfig};
use strata_work::target::hashrate_from_target;
use strata_work::vardiff::Vardiff;
use tokio::sync::{mpsc, oneshot, watch};

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

impl MinerReport {
    /// The report of a miner that has just joined and reported nothing yet: its address and
    /// the time it connected, every count at zero. The miner's own reports fill in the rest.
    pub fn joined(miner: MinerId, address: String, connected_since_ms: u64) -> MinerReport {
        MinerReport {
            miner,
            worker: String::new(),
            address,
            user_agent: String::new(),
            protocol: "",
            difficulty: 0.0,
            hashrate: 0.0,
            accepted: 0,
            accepted_work: 0.0,
            rejected: BTreeMap::new(),
            stale: 0,
            last_share_ms: 0,
            connected_since_ms,
            connected: true,
        }
    }
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
pub(super) fn reported_rate(r: Option<&MinerReport>) -> f64 {
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
pub(super) fn ack_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid")
}

impl AckLatency {
    pub(super) fn of(h: &Histogram<u64>) -> Self {
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
