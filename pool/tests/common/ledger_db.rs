//! The test databases of the ledger's tests, on both backends: a temporary SQLite file, or a
//! fresh PostgreSQL database per test (see `ledger.rs` for the server they need), and
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

#[cfg(feature = "postgres")]
pub mod pg {
    /// The admin URL of the test server.
    pub(crate) const URL_ENV: &str = "STRATA_TEST_POSTGRES_URL";
    /// `skip` to skip the PostgreSQL tests instead of failing them without a server.
    pub(crate) const SKIP_ENV: &str = "STRATA_TEST_POSTGRES";
    /// The local server `scripts/install-deps.sh` installs, starts and gives this password.
    pub(crate) const DEFAULT_ADMIN_URL: &str =
        "postgresql://postgres:strata@127.0.0.1:5432/postgres";

    /// Runs `sql` on `url` from a thread of its own: the synchronous client must not run
    /// inside the test's async runtime.
    pub(crate) fn execute(url: &str, sql: &str) {
        let (url, sql) = (url.to_owned(), sql.to_owned());
        std::thread::spawn(move || {
            let mut client =
                ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap_or_else(|e| {
                    panic!(
                        "cannot connect to the test postgres ({e}): run scripts/install-deps.sh, \
                         set {URL_ENV} to an admin URL, or {SKIP_ENV}=skip to skip these tests"
                    )
                });
            client
                .batch_execute(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
        .join()
        .expect("admin thread");
    }

    /// `url` with its database name replaced by `name`.
    fn with_dbname(url: &str, name: &str) -> String {
        let scheme_end = url
            .find("://")
            .unwrap_or_else(|| panic!("{URL_ENV} must be a postgresql:// url"));
        let rest = &url[scheme_end + 3..];
        let query = rest.find('?').map_or("", |q| &rest[q..]);
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        format!("{}{authority}/{name}{query}", &url[..scheme_end + 3])
    }

    /// A database created for one test, dropped at the end.
    pub(crate) struct Database {
        admin: String,
        name: String,
        pub(crate) url: String,
    }

    impl Database {
        pub(crate) fn create() -> Option<Database> {
            if std::env::var(SKIP_ENV).as_deref() == Ok("skip") {
                eprintln!("postgres test skipped: {SKIP_ENV}=skip");
                return None;
            }
            // the server scripts/install-deps.sh sets up, unless told otherwise
            let admin = std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string());
            let name = format!("strata_test_{:016x}", rand::random::<u64>());
            execute(&admin, &format!("CREATE DATABASE {name}"));
            let url = with_dbname(&admin, &name);
            Some(Database { admin, name, url })
        }
    }

    impl Drop for Database {
        fn drop(&mut self) {
            execute(
                &self.admin,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }
}

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
