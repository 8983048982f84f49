//! The SQLite backend of the ledger: schema, migrations and the storage operations the
//! ledger thread runs (see [`engine`](super::engine) for the thread and its group commit).
//!
//! Shares take a detour: a group's shares are written to the share log
//! ([`sharelog`](super::sharelog)) and synced, which is what acknowledges them; they are
//! inserted into `shares` (with the ids the log gave them) after the group was answered, in
//! transactions of up to [`IMPORT_CHUNK`] shares that need no sync, and all of them before
//! any read. When the log reaches [`REWIND_AT`] bytes, a synced commit makes the table
//! durable and the log starts over. At open, the shares a crash left in the log only go
//! into the table before anything else.
//!
//! Schema (version 6, `PRAGMA user_version`; the migrations are in [`schema`](super::schema);
//! version 5 is PostgreSQL's cluster columns, nothing here):
//!
//! ```text
//! shares(id INTEGER PRIMARY KEY AUTOINCREMENT, worker, connection_id, channel_id, job_id,
//!        sequence_number, height, difficulty REAL, hash BLOB(32), time_ms, block,
//!        channel_identity)  -- NULL in rows of version 1: their worker is the identity
//!        -- ids never reused; PPLNS windows and shares_in are ranges of the primary key
//! workers(worker TEXT PRIMARY KEY, shares, difficulty, last_share_ms) WITHOUT ROWID
//!        -- running totals, updated in the same transaction as the shares
//! blocks(id INTEGER PRIMARY KEY AUTOINCREMENT, height, hash TEXT UNIQUE, template_id,
//!        worker, time_ms, reward_sats, window_first, window_last, mode, status,
//!        reject_reason, payout_rules)   -- newest first = primary key descending; status by hash = unique
//! block_outputs(block_id REFERENCES blocks, idx, owner, script_hex, sats,
//!        PRIMARY KEY(block_id, idx)) WITHOUT ROWID   -- indexed by owner (a miner's blocks)
//! workers_through(id)   -- the last share id the workers table counts
//! history(server_id, time_ms, hashrate REAL, accepted, rejected, connections,
//!        PRIMARY KEY(server_id, time_ms)) WITHOUT ROWID
//!        -- one sample a minute (server_id 0: SQLite is never shared), pruned beyond the
//!        -- configured retention
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::checkpoint::Checkpointer;
use super::engine::{Batch, Storage};
use super::rows::{self, id_to_sql, int, status_to_sql, BlockRow, HistoryRow, ShareRow, WorkerRow};
use super::sharelog::{self, ShareLog};
use super::{
    BlockRecord, BlockStatus, CommitReceipt, HistoryPoint, LedgerError, PplnsWindow, ShareRecord,
    Synchronous, Totals, WorkerTotals,
};

/// Schema migrations ([`schema::SQLITE`](super::schema::SQLITE)).
const MIGRATIONS: &[&str] = super::schema::SQLITE;

/// The newest schema version this build writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Most shares moved from the log into the `shares` table in one transaction between two
/// commits (about half a millisecond of inserts: the ledger thread does it in the time it
/// would otherwise sleep between commits).
const IMPORT_CHUNK: usize = 256;
/// Shares stay in the log only, at most this long while commits go on.
const IMPORT_AFTER: Duration = Duration::from_millis(100);
/// Shares moved into the table between two checkpoints of the WAL: about the thousand pages
/// after which SQLite would checkpoint by itself (a page holds some 25 shares).
const CHECKPOINT_AFTER_SHARES: usize = 25_000;
/// The log is rewound (SQLite made to hold every share in it durably) once it is this long.
/// That takes a synced SQLite commit on the ledger thread, which the next group's
/// acknowledgements wait behind, so it is rare: at 10,000 shares a second the log holds
/// about 2 MB a second, and the file grows to this size (4 MiB at a time) once, after which
/// it is reused.
const REWIND_AT: u64 = 32 << 20;

