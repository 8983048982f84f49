//! The crash-safe share ledger.
//!
//! Every accepted share is written to the database **before** the miner hears `SubmitShares.Success`
//! (spec 5.3.14): a connection task calls [`Ledger::submit`], keeps serving its miner, and
//! acknowledges the shares only when the returned [`CommitTicket`] resolves. A `kill -9` of
//! the pool therefore never loses a share a miner was told about.
//!
//! ```text
//!  connection tasks ──submit──▶ bounded mpsc ──▶ ledger thread (owns the Connection)
//!        ▲                                          │ takes every queued write (≤ max batch)
//!        │                                          │ BEGIN; INSERT ...; COMMIT   (one fsync)
//!        └────────── oneshot per request ◀──────────┘ then resolves each ticket
//! ```
//!
//! With SQLite, the shares of a group are made durable in a log of their own first (one
//! `pwrite` and one `fdatasync` of `<ledger>-shares`, see `sharelog`), which is what their
//! tickets wait for; the thread moves them into the `shares` table between commits, a few
//! hundred at a time, and before any read, so no caller sees the difference (decision
//! record 0017). Blocks, statuses and history go into SQLite in the group's transaction.
//!
//! The database is SQLite by default ([`LedgerConfig::new`]: one file, WAL journal, nothing
//! to run besides the pool) or PostgreSQL for operators who run one
//! ([`LedgerConfig::postgres`], cargo feature `postgres`, on by default): same schema, same
//! API, same results: ids in commit order, never reused, and PPLNS sums added in Rust in id
//! order, so a window is bitwise the same on either backend.
//!
//! One std thread owns the database connection. It blocks on the queue,
//! then drains whatever else is already queued — up to [`LedgerConfig::max_batch_shares`]
//! shares — and writes the lot in one transaction: a group commit, so the fsync cost is
//! shared by every request in the batch. Under load, commits are at least
//! [`LedgerConfig::min_commit_interval`] apart: a request arriving sooner after the last
//! commit waits out the rest of the interval for company (an idle ledger commits at once).
//! The shares of every request in a batch go in with one insert; when that fails, each
//! request is written again in its own savepoint, so one bad request (a duplicate block
//! hash, a NaN difficulty) fails alone. Reads are served in
//! queue order, after the writes queued before them are committed, so a read sees every
//! write whose ticket resolved before it was sent.
//!
//! Dropping every [`Ledger`] clone ends the thread once what is queued is committed;
//! [`LedgerThread::join`] waits for that. A caller that drops its ticket does not disturb
//! the thread: its shares are still committed.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use strata_pool::ledger::{Ledger, LedgerConfig, ShareRecord};
//!
//! let dir = tempfile::tempdir()?;
//! let (ledger, thread) = Ledger::open(LedgerConfig::new(dir.path().join("ledger.sqlite")))?;
//! let share = ShareRecord {
//!     worker: "bcrt1qexample.rig1".into(),
//!     channel_identity: "bcrt1qexample.rig1".into(),
//!     connection_id: 1,
//!     channel_id: 1,
//!     job_id: 7,
//!     sequence_number: 0,
//!     height: 101,
//!     difficulty: 1.0,
//!     hash: [0; 32],
//!     time_ms: 1_700_000_000_000,
//!     block: false,
//! };
//! let ticket = ledger.submit(vec![share]).await?; // queued
//! let receipt = ticket.await?; // durable: only now send SubmitShares.Success
//! assert_eq!((receipt.first_id, receipt.count), (1, 1));
//! drop(ledger);
//! thread.join()?; // everything queued is committed, the database closed
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(demo()).map_err(|e| e.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Durability: `synchronous`
//!
//! For SQLite:
//!
//! * [`Synchronous::Full`] (the default): the WAL is fsynced at every commit. A committed
//!   share survives a process crash *and* a power loss or kernel panic.
//! * [`Synchronous::Normal`]: the WAL is fsynced only at checkpoints. A committed share
//!   survives a process crash (`kill -9`, panic, OOM kill: the data is in the OS page
//!   cache), but the last transactions before a power loss or kernel panic may be lost
//!   (the database stays consistent). Several times the throughput on slow disks.
//!
//! For PostgreSQL, [`Synchronous::Full`] is `synchronous_commit = on` (the server flushes
//! its WAL before it confirms a commit) and [`Synchronous::Normal`] is
//! `synchronous_commit = off`: a crash of the pool loses nothing committed, a crash of the
//! database server may lose the last commits (up to three `wal_writer_delay`s).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

mod checkpoint;
mod config;
mod engine;
mod error;
mod history;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
mod rows;
mod schema;
mod sharelog;
mod sqlite;

#[cfg(feature = "postgres")]
use config::redact_password;
pub use config::{Backend, LedgerConfig, ServerId, Synchronous};
pub use engine::CommitObserver;
pub use error::LedgerError;
pub use history::HistoryPoint;
pub use records::{BlockRecord, BlockStatus, CommitReceipt, ShareRecord, Totals, WorkerTotals};
pub use strata_work::payout::{Payout, PplnsWindow, WorkerWeight};

/// Counters of the ledger thread since [`Ledger::open`] (not persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LedgerStats {
    /// Write transactions committed.
    pub transactions: u64,
    /// Write requests (share batches, blocks, status updates) committed.
    pub write_requests: u64,
    /// Shares committed.
    pub shares: u64,
    /// Most write requests committed in one transaction.
    pub largest_batch: u64,
    /// How long share requests took from being queued to being committed (what an
    /// acknowledgement waits for): counts per bucket, cumulative, at the upper bounds of
    /// [`COMMIT_LATENCY_BOUNDS_US`] and then all of them.
    pub commit_latency: [u64; COMMIT_LATENCY_BUCKETS],
    /// The sum of those times, in microseconds.
    pub commit_latency_sum_us: u64,
}

