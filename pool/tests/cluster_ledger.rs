//! Several pool servers on one PostgreSQL ledger, at the ledger's level: each server id is
//! taken once, a pool alone and a cluster exclude each other, the servers' commits are
//! serialized so that share ids follow commit order (every server reads the same committed
//! window), and the workers table counts every server's shares.
//!
//! Needs the test PostgreSQL server (see `common/pg.rs`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use common::pg;
use strata_pool::ledger::{Ledger, LedgerConfig, LedgerError, ServerId, ShareRecord};

fn share(worker: &str, n: u32) -> ShareRecord {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&n.to_le_bytes());
    ShareRecord {
        worker: worker.to_owned(),
        channel_identity: worker.to_owned(),
        connection_id: u64::from(n % 7),
        channel_id: n % 5,
        job_id: n / 3,
        sequence_number: n,
        height: 100,
        difficulty: 2.0,
        hash,
        time_ms: 1_700_000_000_000 + u64::from(n),
        block: false,
    }
}

fn server(db: &pg::Database, id: u8) -> LedgerConfig {
    LedgerConfig::postgres(&db.url).in_cluster(ServerId::new(id).unwrap())
}

#[test]
fn server_id_zero_is_no_cluster() {
    assert_eq!(ServerId::new(0), None);
    assert_eq!(ServerId::new(7).map(ServerId::get), Some(7));
}

#[test]
fn a_cluster_needs_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        LedgerConfig::new(dir.path().join("ledger.sqlite")).in_cluster(ServerId::new(1).unwrap());
    assert!(matches!(
        Ledger::open(config),
        Err(LedgerError::ClusterNeedsPostgres)
    ));
}

/// Ids are taken once; a pool alone on the database and cluster servers exclude each other;
/// a freed id can be taken again.
#[tokio::test]
async fn server_ids_are_exclusive() {
    let Some(db) = pg::Database::create() else {
        return;
    };
    let (one, one_thread) = Ledger::open(server(&db, 1)).unwrap();
    let (two, two_thread) = Ledger::open(server(&db, 2)).unwrap();
    match Ledger::open(server(&db, 1)) {
        Err(LedgerError::ServerIdInUse { id, database }) => {
            assert_eq!(id.get(), 1);
            assert!(database.contains("strata_test_"), "{database}");
            assert!(!database.contains(":strata@"), "password shown: {database}");
        }
        other => panic!("expected ServerIdInUse, got {other:?}"),
    }
    assert!(matches!(
        Ledger::open(LedgerConfig::postgres(&db.url)),
        Err(LedgerError::InUse { .. })
    ));
    drop(one);
    one_thread.join().unwrap();
    let (again, again_thread) = Ledger::open(server(&db, 1)).unwrap();
    drop((again, two));
    again_thread.join().unwrap();
    two_thread.join().unwrap();

    // the cluster gone, a pool alone opens, and then keeps the servers out
    let (alone, alone_thread) = Ledger::open(LedgerConfig::postgres(&db.url)).unwrap();
    assert!(matches!(
        Ledger::open(server(&db, 3)),
        Err(LedgerError::InUse { .. })
    ));
    drop(alone);
    alone_thread.join().unwrap();
}

/// Two servers commit at the same time while a third only reads: every window any of them
/// reads is a dense prefix of ids (no committed share has an uncommitted one below it, so
/// "the last N by id" is the same for every server), and the totals count both servers.
#[tokio::test]
async fn servers_commit_in_id_order() {
    let Some(db) = pg::Database::create() else {
        return;
    };
    let (a, a_thread) = Ledger::open(server(&db, 1)).unwrap();
    let (b, b_thread) = Ledger::open(server(&db, 2)).unwrap();
    let (reader, reader_thread) = Ledger::open(server(&db, 3)).unwrap();
    let (requests, per_request) = (200u32, 5u32);
    let write = |ledger: Ledger, worker: &'static str| {
        tokio::spawn(async move {
            let mut tickets = Vec::new();
            for r in 0..requests {
                let batch = (0..per_request)
                    .map(|i| share(worker, r * per_request + i))
                    .collect();
                tickets.push(ledger.submit(batch).await.unwrap());
                if tickets.len() == 8 {
                    for t in tickets.drain(..) {
                        t.await.unwrap();
                    }
                }
            }
            for t in tickets {
                t.await.unwrap();
            }
        })
    };
    let wa = write(a.clone(), "alice");
    let wb = write(b.clone(), "bob");
    let read = {
        let reader = reader.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            loop {
                let w = reader.pplns_window(1_000_000).await.unwrap();
                assert_eq!(
                    w.shares as i64, w.last_id,
                    "window of {} shares ends at id {}: a committed share has an uncommitted one below it",
                    w.shares, w.last_id
                );
                reads += 1;
                if w.shares == u64::from(2 * requests * per_request) {
                    return reads;
                }
            }
        })
    };
    wa.await.unwrap();
    wb.await.unwrap();
    let reads = read.await.unwrap();
    assert!(reads > 1, "the reader saw the window grow");

    let total = u64::from(requests * per_request);
    let window = a.pplns_window(1_000_000).await.unwrap();
    assert_eq!(window, b.pplns_window(1_000_000).await.unwrap());
    let weights: Vec<_> = window
        .workers
        .iter()
        .map(|w| (w.worker.as_str(), w.shares))
        .collect();
    assert_eq!(weights, vec![("alice", total), ("bob", total)]);

    // each server's totals reach the shared workers table (flushed on a clean stop)
    drop((a, b));
    a_thread.join().unwrap();
    b_thread.join().unwrap();
    let totals = reader.totals().await.unwrap();
    assert_eq!(totals.shares_accepted, 2 * total);
    let workers: Vec<_> = totals
        .workers
        .iter()
        .map(|w| (w.worker.as_str(), w.shares))
        .collect();
    assert_eq!(workers, vec![("alice", total), ("bob", total)]);
    drop(reader);
    reader_thread.join().unwrap();
}
