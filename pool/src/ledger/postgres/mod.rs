//! The PostgreSQL backend of the ledger (synchronous `postgres` client, one connection owned
//! by the ledger thread): schema, migrations and the storage operations.
//!
//! Schema (version 6, in `strata_ledger_schema`; the migrations are in
//! [`schema`](super::schema)); SQLite's is the same without the cluster's `server_id`
//! columns of `shares` and `workers_through`:
//!
//! ```text
//! shares(id BIGSERIAL PRIMARY KEY, worker, connection_id, channel_id, job_id,
//!        sequence_number, height, difficulty DOUBLE PRECISION, hash BYTEA, time_ms, block,
//!        channel_identity,  -- NULL in rows of version 1: their worker is the identity
//!        server_id)  -- the cluster server that accepted it (0: a pool alone)
//!        -- ids never reused (a rolled-back or killed transaction leaves a gap)
//! workers(worker TEXT PRIMARY KEY, shares, difficulty, last_share_ms)
//!        -- running totals, updated about once a second by each server
//! workers_through(server_id PRIMARY KEY, id)
//!        -- each server's watermark: the workers table counts its shares up to id
//! blocks(id BIGSERIAL PRIMARY KEY, height, hash TEXT UNIQUE, template_id, worker, time_ms,
//!        reward_sats, window_first, window_last, mode, status, reject_reason, payout_rules)
//! block_outputs(block_id REFERENCES blocks, idx, owner, script_hex, sats,
//!        PRIMARY KEY(block_id, idx))   -- indexed by owner
//! history(server_id, time_ms, hashrate, accepted, rejected, connections,
//!        PRIMARY KEY(server_id, time_ms))   -- each server's samples, pruned as written
//! strata_ledger_schema(singleton BOOLEAN PRIMARY KEY, version BIGINT)
//! ```
//!
//! Who writes: a pool alone on its database holds a session advisory lock on it, so exactly
//! one ledger writes it. The servers of a cluster (each with its own `server_id`) hold that
//! lock shared, each its own id's lock exclusively, and every write transaction of theirs
//! first takes a transaction lock: the servers' transactions draw share ids and commit one
//! at a time. Either way share ids within a request are consecutive and follow commit
//! order, so the window's "last N by id" is the last N committed, the same for every
//! server. A share request is one multi-row `INSERT ... SELECT FROM unnest(...)` plus one
//! upsert of the workers' totals, inside its savepoint. After a database error the
//! connection is checked before the next request and reopened if the server dropped it
//! (the requests that met the dead connection fail: their shares may or may not be
//! committed, and are never acknowledged).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};

use super::engine::{worker_deltas, Storage};

mod write;

use super::rows::{self, BlockRow, HistoryRow, ShareRow, WorkerRow};
use super::{
    redact_password, BlockRecord, HistoryPoint, LedgerError, Payout, PplnsWindow, ServerId,
    ShareRecord, Synchronous, Totals,
};
use write::{add_worker_totals, PgBatch};

/// Schema migrations ([`schema::POSTGRES`](super::schema::POSTGRES)).
const MIGRATIONS: &[&str] = super::schema::POSTGRES;

/// The newest schema version this build writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Advisory-lock key of the ledger (per database): "strata" in ASCII. A pool alone on its
/// database holds it exclusively; the servers of a cluster hold it shared, so the two
/// exclude each other.
const LOCK_KEY: i64 = 0x7374_7261_7461;

/// Session lock of cluster server `id` (1 to 255): one process per id.
fn server_lock_key(id: ServerId) -> i64 {
    LOCK_KEY + i64::from(id.get())
}

/// Transaction lock every write transaction of a cluster server takes first: the servers'
/// transactions draw share ids and commit one at a time, so share ids follow commit order
/// and "the last N shares by id" is the same committed window for every server (and for
/// an auditor later). A pool alone on its database is the only writer already.
const WRITE_LOCK_KEY: i64 = LOCK_KEY + 0x100;

