//! The ledger thread, whichever database it writes to: group commit (the shares of every
//! request in a group in one insert, a request's own savepoint only after a failure), reads
//! in queue order. A backend only supplies the storage operations ([`Storage`] and
//! [`Batch`]); how requests are batched, answered and counted lives here, once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{
    BlockRecord, BlockStatus, CommitReceipt, HistoryPoint, LedgerError, PplnsWindow, Read, Reply,
    Request, ShareRecord, StatsCell, Totals, WorkerTotals, Write,
};

/// An open ledger database, owned by the ledger thread.
pub(super) trait Storage {
    /// A write transaction in progress.
    type Batch<'a>: Batch
    where
        Self: 'a;

    /// Begins the transaction a group of write requests is applied in.
    fn begin(&mut self) -> Result<Self::Batch<'_>, LedgerError>;

    /// The last `n_shares` shares, summed per worker in id order.
    fn window(&mut self, n_shares: u64) -> Result<PplnsWindow, LedgerError>;

    /// The last `limit` blocks, newest first.
    fn blocks(&mut self, limit: usize) -> Result<Vec<BlockRecord>, LedgerError>;

    /// The block with this display hash, if recorded.
    fn block(&mut self, hash: &str) -> Result<Option<BlockRecord>, LedgerError>;

    /// Ledger-wide and per-worker totals (as of the last [`Batch::add_worker_totals`]).
    fn totals(&mut self) -> Result<Totals, LedgerError>;

    /// The id of the last share the `workers` table counts.
    fn workers_through(&mut self) -> Result<i64, LedgerError>;

    /// The shares with ids in `first_id..=last_id`, ascending.
    fn shares_in(
        &mut self,
        first_id: i64,
        last_id: i64,
    ) -> Result<Vec<(i64, ShareRecord)>, LedgerError>;

    /// The shares this process (this cluster server) accepted after share `id`, ascending:
    /// what its part of the `workers` table does not count yet.
    fn own_shares_after(&mut self, id: i64) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
        self.shares_in(id.saturating_add(1), i64::MAX)
    }

    /// The history samples from `since_ms` on, in buckets of `bucket_ms` (see
    /// [`rows::HISTORY_SELECT`](super::rows::HISTORY_SELECT)).
    fn history(&mut self, since_ms: u64, bucket_ms: u64) -> Result<Vec<HistoryPoint>, LedgerError>;

    /// The last `limit` blocks with an output to `owner`, newest first.
    fn blocks_paying(&mut self, owner: &str, limit: usize)
        -> Result<Vec<BlockRecord>, LedgerError>;

    /// Housekeeping after a group commit was answered, off the acknowledgement path (the
    /// time the ledger thread would otherwise sleep until the next commit).
    fn after_commit(&mut self) {}

    /// The ledger closes: the last housekeeping.
    fn close(&mut self) {}
}

/// One write transaction. Each write runs in its own savepoint: when it fails, only its own
/// changes are undone and the transaction goes on. Dropping the batch rolls it back.
pub(super) trait Batch {
    /// Inserts the shares (ids in submission order); their workers' totals follow later
    /// ([`add_worker_totals`](Self::add_worker_totals)).
    fn insert_shares(&mut self, shares: &[ShareRecord]) -> Result<CommitReceipt, LedgerError>;

    /// Inserts a block and its outputs; returns its id.
    fn insert_block(&mut self, block: &BlockRecord) -> Result<i64, LedgerError>;

    /// Adds `totals` to the `workers` table, which then counts every share up to `through`.
    fn add_worker_totals(
        &mut self,
        totals: &[WorkerTotals],
        through: i64,
    ) -> Result<(), LedgerError>;

    /// Sets the status of the block with this hash.
    fn set_status(&mut self, hash: &str, status: &BlockStatus) -> Result<(), LedgerError>;

    /// Writes a history sample (replacing one at the same time) and deletes the samples
    /// before `prune_before_ms`.
    fn record_history(
        &mut self,
        point: &HistoryPoint,
        prune_before_ms: u64,
    ) -> Result<(), LedgerError>;

    /// Commits (durably, as configured).
    fn commit(self) -> Result<(), LedgerError>;
}

