//! The share ledger against a real database, every test on both backends (`sqlite::*` on a
//! temporary file, `postgres::*` on a fresh database per test): group commit, queries,
//! reopening, a `kill -9` in the middle of committing, and re-verifying a block's PPLNS
//! split.
//!
//! The PostgreSQL tests need a server: `STRATA_TEST_POSTGRES_URL` is an admin URL (URL form;
//! default `postgresql://postgres:strata@127.0.0.1:5432/postgres`, the server
//! `scripts/install-deps.sh` installs and starts) through which each test creates and drops
//! its own `strata_test_<random>` database. Without a server they fail, unless
//! `STRATA_TEST_POSTGRES=skip` says to skip them. They exist
//! with the `postgres` feature (on by default; `--no-default-features --features postgres`).
//!
//! Throughput (ignored by default; release build recommended):
//! `cargo test --release -p strata-pool --no-default-features --features postgres --test
//! ledger -- --ignored group_commit_throughput --nocapture` (set `STRATA_LEDGER_BENCH_DIR`
//! to measure another disk than the temp directory's for SQLite).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use strata_pool::ledger::{
    BlockStatus, Ledger, LedgerConfig, LedgerError, ShareRecord, Synchronous,
};

#[path = "common/ledger_db.rs"]
#[macro_use]
mod ledger_db;
#[path = "common/ledger_records.rs"]
mod ledger_records;

#[cfg(feature = "postgres")]
use ledger_db::pg;
use ledger_db::TestDb;
use ledger_records::{block, share};

const CRASH_DB_ENV: &str = "STRATA_LEDGER_CRASH_CHILD_DB";
const CRASH_PG_ENV: &str = "STRATA_LEDGER_CRASH_CHILD_PG";
const CRASH_SYNC_ENV: &str = "STRATA_LEDGER_CRASH_CHILD_NORMAL";

on_both_backends! {
    #[tokio::test] commit_and_read_back;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    group_commit_batches_concurrent_submitters;
    #[tokio::test] group_commit_respects_max_batch_shares;
    #[tokio::test] a_bad_request_fails_alone_and_dropped_tickets_still_commit;
    #[tokio::test] the_commit_observer_hears_of_committed_shares_only;
    #[tokio::test] worker_totals_left_behind_by_a_crash_are_caught_up_at_start;
    #[tokio::test] reopen_after_drop_keeps_everything;
    #[tokio::test] refuses_a_newer_schema;
    #[tokio::test] crash_loses_no_acknowledged_share;
    #[tokio::test] crash_loses_no_acknowledged_share_with_normal_sync;
}

