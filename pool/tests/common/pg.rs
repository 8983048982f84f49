//! A fresh PostgreSQL database per test, through the admin URL `STRATA_TEST_POSTGRES_URL`
//! (default: the server `scripts/install-deps.sh` installs and starts); without a server the
//! tests fail, unless `STRATA_TEST_POSTGRES=skip` says to skip them.
#![allow(dead_code, unreachable_pub)]

/// The admin URL of the test server.
pub const URL_ENV: &str = "STRATA_TEST_POSTGRES_URL";
/// `skip` to skip the PostgreSQL tests instead of failing them without a server.
pub const SKIP_ENV: &str = "STRATA_TEST_POSTGRES";
/// The local server `scripts/install-deps.sh` installs, starts and gives this password.
pub const DEFAULT_ADMIN_URL: &str = "postgresql://postgres:strata@127.0.0.1:5432/postgres";

/// Runs `sql` on `url` from a thread of its own: the synchronous client must not run
/// inside the test's async runtime.
pub fn execute(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap_or_else(|e| {
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
pub struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    pub fn create() -> Option<Database> {
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