/// A write request, applied (or failed) and waiting for the commit to be answered.
enum Done {
    Shares(Reply<CommitReceipt>, Result<CommitReceipt, LedgerError>),
    Block(Reply<i64>, Result<i64, LedgerError>),
    /// A write answered with `()`: a status update, a history sample.
    Unit(Reply<()>, Result<(), LedgerError>),
}

impl Done {
    fn failed(write: Write, err: LedgerError) -> Done {
        match write {
            Write::Shares { reply, .. } => Done::Shares(reply, Err(err)),
            Write::Block { reply, .. } => Done::Block(reply, Err(err)),
            Write::Status { reply, .. } | Write::History { reply, .. } => {
                Done::Unit(reply, Err(err))
            }
        }
    }

    fn committed_shares(&self) -> u64 {
        match self {
            Done::Shares(_, Ok(receipt)) => receipt.count as u64,
            _ => 0,
        }
    }

    /// The commit failed: what looked applied was rolled back.
    fn fail(&mut self, err: &LedgerError) {
        match self {
            Done::Shares(_, res @ Ok(_)) => *res = Err(err.clone()),
            Done::Block(_, res @ Ok(_)) => *res = Err(err.clone()),
            Done::Unit(_, res @ Ok(_)) => *res = Err(err.clone()),
            _ => {}
        }
    }

    /// Answers the caller; one who stopped waiting is no concern of the ledger.
    fn send(self) {
        match self {
            Done::Shares(reply, res) => {
                let _ = reply.send(res);
            }
            Done::Block(reply, res) => {
                let _ = reply.send(res);
            }
            Done::Unit(reply, res) => {
                let _ = reply.send(res);
            }
        }
    }
}

fn apply(batch: &mut impl Batch, write: Write) -> Done {
    match write {
        Write::Shares { shares, reply, .. } => Done::Shares(reply, batch.insert_shares(&shares)),
        Write::Block { block, reply } => Done::Block(reply, batch.insert_block(&block)),
        Write::Status {
            hash,
            status,
            reply,
        } => Done::Unit(reply, batch.set_status(&hash, &status)),
        Write::History {
            point,
            prune_before_ms,
            reply,
        } => Done::Unit(reply, batch.record_history(&point, prune_before_ms)),
    }
}

/// What the ledger thread tells its owner after each commit: the shares committed, per
/// worker (shares, difficulty, latest time), in worker order.
pub type CommitObserver = Box<dyn FnMut(Vec<WorkerTotals>) + Send>;

/// Share requests of one group, inserted together.
struct ShareGroup {
    /// Every request's shares, concatenated in queue order.
    shares: Vec<ShareRecord>,
    /// Each request's reply and share count.
    requests: Vec<(Reply<CommitReceipt>, usize)>,
}

impl ShareGroup {
    /// Inserts every request's shares with one statement in one savepoint (not one savepoint
    /// per request). When that fails (one bad request), each request is inserted in its own
    /// savepoint again, so that only the bad one fails. Returns the shares inserted and the
    /// highest id among them.
    fn apply(self, batch: &mut impl Batch, done: &mut Vec<Done>) -> (Vec<ShareRecord>, i64) {
        let ShareGroup { shares, requests } = self;
        if requests.len() > 1 {
            if let Ok(receipt) = batch.insert_shares(&shares) {
                let mut next = receipt.first_id;
                for (reply, count) in requests {
                    let first_id = if count == 0 { 0 } else { next };
                    next += count as i64;
                    done.push(Done::Shares(reply, Ok(CommitReceipt { first_id, count })));
                }
                return (shares, next - 1);
            }
        }
        let mut committed = Vec::with_capacity(shares.len());
        let mut last_id = 0;
        let mut rest = shares.into_iter();
        for (reply, count) in requests {
            let mine: Vec<ShareRecord> = rest.by_ref().take(count).collect();
            let res = batch.insert_shares(&mine);
            if let Ok(receipt) = &res {
                if receipt.count > 0 {
                    last_id = last_id.max(receipt.first_id + receipt.count as i64 - 1);
                }
                committed.extend(mine);
            }
            done.push(Done::Shares(reply, res));
        }
        (committed, last_id)
    }
}

/// How long committed shares may be left out of the `workers` table: its rows are
/// scattered over many pages, and updating them at every commit cost more than the shares'
/// own insert. [`Read::Totals`], a clean stop and the next start (from the shares after
/// [`Storage::workers_through`]) bring it up to date.
const WORKER_TOTALS_EVERY: Duration = Duration::from_secs(1);

