//! The history file: SQLite in WAL mode, owned by the writer thread ([`super::spawn`]).
//!
//! Schema (version 1, `PRAGMA user_version`):
//!
//! ```text
//! miner_points(worker TEXT, t INTEGER, secs INTEGER, work REAL, accepted INTEGER,
//!              rejected INTEGER, stale INTEGER, PRIMARY KEY(worker, t)) WITHOUT ROWID
//!   -- index miner_points_by_t(t) for pruning and windows
//! farm_points(t INTEGER PRIMARY KEY, secs, work, accepted, rejected, stale)
//! ```
//!
//! `t` is the step's start (UNIX seconds), `secs` the seconds it covers, `work` the summed
//! difficulty of its accepted shares (hashrate = work × 2^32 / secs). A row written twice
//! for one step (a restart within the step) adds up.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection};

use super::{Batch, Point, Row, WindowSum};

/// Schema migrations; entry `i` takes the file from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE miner_points (
    worker   TEXT    NOT NULL,
    t        INTEGER NOT NULL,
    secs     INTEGER NOT NULL,
    work     REAL    NOT NULL,
    accepted INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    stale    INTEGER NOT NULL,
    PRIMARY KEY (worker, t)
) WITHOUT ROWID;
CREATE INDEX miner_points_by_t ON miner_points(t);
CREATE TABLE farm_points (
    t        INTEGER PRIMARY KEY,
    secs     INTEGER NOT NULL,
    work     REAL    NOT NULL,
    accepted INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    stale    INTEGER NOT NULL
);
"];

/// A history file error (with what was being done).
#[derive(Debug, thiserror::Error)]
#[error("history file: cannot {what}: {source}")]
pub struct StoreError {
    what: &'static str,
    #[source]
    source: rusqlite::Error,
}

fn err(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError { what, source }
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The open history file.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    retention_secs: u64,
}

const UPSERT_MINER: &str =
    "INSERT INTO miner_points (worker, t, secs, work, accepted, rejected, stale)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (worker, t) DO UPDATE SET secs = secs + excluded.secs,
       work = work + excluded.work, accepted = accepted + excluded.accepted,
       rejected = rejected + excluded.rejected, stale = stale + excluded.stale";

const UPSERT_FARM: &str = "INSERT INTO farm_points (t, secs, work, accepted, rejected, stale)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (t) DO UPDATE SET secs = secs + excluded.secs,
       work = work + excluded.work, accepted = accepted + excluded.accepted,
       rejected = rejected + excluded.rejected, stale = stale + excluded.stale";

impl Store {
    /// Opens or creates the file at `path` (and its directory), keeping `retention_secs`
    /// of history.
    pub fn open(path: &Path, retention_secs: u64) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // a failure shows as the open's error
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(err("open the file"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err("set the journal mode"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("set synchronous"))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err("read the schema version"))?;
        for (v, m) in MIGRATIONS.iter().enumerate().skip(uint(version) as usize) {
            conn.execute_batch(m).map_err(err("create the schema"))?;
            conn.pragma_update(None, "user_version", v as i64 + 1)
                .map_err(err("set the schema version"))?;
        }
        Ok(Store {
            conn,
            retention_secs,
        })
    }

    /// Writes a batch in one transaction, then prunes points older than the retention
    /// (before the batch's step). Returns the rows pruned.
    pub fn write(&mut self, b: &Batch) -> Result<usize, StoreError> {
        let tx = self.conn.transaction().map_err(err("begin a write"))?;
        {
            let mut m = tx
                .prepare_cached(UPSERT_MINER)
                .map_err(err("write a point"))?;
            for (worker, r) in &b.miners {
                m.execute(params![
                    worker,
                    int(r.t),
                    int(r.secs),
                    r.work,
                    int(r.accepted),
                    int(r.rejected),
                    int(r.stale)
                ])
                .map_err(err("write a point"))?;
            }
            let f = &b.farm;
            tx.prepare_cached(UPSERT_FARM)
                .and_then(|mut s| {
                    s.execute(params![
                        int(f.t),
                        int(f.secs),
                        f.work,
                        int(f.accepted),
                        int(f.rejected),
                        int(f.stale)
                    ])
                })
                .map_err(err("write a farm point"))?;
        }
        let cut = int(b.t.saturating_sub(self.retention_secs));
        let mut pruned = tx
            .execute("DELETE FROM miner_points WHERE t < ?1", [cut])
            .map_err(err("prune"))?;
        pruned += tx
            .execute("DELETE FROM farm_points WHERE t < ?1", [cut])
            .map_err(err("prune"))?;
        tx.commit().map_err(err("commit a write"))?;
        Ok(pruned)
    }

