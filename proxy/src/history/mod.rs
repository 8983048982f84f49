//! Per-miner and farm history, kept across restarts in `data_dir/history.sqlite`.
//!
//! * [`sampler::Sampler`] (sans-IO, owned by the hub): every miner report goes in; one
//!   [`Batch`] per resolution step comes out (a [`Row`] per worker name, the farm's row).
//! * [`store::Store`]: the SQLite file (schema in its docs), pruned beyond the retention.
//! * [`spawn`]: the one thread that owns the file. The hub hands it batches through a
//!   bounded queue without waiting ([`HistoryHandle::try_write`]: a full queue drops the
//!   batch, and the hub counts it); the API asks it for points and windows. History
//!   written before a restart is there after it: the file is the history.
//!
//! Hashrate of a row: its accepted work (summed share difficulty) × 2^32 / its seconds.
//! Shares reach the sampler with their miner's reports (every `report_interval_secs`, 10 s by
//! default), so a step holds the shares reported within it: a 60 s row of a steady miner
//! holds 50 to 70 s of its shares, and the windows over several steps even that out.
//! A miner's hashrate over a window ([`window_hashrate`]) is the work of its rows in the
//! window plus the open step's, over the seconds they cover: the average over the time the
//! miner was connected within the window.

pub mod sampler;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use sampler::Sampler;
pub use store::{Store, StoreError};

/// 2^32: hashes per unit of difficulty.
pub const HASHES_PER_DIFFICULTY: f64 = 4_294_967_296.0;

/// One step of one worker (or of the farm) as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The step's start (UNIX seconds).
    pub t: u64,
    /// Seconds the row covers.
    pub secs: u64,
    /// Summed difficulty of the accepted shares.
    pub work: f64,
    /// Accepted shares.
    pub accepted: u64,
    /// Rejected shares (stale included).
    pub rejected: u64,
    /// Stale shares.
    pub stale: u64,
}

impl Row {
    /// Hashes per second the row's work stands for.
    pub fn hashrate(&self) -> f64 {
        self.work * HASHES_PER_DIFFICULTY / self.secs.max(1) as f64
    }

    /// The row as the API shows it.
    pub fn point(&self) -> Point {
        Point {
            t: self.t,
            hashrate: self.hashrate(),
            accepted: self.accepted,
            rejected: self.rejected,
            stale: self.stale,
        }
    }
}

/// One point of `GET /api/v1/history` and `GET /api/v1/miners/{name}/history`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// The step's start (UNIX seconds).
    pub t: u64,
    /// Hashes per second over the step (from the accepted shares' difficulty).
    pub hashrate: f64,
    /// Shares accepted in the step.
    pub accepted: u64,
    /// Shares rejected in the step (stale included).
    pub rejected: u64,
    /// Stale shares in the step.
    pub stale: u64,
}

/// What one step closed: a row per worker name, and the farm's.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The step's start (UNIX seconds).
    pub t: u64,
    /// Rows by worker name.
    pub miners: std::collections::BTreeMap<String, Row>,
    /// The farm's row (every miner, also those beyond `max_miners`).
    pub farm: Row,
}

/// A worker's stored rows within a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowSum {
    /// Their summed work.
    pub work: f64,
    /// The seconds they cover.
    pub secs: u64,
}

/// A miner's hashrate over a window: its stored rows in the window (`stored`) and the open
/// step's work (`live_work` since `live_from`), at `now`; 0 when nothing covers the window.
pub fn window_hashrate(stored: WindowSum, live_work: f64, live_from: u64, now: u64) -> f64 {
    let secs = stored.secs + now.saturating_sub(live_from);
    if secs == 0 {
        return 0.0;
    }
    (stored.work + live_work) * HASHES_PER_DIFFICULTY / secs as f64
}

/// Each worker's stored rows within a window (shared: the thread keeps them until the next
/// write).
pub type Windows = Arc<HashMap<String, WindowSum>>;

/// Window starts the history thread keeps read between two writes at most.
const WINDOW_CACHE: usize = 8;

/// The history thread is gone (or the history is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("history unavailable")]
pub struct Unavailable;