/// The ledger's own connection never checkpoints (acknowledgements would wait behind the
/// page copies and the database file's sync): a thread of its own does, asked by the ledger
/// thread every 25,000 shares it moves into the table, so the database file grows while the
/// pool runs and the WAL stays bounded.
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background() {
    let db = TestDb::sqlite();
    let TestDb::Sqlite { path, .. } = &db else {
        unreachable!()
    };
    let (ledger, thread) = db.open();
    let size = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    for batch in 0..120u32 {
        let shares = (0..250)
            .map(|n| share("alice.rig1", 1.0, batch * 250 + n))
            .collect();
        ledger.submit(shares).await.unwrap().await.unwrap();
    }
    // a read moves every logged share into the table (into the WAL)
    assert_eq!(ledger.totals().await.unwrap().shares_accepted, 30_000);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + 200_000 {
        assert!(
            Instant::now() < deadline,
            "the database file stayed at {} bytes ({} before): nothing checkpointed the WAL",
            size(),
            before
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(ledger);
    thread.join().unwrap();
}

async fn commit_and_read_back(db: TestDb) {
    let (ledger, thread) = db.open();
    let first: Vec<_> = (0..5).map(|n| share("alice.rig1", 2.0, n)).collect();
    let second: Vec<_> = (5..8).map(|n| share("bob.rig1", 0.5, n)).collect();

    let r1 = ledger.submit(first.clone()).await.unwrap().await.unwrap();
    let r2 = ledger.submit(second.clone()).await.unwrap().await.unwrap();
    assert_eq!((r1.first_id, r1.count, r1.last_id()), (1, 5, Some(5)));
    assert_eq!((r2.first_id, r2.count, r2.last_id()), (6, 3, Some(8)));

    let stored = ledger.shares_in(1, 8).await.unwrap();
    let expected: Vec<(i64, ShareRecord)> = (1..).zip(first.into_iter().chain(second)).collect();
    assert_eq!(stored, expected);
    assert_eq!(
        ledger.shares_in(2, 3).await.unwrap(),
        expected[1..3].to_vec()
    );

    let totals = ledger.totals().await.unwrap();
    assert_eq!(totals.shares_accepted, 8);
    assert_eq!(totals.difficulty, 11.5);
    assert_eq!(totals.blocks_found, 0);
    let workers: Vec<_> = totals
        .workers
        .iter()
        .map(|w| (w.worker.as_str(), w.shares, w.difficulty, w.last_share_ms))
        .collect();
    assert_eq!(
        workers,
        vec![
            ("alice.rig1", 5, 10.0, 1_700_000_000_004),
            ("bob.rig1", 3, 1.5, 1_700_000_000_007)
        ]
    );

    let empty = ledger.submit(Vec::new()).await.unwrap().await.unwrap();
    assert_eq!((empty.count, empty.last_id()), (0, None));

    drop(ledger);
    thread.join().unwrap();
}

async fn group_commit_batches_concurrent_submitters(db: TestDb) {
    let (ledger, thread) = db.open();
    let submitters = 32;
    let rounds = 10;
    let mut tasks = Vec::new();
    for s in 0..submitters {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for r in 0..rounds {
                let batch = (0..4)
                    .map(|i| share(&format!("w{s}"), 1.0, r * 4 + i))
                    .collect();
                let receipt = ledger.submit(batch).await.unwrap().await.unwrap();
                ids.extend(receipt.first_id..receipt.first_id + 4);
            }
            ids
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(all.insert(id), "share id {id} handed out twice");
        }
    }
    let n = u64::from(submitters * rounds);
    assert_eq!(all.len() as u64, n * 4);
    assert_eq!(
        all.iter().copied().collect::<Vec<_>>(),
        (1..=all.len() as i64).collect::<Vec<_>>()
    );
    let stats = ledger.stats();
    assert_eq!(stats.write_requests, n);
    assert_eq!(stats.shares, n * 4);
    assert!(
        stats.transactions < stats.write_requests,
        "no group commit: {stats:?}"
    );
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert_eq!(ledger.totals().await.unwrap().shares_accepted, n * 4);
    drop(ledger);
    thread.join().unwrap();
}

async fn group_commit_respects_max_batch_shares(db: TestDb) {
    let config = LedgerConfig {
        max_batch_shares: 10,
        ..db.config()
    };
    let (ledger, thread) = Ledger::open(config).unwrap();
    // queue everything before awaiting any ticket
    let mut tickets = Vec::new();
    for r in 0..50 {
        let batch = (0..4).map(|i| share("w", 1.0, r * 4 + i)).collect();
        tickets.push(ledger.submit(batch).await.unwrap());
    }
    for ticket in tickets {
        ticket.await.unwrap();
    }
    let stats = ledger.stats();
    assert_eq!(stats.write_requests, 50);
    // 4 + 4 < 10 <= 4 + 4 + 4: a transaction takes three requests at most
    assert!(
        (1..=3).contains(&stats.largest_batch),
        "largest batch {stats:?}"
    );
    assert!(stats.transactions >= 50 / 3);
    drop(ledger);
    thread.join().unwrap();
}

async fn a_bad_request_fails_alone_and_dropped_tickets_still_commit(db: TestDb) {
    let (ledger, thread) = db.open();
    // queued back to back: most likely one transaction, each in its own savepoint
    let dropped = ledger.submit(vec![share("a", 1.0, 1)]).await.unwrap();
    let bad = ledger
        .submit(vec![share("b", 1.0, 2), share("b", f64::NAN, 3)])
        .await
        .unwrap();
    let good = ledger.submit(vec![share("c", 3.0, 4)]).await.unwrap();
    drop(dropped);
    match bad.await {
        Err(LedgerError::InvalidDifficulty { worker, difficulty }) => {
            assert_eq!(worker, "b");
            assert!(difficulty.is_nan());
        }
        other => panic!("expected an invalid difficulty, got {other:?}"),
    }
    let good = good.await.unwrap();
    let totals = ledger.totals().await.unwrap();
    assert_eq!(totals.shares_accepted, 2, "{totals:?}");
    let workers: Vec<_> = totals.workers.iter().map(|w| w.worker.as_str()).collect();
    assert_eq!(workers, vec!["a", "c"]);
    let stored = ledger.shares_in(0, i64::MAX).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].0, good.first_id);
    drop(ledger);
    thread.join().unwrap();
}

