//! The hub: the one task that owns the active upstream channel's state, the extranonce
//! splitter and the routing of forwarded shares. Miner tasks talk to it with
//! [`HubRequest`]s and read the current [`UpstreamWork`] from a `watch` channel.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use strata_work::extranonce::{ExtranonceSplitter, MinerId, SplitConfig};
use strata_work::target::Target;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::upstream::{UpstreamCommand, UpstreamEvent};
use crate::work::{ForwardShare, UpstreamWork};

/// A miner's place in the upstream channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Its id (stable for the connection's life, across upstream switches).
    pub miner: MinerId,
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
    /// A miner connected (SV1: at `mining.subscribe`): allocate its id.
    Join {
        /// Its address.
        peer: SocketAddr,
        /// The answer.
        reply: oneshot::Sender<Result<Slot, JoinError>>,
    },
    /// A miner left: release its id.
    Leave {
        /// The miner.
        miner: MinerId,
    },
    /// A share meeting the upstream target: forward it.
    Share(ForwardShare),
    /// Periodic figures of one miner (for UpdateChannel and the API).
    Report(MinerReport),
}

/// What a miner task reports about its miner (about every 10 s and at disconnect).
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
    /// Estimated hashes per second (vardiff).
    pub hashrate: f64,
    /// Shares accepted locally.
    pub accepted: u64,
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

/// The handle miner tasks hold.
#[derive(Debug, Clone)]
pub struct HubHandle {
    /// Requests to the hub.
    pub requests: mpsc::Sender<HubRequest>,
    /// The current work (`None` while no upstream is usable).
    pub work: watch::Receiver<Option<Arc<UpstreamWork>>>,
}

// -------------------------------------------------------------------------------------------
// the hub task
// -------------------------------------------------------------------------------------------

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How the upstream extranonce space is split among miners.
    pub split: SplitConfig,
    /// How often the summed miner hashrate is considered for an `UpdateChannel`.
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
            update_interval: Duration::from_secs(10),
            update_threshold: 0.1,
            pools: vec![],
        }
    }
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
    /// The extended channel id while active.
    pub channel_id: Option<u32>,
    /// Shares forwarded to it.
    pub shares_forwarded: u64,
    /// Shares it acknowledged.
    pub shares_accepted: u64,
    /// Shares it rejected, by code.
    pub shares_rejected: BTreeMap<String, u64>,
}

/// A miner as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MinerStatus {
    /// The miner's id.
    pub id: u32,
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
}

#[derive(Debug)]
struct MinerEntry {
    report: Option<MinerReport>,
    forwarded: u64,
    upstream_accepted: u64,
    upstream_rejected: u64,
}

#[derive(Debug)]
struct Active {
    pool: usize,
    target: Target,
}

/// The hub's state (sans-IO apart from the channels it is handed).
#[derive(Debug)]
struct Hub {
    cfg: HubConfig,
    splitter: Option<ExtranonceSplitter>,
    /// Miners waiting for a first upstream to get an id.
    waiting: Vec<(SocketAddr, oneshot::Sender<Result<Slot, JoinError>>)>,
    miners: HashMap<MinerId, MinerEntry>,
    /// Statistics of miners that left (kept in the totals).
    departed: ProxyStats,
    epoch: u64,
    active: Option<Active>,
    last_work: Option<UpstreamWork>,
    upstreams: Vec<UpstreamStatus>,
    work_tx: watch::Sender<Option<Arc<UpstreamWork>>>,
    commands: mpsc::Sender<UpstreamCommand>,
    announced_hashrate: f64,
}

impl Hub {
    fn publish(&mut self) {
        let work = self.last_work.as_ref().and_then(|w| {
            let split = self.splitter.as_ref()?;
            let active = self.active.as_ref()?;
            Some(Arc::new(UpstreamWork {
                epoch: self.epoch,
                id_width: split.id_width(),
                extranonce2_size: split.extranonce2_size(),
                upstream_target: active.target,
                ..w.clone()
            }))
        });
        self.work_tx.send_replace(work);
    }

