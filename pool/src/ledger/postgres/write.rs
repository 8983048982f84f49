//! The PostgreSQL ledger's writes: one transaction per group of requests, each write in
//! its own savepoint.

use postgres::Transaction;

use super::super::engine::Batch;
use super::super::rows::{self, id_to_sql, int, status_to_sql};
use super::super::{
    BlockRecord, BlockStatus, CommitReceipt, HistoryPoint, LedgerError, ShareRecord, WorkerTotals,
};
use super::Statements;

/// A write transaction on the PostgreSQL connection.
pub(in crate::ledger) struct PgBatch<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) statements: &'a Statements,
    /// The `server_id` of the shares this process writes.
    pub(super) server: i16,
    /// The store's flag: set on a database error, to check the connection before reuse.
    pub(super) suspect: &'a mut bool,
}

impl PgBatch<'_> {
    /// Runs `op` in its own savepoint, so its failure undoes only itself.
    fn in_savepoint<T>(
        &mut self,
        op: impl FnOnce(&mut Transaction<'_>, &Statements) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let res = (|| {
            let mut sp = self
                .tx
                .transaction()
                .map_err(LedgerError::postgres("open a savepoint"))?;
            // on error the dropped savepoint rolls back
            let out = op(&mut sp, self.statements)?;
            sp.commit()
                .map_err(LedgerError::postgres("release a savepoint"))?;
            Ok(out)
        })();
        if matches!(res, Err(LedgerError::Postgres { .. })) {
            *self.suspect = true;
        }
        res
    }
}

impl Batch for PgBatch<'_> {
    fn insert_shares(&mut self, shares: &[ShareRecord]) -> Result<CommitReceipt, LedgerError> {
        let server = self.server;
        self.in_savepoint(|tx, statements| insert_shares(tx, statements, shares, server))
    }

    fn insert_block(&mut self, block: &BlockRecord) -> Result<i64, LedgerError> {
        self.in_savepoint(|tx, _| insert_block(tx, block))
    }

    fn add_worker_totals(
        &mut self,
        totals: &[WorkerTotals],
        through: i64,
    ) -> Result<(), LedgerError> {
        let server = self.server;
        self.in_savepoint(|tx, statements| {
            add_worker_totals(tx, statements, totals, through, server)
        })
    }

    fn set_status(&mut self, hash: &str, status: &BlockStatus) -> Result<(), LedgerError> {
        self.in_savepoint(|tx, _| set_status(tx, hash, status))
    }

    fn record_history(
        &mut self,
        point: &HistoryPoint,
        prune_before_ms: u64,
    ) -> Result<(), LedgerError> {
        let server = self.server;
        self.in_savepoint(|tx, _| {
            let err = LedgerError::postgres("record the history");
            let (t, hashrate, accepted, rejected, connections) = rows::history_columns(point)?;
            tx.execute(
                rows::HISTORY_INSERT,
                &[&t, &hashrate, &accepted, &rejected, &connections, &server],
            )
            .map_err(err)?;
            tx.execute(
                rows::HISTORY_PRUNE,
                &[&int("prune_before_ms", prune_before_ms)?],
            )
            .map_err(err)?;
            Ok(())
        })
    }

    fn commit(self) -> Result<(), LedgerError> {
        let PgBatch { tx, suspect, .. } = self;
        tx.commit().map_err(|e| {
            *suspect = true;
            LedgerError::postgres("commit")(e)
        })
    }
}

/// One column per field, for the `unnest` insert.
#[derive(Default)]
struct Columns {
    worker: Vec<String>,
    connection_id: Vec<i64>,
    channel_id: Vec<i64>,
    job_id: Vec<i64>,
    sequence_number: Vec<i64>,
    height: Vec<i64>,
    difficulty: Vec<f64>,
    hash: Vec<Vec<u8>>,
    time_ms: Vec<i64>,
    block: Vec<bool>,
    channel_identity: Vec<String>,
}