async fn the_commit_observer_hears_of_committed_shares_only(db: TestDb) {
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let (ledger, thread) = Ledger::open_observed(
        db.config(),
        Box::new(move |workers| seen_tx.send(workers).unwrap()),
    )
    .unwrap();
    // back to back: one group whose combined insert fails, then one savepoint per request
    let first = ledger.submit(vec![share("a", 1.0, 1)]).await.unwrap();
    let bad = ledger
        .submit(vec![share("b", 1.0, 2), share("b", f64::NAN, 3)])
        .await
        .unwrap();
    let last = ledger
        .submit(vec![share("c", 3.0, 4), share("a", 2.0, 5)])
        .await
        .unwrap();
    let (first, last) = (first.await.unwrap(), last.await.unwrap());
    assert!(bad.await.is_err());
    assert_eq!((first.count, last.count), (1, 2));
    let stored = ledger.shares_in(0, i64::MAX).await.unwrap();
    let ids: Vec<i64> = stored.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![first.first_id, last.first_id, last.first_id + 1]);
    drop(ledger);
    thread.join().unwrap();
    // the observer was told before each ticket resolved; summed over every commit:
    let mut sums: std::collections::BTreeMap<String, (u64, f64, u64)> = Default::default();
    for commit in seen.try_iter() {
        for w in commit {
            let e = sums.entry(w.worker).or_default();
            e.0 += w.shares;
            e.1 += w.difficulty;
            e.2 = e.2.max(w.last_share_ms);
        }
    }
    let t0 = 1_700_000_000_000;
    assert_eq!(
        sums.into_iter().collect::<Vec<_>>(),
        vec![
            ("a".to_owned(), (2, 3.0, t0 + 5)),
            ("c".to_owned(), (1, 3.0, t0 + 4)),
        ]
    );
}