    /// The points of `worker` (the farm for `None`) from `since` on, oldest first; `None`
    /// when the file has no point at all of that worker.
    pub fn points(
        &self,
        worker: Option<&str>,
        since: u64,
    ) -> Result<Option<Vec<Point>>, StoreError> {
        let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Point> {
            Ok(Row {
                t: uint(r.get(0)?),
                secs: uint(r.get(1)?),
                work: r.get(2)?,
                accepted: uint(r.get(3)?),
                rejected: uint(r.get(4)?),
                stale: uint(r.get(5)?),
            }
            .point())
        };
        let since = int(since);
        let read = err("read points");
        match worker {
            None => {
                let mut s = self
                    .conn
                    .prepare_cached(
                        "SELECT t, secs, work, accepted, rejected, stale FROM farm_points
                         WHERE t >= ?1 ORDER BY t",
                    )
                    .map_err(err("read points"))?;
                let points = s
                    .query_map([since], row)
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(read)?;
                Ok(Some(points))
            }
            Some(w) => {
                let known: bool = self
                    .conn
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM miner_points WHERE worker = ?1)",
                        [w],
                        |r| r.get(0),
                    )
                    .map_err(err("look a worker up"))?;
                if !known {
                    return Ok(None);
                }
                let mut s = self
                    .conn
                    .prepare_cached(
                        "SELECT t, secs, work, accepted, rejected, stale FROM miner_points
                         WHERE worker = ?1 AND t >= ?2 ORDER BY t",
                    )
                    .map_err(err("read points"))?;
                let points = s
                    .query_map(params![w, since], row)
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(read)?;
                Ok(Some(points))
            }
        }
    }

    /// The farm's rows from `since` on, oldest first.
    pub fn farm_rows(&self, since: u64) -> Result<Vec<Row>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached(
                "SELECT t, secs, work, accepted, rejected, stale FROM farm_points
                 WHERE t >= ?1 ORDER BY t",
            )
            .map_err(err("read farm rows"))?;
        let rows = s
            .query_map([int(since)], |r| {
                Ok(Row {
                    t: uint(r.get(0)?),
                    secs: uint(r.get(1)?),
                    work: r.get(2)?,
                    accepted: uint(r.get(3)?),
                    rejected: uint(r.get(4)?),
                    stale: uint(r.get(5)?),
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err("read farm rows"))?;
        Ok(rows)
    }

    /// The workers with rows from `since` on, most recently seen first, at most `limit`.
    pub fn workers(&self, since: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached(
                "SELECT worker FROM miner_points WHERE t >= ?1 GROUP BY worker
                 ORDER BY max(t) DESC, worker LIMIT ?2",
            )
            .map_err(err("read workers"))?;
        let rows = s
            .query_map(params![int(since), int(limit as u64)], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(err("read workers"))?;
        Ok(rows)
    }

    /// Per worker, the work and seconds of its points from `since` on.
    pub fn window(&self, since: u64) -> Result<HashMap<String, WindowSum>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached(
                "SELECT worker, sum(work), sum(secs) FROM miner_points WHERE t >= ?1
                 GROUP BY worker",
            )
            .map_err(err("read a window"))?;
        let rows = s
            .query_map([int(since)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    WindowSum {
                        work: r.get(1)?,
                        secs: uint(r.get(2)?),
                    },
                ))
            })
            .and_then(|rows| rows.collect::<Result<HashMap<_, _>, _>>())
            .map_err(err("read a window"))?;
        Ok(rows)
    }

    /// Rows in the file (miner points, farm points).
    pub fn rows(&self) -> Result<(u64, u64), StoreError> {
        let count = |table: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(uint)
                .map_err(err("count rows"))
        };
        Ok((count("miner_points")?, count("farm_points")?))
    }
}
