//! Pool statistics: one task owns the counters; connection tasks and the work manager send
//! events, the HTTP API asks for snapshots. Accepted-share totals start from the ledger so
//! they survive restarts; rejects and hashrates are since start.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::ledger::WorkerTotals;

/// Something that happened, for the counters.
#[derive(Debug)]
pub enum StatsEvent {
    /// A miner completed the handshake.
    Connected,
    /// A miner left.
    Disconnected {
        /// Its connection id.
        conn: u64,
    },
    /// Shares were committed to the ledger (one event per ledger transaction, summed per
    /// worker; `last_share_ms` places them in the hashrate window).
    Committed(Vec<WorkerTotals>),
    /// A share was rejected.
    Rejected {
        /// Worker identity (empty for an unknown channel).
        worker: String,
        /// The `SubmitShares.Error` code.
        code: &'static str,
    },
    /// A channel's hashrate estimate (vardiff).
    Hashrate {
        /// Connection.
        conn: u64,
        /// Worker identity.
        worker: String,
        /// Hashes per second.
        hashrate: f64,
    },
    /// A block was accepted by the template source.
    BlockFound,
    /// A block was rejected by the template source.
    BlockRejected,
    /// New work at this height.
    Height(u32),
}

/// Per-worker figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WorkerStats {
    /// The worker's user identity.
    pub worker: String,
    /// Accepted shares.
    pub shares_accepted: u64,
    /// Sum of accepted share difficulties.
    pub difficulty_accepted: f64,
    /// Rejected shares by error code.
    pub rejected: BTreeMap<String, u64>,
    /// Estimated hashes per second from the difficulty of its accepted shares over the last
    /// 10 minutes (extension 0x0002 workers behind a proxy's channel included).
    pub hashrate: f64,
    /// UNIX ms of the last accepted share (0 if none).
    pub last_share_ms: u64,
}

/// Pool-wide figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PoolStats {
    /// Height of the block being mined.
    pub height: u32,
    /// Blocks accepted by the template source (all time, from the ledger at start).
    pub blocks_found: u64,
    /// Blocks the template source rejected (since start).
    pub blocks_rejected: u64,
    /// Accepted shares (all time).
    pub shares_accepted: u64,
    /// Sum of the accepted shares' difficulty (all time).
    pub difficulty_accepted: f64,
    /// Rejected shares (since start).
    pub shares_rejected: u64,
    /// Rejected shares by code (since start).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Miners connected now.
    pub connections: u64,
    /// Estimated pool hashrate (h/s).
    pub hashrate: f64,
}

enum Msg {
    Event(StatsEvent),
    Pool(oneshot::Sender<PoolStats>),
    Workers(oneshot::Sender<Vec<WorkerStats>>),
}

/// Handle to the statistics task. Sending never blocks (events are small and the task only
/// does arithmetic).
#[derive(Debug, Clone)]
pub struct StatsHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stats message")
    }
}

impl StatsHandle {
    /// Records an event (dropped silently once the pool is stopping).
    pub fn send(&self, ev: StatsEvent) {
        let _ = self.tx.send(Msg::Event(ev));
    }

    /// Pool-wide figures.
    pub async fn pool(&self) -> Option<PoolStats> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Pool(tx)).ok()?;
        rx.await.ok()
    }

    /// Per-worker figures, sorted by worker.
    pub async fn workers(&self) -> Option<Vec<WorkerStats>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Workers(tx)).ok()?;
        rx.await.ok()
    }
}

/// Minutes of share history behind a worker's hashrate.
const WINDOW_MINUTES: u64 = 10;

/// Accepted difficulty per minute over the last [`WINDOW_MINUTES`].
#[derive(Debug, Default, Clone)]
struct ShareWindow {
    /// (minute since the epoch, difficulty sum), one slot per minute modulo the window.
    slots: [(u64, f64); WINDOW_MINUTES as usize],
    first_ms: u64,
}

impl ShareWindow {
    fn add(&mut self, time_ms: u64, difficulty: f64) {
        let minute = time_ms / 60_000;
        let slot = &mut self.slots[(minute % WINDOW_MINUTES) as usize];
        if slot.0 != minute {
            *slot = (minute, 0.0);
        }
        slot.1 += difficulty;
        if self.first_ms == 0 || time_ms < self.first_ms {
            self.first_ms = time_ms;
        }
    }

    /// Hashes per second at `now_ms`: difficulty-1 work (2^32 hashes) per share difficulty,
    /// over the window or since the first share if that is shorter (at least a minute).
    fn hashrate(&self, now_ms: u64) -> f64 {
        let now_min = now_ms / 60_000;
        let sum: f64 = self
            .slots
            .iter()
            .filter(|(m, _)| *m + WINDOW_MINUTES > now_min && *m <= now_min)
            .map(|(_, d)| d)
            .sum();
        let span_ms = now_ms
            .saturating_sub(self.first_ms)
            .clamp(60_000, WINDOW_MINUTES * 60_000);
        sum * 4_294_967_296.0 / (span_ms as f64 / 1000.0)
    }
}

/// The wall clock in milliseconds since the UNIX epoch (0 before it).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The counters (the state of the statistics task).
#[derive(Debug, Default)]
pub struct Stats {
    pool: PoolStats,
    workers: HashMap<String, WorkerStats>,
    windows: HashMap<String, ShareWindow>,
    /// Latest vardiff hashrate estimate per (connection, channel worker): the pool total.
    rates: HashMap<(u64, String), f64>,
}