/// Transaction lock of a schema migration, so that servers starting together migrate once.
const MIGRATE_LOCK_KEY: i64 = LOCK_KEY + 0x101;

/// How long opening waits for another holder of the database (e.g. the backend of a
/// killed pool, which the server ends as soon as it notices).
const LOCK_WAIT: &str = "3s";

/// How long a connection that just failed gets to answer before it is replaced.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Connecting gives up after this unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl LedgerError {
    fn postgres(op: &'static str) -> impl Fn(postgres::Error) -> LedgerError + Copy {
        move |source| LedgerError::Postgres {
            op,
            source: Arc::new(source),
        }
    }
}

/// The statements of the hot paths, prepared once per connection.
struct Statements {
    insert_shares: Statement,
    upsert_workers: Statement,
    window: Statement,
    shares_in: Statement,
    own_shares_after: Statement,
    write_lock: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            // ids are drawn in ordinality order: the request's shares in submission order
            insert_shares: client.prepare(
                "INSERT INTO shares (worker, connection_id, channel_id, job_id, \
                 sequence_number, height, difficulty, hash, time_ms, block, channel_identity, \
                 server_id) \
                 SELECT w, c, ch, j, sq, h, d, hs, t, b, ci, $12::int2 FROM unnest($1::text[], \
                 $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::float8[], \
                 $8::bytea[], $9::int8[], $10::bool[], $11::text[]) \
                 WITH ORDINALITY AS u(w, c, ch, j, sq, h, d, hs, t, b, ci, n) \
                 ORDER BY n RETURNING id",
            )?,
            upsert_workers: client.prepare(
                "INSERT INTO workers (worker, shares, difficulty, last_share_ms) \
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::float8[], $4::int8[]) \
                 ON CONFLICT (worker) DO UPDATE SET \
                 shares = workers.shares + excluded.shares, \
                 difficulty = workers.difficulty + excluded.difficulty, \
                 last_share_ms = GREATEST(workers.last_share_ms, excluded.last_share_ms)",
            )?,
            window: client.prepare(
                "SELECT id, identity, difficulty FROM \
                 (SELECT id, coalesce(channel_identity, worker) AS identity, difficulty \
                 FROM shares ORDER BY id DESC LIMIT $1) AS w \
                 ORDER BY id",
            )?,
            shares_in: client.prepare(
                "SELECT id, worker, connection_id, channel_id, job_id, sequence_number, height, \
                 difficulty, hash, time_ms, block, channel_identity FROM shares \
                 WHERE id BETWEEN $1 AND $2 ORDER BY id",
            )?,
            own_shares_after: client.prepare(
                "SELECT id, worker, connection_id, channel_id, job_id, sequence_number, height, \
                 difficulty, hash, time_ms, block, channel_identity FROM shares \
                 WHERE id > $1 AND server_id = $2 ORDER BY id",
            )?,
            write_lock: client.prepare("SELECT pg_advisory_xact_lock($1)")?,
        })
    }
}

/// The open connection and its prepared statements.
struct Session {
    client: Client,
    statements: Statements,
}

/// The open database; owned by the ledger thread.
pub(super) struct Store {
    config: postgres::Config,
    /// The URL with its password redacted, for messages.
    database: String,
    synchronous: Synchronous,
    /// This process's id in a cluster.
    server: Option<ServerId>,
    session: Session,
    /// The last operation failed in the database: check the connection before reusing it.
    suspect: bool,
}

