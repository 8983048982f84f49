//! The pool's history and a miner's blocks in the ledger (schema version 6), on both backends
//! (`sqlite::*`, `postgres::*`; see `ledger.rs` for the PostgreSQL server they need): samples
//! round-trip, are bucketed and pruned, a version 5 ledger migrates keeping its blocks, the
//! blocks paying an address are found by their outputs, and a cluster's servers' samples add
//! up.
#![allow(clippy::unwrap_used)]

#[path = "common/ledger_db.rs"]
#[macro_use]
mod ledger_db;

use ledger_db::TestDb;
use strata_pool::ledger::{BlockRecord, BlockStatus, HistoryPoint, LedgerError, Payout};

on_both_backends! {
    #[tokio::test] history_round_trips_in_buckets_and_is_pruned;
    #[tokio::test] a_bad_sample_fails_alone;
    #[tokio::test] a_version_5_ledger_migrates_keeping_its_blocks;
    #[tokio::test] blocks_paying_an_owner_newest_first;
}

const T0: u64 = 1_700_000_000_000;
const MINUTE: u64 = 60_000;

fn sample(minute: u64, hashrate: f64, accepted: u64) -> HistoryPoint {
    HistoryPoint {
        time_ms: T0 + minute * MINUTE,
        hashrate,
        accepted,
        rejected: minute % 3,
        connections: 2 + minute % 4,
    }
}

fn block(hash: &str, height: u32, owners: &[(&str, u64)]) -> BlockRecord {
    BlockRecord {
        height,
        hash: hash.to_owned(),
        template_id: u64::from(height),
        worker: "finder.rig".to_owned(),
        time_ms: T0 + u64::from(height),
        reward_sats: owners.iter().map(|(_, s)| s).sum(),
        outputs: owners
            .iter()
            .map(|(owner, sats)| Payout {
                owner: (*owner).to_owned(),
                script_hex: format!(
                    "0014{}",
                    hex::encode(owner.as_bytes()).get(..40).unwrap_or("00")
                ),
                sats: *sats,
            })
            .collect(),
        window: Some((1, 10)),
        mode: "pplns".to_owned(),
        status: BlockStatus::Accepted,
        payout_rules: None,
    }
}

async fn history_round_trips_in_buckets_and_is_pruned(db: TestDb) {
    let (ledger, thread) = db.open();
    for m in 0..10 {
        ledger
            .record_history(sample(m, 1e9 * (m + 1) as f64, 10 + m), 0)
            .await
            .unwrap();
    }
    // one bucket per sample: every sample back as written
    let all = ledger.history(T0, 1).await.unwrap();
    assert_eq!(
        all,
        (0..10)
            .map(|m| sample(m, 1e9 * (m + 1) as f64, 10 + m))
            .collect::<Vec<_>>()
    );
    // a sample at the same time replaces the earlier one
    ledger.record_history(sample(9, 5.0, 1), 0).await.unwrap();
    assert_eq!(
        ledger.history(T0 + 9 * MINUTE, 1).await.unwrap(),
        vec![sample(9, 5.0, 1)]
    );

    // 5-minute buckets aligned to multiples of 5 minutes (since the epoch): the ten samples
    // fall in two or three of them; expected: counts summed, hashrates averaged, connections
    // at their most
    let bucket = 5 * MINUTE;
    let buckets = ledger.history(T0, bucket).await.unwrap();
    let mut want: Vec<HistoryPoint> = Vec::new();
    for m in 0..10u64 {
        let s = if m == 9 {
            sample(9, 5.0, 1)
        } else {
            sample(m, 1e9 * (m + 1) as f64, 10 + m)
        };
        let start = s.time_ms / bucket * bucket;
        match want.last_mut() {
            Some(b) if b.time_ms == start => {
                b.hashrate += s.hashrate;
                b.accepted += s.accepted;
                b.rejected += s.rejected;
                b.connections = b.connections.max(s.connections);
            }
            _ => want.push(HistoryPoint {
                time_ms: start,
                ..s
            }),
        }
    }
    for b in &mut want {
        let n = (0..10u64)
            .filter(|m| (T0 + m * MINUTE) / bucket * bucket == b.time_ms)
            .count() as f64;
        b.hashrate /= n;
    }
    assert_eq!(buckets.len(), want.len());
    for (got, want) in buckets.iter().zip(&want) {
        assert_eq!(
            (got.time_ms, got.accepted, got.rejected, got.connections),
            (want.time_ms, want.accepted, want.rejected, want.connections)
        );
        assert!(
            (got.hashrate - want.hashrate).abs() <= want.hashrate * 1e-12,
            "{got:?} {want:?}"
        );
    }
    assert!((2..=3).contains(&buckets.len()), "{buckets:?}");
    // `since` leaves the older samples out
    assert_eq!(ledger.history(T0 + 8 * MINUTE, 1).await.unwrap().len(), 2);

    // a sample written with a retention deletes what is older
    ledger
        .record_history(sample(10, 1.0, 1), T0 + 6 * MINUTE)
        .await
        .unwrap();
    let kept = ledger.history(0, 1).await.unwrap();
    assert_eq!(
        kept.iter()
            .map(|p| (p.time_ms - T0) / MINUTE)
            .collect::<Vec<_>>(),
        vec![6, 7, 8, 9, 10]
    );
    drop(ledger);
    thread.join().unwrap();
    // and it is all still there after a reopen
    let (ledger, thread) = db.open();
    assert_eq!(ledger.history(0, 1).await.unwrap(), kept);
    drop(ledger);
    thread.join().unwrap();
}

