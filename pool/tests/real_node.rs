//! The pool on a real Bitcoin Core (regtest, loopback), through `rpc` (`bitcoind`) and `ipc`
//! (`bitcoin-node -ipcbind=unix`): blocks the node accepts, coinbases that pay the PPLNS split
//! the pool's API shows, full templates with transactions and 100 payees. The node is built by `scripts/bitcoin-core.sh` (cached) or taken from
//! `STRATA_BITCOIN_CORE_BIN`; see `common/bitcoin_core.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::api_blocks;
use common::bitcoin_core::{
    fill_mempool, fund, payee_addresses, pool_reserved_weight, CoreNode, Flavor, TestKey,
};
use serde_json::{json, Value};
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_pool::config::{Config, PayoutKind, SourceKind};
use strata_pool::server::RunningPool;
use tokio_util::sync::CancellationToken;

fn pool_config(dir: &std::path::Path, node: &CoreNode, source: SourceKind) -> Config {
    let mut c = node.pool_config(dir, source);
    c.payout.mode = PayoutKind::Pplns;
    c.payout.window_shares = 1_000;
    c.vardiff.shares_per_minute = 60.0;
    c
}

/// Starts one standard-channel miner per user; returns their stop token and handles.
fn miners(
    pool: &RunningPool,
    users: &[String],
    hashrate: f32,
) -> (CancellationToken, Vec<tokio::task::JoinHandle<()>>) {
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let handles = users
        .iter()
        .enumerate()
        .map(|(index, user)| {
            let connect = Sv2Connect {
                endpoint: Endpoint::parse(&pool.sv2_addr.to_string()).unwrap(),
                authority: Some(pool.authority),
                options: Sv2Options::default(),
            };
            let cfg = Sv2Config {
                index,
                user: user.clone(),
                channel: ChannelRequest::Standard,
                nominal_hashrate: hashrate,
                record_latency: false,
            };
            let (reporter, stop) = (reporter.clone(), stop.clone());
            tokio::spawn(async move {
                let mut miner = Sv2Miner::new(cfg).unwrap();
                let _ = run_sv2(
                    &mut miner,
                    &connect,
                    Pacing::Hashrate(f64::from(hashrate)),
                    &reporter,
                    &stop,
                )
                .await;
            })
        })
        .collect();
    (stop, handles)
}

