//! The share ledger's reads against a real database, every test on both backends (as in
//! `ledger.rs`, whose module docs say what the PostgreSQL tests need): the PPLNS window,
//! blocks and their status, re-verifying a block's split, tagged shares, a migration from
//! schema 1, and both backends answering alike.
#![allow(clippy::unwrap_used)]

use bitcoin::{Address, Network, ScriptBuf};
use strata_pool::ledger::{
    BlockStatus, LedgerError, PplnsWindow, ShareRecord, Totals, WorkerTotals,
};
use strata_pool::payout::{pplns_split, PplnsConfig};

#[path = "common/ledger_db.rs"]
#[macro_use]
mod ledger_db;
#[path = "common/ledger_records.rs"]
mod ledger_records;

use ledger_db::TestDb;
use ledger_records::{block, regtest_address, share};

on_both_backends! {
    #[tokio::test] pplns_window_over_a_known_sequence;
    #[tokio::test] blocks_newest_first_with_status_updates;
    #[tokio::test] a_block_split_verifies_from_its_window;
    #[tokio::test] tagged_shares_count_for_their_channel_identity;
    #[tokio::test] a_version_1_ledger_migrates_keeping_its_shares;
}

async fn pplns_window_over_a_known_sequence(db: TestDb) {
    let (ledger, thread) = db.open();
    assert!(ledger.pplns_window(10).await.unwrap().is_empty());
    // ids 1..=8: a1 b2 a3 c4 b5 a6 c7 b8 (difficulty = id)
    let workers = ["a", "b", "a", "c", "b", "a", "c", "b"];
    for (n, w) in (1..).zip(workers) {
        let receipt = ledger
            .submit(vec![share(w, f64::from(n), n)])
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(receipt.first_id, i64::from(n));
    }
    // last 5: c4 b5 a6 c7 b8
    let w = ledger.pplns_window(5).await.unwrap();
    assert_eq!((w.first_id, w.last_id, w.shares), (4, 8, 5));
    assert_eq!(w.total_difficulty, 30.0);
    let per: Vec<_> = w
        .workers
        .iter()
        .map(|x| (x.worker.as_str(), x.shares, x.difficulty))
        .collect();
    assert_eq!(per, vec![("a", 1, 6.0), ("b", 2, 13.0), ("c", 2, 11.0)]);

    let all = ledger.pplns_window(1000).await.unwrap();
    assert_eq!((all.first_id, all.last_id, all.shares), (1, 8, 8));
    assert_eq!(all.total_difficulty, 36.0);
    assert!(ledger.pplns_window(0).await.unwrap().is_empty());

    // the same window rebuilt from the raw shares
    let raw = ledger.shares_in(4, 8).await.unwrap();
    let rebuilt = PplnsWindow::from_shares(
        raw.iter()
            .map(|(id, s)| (*id, &s.channel_identity, s.difficulty)),
    );
    assert_eq!(rebuilt, w);
    drop(ledger);
    thread.join().unwrap();
}

