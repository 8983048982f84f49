//! Where the ledger lives and how it commits: the backend, durability, batching and the
//! cluster server id.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// How durable a commit is: SQLite's `synchronous`, PostgreSQL's `synchronous_commit`
/// (see the module docs for the trade-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync the WAL at every commit: survives process crashes and power loss. SQLite
    /// `synchronous = FULL`; PostgreSQL `synchronous_commit = on`.
    #[default]
    Full,
    /// SQLite `synchronous = NORMAL`: fsync only at checkpoints, survives process crashes,
    /// not power loss. PostgreSQL `synchronous_commit = off`: survives a crash of the pool,
    /// but a crash of the database server may lose the last commits.
    Normal,
}

impl Synchronous {
    pub(super) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Which database the ledger writes to.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the default): nothing to run besides the pool.
    Sqlite {
        /// The database file (created with its parent directory if missing).
        path: PathBuf,
    },
    /// A PostgreSQL database, for operators who run one (needs the `postgres` feature,
    /// on by default). The ledger creates its tables (`shares`, `workers`, `blocks`,
    /// `block_outputs`, `strata_ledger_schema`) in the connection's schema, so give it a
    /// database (or a `search_path`) of its own. One pool per database: a second one waits
    /// a few seconds, then fails with [`LedgerError::InUse`](super::LedgerError::InUse). TLS is not supported (the
    /// connection must not require it).
    Postgres {
        /// A libpq connection string, URL (`postgresql://user:password@host:port/dbname`)
        /// or `key=value` form. Without `connect_timeout`, connecting gives up after 10 s.
        url: String,
    },
}

impl Backend {
    /// Where the data lives, with any password in a PostgreSQL URL replaced by `***`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite { path } => format!("sqlite:{}", path.display()),
            Backend::Postgres { url } => redact_password(url),
        }
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            Backend::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_password(url))
                .finish(),
        }
    }
}

/// `url` with its password (URL user info, or a `password=` pair) replaced by `***`.
pub(super) fn redact_password(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &rest[..colon],
                    &rest[at..]
                );
            }
        }
        return url.to_owned();
    }
    url.split(' ')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.trim().eq_ignore_ascii_case("password") => {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the ledger lives and how it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// The database.
    pub backend: Backend,
    /// Durability of a commit.
    pub synchronous: Synchronous,
    /// Most shares written in one transaction (a single larger request still goes alone).
    pub max_batch_shares: usize,
    /// Least time between the starts of two commits under load: each commit costs an fsync
    /// and its system time whatever its size, so shares that arrive within this interval of
    /// the last commit wait for the rest of it and share the next one. Zero commits as soon
    /// as the previous commit ends (lowest latency, most commits).
    pub min_commit_interval: std::time::Duration,
    /// Capacity of the request queue; [`Ledger::submit`](super::Ledger::submit) waits when it is full.
    pub queue: usize,
    /// The pool process's server id in a cluster of pools sharing one PostgreSQL ledger
    /// (`None`: the only pool on its database). See [`ServerId`].
    pub server: Option<ServerId>,
}

/// A pool server's id in a cluster: several pool processes write one PostgreSQL ledger,
/// each under its own id (1 to 255). Shares are stored with the id of the server that
/// accepted them; two processes with the same id are refused (the second waits a few
/// seconds, then fails with [`LedgerError::ServerIdInUse`](super::LedgerError::ServerIdInUse)), and a pool without an id (the
/// only pool of its database) and cluster members exclude each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServerId(u8);

impl ServerId {
    /// The id `n`; `None` for 0, which stands for a pool alone on its database.
    pub fn new(n: u8) -> Option<ServerId> {
        (n != 0).then_some(ServerId(n))
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl LedgerConfig {
    /// Default batch limit.
    pub const DEFAULT_MAX_BATCH_SHARES: usize = 4096;
    /// Default queue capacity.
    pub const DEFAULT_QUEUE: usize = 1024;
    /// Default [`min_commit_interval`](Self::min_commit_interval).
    pub const DEFAULT_MIN_COMMIT_INTERVAL: std::time::Duration =
        std::time::Duration::from_micros(1000);

    /// An SQLite ledger in the file `path`, with the defaults: `FULL`, 4096 shares per
    /// batch, 1024 queued requests.
    pub fn new(path: impl Into<PathBuf>) -> LedgerConfig {
        LedgerConfig::with_backend(Backend::Sqlite { path: path.into() })
    }

    /// A PostgreSQL ledger at `url` (see [`Backend::Postgres`]), with the same defaults:
    /// `synchronous_commit = on`, 4096 shares per batch, 1024 queued requests.
    pub fn postgres(url: impl Into<String>) -> LedgerConfig {
        LedgerConfig::with_backend(Backend::Postgres { url: url.into() })
    }

    fn with_backend(backend: Backend) -> LedgerConfig {
        LedgerConfig {
            backend,
            synchronous: Synchronous::Full,
            max_batch_shares: Self::DEFAULT_MAX_BATCH_SHARES,
            min_commit_interval: Self::DEFAULT_MIN_COMMIT_INTERVAL,
            queue: Self::DEFAULT_QUEUE,
            server: None,
        }
    }

    /// The same ledger, written as server `id` of a cluster (PostgreSQL only).
    pub fn in_cluster(mut self, id: ServerId) -> LedgerConfig {
        self.server = Some(id);
        self
    }
}