/// The pool's record of block `hash` once the node accepted it.
async fn recorded(pool: &RunningPool, hash: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(b) = api_blocks(pool)
            .await
            .into_iter()
            .find(|b| b["hash"] == hash && b["status"]["status"] == "accepted")
        {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool never recorded {hash} as accepted: {:?}",
            api_blocks(pool).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the node's block `block` (getblock verbosity 2) against the pool's record: its
/// coinbase carries exactly the recorded outputs, in order, then the witness commitment.
/// Returns the number of miner payees (outputs not owned by the pool).
fn coinbase_matches_record(block: &Value, record: &Value) -> usize {
    let coinbase = &block["tx"][0];
    let vout = coinbase["vout"].as_array().unwrap();
    let outputs = record["outputs"].as_array().unwrap();
    assert!(!outputs.is_empty(), "{record}");
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(
            vout[i]["scriptPubKey"]["hex"], o["script_hex"],
            "output {i} of {}",
            block["hash"]
        );
        let sats = (vout[i]["value"].as_f64().unwrap() * 1e8).round() as u64;
        assert_eq!(sats, o["sats"].as_u64().unwrap(), "output {i}");
    }
    // what follows is the template's: the witness commitment (0 sat, OP_RETURN)
    for extra in &vout[outputs.len()..] {
        assert_eq!(extra["value"].as_f64().unwrap(), 0.0, "{extra}");
        assert!(
            extra["scriptPubKey"]["hex"]
                .as_str()
                .unwrap()
                .starts_with("6a24aa21a9ed"),
            "{extra}"
        );
    }
    // the whole reward went to the recorded outputs
    let paid: u64 = outputs.iter().map(|o| o["sats"].as_u64().unwrap()).sum();
    assert_eq!(paid, record["reward_sats"].as_u64().unwrap(), "{record}");
    outputs.iter().filter(|o| o["owner"] != "pool").count()
}

/// Mines with a few miners through `source` until the node is `blocks` higher, then checks
/// the tip's coinbase against the pool's record of it.
async fn pool_mines_blocks_the_node_accepts(flavor: Flavor, source: SourceKind) {
    let node = CoreNode::start(flavor, &[&reserve_arg()]).await;
    // out of initial block download (a regtest node with no peers serves templates after
    // its first block)
    let key = TestKey::new(0x21);
    node.generate_to(1, &key.address.to_string()).await;
    let start = node.height().await;

    let dir = tempfile::tempdir().unwrap();
    let pool = strata_pool::server::start(pool_config(dir.path(), &node, source))
        .await
        .unwrap();
    let users: Vec<String> = payee_addresses(3)
        .into_iter()
        .enumerate()
        .map(|(i, a)| format!("{a}.rig{i}"))
        .collect();
    let (stop, handles) = miners(&pool, &users, 50_000.0);
    node.wait_height(start + 3, Duration::from_secs(120)).await;
    stop.cancel();
    for h in handles {
        h.await.unwrap();
    }

    let tip = node.tip().await;
    let record = recorded(&pool, tip["hash"].as_str().unwrap()).await;
    assert_eq!(record["height"], tip["height"], "{record}");
    assert_eq!(record["mode"], "pplns");
    let payees = coinbase_matches_record(&tip, &record);
    assert!(payees >= 1, "miners are paid: {record}");
    // every block the pool calls accepted is in the node's chain
    for b in api_blocks(&pool).await {
        if b["status"]["status"] == "accepted" {
            let theirs = node
                .rpc("getblockhash", json!([b["height"].as_u64().unwrap()]))
                .await;
            assert_eq!(theirs, b["hash"], "{b}");
        }
    }
    pool.shutdown.cancel();
    pool.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_pool_mines_blocks_bitcoind_accepts_paying_the_recorded_split() {
    pool_mines_blocks_the_node_accepts(Flavor::Bitcoind, SourceKind::Rpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_pool_mines_blocks_bitcoin_node_accepts_paying_the_recorded_split() {
    pool_mines_blocks_the_node_accepts(Flavor::Ipc, SourceKind::Ipc).await;
}

/// Held by the tests that run 100 miners.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Block weight Core leaves for the transactions in these tests' small full blocks.
const BLOCK_MAX_WEIGHT: u64 = 40_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_full_blocks_with_transactions_and_100_payees_are_accepted() {
    full_blocks_with_transactions_and_100_payees(Flavor::Bitcoind, SourceKind::Rpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_full_blocks_with_transactions_and_100_payees_are_accepted() {
    full_blocks_with_transactions_and_100_payees(Flavor::Ipc, SourceKind::Ipc).await;
}

/// A few hundred transactions in the node's mempool, 100 miners with an address each: the
/// pool's blocks carry the transactions, fill the template (the mempool is not empty after
/// them) and pay the 100 miners, and the node accepts them.
async fn full_blocks_with_transactions_and_100_payees(flavor: Flavor, source: SourceKind) {
    // one at a time: 100 hashing miners each are what two cores can serve in a debug build
    let _one_at_a_time = HEAVY.lock().await;
    // A small maximum block weight makes a few hundred transactions a full template; the
    // room Core keeps for the coinbase is what the pool says its coinbase needs.
    let node = CoreNode::start(
        flavor,
        &[
            &format!("-blockmaxweight={BLOCK_MAX_WEIGHT}"),
            &reserve_arg(),
        ],
    )
    .await;
    let key = TestKey::new(0x31);
    let funds = fund(&node, &key, 15).await;
    let start = node.height().await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = pool_config(dir.path(), &node, source);
    // a block every 2 s at most, so that most shares stay shares; a window holding every
    // share of the test, so that a miner once in it stays in it
    cfg.min_block_interval_ms = 2_000;
    cfg.payout.window_shares = 1_000_000;
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let users: Vec<String> = payee_addresses(100)
        .into_iter()
        .map(|a| format!("{a}.rig"))
        .collect();
    // 100 x 4 kH/s: a share every second or so each at the minimum difficulty, cheap enough
    // for a debug build on two cores
    let (stop, handles) = miners(&pool, &users, 4_000.0);

    // (payees, transactions, weight) of each block the pool found, checked against its record
    let mut checked = BTreeMap::new();
    let check_new_blocks = async |checked: &mut BTreeMap<u64, (usize, usize, u64)>| {
        let height = node.height().await;
        for h in start + 1..=height {
            if checked.contains_key(&h) {
                continue;
            }
            let hash = node.rpc("getblockhash", json!([h])).await;
            let block = node.block(hash.as_str().unwrap()).await;
            let record = recorded(&pool, hash.as_str().unwrap()).await;
            let payees = coinbase_matches_record(&block, &record);
            let txs = block["tx"].as_array().unwrap().len() - 1;
            let weight = block["weight"].as_u64().unwrap();
            assert!(weight <= BLOCK_MAX_WEIGHT, "{weight}");
            checked.insert(h, (payees, txs, weight));
        }
    };

    // first every miner gets into the PPLNS window: an (empty) block pays all 100
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !checked.values().any(|(payees, _, _)| *payees == 100) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no block paid all 100 miners: {checked:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        check_new_blocks(&mut checked).await;
    }

    // then, with the miners stopped (the window keeps their shares), a few hundred
    // transactions, and one miner again: its blocks carry them, as many as fit
    stop.cancel();
    for h in handles {
        h.await.unwrap();
    }
    let with_txs = node.height().await;
    let sent = fill_mempool(&node, &key, &funds, 300).await;
    assert_eq!(sent.len(), 315);
    let (stop, handles) = miners(&pool, &users[..1], 50_000.0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut full_with_100 = None;
    while full_with_100.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no full block with 100 payees: {checked:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        check_new_blocks(&mut checked).await;
        let mempool_left = node.rpc("getmempoolinfo", json!([])).await["size"]
            .as_u64()
            .unwrap();
        // full: Core stopped adding transactions with some still waiting (blocks only take
        // from the mempool, so what is left now was left after each of these blocks)
        full_with_100 = checked
            .range(with_txs + 1..)
            .find(|(_, (payees, txs, _))| *payees == 100 && *txs > 0 && mempool_left > 0)
            .map(|(h, v)| (*h, v.1, v.2));
    }
    stop.cancel();
    for h in handles {
        h.await.unwrap();
    }
    let (h, txs, weight) = full_with_100.unwrap();
    eprintln!("block {h}: 100 payees, {txs} transactions, weight {weight} of {BLOCK_MAX_WEIGHT}");
    pool.shutdown.cancel();
    pool.wait().await;
}

fn reserve_arg() -> String {
    format!("-blockreservedweight={}", pool_reserved_weight())
}

/// The tip benchmark's mempool mode (`strata-miner tips --mempool-txs`, run by
/// scripts/bench-tip.sh with `MEMPOOL_TXS`) on a real node: the payments it sends are in the
/// node's mempool and in its template, and stay there across the rounds' empty blocks; every
/// channel of the `ipc` pool has each new tip, grouped channels included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tip_bench_keeps_a_full_mempool_across_its_tips() {
    use strata_miner::tips::{run_tips, TipsConfig, Trigger};

    let node = CoreNode::start(Flavor::Ipc, &[&reserve_arg()]).await;
    let address = TestKey::new(0x41).address.to_string();
    node.generate_to(1, &address).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = pool_config(dir.path(), &node, SourceKind::Ipc);
    cfg.max_connections_per_ip = 0;
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let before = node.height().await;
    let report = run_tips(TipsConfig {
        pool: pool.sv2_addr.to_string(),
        authority: pool.authority,
        connections: 3,
        channels_per_connection: 2,
        rounds: 2,
        trigger: Trigger::Rpc {
            url: node.rpc_url(),
            credentials: std::fs::read_to_string(node.cookie())
                .unwrap()
                .trim()
                .to_string(),
            address,
        },
        connect_rate: 1000.0,
        pool_pid: None,
        mempool_txs: 600,
    })
    .await
    .unwrap();
    assert_eq!((report.connections, report.channels), (3, 6));
    assert_eq!(report.rounds.len(), 2);
    for r in &report.rounds {
        assert!(r.trigger_ms.is_some() && r.first_ms <= r.last_ms, "{r:?}");
    }
    // funding: two coins, matured (100 blocks), their split confirmed (1); then the rounds
    assert_eq!(node.height().await, before + 2 + 100 + 1 + 2);
    let mempool = node.rpc("getmempoolinfo", json!([])).await;
    assert_eq!(mempool["size"], 600, "{mempool}");
    let template = node
        .rpc("getblocktemplate", json!([{"rules": ["segwit"]}]))
        .await;
    assert_eq!(template["transactions"].as_array().unwrap().len(), 600);
    pool.shutdown.cancel();
    pool.wait().await;
}
