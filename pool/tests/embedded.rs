//! The embedded regtest node as a template source: blocks built the way the pool builds them
//! are mined through it, validated by Bitcoin Core's consensus code, and survive a restart;
//! bad blocks come back with Core's reject reasons.
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{Amount, ScriptBuf, TxOut, WPubkeyHash};
use strata_pool::template::embedded::{ChainTip, EmbeddedConfig, EmbeddedSource};
use strata_pool::template::{Solution, SourceError, SubmitOutcome, Template, TemplateSource};
use strata_work::coinbase::{bip34_height_push, Coinbase, CoinbaseParams};
use strata_work::header::{assemble_block, Header};
use strata_work::merkle::merkle_root_from_path;
use strata_work::target::Target;

/// Bound on every await: generous, since the machine is shared.
const WAIT: Duration = Duration::from_secs(60);

/// Bound on a template that must come at once (well below the default 30 s refresh, so a
/// template arriving within it was not a refresh).
const AT_ONCE: Duration = Duration::from_secs(10);

async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .expect("timed out waiting for the embedded source")
}

/// How a test block departs from the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    /// The pool output pays one satoshi more than `coinbase_tx_value_remaining`.
    OverpayOneSat,
    /// The scriptSig starts with the next block's height.
    WrongHeight,
    /// The header hash is above the target.
    HighHash,
    /// The coinbase witness is not the reserved value the commitment commits to.
    WrongWitnessReserved,
}

/// The pool's payout: P2WPKH of a fixed test key hash.
fn pool_output(value: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(value),
        script_pubkey: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0x11; 20])),
    }
}

/// A solution for `t` built the way the pool builds it: coinbase from the template and the
/// pool's output, merkle root from the coinbase txid and the (empty) path, ntime =
/// min_ntime, nonce ground against nBits.
fn solve(t: &Template, extranonce: u64, flaw: Flaw) -> Solution {
    let payout = t.coinbase_tx_value_remaining + u64::from(flaw == Flaw::OverpayOneSat);
    let params = CoinbaseParams {
        version: t.coinbase_tx_version,
        script_sig_prefix: if flaw == Flaw::WrongHeight {
            bip34_height_push(t.height + 1)
        } else {
            t.coinbase_prefix.clone()
        },
        pool_tag: b"/strata-test/".to_vec(),
        extranonce_len: 8,
        sequence: t.coinbase_tx_input_sequence,
        pool_outputs: vec![pool_output(payout)],
        template_outputs: t.coinbase_tx_outputs.clone(),
        lock_time: t.coinbase_tx_locktime,
        witness_reserved_value: if flaw == Flaw::WrongWitnessReserved {
            [1; 32]
        } else {
            [0; 32]
        },
    };
    let coinbase = Coinbase::build(&params).expect("coinbase builds");
    let extranonce = extranonce.to_le_bytes();
    let txid = coinbase.txid(&[&extranonce]).expect("extranonce fits");
    let mut header = Header {
        version: t.version,
        prev_hash: t.prev_hash,
        merkle_root: merkle_root_from_path(txid, &t.merkle_path),
        ntime: t.min_ntime,
        nbits: t.nbits,
        nonce: 0,
    };
    let target = Target::from_compact(t.nbits).expect("template nbits decode");
    let want_valid = flaw != Flaw::HighHash;
    while header.meets(&target) != want_valid {
        header.nonce += 1;
    }
    let mut full = Vec::new();
    coinbase
        .write_full(&[&extranonce], &mut full)
        .expect("extranonce fits");
    Solution {
        template_id: t.id,
        header: header.to_bytes(),
        coinbase: full,
    }
}

fn display_hash(header: &[u8; 80]) -> String {
    let mut h = Header::from_bytes(header).hash();
    h.reverse();
    hex::encode(h)
}

fn accepted_hash(outcome: SubmitOutcome) -> String {
    match outcome {
        SubmitOutcome::Accepted { hash } => hash,
        SubmitOutcome::Rejected { reason } => panic!("block rejected: {reason}"),
    }
}

fn rejected_reason(outcome: SubmitOutcome) -> String {
    match outcome {
        SubmitOutcome::Rejected { reason } => reason,
        SubmitOutcome::Accepted { hash } => panic!("bad block {hash} accepted"),
    }
}

