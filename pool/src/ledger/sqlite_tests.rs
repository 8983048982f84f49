//! The SQLite store's durability switches.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::ledger::engine::{Batch, Storage};

fn synchronous(store: &Store) -> i64 {
    store
        .conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap()
}

fn totals() -> Vec<WorkerTotals> {
    vec![WorkerTotals {
        worker: "alice".into(),
        shares: 3,
        difficulty: 6.0,
        last_share_ms: 1_700_000_000_000,
    }]
}

/// A transaction of worker totals alone commits without a sync, then `synchronous` is as
/// configured again, whether it committed or rolled back; one that also holds a block is
/// synced as configured.
#[test]
fn only_a_totals_transaction_skips_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("ledger.sqlite"), Synchronous::Full).unwrap();
    const FULL: i64 = 2;
    assert_eq!(synchronous(&store), FULL);

    let mut batch = store.begin().unwrap();
    batch.add_worker_totals(&totals(), 0).unwrap();
    assert!(batch.relaxed);
    batch.commit().unwrap();
    assert_eq!(synchronous(&store), FULL);
    assert_eq!(store.totals().unwrap().workers.len(), 1);

    let mut batch = store.begin().unwrap();
    batch.add_worker_totals(&totals(), 0).unwrap();
    drop(batch);
    assert_eq!(synchronous(&store), FULL);
    assert_eq!(store.totals().unwrap().workers[0].shares, 3, "rolled back");

    let mut batch = store.begin().unwrap();
    batch.set_status("00", &BlockStatus::Accepted).unwrap_err();
    batch.add_worker_totals(&totals(), 0).unwrap();
    assert!(
        !batch.relaxed,
        "a transaction begun for a block write stays synced"
    );
    batch.commit().unwrap();
    assert_eq!(store.totals().unwrap().workers[0].shares, 6);
}

/// `synchronous = normal` never changes.
#[test]
fn normal_stays_normal() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("ledger.sqlite"), Synchronous::Normal).unwrap();
    let mut batch = store.begin().unwrap();
    batch.add_worker_totals(&totals(), 0).unwrap();
    assert!(!batch.relaxed);
    batch.commit().unwrap();
    assert_eq!(synchronous(&store), 1);
}