/// The `server_id` column's value for shares accepted by `server` (0: a pool alone).
fn server_sql(server: Option<ServerId>) -> i16 {
    server.map_or(0, |id| i16::from(id.get()))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.database)
            .field("synchronous", &self.synchronous)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, takes the database's ledger lock (or, in a cluster, the server's), sets
    /// `synchronous_commit`, migrates the schema. Must not be called from inside an async
    /// runtime.
    pub(super) fn open(
        url: &str,
        synchronous: Synchronous,
        server: Option<ServerId>,
    ) -> Result<Store, LedgerError> {
        let database = redact_password(url);
        let mut config: postgres::Config = url
            .parse()
            .map_err(LedgerError::postgres("parse the connection url"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("strata-pool ledger");
        let session = open_session(&config, &database, synchronous, server)?;
        Ok(Store {
            config,
            database,
            synchronous,
            server,
            session,
            suspect: false,
        })
    }

    /// Marks the connection for a check before its next use when `res` is a database
    /// error: the server may have closed it (a restart, an administrator).
    fn note<T>(&mut self, res: Result<T, LedgerError>) -> Result<T, LedgerError> {
        if matches!(res, Err(LedgerError::Postgres { .. })) {
            self.suspect = true;
        }
        res
    }

    /// The session; reconnected first if the connection is closed, or if it failed last
    /// time and does not answer now.
    fn session(&mut self) -> Result<&mut Session, LedgerError> {
        let dead = self.session.client.is_closed()
            || (self.suspect && self.session.client.is_valid(CHECK_TIMEOUT).is_err());
        if dead {
            tracing::warn!(database = %self.database, "ledger connection lost, reconnecting");
            self.session =
                open_session(&self.config, &self.database, self.synchronous, self.server)?;
            self.suspect = false;
            tracing::info!(database = %self.database, "ledger reconnected");
        }
        Ok(&mut self.session)
    }
}

/// Connects, takes the database's ledger lock (a cluster server: shared, and its own id's
/// exclusively), sets `synchronous_commit`, migrates the schema and prepares the
/// statements.
fn open_session(
    config: &postgres::Config,
    database: &str,
    synchronous: Synchronous,
    server: Option<ServerId>,
) -> Result<Session, LedgerError> {
    let mut client = config
        .connect(NoTls)
        .map_err(LedgerError::postgres("connect"))?;
    let commit = match synchronous {
        Synchronous::Full => "on",
        Synchronous::Normal => "off",
    };
    client
        .batch_execute(&format!(
            "SET synchronous_commit = {commit}; SET lock_timeout = '{LOCK_WAIT}'"
        ))
        .map_err(LedgerError::postgres("configure the session"))?;
    let in_use = || LedgerError::InUse {
        database: database.to_owned(),
    };
    let lock =
        |client: &mut Client, sql: &str, key: i64, busy: &dyn Fn() -> LedgerError| match client
            .execute(sql, &[&key])
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => Err(busy()),
            Err(e) => Err(LedgerError::postgres("lock the ledger database")(e)),
        };
    match server {
        None => lock(
            &mut client,
            "SELECT pg_advisory_lock($1)",
            LOCK_KEY,
            &in_use,
        )?,
        Some(id) => {
            lock(
                &mut client,
                "SELECT pg_advisory_lock_shared($1)",
                LOCK_KEY,
                &in_use,
            )?;
            let taken = || LedgerError::ServerIdInUse {
                id,
                database: database.to_owned(),
            };
            lock(
                &mut client,
                "SELECT pg_advisory_lock($1)",
                server_lock_key(id),
                &taken,
            )?;
        }
    }
    client
        .batch_execute("RESET lock_timeout")
        .map_err(LedgerError::postgres("configure the session"))?;
    migrate(&mut client)?;
    // a server new to the database counts the workers' shares from here on (its own
    // shares are all after this id)
    client
        .execute(
            "INSERT INTO workers_through (server_id, id) \
             SELECT $1, coalesce(max(id), 0) FROM shares ON CONFLICT (server_id) DO NOTHING",
            &[&server_sql(server)],
        )
        .map_err(LedgerError::postgres("register the server"))?;
    let statements =
        Statements::prepare(&mut client).map_err(LedgerError::postgres("prepare statements"))?;
    count_stopped_servers(&mut client, &statements, server_sql(server))?;
    Ok(Session { client, statements })
}

