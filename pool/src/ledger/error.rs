//! Why a ledger operation failed.

use std::path::PathBuf;
use std::sync::Arc;

use super::ServerId;

/// Why a ledger operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// SQLite failed.
    #[error("sqlite failed to {op}: {source}")]
    Sqlite {
        /// What the ledger was doing.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// PostgreSQL failed.
    #[cfg(feature = "postgres")]
    #[error("postgres failed to {op}: {source}")]
    Postgres {
        /// What the ledger was doing.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<::postgres::Error>,
    },
    /// [`Backend::Postgres`](super::Backend::Postgres) in a build without the `postgres` feature.
    #[error("this build has no postgres support (cargo feature `postgres`)")]
    PostgresUnsupported,
    /// Another process holds the ledger's PostgreSQL database: another pool alone on it,
    /// or (for a pool without a server id) the servers of a cluster.
    #[error("the ledger database {database} is in use by another pool")]
    InUse {
        /// The database, password redacted.
        database: String,
    },
    /// Another pool process of the cluster runs with this server id.
    #[error("server id {id} is in use by another pool process on the ledger database {database}; give each server of a cluster its own [cluster] server_id")]
    ServerIdInUse {
        /// The id.
        id: ServerId,
        /// The database, password redacted.
        database: String,
    },
    /// A server id was configured for an SQLite ledger: a cluster shares one PostgreSQL
    /// database.
    #[error("a cluster server id needs a PostgreSQL ledger ([ledger] postgres_url)")]
    ClusterNeedsPostgres,
    /// The database directory could not be created.
    #[error("cannot create the ledger directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The ledger thread could not be started.
    #[error("cannot start the ledger thread: {source}")]
    Spawn {
        /// The error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The database was written by a newer build.
    #[error("ledger schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// The stored schema version (SQLite `PRAGMA user_version`).
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// SQLite refused write-ahead logging (e.g. a filesystem without shared memory).
    #[error("ledger journal mode is {mode}, wal is required")]
    NotWal {
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// A history sample with a hashrate that is not a finite non-negative number.
    #[error("history sample has invalid hashrate {hashrate}")]
    InvalidHashrate {
        /// The hashrate.
        hashrate: f64,
    },
    /// A share with a difficulty that is not a finite non-negative number.
    #[error("share from {worker} has invalid difficulty {difficulty}")]
    InvalidDifficulty {
        /// The share's worker.
        worker: String,
        /// The difficulty.
        difficulty: f64,
    },
    /// A value does not fit the database's signed 64-bit integers.
    #[error("{field} value {value} is too large to store")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// [`Ledger::record_block`](super::Ledger::record_block) with a hash already recorded.
    #[error("block {hash} is already recorded")]
    DuplicateBlock {
        /// The hash.
        hash: String,
    },
    /// [`Ledger::update_block_status`](super::Ledger::update_block_status) for a hash never recorded.
    #[error("unknown block {hash}")]
    UnknownBlock {
        /// The hash.
        hash: String,
    },
    /// A stored row the ledger cannot read back.
    #[error("corrupt ledger row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The ledger thread is gone (it panicked, or the process is shutting down).
    #[error("the ledger thread has stopped")]
    Closed,
    /// The ledger thread panicked.
    #[error("the ledger thread panicked")]
    Panicked,
}

impl LedgerError {
    pub(super) fn sqlite(op: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError + Copy {
        move |source| LedgerError::Sqlite {
            op,
            source: Arc::new(source),
        }
    }
}