async fn blocks_newest_first_with_status_updates(db: TestDb) {
    let (ledger, thread) = db.open();
    let ids = [
        ledger
            .record_block(block("00aa", 101, BlockStatus::Submitted))
            .await
            .unwrap(),
        ledger
            .record_block(block("00bb", 102, BlockStatus::Submitted))
            .await
            .unwrap(),
        ledger
            .record_block(block("00cc", 103, BlockStatus::Submitted))
            .await
            .unwrap(),
    ];
    assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    ledger
        .update_block_status("00bb", BlockStatus::Accepted)
        .await
        .unwrap();
    let rejected = BlockStatus::Rejected {
        reason: "bad-txnmrklroot".to_owned(),
    };
    ledger
        .update_block_status("00cc", rejected.clone())
        .await
        .unwrap();

    let blocks = ledger.blocks(10).await.unwrap();
    // the payout rules recorded with a block come back with it (none recorded: none)
    let rules: Vec<_> = blocks
        .iter()
        .map(|b| (b.height, b.payout_rules.as_deref()))
        .collect();
    assert_eq!(
        rules,
        vec![
            (103, None),
            (102, Some(r#"{"network":"regtest","height":102}"#)),
            (101, None)
        ]
    );
    let summary: Vec<_> = blocks
        .iter()
        .map(|b| (b.hash.as_str(), b.height, &b.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("00cc", 103, &rejected),
            ("00bb", 102, &BlockStatus::Accepted),
            ("00aa", 101, &BlockStatus::Submitted),
        ]
    );
    assert_eq!(blocks[2], block("00aa", 101, BlockStatus::Submitted));
    assert_eq!(ledger.blocks(1).await.unwrap().len(), 1);
    // one block by its hash, outputs and status included
    assert_eq!(
        ledger.block("00bb").await.unwrap().as_ref(),
        Some(&blocks[1])
    );
    assert_eq!(
        ledger.block("00cc").await.unwrap().unwrap().status,
        rejected
    );
    assert_eq!(ledger.block("ffff").await.unwrap(), None);

    assert!(matches!(
        ledger.record_block(block("00aa", 101, BlockStatus::Accepted)).await,
        Err(LedgerError::DuplicateBlock { hash }) if hash == "00aa"
    ));
    assert!(matches!(
        ledger.update_block_status("ffff", BlockStatus::Accepted).await,
        Err(LedgerError::UnknownBlock { hash }) if hash == "ffff"
    ));
    let totals = ledger.totals().await.unwrap();
    assert_eq!((totals.blocks_found, totals.blocks_accepted), (3, 1));
    drop(ledger);
    thread.join().unwrap();
}

async fn a_block_split_verifies_from_its_window(db: TestDb) {
    let (ledger, thread) = db.open();
    let network = Network::Regtest;
    let pool_script = Address::p2wsh(&ScriptBuf::from(b"pool".to_vec()), network).script_pubkey();
    let cfg = PplnsConfig {
        window_shares: 300,
        fee_ppm: 15_000,
        dust_sats: 546,
        max_outputs: 6,
    };
    // 12 identities over 8 addresses (+ one without an address), odd difficulties
    let identities: Vec<String> = (0..12)
        .map(|i| match i {
            11 => "anonymous.rig".to_owned(),
            _ => format!("{}.rig{}", regtest_address(i % 8), i),
        })
        .collect();
    for n in 0..500u32 {
        let who = &identities[(n as usize * 7 + n as usize / 3) % identities.len()];
        let difficulty = f64::from(1 + n % 13) * 0.37;
        ledger
            .submit(vec![share(who, difficulty, n)])
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let window = ledger.pplns_window(cfg.window_shares).await.unwrap();
    assert_eq!((window.first_id, window.last_id), (201, 500));
    let reward = 312_500_000 + 12_345;
    let split = pplns_split(reward, &window, &pool_script, &cfg, network);
    assert_eq!(split.total(), reward);
    assert!(split.payouts.len() > 2, "{split:?}");
    assert_eq!(split.unpayable, vec!["anonymous.rig".to_owned()]);
    let mut record = block("00ff", 600, BlockStatus::Submitted);
    record.mode = "pplns".to_owned();
    record.reward_sats = reward;
    record.window = Some((window.first_id, window.last_id));
    record.outputs = split.payouts.clone();
    ledger.record_block(record).await.unwrap();
    // more shares arrive after the block
    ledger
        .submit(vec![share(&identities[0], 1000.0, 9999)])
        .await
        .unwrap()
        .await
        .unwrap();

    // an auditor: the recorded window's shares give the recorded outputs
    let recorded = ledger.blocks(1).await.unwrap().remove(0);
    let (first, last) = recorded.window.unwrap();
    let shares = ledger.shares_in(first, last).await.unwrap();
    let rebuilt = PplnsWindow::from_shares(
        shares
            .iter()
            .map(|(id, s)| (*id, &s.channel_identity, s.difficulty)),
    );
    let again = pplns_split(recorded.reward_sats, &rebuilt, &pool_script, &cfg, network);
    assert_eq!(again.payouts, recorded.outputs);
    assert_eq!(again.outputs, split.outputs);
    drop(ledger);
    thread.join().unwrap();
}

/// A share a proxy tagged with a worker name (extension 0x0002) on a channel opened as
/// `identity`.
fn tagged(identity: &str, worker: &str, difficulty: f64, n: u32) -> ShareRecord {
    ShareRecord {
        worker: format!("{identity}/{worker}"),
        channel_identity: identity.to_owned(),
        ..share(identity, difficulty, n)
    }
}

async fn tagged_shares_count_for_their_channel_identity(db: TestDb) {
    let (ledger, thread) = db.open();
    let a = regtest_address(1);
    let shares = vec![
        tagged(&a, "rig.1", 1.0, 1),
        tagged(&a, "rig.2", 2.0, 2),
        share("bob.rig", 4.0, 3),
        tagged("carol", "x.y", 8.0, 4),
    ];
    ledger.submit(shares).await.unwrap().await.unwrap();

    // the window sums per channel identity: what PPLNS pays
    let window = ledger.pplns_window(10).await.unwrap();
    let per: Vec<_> = window
        .workers
        .iter()
        .map(|w| (w.worker.as_str(), w.shares, w.difficulty))
        .collect();
    let mut expected = vec![(a.as_str(), 2, 3.0), ("bob.rig", 1, 4.0), ("carol", 1, 8.0)];
    expected.sort_by(|x, y| x.0.cmp(y.0));
    assert_eq!(per, expected);

    // the worker labels stay for statistics
    let totals = ledger.totals().await.unwrap();
    let labels: Vec<_> = totals.workers.iter().map(|w| w.worker.clone()).collect();
    let mut want = vec![
        format!("{a}/rig.1"),
        format!("{a}/rig.2"),
        "bob.rig".to_owned(),
        "carol/x.y".to_owned(),
    ];
    want.sort();
    assert_eq!(labels, want);

    // and both read back
    let raw = ledger.shares_in(1, 4).await.unwrap();
    assert_eq!(raw[0].1, tagged(&a, "rig.1", 1.0, 1));
    assert_eq!(raw[3].1.channel_identity, "carol");
    drop(ledger);
    thread.join().unwrap();
}

async fn a_version_1_ledger_migrates_keeping_its_shares(db: TestDb) {
    let (ledger, thread) = db.open();
    let a = regtest_address(1);
    ledger
        .submit(vec![share("old.rig", 1.0, 1), share(&a, 2.0, 2)])
        .await
        .unwrap()
        .await
        .unwrap();
    drop(ledger);
    thread.join().unwrap();
    // back to version 1's schema: shares without a channel identity, blocks without their
    // payout rules (version 4)
    db.execute("ALTER TABLE shares DROP COLUMN channel_identity");
    db.execute("ALTER TABLE blocks DROP COLUMN payout_rules");
    if !db.is_sqlite() {
        // and without a cluster's server ids (PostgreSQL's version 5)
        db.execute("ALTER TABLE shares DROP COLUMN server_id");
        db.execute("ALTER TABLE workers_through DROP COLUMN server_id");
    }
    // and without the history (version 6)
    db.execute("DROP TABLE history");
    db.execute("DROP INDEX block_outputs_by_owner");
    db.set_schema_version(1);

    let (ledger, thread) = db.open();
    // version 1 rows are their worker's
    let old = ledger.shares_in(1, 2).await.unwrap();
    assert_eq!(old[0].1, share("old.rig", 1.0, 1));
    assert_eq!(old[1].1.channel_identity, a);
    ledger
        .submit(vec![tagged(&a, "rig.9", 4.0, 3)])
        .await
        .unwrap()
        .await
        .unwrap();
    let window = ledger.pplns_window(10).await.unwrap();
    let per: Vec<_> = window
        .workers
        .iter()
        .map(|w| (w.worker.as_str(), w.shares, w.difficulty))
        .collect();
    let mut expected = vec![(a.as_str(), 2, 6.0), ("old.rig", 1, 1.0)];
    expected.sort_by(|x, y| x.0.cmp(y.0));
    assert_eq!(per, expected);
    drop(ledger);
    thread.join().unwrap();
    // reopening does not migrate again
    let (ledger, thread) = db.open();
    assert_eq!(
        ledger.shares_in(3, 3).await.unwrap()[0].1,
        tagged(&a, "rig.9", 4.0, 3)
    );
    drop(ledger);
    thread.join().unwrap();
}

/// The same requests give the same answers on both backends, down to the bits of the PPLNS
/// window's floating-point sums (difficulties that do not add exactly, in an order that
/// matters: what a block pays). The workers' totals are folded into the `workers` table in
/// chunks whose bounds depend on the clock (a second apart at most, decision 0009), so their
/// sums may differ in the last bits between two runs of either backend: they are compared
/// to a relative 1e-12.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn identical_results_on_both_backends() {
    let Some(pg) = TestDb::postgres() else {
        return;
    };
    let lite = TestDb::sqlite();
    let mut answers = Vec::new();
    for db in [&lite, &pg] {
        let (ledger, thread) = db.open();
        for r in 0..60u32 {
            let batch = (0..7)
                .map(|i| {
                    let n = r * 7 + i;
                    let worker = format!("w{}", (n * 13) % 11);
                    // 0.1-ish steps and large magnitudes: sums depend on the order
                    let difficulty = f64::from(n % 17) * 0.1 + f64::from(n % 5) * 1e9 / 3.0;
                    share(&worker, difficulty, n)
                })
                .collect();
            ledger.submit(batch).await.unwrap().await.unwrap();
        }
        let mut record = block("00ee", 200, BlockStatus::Submitted);
        record.window = Some((10, 400));
        ledger.record_block(record).await.unwrap();
        ledger
            .update_block_status("00ee", BlockStatus::Accepted)
            .await
            .unwrap();
        let window = ledger.pplns_window(250).await.unwrap();
        let bits: Vec<u64> = std::iter::once(window.total_difficulty.to_bits())
            .chain(window.workers.iter().map(|w| w.difficulty.to_bits()))
            .collect();
        let totals = ledger.totals().await.unwrap();
        answers.push((
            window,
            bits,
            totals,
            ledger.shares_in(0, i64::MAX).await.unwrap(),
            ledger.blocks(10).await.unwrap(),
        ));
        drop(ledger);
        thread.join().unwrap();
    }
    let (sqlite, postgres) = (&answers[0], &answers[1]);
    assert_eq!(sqlite.0, postgres.0, "pplns window");
    assert_eq!(sqlite.1, postgres.1, "pplns window sums, bitwise");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
    let (lt, pt) = (&sqlite.2, &postgres.2);
    assert!(close(lt.difficulty, pt.difficulty), "{lt:?}\n{pt:?}");
    assert_eq!(lt.workers.len(), pt.workers.len(), "{lt:?}\n{pt:?}");
    for (l, p) in lt.workers.iter().zip(&pt.workers) {
        assert!(close(l.difficulty, p.difficulty), "{l:?} {p:?}");
        let p = WorkerTotals {
            difficulty: l.difficulty,
            ..p.clone()
        };
        assert_eq!(*l, p, "worker totals");
    }
    let counts = |t: &Totals| (t.shares_accepted, t.blocks_found, t.blocks_accepted);
    assert_eq!(counts(lt), counts(pt), "totals");
    assert_eq!(sqlite.3, postgres.3, "shares");
    assert_eq!(sqlite.4, postgres.4, "blocks");
    assert_eq!(sqlite.3.len(), 420);
    assert_eq!(sqlite.0.shares, 250);
}