/// The `bitcoin` crate agrees the block is well formed: it deserializes, and its merkle
/// root, witness commitment, proof of work and BIP34 height check.
fn check_with_bitcoin(solution: &Solution, height: u32, hash: &str) {
    let mut raw = Vec::new();
    assemble_block::<&[u8]>(&solution.header, &solution.coinbase, &[], &mut raw);
    let block: bitcoin::Block = bitcoin::consensus::deserialize(&raw).unwrap();
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    block.header.validate_pow(block.header.target()).unwrap();
    if height > 16 {
        assert_eq!(block.bip34_block_height().unwrap(), u64::from(height));
    } else {
        // `bip34_block_height` only reads data pushes; Core writes OP_1..OP_16 here
        let script_sig = block.txdata[0].input[0].script_sig.as_bytes();
        assert_eq!(script_sig[0], 0x50 + height as u8);
    }
    assert_eq!(block.block_hash().to_string(), hash);
}

/// Mines `n` blocks on top of `t`, checking each step; returns the template on the new tip
/// and the round-trip time of each submit.
async fn mine(
    source: &mut EmbeddedSource,
    mut t: Template,
    n: u32,
    check_each: bool,
) -> (Template, Vec<Duration>) {
    let mut times = Vec::with_capacity(n as usize);
    for i in 0..n {
        let solution = solve(&t, u64::from(i), Flaw::None);
        let started = Instant::now();
        let outcome = within(WAIT, source.submit(solution.clone())).await.unwrap();
        times.push(started.elapsed());
        let hash = accepted_hash(outcome);
        assert_eq!(hash, display_hash(&solution.header));
        if check_each {
            check_with_bitcoin(&solution, t.height, &hash);
        }
        let tip = source.chain_tip();
        assert_eq!(tip.height, t.height);
        assert_eq!(tip.hash_hex(), hash);

        let next = within(AT_ONCE, source.next_template()).await.unwrap();
        assert_eq!(next.height, t.height + 1);
        assert_eq!(next.prev_hash, Header::from_bytes(&solution.header).hash());
        assert!(next.id > t.id);
        assert!(next.min_ntime >= t.min_ntime);
        t = next;
    }
    (t, times)
}

fn open(dir: &std::path::Path) -> EmbeddedSource {
    EmbeddedSource::open(dir, EmbeddedConfig::default()).unwrap()
}

#[tokio::test]
async fn first_template_is_on_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = open(dir.path());
    assert_eq!(source.name(), "embedded");
    let genesis: ChainTip = source.chain_tip();
    assert_eq!(genesis.height, 0);
    // regtest genesis
    assert_eq!(
        genesis.hash_hex(),
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    );
    let t = within(AT_ONCE, source.next_template()).await.unwrap();
    assert_eq!(t.height, 1);
    assert_eq!(t.prev_hash, genesis.hash);
    assert_eq!(t.nbits, 0x207f_ffff);
    assert_eq!(t.version, 0x2000_0000);
    assert_eq!(t.coinbase_tx_value_remaining, 50 * 100_000_000);
    assert_eq!(t.coinbase_prefix, vec![0x51]);
    assert!(t.min_ntime > genesis.median_time_past);
}

