//! The test databases of the ledger's tests, on both backends: a temporary SQLite file, or a
//! fresh PostgreSQL database per test (`pg.rs`: see `ledger.rs` for the server they need), and
//! [`on_both_backends!`], which runs a test on each.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;

use strata_pool::ledger::{Ledger, LedgerConfig, LedgerThread};

/// The database of one test; a PostgreSQL one is dropped with it.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    #[cfg(feature = "postgres")]
    Postgres(pg::Database),
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        // in a directory that does not exist yet: opening creates it
        let path = dir.path().join("sub/dir/ledger.sqlite");
        TestDb::Sqlite { _dir: dir, path }
    }

    /// A fresh PostgreSQL database, or `None` when `STRATA_TEST_POSTGRES=skip`.
    #[cfg(feature = "postgres")]
    pub fn postgres() -> Option<TestDb> {
        pg::Database::create().map(TestDb::Postgres)
    }

    pub fn config(&self) -> LedgerConfig {
        match self {
            TestDb::Sqlite { path, .. } => LedgerConfig::new(path),
            #[cfg(feature = "postgres")]
            TestDb::Postgres(db) => LedgerConfig::postgres(&db.url),
        }
    }

    pub fn open(&self) -> (Ledger, LedgerThread) {
        Ledger::open(self.config()).expect("open ledger")
    }

    /// Stores schema `version` the way the backend does.
    pub fn set_schema_version(&self, version: i64) {
        match self {
            TestDb::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.pragma_update(None, "user_version", version)
                    .expect("set user_version");
            }
            #[cfg(feature = "postgres")]
            TestDb::Postgres(db) => pg::execute(
                &db.url,
                &format!("UPDATE strata_ledger_schema SET version = {version}"),
            ),
        }
    }

    /// Runs `sql` on the database outside the ledger.
    pub fn execute(&self, sql: &str) {
        match self {
            TestDb::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.execute_batch(sql).expect("execute");
            }
            #[cfg(feature = "postgres")]
            TestDb::Postgres(db) => pg::execute(&db.url, sql),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, TestDb::Sqlite { .. })
    }
}

/// The PostgreSQL test server's helpers (shared with the other tests through `common`).
#[cfg(feature = "postgres")]
#[path = "pg.rs"]
pub mod pg;

/// Runs each `async fn name(db: TestDb)` as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($( #[$attr:meta] $name:ident; )*) => {
        mod sqlite {
            $( #[$attr] async fn $name() { super::$name(super::TestDb::sqlite()).await } )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[$attr]
                async fn $name() {
                    if let Some(db) = super::TestDb::postgres() {
                        super::$name(db).await
                    }
                }
            )*
        }
    };
}