async fn worker_totals_left_behind_by_a_crash_are_caught_up_at_start(db: TestDb) {
    let (ledger, thread) = db.open();
    for n in 1..=6 {
        let w = if n % 2 == 0 { "even" } else { "odd" };
        ledger
            .submit(vec![share(w, f64::from(n), n)])
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let before = ledger.totals().await.unwrap();
    assert_eq!(before.shares_accepted, 6);
    drop(ledger);
    thread.join().unwrap();
    // as a kill -9 leaves it: the shares after id 2 committed, the workers table not told
    db.execute(
        "DELETE FROM workers; UPDATE workers_through SET id = 2; \
         INSERT INTO workers (worker, shares, difficulty, last_share_ms) \
         VALUES ('odd', 1, 1.0, 1700000000001), ('even', 1, 2.0, 1700000000002)",
    );
    let (ledger, thread) = db.open();
    assert_eq!(ledger.totals().await.unwrap(), before);
    drop(ledger);
    thread.join().unwrap();
    // and nothing is counted twice on the next start
    let (ledger, thread) = db.open();
    assert_eq!(ledger.totals().await.unwrap(), before);
    drop(ledger);
    thread.join().unwrap();
}

async fn reopen_after_drop_keeps_everything(db: TestDb) {
    let (ledger, thread) = db.open();
    // queued and never awaited: dropping the last handle must still commit them
    let mut tickets = Vec::new();
    for n in 0..20 {
        tickets.push(ledger.submit(vec![share("a.x", 1.0, n)]).await.unwrap());
    }
    ledger
        .record_block(block("00aa", 101, BlockStatus::Accepted))
        .await
        .unwrap();
    let before_totals = ledger.totals().await.unwrap();
    let before_shares = ledger.shares_in(1, 100).await.unwrap();
    drop(ledger);
    thread.join().unwrap();
    for ticket in tickets {
        ticket.await.unwrap();
    }

    let (ledger, thread) = db.open();
    assert_eq!(ledger.totals().await.unwrap(), before_totals);
    assert_eq!(ledger.shares_in(1, 100).await.unwrap(), before_shares);
    assert_eq!(
        ledger.blocks(5).await.unwrap(),
        vec![block("00aa", 101, BlockStatus::Accepted)]
    );
    // ids continue
    let receipt = ledger
        .submit(vec![share("a.x", 1.0, 99)])
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(receipt.first_id, 21);
    drop(ledger);
    thread.join().unwrap();
}

async fn refuses_a_newer_schema(db: TestDb) {
    let (ledger, thread) = db.open();
    drop(ledger);
    thread.join().unwrap();
    db.set_schema_version(99);
    assert!(matches!(
        Ledger::open(db.config()),
        Err(LedgerError::SchemaTooNew {
            found: 99,
            supported: 6
        })
    ));
}

/// Kills the child when the test ends, whichever way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kill -9` while shares are being committed loses no share whose receipt was printed.
async fn crash_loses_no_acknowledged_share(db: TestDb) {
    crash_test(db, Synchronous::Full).await;
}

/// The same with `synchronous = NORMAL` (PostgreSQL: `synchronous_commit = off`): it too
/// survives a crash of the pool's process.
async fn crash_loses_no_acknowledged_share_with_normal_sync(db: TestDb) {
    crash_test(db, Synchronous::Normal).await;
}

async fn crash_test(db: TestDb, synchronous: Synchronous) {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    match &db {
        TestDb::Sqlite { path, .. } => command.env(CRASH_DB_ENV, path),
        #[cfg(feature = "postgres")]
        TestDb::Postgres(pg) => command.env(CRASH_PG_ENV, &pg.url),
    };
    // the child's output is read on a blocking thread; the child is killed from there
    let acknowledged = tokio::task::spawn_blocking(move || run_crash_child(command, synchronous))
        .await
        .unwrap();

    let (ledger, thread) = db.open();
    let stored = ledger.shares_in(0, i64::MAX).await.unwrap();
    let ids: BTreeSet<i64> = stored.iter().map(|(id, _)| *id).collect();
    for (first, last) in &acknowledged {
        for id in *first..=*last {
            assert!(ids.contains(&id), "acknowledged share {id} lost");
        }
    }
    // whatever else survived is whole: running totals match the shares table
    let totals = ledger.totals().await.unwrap();
    assert_eq!(totals.shares_accepted, stored.len() as u64);
    assert_eq!(ids.len(), stored.len());
    if db.is_sqlite() {
        // SQLite hands out ids of rolled-back inserts again; a PostgreSQL sequence does
        // not (the killed transaction leaves a gap), so only SQLite's ids are dense
        assert_eq!(ids.iter().next_back().copied(), Some(stored.len() as i64));
    }
    // new shares get ids after every surviving one
    let max = ids.iter().next_back().copied().unwrap_or(0);
    let receipt = ledger
        .submit(vec![share("after.crash", 1.0, 0)])
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(receipt.first_id > max, "{receipt:?} after {max}");
    drop(ledger);
    thread.join().unwrap();
}

/// Runs the crash child until it acknowledged 1000 requests, kills it (SIGKILL) and returns
/// the acknowledged id ranges.
fn run_crash_child(mut command: Command, synchronous: Synchronous) -> Vec<(i64, i64)> {
    let child = command
        .args([
            "crash_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CRASH_SYNC_ENV,
            (synchronous == Synchronous::Normal).to_string(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut acknowledged: Vec<(i64, i64)> = Vec::new();
    // kept open until the kill: a closed pipe would stop the child's submitters first
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("committed ") {
            let (first, last) = rest.split_once(' ').unwrap();
            acknowledged.push((first.parse().unwrap(), last.parse().unwrap()));
            if acknowledged.len() == 1000 {
                break;
            }
        }
    }
    assert_eq!(acknowledged.len(), 1000, "the child stopped early");
    // SIGKILL, mid-stream: the submitters are still committing
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());
    drop(lines);
    acknowledged
}

/// The child of [`crash_loses_no_acknowledged_share`]: commits shares from four tasks until
/// killed, printing each receipt after its ticket resolved. Does nothing unless started by
/// that test.
#[test]
#[ignore = "child process of the crash tests"]
fn crash_child_process() {
    let config = if let Some(path) = std::env::var_os(CRASH_DB_ENV) {
        LedgerConfig::new(PathBuf::from(path))
    } else if let Ok(url) = std::env::var(CRASH_PG_ENV) {
        LedgerConfig::postgres(url)
    } else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async move {
        let synchronous = match std::env::var(CRASH_SYNC_ENV).as_deref() {
            Ok("true") => Synchronous::Normal,
            _ => Synchronous::Full,
        };
        let config = LedgerConfig {
            synchronous,
            ..config
        };
        let (ledger, _thread) = Ledger::open(config).unwrap();
        let mut tasks = Vec::new();
        for t in 0..4u32 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                // bounded so a forgotten child ends by itself
                for r in 0..100_000u32 {
                    let batch = (0..8)
                        .map(|i| share(&format!("crash.w{t}"), 1.0, r * 8 + i))
                        .collect();
                    let receipt = ledger.submit(batch).await.unwrap().await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "committed {} {}",
                        receipt.first_id,
                        receipt.last_id().unwrap()
                    )
                    .unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

async fn throughput_run(
    config: LedgerConfig,
    submitters: u32,
    batches: u32,
    batch_shares: u32,
) -> (f64, f64) {
    let (ledger, thread) = Ledger::open(config).unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..submitters {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..batches {
                let shares = (0..batch_shares)
                    .map(|i| share(&format!("bench.w{s}"), 1.0, b * batch_shares + i))
                    .collect();
                ledger.submit(shares).await.unwrap().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = ledger.stats();
    assert_eq!(stats.shares, u64::from(submitters * batches * batch_shares));
    drop(ledger);
    thread.join().unwrap();
    (
        stats.shares as f64 / elapsed,
        stats.write_requests as f64 / stats.transactions as f64,
    )
}

/// Group-commit throughput: 8 submitters, each submitting 16-share batches and waiting for
/// its ticket before the next; median of 5 runs per `synchronous` setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn group_commit_throughput() {
    let base = std::env::var_os("STRATA_LEDGER_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        let mut runs = Vec::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir_in(&base).unwrap();
            let config = LedgerConfig {
                synchronous,
                ..LedgerConfig::new(dir.path().join("ledger.sqlite"))
            };
            runs.push(throughput_run(config, 8, 2000, 16).await);
        }
        report_throughput("sqlite", synchronous, runs);
    }
}

fn report_throughput(backend: &str, synchronous: Synchronous, mut runs: Vec<(f64, f64)>) {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, batch) = runs[runs.len() / 2];
    let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.0)).collect();
    println!(
        "ledger group commit, {backend}, synchronous={synchronous:?}: median {median:.0} \
         shares/s ({:.0} commits/s, {batch:.1} requests per transaction); runs {}",
        median / 16.0 / batch,
        all.join(", ")
    );
    assert!(median > 0.0);
}

/// The same measurement on PostgreSQL (`synchronous_commit` on, then off), a fresh database
/// per run.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn group_commit_throughput_postgres() {
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        let mut runs = Vec::new();
        for _ in 0..5 {
            let Some(db) = TestDb::postgres() else {
                return;
            };
            let config = LedgerConfig {
                synchronous,
                ..db.config()
            };
            runs.push(throughput_run(config, 8, 2000, 16).await);
        }
        report_throughput("postgres", synchronous, runs);
    }
}

