//! Pool statistics: one task owns the counters; connection tasks and the work manager send
//! events, the HTTP API asks for snapshots. Accepted-share totals start from the ledger so
//! they survive restarts; rejects and hashrates are since start.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

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
    /// A share was accepted (counted when validated; the ledger has the committed truth).
    Accepted {
        /// Worker identity.
        worker: String,
        /// Share difficulty.
        difficulty: f64,
        /// When (UNIX ms).
        time_ms: u64,
    },
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
    /// Estimated hashes per second (sum over the worker's live channels).
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

/// The counters (the state of the statistics task).
#[derive(Debug, Default)]
pub struct Stats {
    pool: PoolStats,
    workers: HashMap<String, WorkerStats>,
    /// Latest hashrate per (connection, worker).
    rates: HashMap<(u64, String), f64>,
}

impl Stats {
    /// Counters starting from the ledger's totals.
    pub fn new(shares_accepted: u64, blocks_found: u64, workers: Vec<WorkerStats>) -> Self {
        Stats {
            pool: PoolStats {
                shares_accepted,
                blocks_found,
                ..PoolStats::default()
            },
            workers: workers.into_iter().map(|w| (w.worker.clone(), w)).collect(),
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
            StatsEvent::Accepted {
                worker,
                difficulty,
                time_ms,
            } => {
                self.pool.shares_accepted += 1;
                let w = self.worker(worker);
                w.shares_accepted += 1;
                w.difficulty_accepted += difficulty;
                w.last_share_ms = w.last_share_ms.max(time_ms);
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

    /// Per-worker figures now, sorted by worker.
    pub fn workers(&self) -> Vec<WorkerStats> {
        let mut rate: HashMap<&str, f64> = HashMap::new();
        for ((_, w), r) in &self.rates {
            *rate.entry(w.as_str()).or_default() += r;
        }
        let mut out: Vec<WorkerStats> = self
            .workers
            .values()
            .map(|w| WorkerStats {
                hashrate: rate.get(w.worker.as_str()).copied().unwrap_or(0.0),
                ..w.clone()
            })
            .collect();
        out.sort_by(|a, b| a.worker.cmp(&b.worker));
        out
    }
}

/// Starts the statistics task.
pub fn spawn(initial: Stats) -> StatsHandle {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stats = initial;
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Event(ev) => stats.apply(ev),
                Msg::Pool(reply) => {
                    let _ = reply.send(stats.pool());
                }
                Msg::Workers(reply) => {
                    let _ = reply.send(stats.workers());
                }
            }
        }
    });
    StatsHandle { tx }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_events() {
        let mut s = Stats::new(10, 2, vec![]);
        s.apply(StatsEvent::Connected);
        s.apply(StatsEvent::Accepted {
            worker: "a".into(),
            difficulty: 2.0,
            time_ms: 5,
        });
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
        assert_eq!(p.connections, 1);
        assert_eq!(p.hashrate, 100.0);
        let w = s.workers();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].rejected.get("stale-share"), Some(&1));
        assert_eq!(w[0].last_share_ms, 5);
        s.apply(StatsEvent::Disconnected { conn: 1 });
        assert_eq!(s.pool().hashrate, 0.0);
        assert_eq!(s.pool().connections, 0);
    }
}
