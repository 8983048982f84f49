//! The SQLite backend of the ledger: schema, migrations and the storage operations the
//! ledger thread runs (see [`engine`](super::engine) for the thread and its group commit).
//!
//! Schema (version 2, `PRAGMA user_version`):
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
//!        reject_reason)   -- newest first = primary key descending; status by hash = unique
//! block_outputs(block_id REFERENCES blocks, idx, owner, script_hex, sats,
//!        PRIMARY KEY(block_id, idx)) WITHOUT ROWID
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::engine::{Batch, Storage};
use super::{
    BlockRecord, BlockStatus, CommitReceipt, LedgerError, Payout, PplnsWindow, ShareRecord,
    Synchronous, Totals, WorkerTotals,
};

/// Schema migrations; entry `i` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE shares (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    worker          TEXT    NOT NULL,
    connection_id   INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    job_id          INTEGER NOT NULL,
    sequence_number INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    difficulty      REAL    NOT NULL,
    hash            BLOB    NOT NULL,
    time_ms         INTEGER NOT NULL,
    block           INTEGER NOT NULL
);
CREATE TABLE workers (
    worker        TEXT    PRIMARY KEY,
    shares        INTEGER NOT NULL,
    difficulty    REAL    NOT NULL,
    last_share_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE blocks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    height        INTEGER NOT NULL,
    hash          TEXT    NOT NULL UNIQUE,
    template_id   INTEGER NOT NULL,
    worker        TEXT    NOT NULL,
    time_ms       INTEGER NOT NULL,
    reward_sats   INTEGER NOT NULL,
    window_first  INTEGER,
    window_last   INTEGER,
    mode          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('submitted', 'accepted', 'rejected')),
    reject_reason TEXT
);
CREATE INDEX blocks_by_status ON blocks(status);
CREATE TABLE block_outputs (
    block_id   INTEGER NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    script_hex TEXT    NOT NULL,
    sats       INTEGER NOT NULL,
    PRIMARY KEY (block_id, idx)
) WITHOUT ROWID;
",
    r"
ALTER TABLE shares ADD COLUMN channel_identity TEXT;
",
];

/// The newest schema version this build writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn int(field: &'static str, value: u64) -> Result<i64, LedgerError> {
    i64::try_from(value).map_err(|_| LedgerError::OutOfRange { field, value })
}

fn uint(table: &'static str, field: &str, value: i64) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::Corrupt {
        table,
        detail: format!("negative {field} {value}"),
    })
}

fn narrow(table: &'static str, field: &str, value: i64) -> Result<u32, LedgerError> {
    u32::try_from(value).map_err(|_| LedgerError::Corrupt {
        table,
        detail: format!("{field} {value} out of range"),
    })
}

/// Identifiers are stored bit-for-bit: every `u64` has a slot, ordering is not needed.
fn id_to_sql(id: u64) -> i64 {
    i64::from_le_bytes(id.to_le_bytes())
}

fn id_from_sql(id: i64) -> u64 {
    u64::from_le_bytes(id.to_le_bytes())
}

fn status_to_sql(status: &BlockStatus) -> (&'static str, Option<&str>) {
    match status {
        BlockStatus::Submitted => ("submitted", None),
        BlockStatus::Accepted => ("accepted", None),
        BlockStatus::Rejected { reason } => ("rejected", Some(reason.as_str())),
    }
}

fn status_from_sql(status: &str, reason: Option<String>) -> Result<BlockStatus, LedgerError> {
    match status {
        "submitted" => Ok(BlockStatus::Submitted),
        "accepted" => Ok(BlockStatus::Accepted),
        "rejected" => Ok(BlockStatus::Rejected {
            reason: reason.unwrap_or_default(),
        }),
        other => Err(LedgerError::Corrupt {
            table: "blocks",
            detail: format!("unknown status {other:?}"),
        }),
    }
}

/// The open database; owned by the ledger thread.
#[derive(Debug)]
pub(super) struct Store {
    conn: Connection,
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
        migrate(&mut conn)?;
        Ok(Store { conn })
    }
}

impl Storage for Store {
    type Batch<'a> = SqliteBatch<'a>;