/// Adds to the `workers` table the shares that servers which are not running (killed
/// within a second of committing them) left out of it: a server's own start does that for
/// itself, this does it for servers that do not come back. A server is not running when
/// its id's lock is free (taken here while counting, so that it cannot start meanwhile);
/// a pool alone on the database (id 0) cannot run beside whoever holds the database lock.
fn count_stopped_servers(
    client: &mut Client,
    statements: &Statements,
    me: i16,
) -> Result<(), LedgerError> {
    let err = LedgerError::postgres("count the shares of a stopped server");
    let watermarks = client
        .query(
            "SELECT server_id, id FROM workers_through WHERE server_id <> $1 ORDER BY server_id",
            &[&me],
        )
        .map_err(err)?;
    for row in watermarks {
        let (id, through): (i16, i64) =
            (row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?);
        let lock = ServerId::new(u8::try_from(id).unwrap_or(0)).map(server_lock_key);
        if let Some(key) = lock {
            let free: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .and_then(|r| r.try_get(0))
                .map_err(err)?;
            if !free {
                continue;
            }
        }
        let mut tx = client.transaction().map_err(err)?;
        tx.execute(&statements.write_lock, &[&WRITE_LOCK_KEY])
            .map_err(err)?;
        let shares = share_records(
            &tx.query(&statements.own_shares_after, &[&through, &id])
                .map_err(err)?,
        )?;
        if let Some(last) = shares.last().map(|(i, _)| *i) {
            let n = shares.len();
            let shares: Vec<ShareRecord> = shares.into_iter().map(|(_, s)| s).collect();
            add_worker_totals(&mut tx, statements, &worker_deltas(&shares), last, id)?;
            tracing::info!(
                server = id,
                shares = n,
                through = last,
                "counted the shares of a stopped server"
            );
        }
        tx.commit().map_err(err)?;
        if let Some(key) = lock {
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .map_err(err)?;
        }
    }
    Ok(())
}

fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    let err = LedgerError::postgres("migrate the schema");
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK_KEY])
        .map_err(err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS strata_ledger_schema (\
         singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton), \
         version BIGINT NOT NULL)",
    )
    .map_err(err)?;
    let found: i64 = match tx
        .query_opt("SELECT version FROM strata_ledger_schema", &[])
        .map_err(err)?
    {
        Some(row) => row.try_get(0).map_err(err)?,
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS.iter())
        .skip_while(|(v, _)| *v <= found)
    {
        tx.batch_execute(sql).map_err(err)?;
        tx.execute(
            "INSERT INTO strata_ledger_schema (singleton, version) VALUES (TRUE, $1) \
             ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            &[&version],
        )
        .map_err(err)?;
        tracing::info!(version, "ledger schema migrated");
    }
    tx.commit().map_err(err)
}

impl Storage for Store {
    type Batch<'a> = PgBatch<'a>;