#[tokio::test]
async fn mines_past_the_first_halving() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = open(dir.path());
    let t = within(AT_ONCE, source.next_template()).await.unwrap();
    let (t, mut times) = mine(&mut source, t, 5, true).await;
    let (t, more) = mine(&mut source, t, 143, false).await;
    times.extend(more);
    assert_eq!(t.height, 149);
    assert_eq!(t.coinbase_tx_value_remaining, 50 * 100_000_000);
    let (t, more) = mine(&mut source, t, 1, true).await;
    times.extend(more);
    assert_eq!(t.height, 150);
    assert_eq!(t.coinbase_tx_value_remaining, 25 * 100_000_000);
    assert_eq!(t.coinbase_prefix, vec![0x02, 150, 0x00]);
    let (t, more) = mine(&mut source, t, 2, true).await;
    times.extend(more);
    assert_eq!(t.height, 152);
    assert_eq!(source.chain_tip().height, 151);

    times.sort();
    println!(
        "submit round trip (kernel process_block) over {} blocks: median {:?}, max {:?}",
        times.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

#[tokio::test]
async fn restart_keeps_the_tip() {
    let dir = tempfile::tempdir().unwrap();
    let (tip, last_id) = {
        let mut source = open(dir.path());
        let t = within(AT_ONCE, source.next_template()).await.unwrap();
        let (t, _) = mine(&mut source, t, 4, false).await;
        (source.chain_tip(), t.id)
    };
    assert_eq!(tip.height, 4);

    let mut source = open(dir.path());
    assert_eq!(source.chain_tip(), tip);
    let t = within(AT_ONCE, source.next_template()).await.unwrap();
    assert_eq!(t.height, 5);
    assert_eq!(t.prev_hash, tip.hash);
    assert!(
        t.id > last_id,
        "template ids keep increasing across restarts"
    );
    let (t, _) = mine(&mut source, t, 1, true).await;
    assert_eq!(t.height, 6);
}

#[tokio::test]
async fn rejects_bad_blocks_with_cores_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = open(dir.path());
    let t = within(AT_ONCE, source.next_template()).await.unwrap();
    let (t, _) = mine(&mut source, t, 2, false).await;
    let tip = source.chain_tip();

    let cases = [
        (Flaw::OverpayOneSat, "bad-cb-amount"),
        (Flaw::WrongHeight, "bad-cb-height"),
        (Flaw::HighHash, "high-hash"),
        (Flaw::WrongWitnessReserved, "bad-witness-merkle-match"),
    ];
    let mut overpaid = None;
    for (i, (flaw, want)) in cases.into_iter().enumerate() {
        let solution = solve(&t, 100 + i as u64, flaw);
        let outcome = within(WAIT, source.submit(solution.clone())).await.unwrap();
        assert_eq!(rejected_reason(outcome), want, "{flaw:?}");
        assert_eq!(source.chain_tip(), tip, "a rejected block moved the tip");
        if flaw == Flaw::OverpayOneSat {
            overpaid = Some(solution);
        }
    }

    // Core remembers the block that failed to connect
    let outcome = within(WAIT, source.submit(overpaid.unwrap()))
        .await
        .unwrap();
    assert_eq!(rejected_reason(outcome), "duplicate-invalid");

    // a template id the source never gave out
    let mut unknown = solve(&t, 200, Flaw::None);
    unknown.template_id = t.id + 1_000;
    match within(WAIT, source.submit(unknown)).await {
        Err(SourceError::UnknownTemplate(id)) => assert_eq!(id, t.id + 1_000),
        other => panic!("expected UnknownTemplate, got {other:?}"),
    }

    // the template is still good after all that, and a duplicate of an accepted block is
    // accepted again
    let good = solve(&t, 300, Flaw::None);
    let hash = accepted_hash(within(WAIT, source.submit(good.clone())).await.unwrap());
    assert_eq!(source.chain_tip().height, t.height);
    assert_eq!(
        accepted_hash(within(WAIT, source.submit(good)).await.unwrap()),
        hash
    );
}

#[tokio::test]
async fn stale_block_is_not_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = open(dir.path());
    let t = within(AT_ONCE, source.next_template()).await.unwrap();
    let first = solve(&t, 1, Flaw::None);
    accepted_hash(within(WAIT, source.submit(first)).await.unwrap());
    let tip = source.chain_tip();
    // a valid sibling of the new tip: same work, seen second, so not on the active chain
    let sibling = solve(&t, 2, Flaw::None);
    let reason = rejected_reason(within(WAIT, source.submit(sibling)).await.unwrap());
    assert_eq!(reason, "inconclusive");
    assert_eq!(source.chain_tip(), tip);
}

#[tokio::test]
async fn refreshes_and_survives_cancelled_waits() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedConfig {
        refresh: Duration::from_millis(1500),
        ..EmbeddedConfig::default()
    };
    let mut source = EmbeddedSource::open(dir.path(), config).unwrap();
    let first = within(AT_ONCE, source.next_template()).await.unwrap();

    // nothing changes: after the refresh interval, a new template on the same tip
    let refreshed = within(WAIT, source.next_template()).await.unwrap();
    assert_eq!(refreshed.prev_hash, first.prev_hash);
    assert_eq!(refreshed.height, first.height);
    assert!(refreshed.id > first.id);
    assert!(refreshed.min_ntime >= first.min_ntime);

    // a wait cancelled before anything happened loses nothing
    let cancelled = tokio::time::timeout(Duration::from_millis(1), source.next_template()).await;
    assert!(cancelled.is_err(), "no template is due yet");

    // an older (still kept) template can be solved; the next template follows at once
    let solution = solve(&first, 7, Flaw::None);
    accepted_hash(within(WAIT, source.submit(solution.clone())).await.unwrap());
    let next = within(AT_ONCE, source.next_template()).await.unwrap();
    assert_eq!(next.height, 2);
    assert_eq!(next.prev_hash, Header::from_bytes(&solution.header).hash());
}

#[tokio::test]
async fn a_held_data_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let _held = open(dir.path());
    match EmbeddedSource::open(dir.path(), EmbeddedConfig::default()) {
        Err(SourceError::Node(message)) => {
            println!("{message}");
            assert!(message.contains("loading the chainstate"), "{message}");
            assert!(message.to_lowercase().contains("lock"), "{message}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("two nodes opened one data directory"),
    }
}