/// Upper bounds (µs) of [`LedgerStats::commit_latency`]'s buckets but the last (infinite).
pub const COMMIT_LATENCY_BOUNDS_US: [u64; COMMIT_LATENCY_BUCKETS - 1] = [
    250, 500, 1_000, 2_000, 3_000, 5_000, 10_000, 25_000, 100_000,
];
/// Buckets of [`LedgerStats::commit_latency`].
pub const COMMIT_LATENCY_BUCKETS: usize = 10;

#[derive(Debug, Default)]
struct StatsCell {
    transactions: AtomicU64,
    write_requests: AtomicU64,
    shares: AtomicU64,
    largest_batch: AtomicU64,
    /// Per bucket (not cumulative).
    commit_latency: [AtomicU64; COMMIT_LATENCY_BUCKETS],
    commit_latency_sum_us: AtomicU64,
}

impl StatsCell {
    fn record(&self, requests: u64, shares: u64) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.write_requests.fetch_add(requests, Ordering::Relaxed);
        self.shares.fetch_add(shares, Ordering::Relaxed);
        self.largest_batch.fetch_max(requests, Ordering::Relaxed);
    }

    /// A share request committed `waited` after it was queued.
    fn record_commit_latency(&self, waited: std::time::Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        let bucket = COMMIT_LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(COMMIT_LATENCY_BUCKETS - 1);
        self.commit_latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.commit_latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LedgerStats {
        let mut commit_latency = [0; COMMIT_LATENCY_BUCKETS];
        let mut total = 0;
        for (out, n) in commit_latency.iter_mut().zip(&self.commit_latency) {
            total += n.load(Ordering::Relaxed);
            *out = total;
        }
        LedgerStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            write_requests: self.write_requests.load(Ordering::Relaxed),
            shares: self.shares.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            commit_latency,
            commit_latency_sum_us: self.commit_latency_sum_us.load(Ordering::Relaxed),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, LedgerError>>;

/// A write, committed in a group transaction.
#[derive(Debug)]
enum Write {
    Shares {
        shares: Vec<ShareRecord>,
        reply: Reply<CommitReceipt>,
        /// When it was queued: its time to commit is measured from here.
        queued: std::time::Instant,
    },
    Block {
        block: BlockRecord,
        reply: Reply<i64>,
    },
    Status {
        hash: String,
        status: BlockStatus,
        reply: Reply<()>,
    },
    History {
        point: HistoryPoint,
        prune_before_ms: u64,
        reply: Reply<()>,
    },
}

impl Write {
    fn share_count(&self) -> usize {
        match self {
            Write::Shares { shares, .. } => shares.len(),
            Write::Block { .. } | Write::Status { .. } | Write::History { .. } => 1,
        }
    }
}

/// A query, served after the writes queued before it are committed.
#[derive(Debug)]
enum Read {
    Window {
        n_shares: u64,
        reply: Reply<PplnsWindow>,
    },
    Blocks {
        limit: usize,
        reply: Reply<Vec<BlockRecord>>,
    },
    Block {
        hash: String,
        reply: Reply<Option<BlockRecord>>,
    },
    Totals {
        reply: Reply<Totals>,
    },
    SharesIn {
        first_id: i64,
        last_id: i64,
        reply: Reply<Vec<(i64, ShareRecord)>>,
    },
    History {
        since_ms: u64,
        bucket_ms: u64,
        reply: Reply<Vec<HistoryPoint>>,
    },
    BlocksPaying {
        owner: String,
        limit: usize,
        reply: Reply<Vec<BlockRecord>>,
    },
}

#[derive(Debug)]
enum Request {
    Write(Write),
    Read(Read),
}

/// A handle to the ledger; cheap to clone, one per connection task. The ledger thread
/// ends when every clone is dropped.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Request>,
    stats: Arc<StatsCell>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("queued", &(self.tx.max_capacity() - self.tx.capacity()))
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

/// The ledger thread. [`join`](Self::join) it after dropping every [`Ledger`] clone to
/// make sure what was queued is committed and the database is closed; dropping it instead
/// detaches the thread (it still commits and closes, unless the process exits first).
#[derive(Debug)]
pub struct LedgerThread {
    handle: std::thread::JoinHandle<()>,
}

impl LedgerThread {
    /// Waits for the thread: it returns once every [`Ledger`] clone is dropped and the
    /// queue is committed. Blocks; from async code call it through `spawn_blocking`.
    pub fn join(self) -> Result<(), LedgerError> {
        self.handle.join().map_err(|_| LedgerError::Panicked)
    }
}

/// Resolves once the shares of one [`Ledger::submit`] are committed (or failed). Dropping
/// it does not cancel the commit.
#[derive(Debug)]
#[must_use = "a share may only be acknowledged once its ticket resolved"]
pub struct CommitTicket {
    state: TicketState,
}

#[derive(Debug)]
enum TicketState {
    Ready(Option<CommitReceipt>),
    Waiting(oneshot::Receiver<Result<CommitReceipt, LedgerError>>),
}

impl Future for CommitTicket {
    type Output = Result<CommitReceipt, LedgerError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            TicketState::Ready(receipt) => match receipt.take() {
                Some(receipt) => Poll::Ready(Ok(receipt)),
                // polled after completion: the receipt was handed out already
                None => Poll::Ready(Err(LedgerError::Closed)),
            },
            TicketState::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|res| res.unwrap_or(Err(LedgerError::Closed))),
        }
    }
}