fn insert_shares(
    tx: &mut Transaction<'_>,
    statements: &Statements,
    shares: &[ShareRecord],
    server: i16,
) -> Result<CommitReceipt, LedgerError> {
    let err = LedgerError::postgres("insert shares");
    let mut c = Columns::default();
    for s in shares {
        let time_ms = rows::share_time(s)?;
        c.worker.push(s.worker.clone());
        c.connection_id.push(id_to_sql(s.connection_id));
        c.channel_id.push(i64::from(s.channel_id));
        c.job_id.push(i64::from(s.job_id));
        c.sequence_number.push(i64::from(s.sequence_number));
        c.height.push(i64::from(s.height));
        c.difficulty.push(s.difficulty);
        c.hash.push(s.hash.to_vec());
        c.time_ms.push(time_ms);
        c.block.push(s.block);
        c.channel_identity.push(s.channel_identity.clone());
    }
    let rows = tx
        .query(
            &statements.insert_shares,
            &[
                &c.worker,
                &c.connection_id,
                &c.channel_id,
                &c.job_id,
                &c.sequence_number,
                &c.height,
                &c.difficulty,
                &c.hash,
                &c.time_ms,
                &c.block,
                &c.channel_identity,
                &server,
            ],
        )
        .map_err(err)?;
    let ids = rows
        .iter()
        .map(|r| r.try_get::<_, i64>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let first_id = ids.first().copied().unwrap_or(0);
    // the advisory lock makes this connection the only writer (in a cluster, the write
    // lock for this transaction): ids are consecutive
    if ids.len() != shares.len() || (first_id..).zip(&ids).any(|(want, got)| want != *got) {
        return Err(LedgerError::Corrupt {
            table: "shares",
            detail: format!(
                "{} shares got non-consecutive ids starting at {first_id}",
                shares.len()
            ),
        });
    }
    Ok(CommitReceipt {
        first_id,
        count: shares.len(),
    })
}

pub(super) fn add_worker_totals(
    tx: &mut Transaction<'_>,
    statements: &Statements,
    totals: &[WorkerTotals],
    through: i64,
    server: i16,
) -> Result<(), LedgerError> {
    let err = LedgerError::postgres("add worker totals");
    let mut workers = Vec::with_capacity(totals.len());
    let mut counts = Vec::with_capacity(totals.len());
    let mut difficulties = Vec::with_capacity(totals.len());
    let mut lasts = Vec::with_capacity(totals.len());
    for w in totals {
        let (worker, count, difficulty, last) = rows::worker_columns(w)?;
        workers.push(worker);
        counts.push(count);
        difficulties.push(difficulty);
        lasts.push(last);
    }
    tx.execute(
        &statements.upsert_workers,
        &[&workers, &counts, &difficulties, &lasts],
    )
    .map_err(err)?;
    tx.execute(
        "UPDATE workers_through SET id = $1 WHERE server_id = $2",
        &[&through, &server],
    )
    .map_err(err)?;
    Ok(())
}

fn insert_block(tx: &mut Transaction<'_>, block: &BlockRecord) -> Result<i64, LedgerError> {
    let err = LedgerError::postgres("insert a block");
    let exists = tx
        .query_opt("SELECT 1 FROM blocks WHERE hash = $1", &[&block.hash])
        .map_err(err)?;
    if exists.is_some() {
        return Err(LedgerError::DuplicateBlock {
            hash: block.hash.clone(),
        });
    }
    let (status, reason) = status_to_sql(&block.status);
    let id: i64 = tx
        .query_one(
            "INSERT INTO blocks (height, hash, template_id, worker, time_ms, reward_sats, \
             window_first, window_last, mode, status, reject_reason, payout_rules) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            &[
                &i64::from(block.height),
                &block.hash,
                &id_to_sql(block.template_id),
                &block.worker,
                &int("time_ms", block.time_ms)?,
                &int("reward_sats", block.reward_sats)?,
                &block.window.map(|w| w.0),
                &block.window.map(|w| w.1),
                &block.mode,
                &status,
                &reason,
                &block.payout_rules,
            ],
        )
        .map_err(err)?
        .try_get(0)
        .map_err(err)?;
    for (idx, out) in (0i64..).zip(&block.outputs) {
        tx.execute(
            "INSERT INTO block_outputs (block_id, idx, owner, script_hex, sats) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &id,
                &idx,
                &out.owner,
                &out.script_hex,
                &int("sats", out.sats)?,
            ],
        )
        .map_err(err)?;
    }
    Ok(id)
}

fn set_status(
    tx: &mut Transaction<'_>,
    hash: &str,
    status: &BlockStatus,
) -> Result<(), LedgerError> {
    let (status, reason) = status_to_sql(status);
    let changed = tx
        .execute(
            "UPDATE blocks SET status = $1, reject_reason = $2 WHERE hash = $3",
            &[&status, &reason, &hash],
        )
        .map_err(LedgerError::postgres("update a block status"))?;
    if changed == 0 {
        return Err(LedgerError::UnknownBlock {
            hash: hash.to_owned(),
        });
    }
    Ok(())
}