impl Stats {
    /// Counters starting from the ledger's totals.
    pub fn new(shares_accepted: u64, blocks_found: u64, workers: Vec<WorkerStats>) -> Self {
        Stats {
            pool: PoolStats {
                shares_accepted,
                difficulty_accepted: workers.iter().map(|w| w.difficulty_accepted).sum(),
                blocks_found,
                ..PoolStats::default()
            },
            workers: workers.into_iter().map(|w| (w.worker.clone(), w)).collect(),
            windows: HashMap::new(),
            rates: HashMap::new(),
        }
    }

    /// Applies an event.
    pub fn apply(&mut self, ev: StatsEvent) {
        match ev {
            StatsEvent::Connected => self.pool.connections += 1,
            StatsEvent::Disconnected { conn } => {
                self.pool.connections = self.pool.connections.saturating_sub(1);
                self.rates.retain(|(c, _), _| *c != conn);
            }
            StatsEvent::Committed(workers) => {
                for c in workers {
                    self.pool.shares_accepted += c.shares;
                    self.pool.difficulty_accepted += c.difficulty;
                    match self.windows.get_mut(&c.worker) {
                        Some(window) => window.add(c.last_share_ms, c.difficulty),
                        None => {
                            let mut window = ShareWindow::default();
                            window.add(c.last_share_ms, c.difficulty);
                            self.windows.insert(c.worker.clone(), window);
                        }
                    }
                    let w = self.worker(c.worker);
                    w.shares_accepted += c.shares;
                    w.difficulty_accepted += c.difficulty;
                    w.last_share_ms = w.last_share_ms.max(c.last_share_ms);
                }
            }
            StatsEvent::Rejected { worker, code } => {
                self.pool.shares_rejected += 1;
                *self
                    .pool
                    .rejected_by_reason
                    .entry(code.to_string())
                    .or_default() += 1;
                if !worker.is_empty() {
                    *self
                        .worker(worker)
                        .rejected
                        .entry(code.to_string())
                        .or_default() += 1;
                }
            }
            StatsEvent::Hashrate {
                conn,
                worker,
                hashrate,
            } => {
                self.rates.insert((conn, worker), hashrate);
            }
            StatsEvent::BlockFound => self.pool.blocks_found += 1,
            StatsEvent::BlockRejected => self.pool.blocks_rejected += 1,
            StatsEvent::Height(h) => self.pool.height = h,
        }
    }

    fn worker(&mut self, worker: String) -> &mut WorkerStats {
        self.workers
            .entry(worker)
            .or_insert_with_key(|k| WorkerStats {
                worker: k.clone(),
                ..WorkerStats::default()
            })
    }

    /// Pool-wide figures now.
    pub fn pool(&self) -> PoolStats {
        PoolStats {
            hashrate: self.rates.values().fold(0.0, |a, b| a + b),
            ..self.pool.clone()
        }
    }

    /// Per-worker figures at `now_ms`, sorted by worker.
    pub fn workers_at(&self, now_ms: u64) -> Vec<WorkerStats> {
        let mut out: Vec<WorkerStats> = self
            .workers
            .values()
            .map(|w| WorkerStats {
                hashrate: self
                    .windows
                    .get(&w.worker)
                    .map_or(0.0, |s| s.hashrate(now_ms)),
                ..w.clone()
            })
            .collect();
        out.sort_by(|a, b| a.worker.cmp(&b.worker));
        out
    }
}

/// The statistics task's queue, made before the task starts (the ledger's commit observer
/// sends to it from the moment the ledger opens).
#[derive(Debug)]
pub struct StatsQueue(mpsc::UnboundedReceiver<Msg>);

/// A handle and the queue behind it; [`spawn`] starts the task on the queue.
pub fn channel() -> (StatsHandle, StatsQueue) {
    let (tx, rx) = mpsc::unbounded_channel();
    (StatsHandle { tx }, StatsQueue(rx))
}

/// Starts the statistics task on `queue`, from the counters `initial`.
pub fn spawn(initial: Stats, queue: StatsQueue) {
    let StatsQueue(mut rx) = queue;
    tokio::spawn(async move {
        let mut stats = initial;
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Event(ev) => stats.apply(ev),
                Msg::Pool(reply) => {
                    let _ = reply.send(stats.pool());
                }
                Msg::Workers(reply) => {
                    let _ = reply.send(stats.workers_at(unix_ms()));
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_events() {
        let mut s = Stats::new(10, 2, vec![]);
        s.apply(StatsEvent::Connected);
        s.apply(StatsEvent::Committed(vec![WorkerTotals {
            worker: "a".into(),
            shares: 1,
            difficulty: 2.0,
            last_share_ms: 5,
        }]));
        s.apply(StatsEvent::Rejected {
            worker: "a".into(),
            code: "stale-share",
        });
        s.apply(StatsEvent::Hashrate {
            conn: 1,
            worker: "a".into(),
            hashrate: 100.0,
        });
        s.apply(StatsEvent::BlockFound);
        let p = s.pool();
        assert_eq!(
            (p.shares_accepted, p.shares_rejected, p.blocks_found),
            (11, 1, 3)
        );
        assert_eq!(p.difficulty_accepted, 2.0);
        assert_eq!(p.connections, 1);
        assert_eq!(p.hashrate, 100.0);
        let w = s.workers_at(65_000);
        assert_eq!(w.len(), 1);
        // difficulty 2 in (at least) a minute
        assert!((w[0].hashrate - 2.0 * 4_294_967_296.0 / 64.995).abs() < 1.0);
        assert_eq!(w[0].rejected.get("stale-share"), Some(&1));
        assert_eq!(w[0].last_share_ms, 5);
        s.apply(StatsEvent::Disconnected { conn: 1 });
        assert_eq!(s.pool().hashrate, 0.0);
        assert_eq!(s.pool().connections, 0);
    }
}