    fn allocate(&mut self, peer: SocketAddr) -> Result<Slot, JoinError> {
        let split = self.splitter.as_mut().ok_or(JoinError::Full)?;
        let (miner, _) = split.allocate().map_err(|_| JoinError::Full)?;
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
            rejected: BTreeMap::new(),
            stale: 0,
            last_share_ms: 0,
            connected_since_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            connected: true,
        };
        self.miners.insert(
            miner,
            MinerEntry {
                report: Some(joined),
                forwarded: 0,
                upstream_accepted: 0,
                upstream_rejected: 0,
            },
        );
        Ok(Slot { miner })
    }

    fn on_event(&mut self, ev: UpstreamEvent) {
        match ev {
            UpstreamEvent::Active {
                epoch,
                pool,
                channel_id,
                extranonce_prefix,
                extranonce_size,
                target,
                ..
            } => {
                self.epoch = epoch;
                let carved = match self.splitter.as_mut() {
                    Some(s) => s
                        .set_upstream(&extranonce_prefix, extranonce_size)
                        .map(|_| ()),
                    None => {
                        ExtranonceSplitter::new(self.cfg.split, &extranonce_prefix, extranonce_size)
                            .map(|s| self.splitter = Some(s))
                    }
                };
                if let Err(e) = carved {
                    tracing::error!(pool, error = %e, "the pool's extranonce space cannot be split among miners");
                    self.active = None;
                    self.last_work = None;
                    self.publish();
                    return;
                }
                tracing::info!(pool, channel_id, epoch = self.epoch, "upstream active");
                for (i, u) in self.upstreams.iter_mut().enumerate() {
                    if i == pool {
                        u.state = "active".into();
                        u.channel_id = Some(channel_id);
                    } else {
                        if u.state == "active" {
                            u.state = "standby".into();
                        }
                        u.channel_id = None;
                    }
                }
                self.active = Some(Active { pool, target });
                self.last_work = None;
                self.publish();
                for (peer, reply) in std::mem::take(&mut self.waiting) {
                    let slot = self.allocate(peer);
                    let _ = reply.send(slot);
                }
            }
            UpstreamEvent::Work(w) => {
                if w.epoch == self.epoch {
                    self.last_work = Some(w);
                    self.publish();
                }
            }
            UpstreamEvent::Target { epoch, target } => {
                if epoch == self.epoch {
                    if let Some(a) = self.active.as_mut() {
                        a.target = target;
                    }
                    self.publish();
                }
            }
            UpstreamEvent::ExtranoncePrefix {
                epoch,
                extranonce_prefix,
            } => {
                if epoch != self.epoch {
                    return;
                }
                if let Some(s) = self.splitter.as_mut() {
                    let size = s.extranonce_size() as u16;
                    if let Err(e) = s.set_upstream(&extranonce_prefix, size) {
                        tracing::error!(error = %e, "the new extranonce prefix cannot be split");
                    }
                }
                // the next job carries the new prefix; miners follow it
            }
            UpstreamEvent::ShareResult {
                share,
                accepted,
                code,
            } => {
                let pool = self.active.as_ref().map(|a| a.pool);
                if let Some(m) = self.miners.get_mut(&share.miner) {
                    if accepted {
                        m.upstream_accepted += 1;
                    } else {
                        m.upstream_rejected += 1;
                    }
                }
                if let Some(u) = pool.and_then(|p| self.upstreams.get_mut(p)) {
                    if accepted {
                        u.shares_accepted += 1;
                    } else {
                        *u.shares_rejected
                            .entry(code.unwrap_or_else(|| "rejected".into()))
                            .or_default() += 1;
                    }
                }
            }
            UpstreamEvent::Down {
                pool, url, reason, ..
            } => {
                tracing::warn!(pool, %url, %reason, "upstream down");
                if let Some(u) = self.upstreams.get_mut(pool) {
                    u.state = "down".into();
                    u.last_error = Some(reason);
                    u.channel_id = None;
                }
                if self.active.as_ref().is_some_and(|a| a.pool == pool) {
                    self.active = None;
                    self.last_work = None;
                    self.publish();
                }
            }
        }
    }

    async fn on_request(&mut self, req: HubRequest) {
        match req {
            HubRequest::Join { peer, reply } => {
                if self.splitter.is_none() {
                    tracing::debug!(%peer, "miner waits for a first upstream");
                    self.waiting.push((peer, reply));
                } else {
                    let _ = reply.send(self.allocate(peer));
                }
            }
            HubRequest::Leave { miner } => {
                if let Some(m) = self.miners.remove(&miner) {
                    if let Some(r) = m.report {
                        self.departed.shares_accepted += r.accepted;
                        self.departed.shares_rejected += r.rejected.values().sum::<u64>();
                        self.departed.shares_stale += r.stale;
                    }
                    self.departed.shares_forwarded += m.forwarded;
                    self.departed.upstream_accepted += m.upstream_accepted;
                    self.departed.upstream_rejected += m.upstream_rejected;
                }
                if let Some(s) = self.splitter.as_mut() {
                    let _ = s.release(miner);
                }
            }
            HubRequest::Share(share) => {
                if let Some(m) = self.miners.get_mut(&share.miner) {
                    m.forwarded += 1;
                }
                let active = self.active.as_ref().map(|a| a.pool);
                if share.epoch != self.epoch || active.is_none() {
                    if let Some(m) = self.miners.get_mut(&share.miner) {
                        m.upstream_rejected += 1;
                    }
                    tracing::debug!(
                        miner = share.miner.0,
                        "share of an old upstream epoch not forwarded"
                    );
                    return;
                }
                if let Some(u) = active.and_then(|p| self.upstreams.get_mut(p)) {
                    u.shares_forwarded += 1;
                }
                if self
                    .commands
                    .send(UpstreamCommand::Submit(share))
                    .await
                    .is_err()
                {
                    tracing::error!("upstream task gone");
                }
            }
            HubRequest::Report(r) => {
                if let Some(m) = self.miners.get_mut(&r.miner) {
                    m.report = Some(r);
                }
            }
        }
    }

    fn hashrate(&self) -> f64 {
        self.miners
            .values()
            .filter_map(|m| m.report.as_ref())
            .filter(|r| r.connected)
            .map(|r| r.hashrate)
            .fold(0.0, |a, b| a + b)
    }

    async fn maybe_update_channel(&mut self) {
        let h = self.hashrate();
        let old = self.announced_hashrate;
        let changed = if old <= 0.0 {
            h > 0.0
        } else {
            ((h - old) / old).abs() > self.cfg.update_threshold
        };
        if changed && self.active.is_some() {
            self.announced_hashrate = h;
            let _ = self.commands.send(UpstreamCommand::UpdateHashrate(h)).await;
        }
    }

    fn stats(&self) -> ProxyStats {
        let mut s = ProxyStats {
            miners: self.miners.len(),
            active_pool: self.active.as_ref().map(|a| a.pool),
            epoch: self.epoch,
            hashrate: self.hashrate(),
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
            .filter_map(|(id, m)| {
                Some(MinerStatus {
                    id: id.0,
                    report: m.report.clone()?,
                    forwarded: m.forwarded,
                    upstream_accepted: m.upstream_accepted,
                    upstream_rejected: m.upstream_rejected,
                })
            })
            .collect();
        out.sort_by_key(|m| m.id);
        out
    }
}