/// One pool per PostgreSQL database: a second ledger on it is refused while the first is
/// open, and opens once the first is closed.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_database_in_use_is_refused() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let (ledger, thread) = db.open();
    match Ledger::open(db.config()) {
        Err(LedgerError::InUse { database }) => {
            assert!(database.contains("strata_test_"), "{database}");
            assert!(!database.contains(":strata@"), "password shown: {database}");
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(ledger);
    thread.join().unwrap();
    let (ledger, thread) = db.open();
    assert_eq!(ledger.totals().await.unwrap().shares_accepted, 0);
    drop(ledger);
    thread.join().unwrap();
}

/// A connection refused is an error naming the database, without its password.
#[cfg(feature = "postgres")]
#[test]
fn postgres_unreachable_server_is_an_error() {
    // port 1 on localhost: nothing listens there
    let url = "postgresql://strata:secret@127.0.0.1:1/ledger?connect_timeout=2";
    let err = Ledger::open(LedgerConfig::postgres(url)).unwrap_err();
    assert!(
        matches!(err, LedgerError::Postgres { op: "connect", .. }),
        "{err:?}"
    );
    let config = format!("{:?}", LedgerConfig::postgres(url));
    assert!(!config.contains("secret"), "{config}");
    assert!(config.contains("strata:***@127.0.0.1:1/ledger"), "{config}");
}

/// The server ends the ledger's connection (a restart, an administrator): the batch in
/// flight fails (never acknowledged), the next request reconnects, and nothing committed
/// is lost.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_reconnects_after_the_server_drops_the_connection() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let TestDb::Postgres(pgdb) = &db else {
        unreachable!("a postgres database");
    };
    let (ledger, thread) = db.open();
    let before = ledger
        .submit((0..5).map(|n| share("a", 1.0, n)).collect())
        .await
        .unwrap()
        .await
        .unwrap();
    let admin = std::env::var(pg::URL_ENV).unwrap_or_else(|_| pg::DEFAULT_ADMIN_URL.to_string());
    let name = pgdb.url.rsplit('/').next().unwrap().to_owned();
    pg::execute(
        &admin,
        &format!(
            // waits (up to 5 s) until the backend is gone
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE datname = '{name}' AND application_name = 'strata-pool ledger'"
        ),
    );
    // the first request finds the connection dead: it fails, unacknowledged
    match ledger.submit(vec![share("b", 2.0, 8)]).await.unwrap().await {
        Err(LedgerError::Postgres { .. }) => {}
        other => panic!("expected a postgres error, got {other:?}"),
    }
    let after = ledger
        .submit(vec![share("b", 2.0, 9)])
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(after.first_id > before.last_id().unwrap());
    let totals = ledger.totals().await.unwrap();
    assert_eq!(totals.shares_accepted, 6);
    let stored = ledger.shares_in(0, i64::MAX).await.unwrap();
    assert_eq!(stored.len(), 6);
    drop(ledger);
    thread.join().unwrap();
}