impl Ledger {
    /// Opens (creating or migrating) the database and starts the ledger thread. Does
    /// blocking file I/O: call it at startup, or through `spawn_blocking`.
    pub fn open(config: LedgerConfig) -> Result<(Ledger, LedgerThread), LedgerError> {
        Ledger::open_observed(config, Box::new(|_| {}))
    }

    /// [`open`](Self::open), and `observer` hears of every commit's shares (summed per
    /// worker) on the ledger thread, before the shares' submitters do: statistics follow
    /// the committed shares at one call per transaction, not one event per share.
    pub fn open_observed(
        config: LedgerConfig,
        observer: CommitObserver,
    ) -> Result<(Ledger, LedgerThread), LedgerError> {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let stats = Arc::new(StatsCell::default());
        let thread_stats = Arc::clone(&stats);
        let limits = engine::Limits {
            max_batch_shares: config.max_batch_shares.max(1),
            min_commit_interval: config.min_commit_interval,
        };
        let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel(1);
        let backend = config.backend.clone();
        let synchronous = config.synchronous;
        let server = config.server;
        if server.is_some() && matches!(backend, Backend::Sqlite { .. }) {
            return Err(LedgerError::ClusterNeedsPostgres);
        }
        // The database is opened on the ledger thread itself: the synchronous PostgreSQL
        // client runs its own runtime, which must not be entered from an async context.
        let handle = std::thread::Builder::new()
            .name("strata-ledger".into())
            .spawn(move || {
                let report = |res: Result<(), LedgerError>| {
                    // the opener waits for this answer; it cannot be gone
                    let _ = opened_tx.send(res);
                };
                match backend {
                    Backend::Sqlite { path } => match sqlite::Store::open(&path, synchronous)
                        .and_then(|mut store| {
                            engine::catch_up_worker_totals(&mut store)?;
                            Ok(store)
                        }) {
                        Ok(store) => {
                            report(Ok(()));
                            engine::run(store, rx, limits, &thread_stats, observer);
                        }
                        Err(e) => report(Err(e)),
                    },
                    #[cfg(feature = "postgres")]
                    Backend::Postgres { url } => {
                        match postgres::Store::open(&url, synchronous, server).and_then(
                            |mut store| {
                                engine::catch_up_worker_totals(&mut store)?;
                                Ok(store)
                            },
                        ) {
                            Ok(store) => {
                                report(Ok(()));
                                engine::run(store, rx, limits, &thread_stats, observer);
                            }
                            Err(e) => report(Err(e)),
                        }
                    }
                    #[cfg(not(feature = "postgres"))]
                    Backend::Postgres { .. } => report(Err(LedgerError::PostgresUnsupported)),
                }
            })
            .map_err(|e| LedgerError::Spawn {
                source: Arc::new(e),
            })?;
        let opened = opened_rx.recv().unwrap_or(Err(LedgerError::Panicked));
        if let Err(e) = opened {
            // the thread returns right after reporting a failure
            let _ = handle.join();
            return Err(e);
        }
        tracing::info!(database = %config.backend.describe(), synchronous = ?config.synchronous, "ledger open");
        Ok((Ledger { tx, stats }, LedgerThread { handle }))
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> Result<oneshot::Receiver<Result<T, LedgerError>>, LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| LedgerError::Closed)?;
        Ok(rx)
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, LedgerError> {
        self.request(make)
            .await?
            .await
            .unwrap_or(Err(LedgerError::Closed))
    }