async fn a_bad_sample_fails_alone(db: TestDb) {
    let (ledger, thread) = db.open();
    let bad = HistoryPoint {
        hashrate: f64::NAN,
        ..sample(1, 0.0, 0)
    };
    let (a, b) = tokio::join!(
        ledger.record_history(bad, 0),
        ledger.record_history(sample(2, 7.0, 3), 0)
    );
    assert!(
        matches!(a, Err(LedgerError::InvalidHashrate { .. })),
        "{a:?}"
    );
    b.unwrap();
    let too_late = HistoryPoint {
        time_ms: u64::MAX,
        ..sample(1, 0.0, 0)
    };
    assert!(matches!(
        ledger.record_history(too_late, 0).await,
        Err(LedgerError::OutOfRange { .. })
    ));
    assert_eq!(ledger.history(0, 1).await.unwrap(), vec![sample(2, 7.0, 3)]);
    drop(ledger);
    thread.join().unwrap();
}

async fn a_version_5_ledger_migrates_keeping_its_blocks(db: TestDb) {
    let (ledger, thread) = db.open();
    let old = block("00a5", 105, &[("bcrt1qminer", 3_000), ("pool", 70)]);
    ledger.record_block(old.clone()).await.unwrap();
    drop(ledger);
    thread.join().unwrap();
    // back to version 5: no history table, no index of outputs by owner
    db.execute("DROP TABLE history");
    db.execute("DROP INDEX block_outputs_by_owner");
    db.set_schema_version(5);

    let (ledger, thread) = db.open();
    assert_eq!(ledger.blocks(10).await.unwrap(), vec![old.clone()]);
    assert_eq!(
        ledger.blocks_paying("bcrt1qminer", 10).await.unwrap(),
        vec![old]
    );
    ledger
        .record_history(sample(1, 2.5e12, 4), 0)
        .await
        .unwrap();
    assert_eq!(
        ledger.history(0, 1).await.unwrap(),
        vec![sample(1, 2.5e12, 4)]
    );
    drop(ledger);
    thread.join().unwrap();
    // reopening does not migrate again (the table would exist twice)
    let (ledger, thread) = db.open();
    assert_eq!(ledger.history(0, 1).await.unwrap().len(), 1);
    drop(ledger);
    thread.join().unwrap();
}

async fn blocks_paying_an_owner_newest_first(db: TestDb) {
    let (ledger, thread) = db.open();
    let blocks = [
        block("00b1", 201, &[("alice", 600), ("bob", 300), ("pool", 100)]),
        block("00b2", 202, &[("bob", 900), ("pool", 100)]),
        block("00b3", 203, &[("alice", 1_000)]),
        block("00b4", 204, &[("alice", 500), ("pool", 500)]),
    ];
    for b in &blocks {
        ledger.record_block(b.clone()).await.unwrap();
    }
    let alice = ledger.blocks_paying("alice", 10).await.unwrap();
    assert_eq!(
        alice.iter().map(|b| b.height).collect::<Vec<_>>(),
        vec![204, 203, 201]
    );
    // each with all its outputs, not only the owner's
    assert_eq!(alice[2], blocks[0]);
    assert_eq!(
        ledger.blocks_paying("alice", 2).await.unwrap(),
        vec![blocks[3].clone(), blocks[2].clone()]
    );
    assert_eq!(
        ledger.blocks_paying("bob", 10).await.unwrap(),
        vec![blocks[1].clone(), blocks[0].clone()]
    );
    assert!(ledger.blocks_paying("carol", 10).await.unwrap().is_empty());
    // an owner is matched whole, never as a pattern
    assert!(ledger.blocks_paying("ali%", 10).await.unwrap().is_empty());
    drop(ledger);
    thread.join().unwrap();
}

/// A cluster's servers each record their own samples (same times, their own rows); the
/// history any of them reads back adds them up per bucket.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_clusters_history_adds_its_servers_up() {
    use strata_pool::ledger::{Ledger, LedgerConfig, ServerId};
    let Some(TestDb::Postgres(db)) = TestDb::postgres() else {
        return;
    };
    let open = |id: u8| {
        Ledger::open(LedgerConfig::postgres(&db.url).in_cluster(ServerId::new(id).unwrap()))
            .unwrap()
    };
    let (one, one_thread) = open(1);
    let (two, two_thread) = open(2);
    for m in 0..4 {
        one.record_history(sample(m, 100.0, 1), 0).await.unwrap();
        two.record_history(sample(m, 50.0, 2), 0).await.unwrap();
    }
    let each = one.history(0, 1).await.unwrap();
    assert_eq!(each, two.history(0, 1).await.unwrap());
    assert_eq!(each.len(), 4);
    for (m, p) in (0..4).zip(&each) {
        let s = sample(m, 0.0, 0);
        assert_eq!(p.time_ms, s.time_ms);
        assert_eq!((p.hashrate, p.accepted), (150.0, 3));
        assert_eq!(
            (p.rejected, p.connections),
            (2 * s.rejected, 2 * s.connections)
        );
    }
    // in one bucket: each server's mean, added
    let all = one.history(0, 100 * MINUTE).await.unwrap();
    assert_eq!(
        all.len(),
        1 + usize::from((T0 / (100 * MINUTE)) != ((T0 + 3 * MINUTE) / (100 * MINUTE)))
    );
    assert_eq!(all.iter().map(|p| p.accepted).sum::<u64>(), 12);
    if all.len() == 1 {
        assert_eq!(all[0].hashrate, 150.0);
    }
    drop((one, two));
    one_thread.join().unwrap();
    two_thread.join().unwrap();
}