    fn begin(&mut self) -> Result<PgBatch<'_>, LedgerError> {
        self.session()?;
        let Session { client, statements } = &mut self.session;
        let server = self.server;
        let begun = client.transaction().and_then(|mut tx| {
            if server.is_some() {
                tx.execute(&statements.write_lock, &[&WRITE_LOCK_KEY])?;
            }
            Ok(tx)
        });
        match begun {
            Ok(tx) => Ok(PgBatch {
                tx,
                statements,
                server: server_sql(server),
                suspect: &mut self.suspect,
            }),
            Err(e) => {
                self.suspect = true;
                Err(LedgerError::postgres("begin a transaction")(e))
            }
        }
    }

    fn window(&mut self, n_shares: u64) -> Result<PplnsWindow, LedgerError> {
        let res = self.session()?.read_window(n_shares);
        self.note(res)
    }

    fn blocks(&mut self, limit: usize) -> Result<Vec<BlockRecord>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let res = self
            .session()?
            .read_blocks("ORDER BY id DESC LIMIT $1", &limit);
        self.note(res)
    }

    fn block(&mut self, hash: &str) -> Result<Option<BlockRecord>, LedgerError> {
        let res = self.session()?.read_blocks("WHERE hash = $1", &hash);
        self.note(res.map(|mut blocks| blocks.pop()))
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
        let res = self.session()?.read_blocks(&tail, &owner);
        self.note(res)
    }

    fn history(&mut self, since_ms: u64, bucket_ms: u64) -> Result<Vec<HistoryPoint>, LedgerError> {
        let err = LedgerError::postgres("read the history");
        let (bucket, since) = rows::history_params(since_ms, bucket_ms);
        let res = self
            .session()?
            .client
            .query(rows::HISTORY_SELECT, &[&bucket, &since])
            .map_err(err)
            .and_then(|found| {
                found
                    .iter()
                    .map(|r| {
                        HistoryRow {
                            time_ms: r.try_get(0).map_err(err)?,
                            hashrate: r.try_get(1).map_err(err)?,
                            accepted: r.try_get(2).map_err(err)?,
                            rejected: r.try_get(3).map_err(err)?,
                            connections: r.try_get(4).map_err(err)?,
                        }
                        .into_record()
                    })
                    .collect()
            });
        self.note(res)
    }

    fn workers_through(&mut self) -> Result<i64, LedgerError> {
        let err = LedgerError::postgres("read the workers watermark");
        let server = server_sql(self.server);
        let res = self
            .session()?
            .client
            .query_one(
                "SELECT id FROM workers_through WHERE server_id = $1",
                &[&server],
            )
            .and_then(|row| row.try_get(0))
            .map_err(err);
        self.note(res)
    }

    fn totals(&mut self) -> Result<Totals, LedgerError> {
        let res = self.session()?.read_totals();
        self.note(res)
    }

    fn shares_in(
        &mut self,
        first_id: i64,
        last_id: i64,
    ) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
        let res = self.session()?.read_shares_in(first_id, last_id);
        self.note(res)
    }

    fn own_shares_after(&mut self, id: i64) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
        let server = server_sql(self.server);
        let res = self.session()?.read_own_shares_after(id, server);
        self.note(res)
    }
}