/// Starts the hub task: returns the handle miner tasks use and the query channel of the API.
pub fn spawn(
    cfg: HubConfig,
    mut events: mpsc::Receiver<UpstreamEvent>,
    commands: mpsc::Sender<UpstreamCommand>,
    shutdown: CancellationToken,
) -> (HubHandle, mpsc::Sender<HubQuery>) {
    let (work_tx, work_rx) = watch::channel(None);
    let (req_tx, mut req_rx) = mpsc::channel::<HubRequest>(4096);
    let (query_tx, mut query_rx) = mpsc::channel::<HubQuery>(64);
    let upstreams = cfg
        .pools
        .iter()
        .map(|url| UpstreamStatus {
            url: url.clone(),
            state: "standby".into(),
            ..UpstreamStatus::default()
        })
        .collect();
    let mut hub = Hub {
        cfg,
        splitter: None,
        waiting: vec![],
        miners: HashMap::new(),
        departed: ProxyStats::default(),
        epoch: 0,
        active: None,
        last_work: None,
        upstreams,
        work_tx,
        commands,
        announced_hashrate: 0.0,
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(hub.cfg.update_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let started = Instant::now();
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => hub.on_event(ev),
                    None => break,
                },
                req = req_rx.recv() => match req {
                    Some(req) => hub.on_request(req).await,
                    None => break,
                },
                Some(q) = query_rx.recv() => match q {
                    HubQuery::Stats(r) => { let _ = r.send(hub.stats()); }
                    HubQuery::Miners(r) => { let _ = r.send(hub.miners()); }
                    HubQuery::Upstreams(r) => { let _ = r.send(hub.upstreams.clone()); }
                },
                _ = tick.tick() => {
                    if started.elapsed() >= hub.cfg.update_interval {
                        hub.maybe_update_channel().await;
                    }
                }
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::debug!("hub stopped");
    });
    (
        HubHandle {
            requests: req_tx,
            work: work_rx,
        },
        query_tx,
    )
}