    /// Queues the shares (waiting only for queue space) and returns a ticket that
    /// resolves once they are durably committed; acknowledge them to the miner only then.
    /// An empty batch resolves at once with a receipt of 0 shares.
    pub async fn submit(&self, shares: Vec<ShareRecord>) -> Result<CommitTicket, LedgerError> {
        if shares.is_empty() {
            return Ok(CommitTicket {
                state: TicketState::Ready(Some(CommitReceipt {
                    first_id: 0,
                    count: 0,
                })),
            });
        }
        let rx = self
            .request(|reply| {
                Request::Write(Write::Shares {
                    shares,
                    reply,
                    queued: std::time::Instant::now(),
                })
            })
            .await?;
        Ok(CommitTicket {
            state: TicketState::Waiting(rx),
        })
    }

    /// Records a found block (committed before this returns); returns its row id.
    pub async fn record_block(&self, block: BlockRecord) -> Result<i64, LedgerError> {
        self.ask(|reply| Request::Write(Write::Block { block, reply }))
            .await
    }

    /// Sets the status of the block with this display hash.
    pub async fn update_block_status(
        &self,
        hash: &str,
        status: BlockStatus,
    ) -> Result<(), LedgerError> {
        let hash = hash.to_owned();
        self.ask(|reply| {
            Request::Write(Write::Status {
                hash,
                status,
                reply,
            })
        })
        .await
    }

    /// The PPLNS window: the last `n_shares` shares by id, summed per channel identity
    /// (the payout owner, not the worker label).
    pub async fn pplns_window(&self, n_shares: u64) -> Result<PplnsWindow, LedgerError> {
        self.ask(|reply| Request::Read(Read::Window { n_shares, reply }))
            .await
    }

    /// The last `limit` blocks, newest first.
    pub async fn blocks(&self, limit: usize) -> Result<Vec<BlockRecord>, LedgerError> {
        self.ask(|reply| Request::Read(Read::Blocks { limit, reply }))
            .await
    }

    /// The block with this display (RPC) hash, if recorded.
    pub async fn block(&self, hash: &str) -> Result<Option<BlockRecord>, LedgerError> {
        let hash = hash.to_owned();
        self.ask(|reply| Request::Read(Read::Block { hash, reply }))
            .await
    }

    /// Ledger-wide and per-worker totals.
    pub async fn totals(&self) -> Result<Totals, LedgerError> {
        self.ask(|reply| Request::Read(Read::Totals { reply }))
            .await
    }

    /// The shares with ids in `first_id..=last_id`, ascending (to verify a block's split).
    pub async fn shares_in(
        &self,
        first_id: i64,
        last_id: i64,
    ) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
        self.ask(|reply| {
            Request::Read(Read::SharesIn {
                first_id,
                last_id,
                reply,
            })
        })
        .await
    }

    /// Counters of the ledger thread since it was opened (group-commit effectiveness).
    pub fn stats(&self) -> LedgerStats {
        self.stats.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgresql://pool:s3cr@t@db.example:5432/ledger?sslmode=disable"),
            "postgresql://pool:***@db.example:5432/ledger?sslmode=disable"
        );
        assert_eq!(
            redact_password("postgres://pool@db/ledger"),
            "postgres://pool@db/ledger"
        );
        assert_eq!(
            redact_password("host=db user=pool password=hunter2 dbname=ledger"),
            "host=db user=pool password=*** dbname=ledger"
        );
        let config = LedgerConfig::postgres("postgresql://u:pw@h/d");
        assert_eq!(config.backend.describe(), "postgresql://u:***@h/d");
        assert!(!format!("{config:?}").contains("pw"));
        assert_eq!(
            LedgerConfig::new("/var/lib/strata/ledger.sqlite")
                .backend
                .describe(),
            "sqlite:/var/lib/strata/ledger.sqlite"
        );
    }
}