/// What the history thread is asked.
#[derive(Debug)]
enum Command {
    Write(Batch),
    Points {
        worker: Option<String>,
        since: u64,
        reply: oneshot::Sender<Option<Vec<Point>>>,
    },
    Windows {
        since: Vec<u64>,
        reply: oneshot::Sender<Vec<Windows>>,
    },
}

/// The way to the history thread (cheap to clone).
#[derive(Debug, Clone)]
pub struct HistoryHandle {
    tx: mpsc::Sender<Command>,
    /// Seconds per step.
    pub resolution_secs: u64,
    /// Seconds of history kept.
    pub retention_secs: u64,
}

impl HistoryHandle {
    /// A handle whose queue of `queue` commands nobody takes from while the returned
    /// receiver lives (for tests of a writer that is behind).
    #[cfg(test)]
    pub(crate) fn stalled(queue: usize) -> (Self, impl Sized) {
        let (tx, rx) = mpsc::channel::<Command>(queue.max(1));
        let h = HistoryHandle {
            tx,
            resolution_secs: 60,
            retention_secs: 3600,
        };
        (h, rx)
    }

    /// Queues a batch for writing without waiting; false when the queue is full (the batch
    /// is dropped) or the thread is gone.
    pub fn try_write(&self, batch: Batch) -> bool {
        self.tx.try_send(Command::Write(batch)).is_ok()
    }

    /// The points of `worker` (the farm for `None`) from `since` on; `Ok(None)` for a
    /// worker the file has no point of.
    pub async fn points(
        &self,
        worker: Option<String>,
        since: u64,
    ) -> Result<Option<Vec<Point>>, Unavailable> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Points {
                worker,
                since,
                reply,
            })
            .await
            .map_err(|_| Unavailable)?;
        rx.await.map_err(|_| Unavailable)
    }

    /// Per window start in `since`, each worker's stored rows from then on. The thread
    /// reads each start once between two writes: callers that round their starts down to
    /// the step (as `GET /api/v1/miners` does) cost one read of the file per step.
    pub async fn windows(&self, since: Vec<u64>) -> Result<Vec<Windows>, Unavailable> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Windows { since, reply })
            .await
            .map_err(|_| Unavailable)?;
        rx.await.map_err(|_| Unavailable)
    }
}

/// Starts the thread that owns `store`, with a queue of `queue` commands; it ends when
/// every handle is dropped (after writing what was queued).
pub fn spawn(
    mut store: Store,
    queue: usize,
    resolution_secs: u64,
    retention_secs: u64,
) -> std::io::Result<(HistoryHandle, std::thread::JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::channel(queue.max(1));
    let thread = std::thread::Builder::new()
        .name("history".into())
        .spawn(move || {
            // windows read since the last write, by start (they change only with a write)
            let mut cache: HashMap<u64, Windows> = HashMap::new();
            while let Some(cmd) = rx.blocking_recv() {
                match cmd {
                    Command::Write(b) => {
                        cache.clear();
                        match store.write(&b) {
                            Ok(pruned) => tracing::trace!(
                                t = b.t,
                                miners = b.miners.len(),
                                pruned,
                                "history written"
                            ),
                            Err(e) => {
                                tracing::warn!(error = %e, t = b.t, "history batch not written");
                            }
                        }
                    }
                    Command::Points {
                        worker,
                        since,
                        reply,
                    } => {
                        let points = store.points(worker.as_deref(), since).unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "history not read");
                            Some(Vec::new())
                        });
                        let _ = reply.send(points);
                    }
                    Command::Windows { since, reply } => {
                        let sums = since
                            .iter()
                            .map(|s| {
                                if cache.len() >= WINDOW_CACHE && !cache.contains_key(s) {
                                    cache.clear();
                                }
                                let w = cache.entry(*s).or_insert_with(|| {
                                    Arc::new(store.window(*s).unwrap_or_else(|e| {
                                        tracing::warn!(error = %e, "history window not read");
                                        HashMap::new()
                                    }))
                                });
                                Arc::clone(w)
                            })
                            .collect();
                        let _ = reply.send(sums);
                    }
                }
            }
            tracing::debug!("history thread stopped");
        })?;
    Ok((
        HistoryHandle {
            tx,
            resolution_secs,
            retention_secs,
        },
        thread,
    ))
}

#[cfg(test)]
mod tests;