/// Committed shares not yet in the `workers` table, summed per worker.
#[derive(Default)]
struct PendingTotals {
    by_worker: BTreeMap<String, WorkerTotals>,
    /// Highest share id counted.
    through: i64,
    /// When the oldest of them was committed.
    since: Option<Instant>,
}

impl PendingTotals {
    fn add(&mut self, deltas: &[WorkerTotals], through: i64, now: Instant) {
        for d in deltas {
            match self.by_worker.get_mut(&d.worker) {
                Some(w) => {
                    w.shares += d.shares;
                    w.difficulty += d.difficulty;
                    w.last_share_ms = w.last_share_ms.max(d.last_share_ms);
                }
                None => {
                    self.by_worker.insert(d.worker.clone(), d.clone());
                }
            }
        }
        self.through = self.through.max(through);
        self.since.get_or_insert(now);
    }

    fn due(&self, now: Instant) -> bool {
        self.since
            .is_some_and(|t| now.duration_since(t) >= WORKER_TOTALS_EVERY)
    }

    fn rows(&self) -> Vec<WorkerTotals> {
        self.by_worker.values().cloned().collect()
    }

    fn clear(&mut self) {
        self.by_worker.clear();
        self.since = None;
    }

    /// Writes them in a transaction of their own.
    fn flush(&mut self, store: &mut impl Storage) -> Result<(), LedgerError> {
        if self.since.is_none() {
            return Ok(());
        }
        let mut tx = store.begin()?;
        tx.add_worker_totals(&self.rows(), self.through)?;
        tx.commit()?;
        self.clear();
        Ok(())
    }
}

/// Brings the `workers` table up to date at start: the shares committed after its last
/// update (the ledger was killed before it wrote them) are added now.
pub(super) fn catch_up_worker_totals(store: &mut impl Storage) -> Result<(), LedgerError> {
    let through = store.workers_through()?;
    let missed = store.own_shares_after(through)?;
    let Some(last) = missed.last().map(|(id, _)| *id) else {
        return Ok(());
    };
    let shares: Vec<ShareRecord> = missed.into_iter().map(|(_, s)| s).collect();
    let mut tx = store.begin()?;
    tx.add_worker_totals(&worker_deltas(&shares), last)?;
    tx.commit()?;
    tracing::info!(
        shares = shares.len(),
        through = last,
        "worker totals caught up"
    );
    Ok(())
}

/// Per-worker sums of committed shares, for the [`CommitObserver`] and the `workers` table.
pub(super) fn worker_deltas(shares: &[ShareRecord]) -> Vec<WorkerTotals> {
    let mut by_worker: BTreeMap<&str, WorkerTotals> = BTreeMap::new();
    for s in shares {
        let w = by_worker.entry(&s.worker).or_insert_with(|| WorkerTotals {
            worker: s.worker.clone(),
            shares: 0,
            difficulty: 0.0,
            last_share_ms: 0,
        });
        w.shares += 1;
        w.difficulty += s.difficulty;
        w.last_share_ms = w.last_share_ms.max(s.time_ms);
    }
    by_worker.into_values().collect()
}

/// Writes a group of requests in one transaction, then resolves them (the observer hears of
/// the committed shares before their owners do).
fn commit_batch(
    store: &mut impl Storage,
    batch: Vec<Write>,
    stats: &StatsCell,
    observer: &mut CommitObserver,
    pending: &mut PendingTotals,
) {
    let requests = batch.len() as u64;
    let mut tx = match store.begin() {
        Ok(tx) => tx,
        Err(err) => {
            tracing::error!(error = %err, "ledger batch failed");
            for write in batch {
                Done::failed(write, err.clone()).send();
            }
            return;
        }
    };
    let mut group = ShareGroup {
        shares: Vec::new(),
        requests: Vec::new(),
    };
    let mut queued_at = Vec::new();
    let mut others = Vec::new();
    for write in batch {
        match write {
            Write::Shares {
                shares,
                reply,
                queued,
            } => {
                group.requests.push((reply, shares.len()));
                group.shares.extend(shares);
                queued_at.push(queued);
            }
            other => others.push(other),
        }
    }
    let mut done = Vec::with_capacity(requests as usize);
    // shares first: a block or status write never depends on shares queued beside it
    let (committed, last_id) = group.apply(&mut tx, &mut done);
    for write in others {
        done.push(apply(&mut tx, write));
    }
    let shares: u64 = done.iter().map(Done::committed_shares).sum();
    let now = Instant::now();
    match tx.commit() {
        Ok(()) => {
            stats.record(requests, shares);
            let committed_at = Instant::now();
            for queued in queued_at {
                stats.record_commit_latency(committed_at.saturating_duration_since(queued));
            }
            tracing::trace!(requests, shares, "ledger batch committed");
            if !committed.is_empty() {
                let deltas = worker_deltas(&committed);
                pending.add(&deltas, last_id, now);
                observer(deltas);
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "ledger batch failed");
            for d in &mut done {
                d.fail(&err);
            }
        }
    }
    for d in done {
        d.send();
    }
}

