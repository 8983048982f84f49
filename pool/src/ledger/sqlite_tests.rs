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

    // a block write after the totals (not an order the engine uses) is synced after the
    // commit
    let mut batch = store.begin().unwrap();
    batch.add_worker_totals(&totals(), 0).unwrap();
    batch.set_status("00", &BlockStatus::Accepted).unwrap_err();
    assert!(batch.relaxed && batch.sync_after);
    batch.commit().unwrap();
    assert_eq!(synchronous(&store), FULL);
    assert_eq!(store.totals().unwrap().workers[0].shares, 9);
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

fn share(n: u32) -> ShareRecord {
    ShareRecord {
        worker: "alice.rig1".into(),
        channel_identity: "alice".into(),
        connection_id: 1,
        channel_id: 1,
        job_id: 1,
        sequence_number: n,
        height: 100,
        difficulty: 1.0,
        hash: [n as u8; 32],
        time_ms: 1_700_000_000_000 + u64::from(n),
        block: false,
    }
}

/// The log's rewind (what a full log triggers): every logged share goes into the table
/// durably, the log starts over, and a reopened store finds each share once, with the
/// shares logged after the rewind.
#[test]
fn a_rewound_log_keeps_every_share_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let mut store = Store::open(&path, Synchronous::Full).unwrap();
    let commit = |store: &mut Store, range: std::ops::Range<u32>| {
        let mut batch = store.begin().unwrap();
        let shares: Vec<ShareRecord> = range.map(share).collect();
        batch.insert_shares(&shares).unwrap();
        batch.commit().unwrap();
    };
    commit(&mut store, 0..100);
    assert!(store.shares.log.len() > 0);
    store.import_all_durably().unwrap();
    assert_eq!(store.shares.log.len(), 0, "rewound");
    assert!(store.shares.unimported.is_empty());
    commit(&mut store, 100..130);
    drop(store);

    let mut store = Store::open(&path, Synchronous::Full).unwrap();
    let shares = store.shares_in(1, 1_000).unwrap();
    assert_eq!(shares.len(), 130);
    let sequence: Vec<u32> = shares.iter().map(|(_, s)| s.sequence_number).collect();
    assert_eq!(sequence, (0..130).collect::<Vec<u32>>());
    assert_eq!(shares.last().unwrap().0, 130);
}

/// Shares moved from the log into the table many rows to a statement read back as they were
/// logged, every field in its own column, from full statements and from the remainder.
#[test]
fn imported_shares_read_back_as_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("ledger.sqlite"), Synchronous::Full).unwrap();
    let n = u32::try_from(INSERT_ROWS * 2 + 5).unwrap();
    let shares: Vec<ShareRecord> = (0..n)
        .map(|i| {
            let mut hash = [0u8; 32];
            hash[0] = i as u8;
            hash[31] = 0xff - i as u8;
            ShareRecord {
                worker: format!("alice.rig{i}"),
                channel_identity: format!("alice{i}"),
                connection_id: u64::MAX - u64::from(i),
                channel_id: i + 1,
                job_id: i + 2,
                sequence_number: i + 3,
                height: i + 4,
                difficulty: f64::from(i) + 0.5,
                hash,
                time_ms: 1_700_000_000_000 + u64::from(i) * 7,
                block: i % 3 == 0,
            }
        })
        .collect();
    let mut batch = store.begin().unwrap();
    batch.insert_shares(&shares).unwrap();
    batch.commit().unwrap();
    let back = store.shares_in(1, 1_000).unwrap();
    assert!(store.shares.unimported.is_empty(), "read from the table");
    let ids: Vec<i64> = back.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=i64::from(n)).collect::<Vec<i64>>());
    let back: Vec<ShareRecord> = back.into_iter().map(|(_, s)| s).collect();
    assert_eq!(back, shares);
}
