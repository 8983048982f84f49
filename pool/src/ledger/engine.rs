//! The ledger thread, whichever database it writes to: group commit, savepoint per request,
//! reads in queue order. A backend only supplies the storage operations ([`Storage`] and
//! [`Batch`]); how requests are batched, answered and counted lives here, once.

use tokio::sync::mpsc;

use super::{
    BlockRecord, BlockStatus, CommitReceipt, LedgerError, PplnsWindow, Read, Reply, Request,
    ShareRecord, StatsCell, Totals, Write,
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

    /// Ledger-wide and per-worker totals.
    fn totals(&mut self) -> Result<Totals, LedgerError>;

    /// The shares with ids in `first_id..=last_id`, ascending.
    fn shares_in(
        &mut self,
        first_id: i64,
        last_id: i64,
    ) -> Result<Vec<(i64, ShareRecord)>, LedgerError>;
}

/// One write transaction. Each write runs in its own savepoint: when it fails, only its own
/// changes are undone and the transaction goes on. Dropping the batch rolls it back.
pub(super) trait Batch {
    /// Inserts the shares (ids in submission order) and adds them to the workers' totals.
    fn insert_shares(&mut self, shares: &[ShareRecord]) -> Result<CommitReceipt, LedgerError>;

    /// Inserts a block and its outputs; returns its id.
    fn insert_block(&mut self, block: &BlockRecord) -> Result<i64, LedgerError>;

    /// Sets the status of the block with this hash.
    fn set_status(&mut self, hash: &str, status: &BlockStatus) -> Result<(), LedgerError>;

    /// Commits (durably, as configured).
    fn commit(self) -> Result<(), LedgerError>;
}

/// A write request, applied (or failed) and waiting for the commit to be answered.
enum Done {
    Shares(Reply<CommitReceipt>, Result<CommitReceipt, LedgerError>),
    Block(Reply<i64>, Result<i64, LedgerError>),
    Status(Reply<()>, Result<(), LedgerError>),
}

impl Done {
    fn failed(write: Write, err: LedgerError) -> Done {
        match write {
            Write::Shares { reply, .. } => Done::Shares(reply, Err(err)),
            Write::Block { reply, .. } => Done::Block(reply, Err(err)),
            Write::Status { reply, .. } => Done::Status(reply, Err(err)),
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
            Done::Status(_, res @ Ok(_)) => *res = Err(err.clone()),
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
            Done::Status(reply, res) => {
                let _ = reply.send(res);
            }
        }
    }
}

fn apply(batch: &mut impl Batch, write: Write) -> Done {
    match write {
        Write::Shares { shares, reply } => Done::Shares(reply, batch.insert_shares(&shares)),
        Write::Block { block, reply } => Done::Block(reply, batch.insert_block(&block)),
        Write::Status {
            hash,
            status,
            reply,
        } => Done::Status(reply, batch.set_status(&hash, &status)),
    }
}

/// Writes a group of requests in one transaction, then resolves them.
fn commit_batch(store: &mut impl Storage, batch: Vec<Write>, stats: &StatsCell) {
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
    let mut done = Vec::with_capacity(batch.len());
    let mut shares = 0u64;
    for write in batch {
        let outcome = apply(&mut tx, write);
        shares += outcome.committed_shares();
        done.push(outcome);
    }
    match tx.commit() {
        Ok(()) => {
            stats.record(requests, shares);
            tracing::trace!(requests, shares, "ledger batch committed");
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

fn serve(store: &mut impl Storage, read: Read) {
    match read {
        Read::Window { n_shares, reply } => {
            let _ = reply.send(store.window(n_shares));
        }
        Read::Blocks { limit, reply } => {
            let _ = reply.send(store.blocks(limit));
        }
        Read::Totals { reply } => {
            let _ = reply.send(store.totals());
        }
        Read::SharesIn {
            first_id,
            last_id,
            reply,
        } => {
            let _ = reply.send(store.shares_in(first_id, last_id));
        }
    }
}

/// The ledger thread: group-commits writes, serves reads in queue order, and returns when
/// every sender is gone and the queue is drained.
pub(super) fn run(
    mut store: impl Storage,
    mut rx: mpsc::Receiver<Request>,
    max_batch_shares: usize,
    stats: &StatsCell,
) {
    // a read taken off the queue while collecting a batch; served right after the commit
    let mut held: Option<Read> = None;
    loop {
        let first = match held.take() {
            Some(read) => Request::Read(read),
            None => match rx.blocking_recv() {
                Some(request) => request,
                None => break,
            },
        };
        let first = match first {
            Request::Read(read) => {
                serve(&mut store, read);
                continue;
            }
            Request::Write(write) => write,
        };
        let mut shares = first.share_count();
        let mut batch = vec![first];
        while shares < max_batch_shares {
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
        commit_batch(&mut store, batch, stats);
    }
    tracing::info!("ledger closed");
}