impl Session {
    fn read_window(&mut self, n_shares: u64) -> Result<PplnsWindow, LedgerError> {
        let err = LedgerError::postgres("read the pplns window");
        let n = i64::try_from(n_shares).unwrap_or(i64::MAX);
        let Session { client, statements } = self;
        let rows = client.query(&statements.window, &[&n]).map_err(err)?;
        let shares = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, i64>(0)?,
                    r.try_get::<_, String>(1)?,
                    r.try_get::<_, f64>(2)?,
                ))
            })
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(err)?;
        // summed here, in id order, exactly as the SQLite backend and an auditor do
        Ok(PplnsWindow::from_shares(shares))
    }

    /// The blocks `SELECT ... FROM blocks {tail}` finds (`$1` = `param`), with their outputs.
    fn read_blocks(
        &mut self,
        tail: &str,
        param: &(dyn postgres::types::ToSql + Sync),
    ) -> Result<Vec<BlockRecord>, LedgerError> {
        let err = LedgerError::postgres("read blocks");
        let client = &mut self.client;
        let rows = client
            .query(
                &format!(
                    "SELECT id, height, hash, template_id, worker, time_ms, reward_sats, \
                     window_first, window_last, mode, status, reject_reason, payout_rules \
                     FROM blocks {tail}"
                ),
                &[param],
            )
            .map_err(err)?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut outputs: BTreeMap<i64, Vec<Payout>> = BTreeMap::new();
        for r in client
            .query(
                "SELECT block_id, owner, script_hex, sats FROM block_outputs \
                 WHERE block_id = ANY($1) ORDER BY block_id, idx",
                &[&ids],
            )
            .map_err(err)?
        {
            let payout = rows::payout(
                r.try_get(1).map_err(err)?,
                r.try_get(2).map_err(err)?,
                r.try_get(3).map_err(err)?,
            )?;
            outputs
                .entry(r.try_get(0).map_err(err)?)
                .or_default()
                .push(payout);
        }
        let mut blocks = Vec::with_capacity(rows.len());
        for r in &rows {
            let row = BlockRow {
                id: r.try_get(0).map_err(err)?,
                height: r.try_get(1).map_err(err)?,
                hash: r.try_get(2).map_err(err)?,
                template_id: r.try_get(3).map_err(err)?,
                worker: r.try_get(4).map_err(err)?,
                time_ms: r.try_get(5).map_err(err)?,
                reward_sats: r.try_get(6).map_err(err)?,
                window_first: r.try_get(7).map_err(err)?,
                window_last: r.try_get(8).map_err(err)?,
                mode: r.try_get(9).map_err(err)?,
                status: r.try_get(10).map_err(err)?,
                reject_reason: r.try_get(11).map_err(err)?,
                payout_rules: r.try_get(12).map_err(err)?,
            };
            let outputs = outputs.remove(&row.id).unwrap_or_default();
            blocks.push(row.into_record(outputs)?);
        }
        Ok(blocks)
    }

    fn read_totals(&mut self) -> Result<Totals, LedgerError> {
        let err = LedgerError::postgres("read totals");
        let client = &mut self.client;
        let rows = client
            .query(
                "SELECT worker, shares, difficulty, last_share_ms FROM workers \
                 ORDER BY worker COLLATE \"C\"",
                &[],
            )
            .map_err(err)?;
        let workers = rows
            .iter()
            .map(|r| {
                Ok(WorkerRow {
                    worker: r.try_get(0)?,
                    shares: r.try_get(1)?,
                    difficulty: r.try_get(2)?,
                    last_share_ms: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(err)?;
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE status = 'accepted') FROM blocks",
                &[],
            )
            .map_err(err)?;
        rows::totals(
            workers,
            row.try_get(0).map_err(err)?,
            row.try_get(1).map_err(err)?,
        )
    }

    fn read_shares_in(
        &mut self,
        first_id: i64,
        last_id: i64,
    ) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
        let err = LedgerError::postgres("read shares");
        let Session { client, statements } = self;
        let rows = client
            .query(&statements.shares_in, &[&first_id, &last_id])
            .map_err(err)?;
        share_records(&rows)
    }

    /// The shares server `server` accepted after share `id`, ascending.
    fn read_own_shares_after(
        &mut self,
        id: i64,
        server: i16,
    ) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
        let err = LedgerError::postgres("read shares");
        let Session { client, statements } = self;
        let rows = client
            .query(&statements.own_shares_after, &[&id, &server])
            .map_err(err)?;
        share_records(&rows)
    }
}

/// Shares read by `shares_in` or `own_shares_after` (the same columns).
fn share_records(rows: &[postgres::Row]) -> Result<Vec<(i64, ShareRecord)>, LedgerError> {
    let err = LedgerError::postgres("read shares");
    rows.iter()
        .map(|r| {
            ShareRow {
                id: r.try_get(0).map_err(err)?,
                worker: r.try_get(1).map_err(err)?,
                connection_id: r.try_get(2).map_err(err)?,
                channel_id: r.try_get(3).map_err(err)?,
                job_id: r.try_get(4).map_err(err)?,
                sequence_number: r.try_get(5).map_err(err)?,
                height: r.try_get(6).map_err(err)?,
                difficulty: r.try_get(7).map_err(err)?,
                hash: r.try_get(8).map_err(err)?,
                time_ms: r.try_get(9).map_err(err)?,
                block: r.try_get(10).map_err(err)?,
                channel_identity: r.try_get(11).map_err(err)?,
            }
            .into_record()
        })
        .collect()
}