    fn begin(&mut self) -> Result<SqliteBatch<'_>, LedgerError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LedgerError::sqlite("begin a transaction"))?;
        Ok(SqliteBatch { tx })
    }

    fn window(&mut self, n_shares: u64) -> Result<PplnsWindow, LedgerError> {
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
        type Raw = (
            i64,
            String,
            i64,
            i64,
            i64,
            i64,
            i64,
            f64,
            Vec<u8>,
            i64,
            bool,
            Option<String>,
        );
        let err = LedgerError::sqlite("read shares");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, worker, connection_id, channel_id, job_id, sequence_number, height, \
                 difficulty, hash, time_ms, block, channel_identity FROM shares \
                 WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
            )
            .map_err(err)?;
        let raw: Vec<Raw> = stmt
            .query_map([first_id, last_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        raw.into_iter()
            .map(
                |(
                    id,
                    worker,
                    conn,
                    chan,
                    job,
                    seq,
                    height,
                    difficulty,
                    hash,
                    time,
                    block,
                    ident,
                )| {
                    let hash: [u8; 32] =
                        hash.try_into().map_err(|h: Vec<u8>| LedgerError::Corrupt {
                            table: "shares",
                            detail: format!("share {id}: hash of {} bytes", h.len()),
                        })?;
                    Ok((
                        id,
                        ShareRecord {
                            channel_identity: ident.unwrap_or_else(|| worker.clone()),
                            worker,
                            connection_id: id_from_sql(conn),
                            channel_id: narrow("shares", "channel_id", chan)?,
                            job_id: narrow("shares", "job_id", job)?,
                            sequence_number: narrow("shares", "sequence_number", seq)?,
                            height: narrow("shares", "height", height)?,
                            difficulty,
                            hash,
                            time_ms: uint("shares", "time_ms", time)?,
                            block,
                        },
                    ))
                },
            )
            .collect()
    }

    fn totals(&mut self) -> Result<Totals, LedgerError> {
        let err = LedgerError::sqlite("read totals");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT worker, shares, difficulty, last_share_ms FROM workers ORDER BY worker",
            )
            .map_err(err)?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let mut totals = Totals {
            shares_accepted: 0,
            difficulty: 0.0,
            blocks_found: 0,
            blocks_accepted: 0,
            workers: Vec::with_capacity(raw.len()),
        };
        for (worker, shares, difficulty, last) in raw {
            let shares = uint("workers", "shares", shares)?;
            totals.shares_accepted += shares;
            totals.difficulty += difficulty;
            totals.workers.push(WorkerTotals {
                worker,
                shares,
                difficulty,
                last_share_ms: uint("workers", "last_share_ms", last)?,
            });
        }
        let (found, accepted): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE status = 'accepted') FROM blocks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        totals.blocks_found = uint("blocks", "count", found)?;
        totals.blocks_accepted = uint("blocks", "count", accepted)?;
        Ok(totals)
    }

    fn blocks(&mut self, limit: usize) -> Result<Vec<BlockRecord>, LedgerError> {
        type Raw = (
            i64,
            i64,
            String,
            i64,
            String,
            i64,
            i64,
            Option<i64>,
            Option<i64>,
            String,
            String,
            Option<String>,
        );
        let err = LedgerError::sqlite("read blocks");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, height, hash, template_id, worker, time_ms, reward_sats, \
                 window_first, window_last, mode, status, reject_reason \
                 FROM blocks ORDER BY id DESC LIMIT ?1",
            )
            .map_err(err)?;
        let raw: Vec<Raw> = stmt
            .query_map([limit], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
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
        for (id, height, hash, template, worker, time, reward, first, last, mode, status, reason) in
            raw
        {
            let outputs = outputs_stmt
                .query_map([id], |r| {
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
                .map(|(owner, script_hex, sats)| {
                    Ok(Payout {
                        owner,
                        script_hex,
                        sats: uint("block_outputs", "sats", sats)?,
                    })
                })
                .collect::<Result<Vec<_>, LedgerError>>()?;
            blocks.push(BlockRecord {
                height: narrow("blocks", "height", height)?,
                hash,
                template_id: id_from_sql(template),
                worker,
                time_ms: uint("blocks", "time_ms", time)?,
                reward_sats: uint("blocks", "reward_sats", reward)?,
                outputs,
                window: first.zip(last),
                mode,
                status: status_from_sql(&status, reason)?,
            });
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

/// A write transaction on the SQLite connection.
pub(super) struct SqliteBatch<'a> {
    tx: Transaction<'a>,
}

impl SqliteBatch<'_> {
    /// Runs `op` in its own savepoint, so its failure undoes only itself.
    fn in_savepoint<T>(
        &mut self,
        op: impl FnOnce(&Connection) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let sp = self
            .tx
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
        self.in_savepoint(|conn| insert_shares(conn, shares))
    }

    fn insert_block(&mut self, block: &BlockRecord) -> Result<i64, LedgerError> {
        self.in_savepoint(|conn| insert_block(conn, block))
    }

    fn set_status(&mut self, hash: &str, status: &BlockStatus) -> Result<(), LedgerError> {
        self.in_savepoint(|conn| set_status(conn, hash, status))
    }

    fn commit(self) -> Result<(), LedgerError> {
        self.tx.commit().map_err(LedgerError::sqlite("commit"))
    }
}

fn insert_shares(conn: &Connection, shares: &[ShareRecord]) -> Result<CommitReceipt, LedgerError> {
    let err = LedgerError::sqlite("insert shares");
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO shares (worker, connection_id, channel_id, job_id, sequence_number, \
             height, difficulty, hash, time_ms, block, channel_identity) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(err)?;
    let mut first_id = 0;
    let mut per_worker: BTreeMap<&str, (i64, f64, i64)> = BTreeMap::new();
    for (i, s) in shares.iter().enumerate() {
        if !s.difficulty.is_finite() || s.difficulty < 0.0 {
            return Err(LedgerError::InvalidDifficulty {
                worker: s.worker.clone(),
                difficulty: s.difficulty,
            });
        }
        let time_ms = int("time_ms", s.time_ms)?;
        insert
            .execute(params![
                s.worker,
                id_to_sql(s.connection_id),
                s.channel_id,
                s.job_id,
                s.sequence_number,
                s.height,
                s.difficulty,
                &s.hash[..],
                time_ms,
                s.block,
                s.channel_identity,
            ])
            .map_err(err)?;
        if i == 0 {
            first_id = conn.last_insert_rowid();
        }
        let entry = per_worker.entry(&s.worker).or_insert((0, 0.0, 0));
        entry.0 += 1;
        entry.1 += s.difficulty;
        entry.2 = entry.2.max(time_ms);
    }
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO workers (worker, shares, difficulty, last_share_ms) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (worker) DO UPDATE SET \
             shares = shares + excluded.shares, \
             difficulty = difficulty + excluded.difficulty, \
             last_share_ms = max(last_share_ms, excluded.last_share_ms)",
        )
        .map_err(err)?;
    for (worker, (count, difficulty, last)) in per_worker {
        upsert
            .execute(params![worker, count, difficulty, last])
            .map_err(err)?;
    }
    Ok(CommitReceipt {
        first_id,
        count: shares.len(),
    })
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
         window_first, window_last, mode, status, reject_reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