/// The open database; owned by the ledger thread.
#[derive(Debug)]
pub(super) struct Store {
    conn: Connection,
    synchronous: Synchronous,
    shares: Shares,
    /// Checkpoints the WAL from a connection of its own, so that the ledger thread never
    /// copies pages and syncs the database file while acknowledgements wait for it.
    checkpointer: Checkpointer,
    /// Shares moved into the table since the last checkpoint was asked for.
    imported_since_checkpoint: usize,
}

/// Shares on their way to the `shares` table: durable in the log first (what an
/// acknowledgement waits for), in the table a little later.
#[derive(Debug)]
struct Shares {
    log: ShareLog,
    /// The id the next share gets (ids are given here, in commit order, never reused).
    next_id: i64,
    /// In the log, not yet in the table, in id order.
    unimported: Vec<(i64, ShareRecord)>,
    /// When the oldest of them was written.
    since: Option<Instant>,
}

impl Store {
    /// Opens or creates the database, sets WAL and `synchronous`, migrates the schema.
    pub(super) fn open(path: &Path, synchronous: Synchronous) -> Result<Store, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| LedgerError::Io {
                path: dir.to_path_buf(),
                source: Arc::new(e),
            })?;
        }
        let mut conn = Connection::open(path).map_err(LedgerError::sqlite("open the database"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(LedgerError::sqlite("set the journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::NotWal { mode });
        }
        conn.pragma_update(None, "synchronous", synchronous.pragma_value())
            .map_err(LedgerError::sqlite("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(LedgerError::sqlite("enable foreign keys"))?;
        // the checkpointer thread checkpoints instead
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(LedgerError::sqlite("turn automatic checkpoints off"))?;
        migrate(&mut conn)?;
        let checkpointer = Checkpointer::start(path)?;
        let (log, logged) =
            ShareLog::open(&sharelog::path_for(path), synchronous == Synchronous::Full)?;
        let last_id: i64 = conn
            .query_row(
                "SELECT max(coalesce((SELECT max(id) FROM shares), 0), \
                 coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'shares'), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(LedgerError::sqlite("read the last share id"))?;
        // what a crash left in the log only
        let missing: Vec<(i64, ShareRecord)> =
            logged.into_iter().filter(|(id, _)| *id > last_id).collect();
        let next_id = missing.last().map_or(last_id, |(id, _)| *id) + 1;
        let recovered = missing.len();
        let mut store = Store {
            conn,
            synchronous,
            checkpointer,
            imported_since_checkpoint: 0,
            shares: Shares {
                log,
                next_id,
                unimported: missing,
                since: None,
            },
        };
        store.import_all_durably()?;
        if recovered > 0 {
            tracing::info!(shares = recovered, "shares recovered from the share log");
        }
        Ok(store)
    }

    /// Moves up to `limit` logged shares into the `shares` table, in one transaction that
    /// need not be durable (the log still holds them).
    fn import(&mut self, limit: usize) -> Result<(), LedgerError> {
        let n = limit.min(self.shares.unimported.len());
        if n == 0 {
            return Ok(());
        }
        let relax = self.synchronous == Synchronous::Full;
        if relax {
            self.conn
                .pragma_update(None, "synchronous", Synchronous::Normal.pragma_value())
                .map_err(LedgerError::sqlite("set synchronous"))?;
        }
        let res = self.import_now(n);
        if relax {
            self.conn
                .pragma_update(None, "synchronous", self.synchronous.pragma_value())
                .map_err(LedgerError::sqlite("set synchronous"))?;
        }
        res
    }

    fn import_now(&mut self, n: usize) -> Result<(), LedgerError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LedgerError::sqlite("begin a transaction"))?;
        insert_logged(&tx, &self.shares.unimported[..n])?;
        tx.commit().map_err(LedgerError::sqlite("commit"))?;
        self.imported_since_checkpoint += n;
        if self.imported_since_checkpoint >= CHECKPOINT_AFTER_SHARES {
            self.imported_since_checkpoint = 0;
            self.checkpointer.request();
        }
        self.shares.unimported.drain(..n);
        self.shares.since = (!self.shares.unimported.is_empty()).then(Instant::now);
        Ok(())
    }

    /// Moves every logged share into the `shares` table durably (as configured), then
    /// rewinds the log.
    fn import_all_durably(&mut self) -> Result<(), LedgerError> {
        if !self.shares.unimported.is_empty() {
            self.import_now(self.shares.unimported.len())?;
        } else if self.shares.log.len() > 0 && self.synchronous == Synchronous::Full {
            // shares imported without a sync: a synced commit makes the WAL durable
            self.conn
                .execute_batch("BEGIN IMMEDIATE; UPDATE workers_through SET id = id; COMMIT")
                .map_err(LedgerError::sqlite("sync the imported shares"))?;
        }
        self.shares.log.rewind();
        Ok(())
    }

    /// Every logged share in the table, for a read.
    fn import_all(&mut self) -> Result<(), LedgerError> {
        self.import(usize::MAX)
    }
}

impl Storage for Store {
    type Batch<'a> = SqliteBatch<'a>;

    fn begin(&mut self) -> Result<SqliteBatch<'_>, LedgerError> {
        let first_id = self.shares.next_id;
        Ok(SqliteBatch {
            conn: &self.conn,
            synchronous: self.synchronous,
            relaxed: false,
            sync_after: false,
            tx: None,
            shares: &mut self.shares,
            logged: Vec::new(),
            first_id,
            done: false,
        })
    }

    fn after_commit(&mut self) {
        let res = if self.shares.log.len() >= REWIND_AT {
            self.import_all_durably()
        } else if self.shares.unimported.len() >= IMPORT_CHUNK
            || self
                .shares
                .since
                .is_some_and(|t| t.elapsed() >= IMPORT_AFTER)
        {
            // a chunk, or half of what is waiting when the shares come faster than that
            self.import(IMPORT_CHUNK.max(self.shares.unimported.len() / 2))
        } else {
            Ok(())
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, "logged shares not moved into the shares table yet; retried after the next commit");
        }
    }

    fn close(&mut self) {
        if let Err(e) = self.import_all_durably() {
            tracing::warn!(error = %e, "logged shares not moved into the shares table; the next start does it");
        }
    }

    fn window(&mut self, n_shares: u64) -> Result<PplnsWindow, LedgerError> {
        self.import_all()?;
        let err = LedgerError::sqlite("read the pplns window");
        let n = i64::try_from(n_shares).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, identity, difficulty FROM \
                 (SELECT id, coalesce(channel_identity, worker) AS identity, difficulty \
                 FROM shares ORDER BY id DESC LIMIT ?1) \
                 ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([n], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, f64>(2)?,
                ))
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(PplnsWindow::from_shares(rows))
    }

    fn shares_in(
        &mut self,
        first_id: i64,
        last_id: i64,
    ) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
        self.import_all()?;
        let err = LedgerError::sqlite("read shares");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, worker, connection_id, channel_id, job_id, sequence_number, height, \
                 difficulty, hash, time_ms, block, channel_identity FROM shares \
                 WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
            )
            .map_err(err)?;
        let raw: Vec<ShareRow> = stmt
            .query_map([first_id, last_id], |r| {
                Ok(ShareRow {
                    id: r.get(0)?,
                    worker: r.get(1)?,
                    connection_id: r.get(2)?,
                    channel_id: r.get(3)?,
                    job_id: r.get(4)?,
                    sequence_number: r.get(5)?,
                    height: r.get(6)?,
                    difficulty: r.get(7)?,
                    hash: r.get(8)?,
                    time_ms: r.get(9)?,
                    block: r.get(10)?,
                    channel_identity: r.get(11)?,
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        raw.into_iter().map(ShareRow::into_record).collect()
    }

    fn workers_through(&mut self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("SELECT id FROM workers_through", [], |r| r.get(0))
            .map_err(LedgerError::sqlite("read the workers watermark"))
    }

    fn totals(&mut self) -> Result<Totals, LedgerError> {
        self.import_all()?;
        let err = LedgerError::sqlite("read totals");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT worker, shares, difficulty, last_share_ms FROM workers ORDER BY worker",
            )
            .map_err(err)?;
        let workers = stmt
            .query_map([], |r| {
                Ok(WorkerRow {
                    worker: r.get(0)?,
                    shares: r.get(1)?,
                    difficulty: r.get(2)?,
                    last_share_ms: r.get(3)?,
                })
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let (found, accepted): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE status = 'accepted') FROM blocks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        rows::totals(workers, found, accepted)
    }

    fn blocks(&mut self, limit: usize) -> Result<Vec<BlockRecord>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_blocks("ORDER BY id DESC LIMIT ?1", limit)
    }

    fn block(&mut self, hash: &str) -> Result<Option<BlockRecord>, LedgerError> {
        Ok(self.read_blocks("WHERE hash = ?1", hash)?.pop())
    }

    fn blocks_paying(
        &mut self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<BlockRecord>, LedgerError> {
        let tail = format!(
            "{} LIMIT {}",
            rows::BLOCKS_PAYING_TAIL,
            limit.min(i64::MAX as usize)
        );
        self.read_blocks(&tail, owner)
    }

    fn history(&mut self, since_ms: u64, bucket_ms: u64) -> Result<Vec<HistoryPoint>, LedgerError> {
        let err = LedgerError::sqlite("read the history");
        let (bucket, since) = rows::history_params(since_ms, bucket_ms);
        let mut stmt = self
            .conn
            .prepare_cached(rows::HISTORY_SELECT)
            .map_err(err)?;
        let raw: Vec<HistoryRow> = stmt
            .query_map([bucket, since], |r| {
                Ok(HistoryRow {
                    time_ms: r.get(0)?,
                    hashrate: r.get(1)?,
                    accepted: r.get(2)?,
                    rejected: r.get(3)?,
                    connections: r.get(4)?,
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        raw.into_iter().map(HistoryRow::into_record).collect()
    }
}

impl Store {
    /// The blocks `SELECT ... FROM blocks {tail}` finds (`?1` = `param`), with their outputs.
    fn read_blocks(
        &mut self,
        tail: &str,
        param: impl rusqlite::ToSql,
    ) -> Result<Vec<BlockRecord>, LedgerError> {
        let err = LedgerError::sqlite("read blocks");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT id, height, hash, template_id, worker, time_ms, reward_sats, \
                 window_first, window_last, mode, status, reject_reason, payout_rules \
                 FROM blocks {tail}"
            ))
            .map_err(err)?;
        let raw: Vec<BlockRow> = stmt
            .query_map([param], |r| {
                Ok(BlockRow {
                    id: r.get(0)?,
                    height: r.get(1)?,
                    hash: r.get(2)?,
                    template_id: r.get(3)?,
                    worker: r.get(4)?,
                    time_ms: r.get(5)?,
                    reward_sats: r.get(6)?,
                    window_first: r.get(7)?,
                    window_last: r.get(8)?,
                    mode: r.get(9)?,
                    status: r.get(10)?,
                    reject_reason: r.get(11)?,
                    payout_rules: r.get(12)?,
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut outputs_stmt = self
            .conn
            .prepare_cached(
                "SELECT owner, script_hex, sats FROM block_outputs WHERE block_id = ?1 \
                 ORDER BY idx",
            )
            .map_err(err)?;
        let mut blocks = Vec::with_capacity(raw.len());
        for row in raw {
            let outputs = outputs_stmt
                .query_map([row.id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?
                .into_iter()
                .map(|(owner, script_hex, sats)| rows::payout(owner, script_hex, sats))
                .collect::<Result<Vec<_>, LedgerError>>()?;
            blocks.push(row.into_record(outputs)?);
        }
        Ok(blocks)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(LedgerError::sqlite("read the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let err = LedgerError::sqlite("migrate the schema");
    for (version, sql) in (1..)
        .zip(MIGRATIONS.iter())
        .skip_while(|(v, _)| *v <= found)
    {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(version, "ledger schema migrated");
    }
    Ok(())
}

/// A write transaction: shares go to the log (written and synced at commit), everything
/// else to an SQLite transaction begun when first needed.
pub(super) struct SqliteBatch<'a> {
    conn: &'a Connection,
    /// The configured durability.
    synchronous: Synchronous,
    /// The SQLite transaction began for worker totals and commits without a sync
    /// (`synchronous` is set back after it).
    relaxed: bool,
    /// A write that must be durable joined a relaxed transaction: a synced commit follows
    /// it (the engine writes totals last, so this is a guard, not a path it takes).
    sync_after: bool,
    tx: Option<Transaction<'a>>,
    shares: &'a mut Shares,
    /// The shares appended to the log, for the table once written.
    logged: Vec<(i64, ShareRecord)>,
    /// The next id when the batch began: the ids of a batch that fails are given again.
    first_id: i64,
    done: bool,
}

impl Drop for SqliteBatch<'_> {
    fn drop(&mut self) {
        if !self.done {
            // rolled back: the appended shares are not written, their ids not used
            self.shares.log.discard();
            self.shares.next_id = self.first_id;
        }
        // a transaction still open rolls back first (fields drop after this)
        drop(self.tx.take());
        self.strict_again();
    }
}

impl<'a> SqliteBatch<'a> {
    /// Begins a transaction that holds worker totals only and commits without a sync:
    /// totals are never what an acknowledgement waits for, and a crash that loses them
    /// loses their `workers_through` mark with them, so the next start counts those shares
    /// again from the table or the log (`catch_up_worker_totals`). The next synced commit
    /// (a block, the log's rewind) makes them durable with everything before it.
    fn begin_relaxed(&mut self) -> Result<(), LedgerError> {
        if self.tx.is_some() || self.synchronous != Synchronous::Full {
            return Ok(());
        }
        self.conn
            .pragma_update(None, "synchronous", Synchronous::Normal.pragma_value())
            .map_err(LedgerError::sqlite("set synchronous"))?;
        self.relaxed = true;
        self.tx().map(|_| ())
    }

    /// Called by every write but the totals: in a relaxed transaction it must be made
    /// durable after the commit.
    fn durable_write(&mut self) {
        if self.relaxed {
            self.sync_after = true;
        }
    }

    /// `synchronous` as configured again after a relaxed transaction.
    fn strict_again(&mut self) {
        if std::mem::take(&mut self.relaxed) {
            if let Err(e) =
                self.conn
                    .pragma_update(None, "synchronous", self.synchronous.pragma_value())
            {
                tracing::warn!(error = %e, "synchronous not set back after a totals commit");
            }
        }
    }

    /// The SQLite transaction, begun now if it was not.
    fn tx(&mut self) -> Result<&mut Transaction<'a>, LedgerError> {
        if self.tx.is_none() {
            let tx = self
                .conn
                .unchecked_transaction()
                .map_err(LedgerError::sqlite("begin a transaction"))?;
            self.tx = Some(tx);
        }
        Ok(self.tx.as_mut().expect("just begun"))
    }

    /// Runs `op` in its own savepoint, so its failure undoes only itself.
    fn in_savepoint<T>(
        &mut self,
        op: impl FnOnce(&Connection) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let sp = self
            .tx()?
            .savepoint()
            .map_err(LedgerError::sqlite("open a savepoint"))?;
        // on error the dropped savepoint rolls back
        let out = op(&sp)?;
        sp.commit()
            .map_err(LedgerError::sqlite("release a savepoint"))?;
        Ok(out)
    }
}

impl Batch for SqliteBatch<'_> {
    fn insert_shares(&mut self, shares: &[ShareRecord]) -> Result<CommitReceipt, LedgerError> {
        // checked as the table would check them, so that their import cannot fail
        let times = shares
            .iter()
            .map(rows::share_time)
            .collect::<Result<Vec<i64>, LedgerError>>()?;
        let first_id = self.shares.next_id;
        for ((id, s), time_ms) in (first_id..).zip(shares).zip(times) {
            self.shares.log.append(id, s, time_ms);
            self.logged.push((id, s.clone()));
        }
        self.shares.next_id += shares.len() as i64;
        Ok(CommitReceipt {
            first_id: if shares.is_empty() { 0 } else { first_id },
            count: shares.len(),
        })
    }

    fn insert_block(&mut self, block: &BlockRecord) -> Result<i64, LedgerError> {
        self.durable_write();
        self.in_savepoint(|conn| insert_block(conn, block))
    }

    fn add_worker_totals(
        &mut self,
        totals: &[WorkerTotals],
        through: i64,
    ) -> Result<(), LedgerError> {
        self.begin_relaxed()?;
        self.in_savepoint(|conn| add_worker_totals(conn, totals, through))
    }

    fn set_status(&mut self, hash: &str, status: &BlockStatus) -> Result<(), LedgerError> {
        self.durable_write();
        self.in_savepoint(|conn| set_status(conn, hash, status))
    }

    fn record_history(
        &mut self,
        point: &HistoryPoint,
        prune_before_ms: u64,
    ) -> Result<(), LedgerError> {
        self.durable_write();
        self.in_savepoint(|conn| {
            let err = LedgerError::sqlite("record the history");
            let (t, hashrate, accepted, rejected, connections) = rows::history_columns(point)?;
            conn.prepare_cached(rows::HISTORY_INSERT)
                .and_then(|mut s| {
                    // a pool alone: server 0
                    s.execute(params![t, hashrate, accepted, rejected, connections, 0i64])
                })
                .map_err(err)?;
            conn.execute(
                rows::HISTORY_PRUNE,
                [int("prune_before_ms", prune_before_ms)?],
            )
            .map_err(err)?;
            Ok(())
        })
    }

    fn commit(mut self) -> Result<(), LedgerError> {
        if let Some(tx) = self.tx.take() {
            let res = tx.commit().map_err(LedgerError::sqlite("commit"));
            self.strict_again();
            res?;
            if std::mem::take(&mut self.sync_after) {
                // a synced commit makes the WAL, and the relaxed commit in it, durable
                self.conn
                    .execute_batch("BEGIN IMMEDIATE; UPDATE workers_through SET id = id; COMMIT")
                    .map_err(LedgerError::sqlite("sync a relaxed commit"))?;
            }
        }
        self.shares.log.write()?;
        self.done = true;
        if !self.logged.is_empty() {
            self.shares.since.get_or_insert_with(Instant::now);
            self.shares.unimported.append(&mut self.logged);
        }
        Ok(())
    }
}

/// Shares per statement when logged shares move into the table: SQLite's per-statement
/// work (and AUTOINCREMENT's `sqlite_sequence` update) once per this many rows.
const INSERT_ROWS: usize = 32;

/// The columns of a share row, in the order [`bind_share`] binds them.
const SHARE_COLUMNS: &str = "INSERT INTO shares (id, worker, connection_id, channel_id, \
     job_id, sequence_number, height, difficulty, hash, time_ms, block, channel_identity) VALUES ";
/// Parameters per share row.
const SHARE_PARAMS: usize = 12;

/// The insert of `rows` shares.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", ["?"; SHARE_PARAMS].join(","));
    let mut sql = String::from(SHARE_COLUMNS);
    sql.push_str(&vec![row; rows].join(","));
    sql
}

/// Binds one share as the `row`-th row of an insert made by [`insert_sql`].
fn bind_share(
    stmt: &mut rusqlite::CachedStatement<'_>,
    row: usize,
    id: i64,
    s: &ShareRecord,
) -> Result<(), LedgerError> {
    let err = LedgerError::sqlite("insert shares");
    let time_ms = rows::share_time(s)?;
    let at = row * SHARE_PARAMS;
    (|| {
        stmt.raw_bind_parameter(at + 1, id)?;
        stmt.raw_bind_parameter(at + 2, &s.worker)?;
        stmt.raw_bind_parameter(at + 3, id_to_sql(s.connection_id))?;
        stmt.raw_bind_parameter(at + 4, s.channel_id)?;
        stmt.raw_bind_parameter(at + 5, s.job_id)?;
        stmt.raw_bind_parameter(at + 6, s.sequence_number)?;
        stmt.raw_bind_parameter(at + 7, s.height)?;
        stmt.raw_bind_parameter(at + 8, s.difficulty)?;
        stmt.raw_bind_parameter(at + 9, &s.hash[..])?;
        stmt.raw_bind_parameter(at + 10, time_ms)?;
        stmt.raw_bind_parameter(at + 11, s.block)?;
        stmt.raw_bind_parameter(at + 12, &s.channel_identity)
    })()
    .map_err(err)
}

/// Inserts logged shares with their ids, [`INSERT_ROWS`] to a statement.
fn insert_logged(conn: &Connection, shares: &[(i64, ShareRecord)]) -> Result<(), LedgerError> {
    static MANY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static ONE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let err = LedgerError::sqlite("insert shares");
    let mut chunks = shares.chunks_exact(INSERT_ROWS);
    if chunks.len() > 0 {
        let mut many = conn
            .prepare_cached(MANY.get_or_init(|| insert_sql(INSERT_ROWS)))
            .map_err(err)?;
        for chunk in &mut chunks {
            for (row, (id, s)) in chunk.iter().enumerate() {
                bind_share(&mut many, row, *id, s)?;
            }
            many.raw_execute().map_err(err)?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut one = conn
            .prepare_cached(ONE.get_or_init(|| insert_sql(1)))
            .map_err(err)?;
        for (id, s) in rest {
            bind_share(&mut one, 0, *id, s)?;
            one.raw_execute().map_err(err)?;
        }
    }
    Ok(())
}

fn add_worker_totals(
    conn: &Connection,
    totals: &[WorkerTotals],
    through: i64,
) -> Result<(), LedgerError> {
    let err = LedgerError::sqlite("add worker totals");
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO workers (worker, shares, difficulty, last_share_ms) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (worker) DO UPDATE SET \
             shares = shares + excluded.shares, \
             difficulty = difficulty + excluded.difficulty, \
             last_share_ms = max(last_share_ms, excluded.last_share_ms)",
        )
        .map_err(err)?;
    for w in totals {
        let (worker, shares, difficulty, last) = rows::worker_columns(w)?;
        upsert
            .execute(params![worker, shares, difficulty, last])
            .map_err(err)?;
    }
    conn.execute("UPDATE workers_through SET id = ?1", [through])
        .map_err(err)?;
    Ok(())
}

fn insert_block(conn: &Connection, block: &BlockRecord) -> Result<i64, LedgerError> {
    let err = LedgerError::sqlite("insert a block");
    let exists = conn
        .query_row(
            "SELECT 1 FROM blocks WHERE hash = ?1",
            [&block.hash],
            |_| Ok(()),
        )
        .optional()
        .map_err(err)?;
    if exists.is_some() {
        return Err(LedgerError::DuplicateBlock {
            hash: block.hash.clone(),
        });
    }
    let (status, reason) = status_to_sql(&block.status);
    conn.execute(
        "INSERT INTO blocks (height, hash, template_id, worker, time_ms, reward_sats, \
         window_first, window_last, mode, status, reject_reason, payout_rules) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            block.height,
            block.hash,
            id_to_sql(block.template_id),
            block.worker,
            int("time_ms", block.time_ms)?,
            int("reward_sats", block.reward_sats)?,
            block.window.map(|w| w.0),
            block.window.map(|w| w.1),
            block.mode,
            status,
            reason,
            block.payout_rules,
        ],
    )
    .map_err(err)?;
    let id = conn.last_insert_rowid();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO block_outputs (block_id, idx, owner, script_hex, sats) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(err)?;
    for (idx, out) in (0i64..).zip(&block.outputs) {
        insert
            .execute(params![
                id,
                idx,
                out.owner,
                out.script_hex,
                int("sats", out.sats)?
            ])
            .map_err(err)?;
    }
    Ok(id)
}

fn set_status(conn: &Connection, hash: &str, status: &BlockStatus) -> Result<(), LedgerError> {
    let (status, reason) = status_to_sql(status);
    let changed = conn
        .execute(
            "UPDATE blocks SET status = ?1, reject_reason = ?2 WHERE hash = ?3",
            params![status, reason, hash],
        )
        .map_err(LedgerError::sqlite("update a block status"))?;
    if changed == 0 {
        return Err(LedgerError::UnknownBlock {
            hash: hash.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