fn serve(store: &mut impl Storage, read: Read, pending: &mut PendingTotals) {
    match read {
        Read::Window { n_shares, reply } => {
            let _ = reply.send(store.window(n_shares));
        }
        Read::Blocks { limit, reply } => {
            let _ = reply.send(store.blocks(limit));
        }
        Read::Block { hash, reply } => {
            let _ = reply.send(store.block(&hash));
        }
        Read::Totals { reply } => {
            let _ = reply.send(pending.flush(store).and_then(|()| store.totals()));
        }
        Read::SharesIn {
            first_id,
            last_id,
            reply,
        } => {
            let _ = reply.send(store.shares_in(first_id, last_id));
        }
        Read::History {
            since_ms,
            bucket_ms,
            reply,
        } => {
            let _ = reply.send(store.history(since_ms, bucket_ms));
        }
        Read::BlocksPaying {
            owner,
            limit,
            reply,
        } => {
            let _ = reply.send(store.blocks_paying(&owner, limit));
        }
    }
}

/// How the ledger thread groups writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Most shares in one transaction (a larger single request goes alone).
    pub max_batch_shares: usize,
    /// Least time between the starts of two commits.
    pub min_commit_interval: Duration,
}

/// The ledger thread: group-commits writes, serves reads in queue order, and returns when
/// every sender is gone and the queue is drained.
pub(super) fn run(
    mut store: impl Storage,
    mut rx: mpsc::Receiver<Request>,
    limits: Limits,
    stats: &StatsCell,
    mut observer: CommitObserver,
) {
    // a read taken off the queue while collecting a batch; served right after the commit
    let mut held: Option<Read> = None;
    let mut last_commit: Option<Instant> = None;
    let mut pending = PendingTotals::default();
    loop {
        // under load, wait out the rest of the interval since the last commit before taking
        // the next batch: the requests arriving meanwhile share one fsync, and the thread
        // sleeps once per commit instead of waking for the first request and sleeping again
        if let Some(at) = last_commit.take() {
            let due = at + limits.min_commit_interval;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let first = match held.take() {
            Some(read) => Request::Read(read),
            None => match rx.blocking_recv() {
                Some(request) => request,
                None => break,
            },
        };
        let first = match first {
            Request::Read(read) => {
                serve(&mut store, read, &mut pending);
                continue;
            }
            Request::Write(write) => write,
        };
        let mut shares = first.share_count();
        let mut batch = vec![first];
        while shares < limits.max_batch_shares {
            match rx.try_recv() {
                Ok(Request::Write(write)) => {
                    shares += write.share_count();
                    batch.push(write);
                }
                Ok(Request::Read(read)) => {
                    held = Some(read);
                    break;
                }
                Err(_) => break,
            }
        }
        last_commit = Some(Instant::now());
        commit_batch(&mut store, batch, stats, &mut observer, &mut pending);
        store.after_commit();
        // the workers table about once a second, in a transaction of its own after the
        // group was answered: the upserts take about a millisecond per thousand workers,
        // which every acknowledgement of the group waited for when they rode in its commit
        if pending.due(Instant::now()) {
            if let Err(e) = pending.flush(&mut store) {
                tracing::warn!(error = %e, "worker totals not written; retried after the next commit");
            }
        }
    }
    if let Err(e) = pending.flush(&mut store) {
        tracing::warn!(error = %e, "worker totals not written at close; the next start adds them");
    }
    store.close();
    tracing::info!("ledger closed");
}
