//! The proxy as Job Declarator Client on a real Bitcoin Core (regtest, loopback, ports of
//! the OS's choosing, the nodes stopped by their pids): strata-pool with `[jds]` on its own
//! `bitcoind` and the proxy's `[jdc]` on the farm's, the two nodes peered; a simulated SV1
//! miner behind the proxy.
//!
//! * Blocks found through custom jobs are accepted by both nodes, carry the JDC's tag and pay
//!   the pool's required outputs; a transaction sent to the farm's node's mempool is in one
//!   of them (Full-Template mode: declared by wtxid, checked by the JDS against the pool's
//!   node, which asks for it with `ProvideMissingTransactions` while relay has not brought it).
//! * The pool stops: the proxy mines solo on the node, blocks paying the solo address; the
//!   pool comes back on the same ports: custom jobs again. The miner's connection is the
//!   same throughout.
#![allow(clippy::unwrap_used)]

#[path = "../../pool/tests/common/bitcoin_core.rs"]
mod bitcoin_core;
mod common;

use bitcoin_core::{fund, spend_to_mempool, CoreNode, Flavor, TestKey};
use serde_json::{json, Value};
use strata_miner::report::Reporter;
use strata_pool::config::{PayoutKind, SourceKind};
use strata_proxy::config::JdcSource;
use tokio_util::sync::CancellationToken;

/// A block of the node, as the test reads it.
#[derive(Debug)]
struct Mined {
    height: u64,
    hash: String,
    /// The coinbase scriptSig, hex.
    script_sig: String,
    /// The coinbase outputs: (address, sats).
    outputs: Vec<(String, u64)>,
    /// Every txid of the block.
    txids: Vec<String>,
}

impl Mined {
    /// Built by the JDC (its coinbase tag).
    fn tagged(&self) -> bool {
        self.script_sig.contains(&hex::encode(b"/strata-jdc/"))
    }

    /// Satoshis the coinbase pays `address`.
    fn pays(&self, address: &str) -> u64 {
        self.outputs
            .iter()
            .filter(|(a, _)| a == address)
            .map(|(_, v)| v)
            .sum()
    }
}

/// The blocks above height `from`.
async fn blocks_above(node: &CoreNode, from: u64) -> Vec<Mined> {
    let tip = node.height().await;
    let mut out = Vec::new();
    for height in from + 1..=tip {
        let hash = node.rpc("getblockhash", json!([height])).await;
        let b = node.rpc("getblock", json!([hash, 2])).await;
        let txs = b["tx"].as_array().unwrap();
        let cb = &txs[0];
        let outputs = common::coinbase_outputs(cb);
        out.push(Mined {
            height,
            hash: hash.as_str().unwrap().to_string(),
            script_sig: cb["vin"][0]["coinbase"].as_str().unwrap().to_string(),
            outputs,
            txids: txs
                .iter()
                .map(|t| t["txid"].as_str().unwrap().to_string())
                .collect(),
        });
    }
    out
}

/// The one miner's `connected_since_ms` on the proxy's API.
async fn miner_since(api: std::net::SocketAddr) -> Option<u64> {
    let v: Value = common::get_json(format!("http://{api}/api/v1/miners")).await;
    let m = v.as_array()?.first()?.clone();
    m["connected_since_ms"]
        .as_u64()
        .or_else(|| m["report"]["connected_since_ms"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_jobs_solo_fallback_and_return_on_a_real_node() {
    // RUST_LOG=strata_proxy::jdc=debug shows the JDC's steps
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // the pool's node and the farm's node (`node`), peered
    let (pool_node, node) = CoreNode::start_peered(Flavor::Bitcoind, Flavor::Bitcoind).await;
    let key = TestKey::new(0x31);
    let funds = fund(&node, &key, 1).await;
    pool_node.sync_with(&node).await;
    let pool_key = TestKey::new(0x32);
    let solo_key = TestKey::new(0x33);

    let dir = tempfile::tempdir().unwrap();
    let mut pcfg = pool_node.pool_config(dir.path(), SourceKind::Rpc);
    pcfg.listen = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    pcfg.rpc.poll_ms = 100;
    pcfg.payout.mode = PayoutKind::Pplns;
    pcfg.pool_address = Some(pool_key.address.to_string());
    pcfg.jds.listen = Some(
        format!("127.0.0.1:{}", common::free_port())
            .parse()
            .unwrap(),
    );
    pcfg.jds.mempool_poll_ms = 100;
    let pool = strata_pool::server::start(pcfg.clone()).await.unwrap();
    let jds_addr = pool.jds_addr.unwrap();

    let pdir = tempfile::tempdir().unwrap();
    let mut cfg = common::jdc_proxy_config(
        pdir.path(),
        common::pool_url(&pool),
        format!("stratum2+tcp://{jds_addr}/{}", pool.authority),
        solo_key.address.to_string(),
    );
    cfg.sv1.shares_per_minute = 30.0;
    cfg.upstream.stable_secs = 1;
    cfg.jdc.source = JdcSource::Rpc;
    cfg.jdc.rpc.url = node.rpc_url();
    cfg.jdc.rpc.cookie = Some(node.cookie());
    cfg.jdc.rpc.poll_ms = 100;
    cfg.jdc.startup_grace_ms = 10_000;
    cfg.jdc.retry_min_ms = 300;
    cfg.jdc.retry_max_secs = 2;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();

    let stop = CancellationToken::new();
    let reporter = Reporter::silent();
    common::sv1_miners(proxy.sv1_addr, 1, &reporter, &stop);

    // 1. custom jobs: blocks with our tag paying the pool's required output (its address:
    // the PPLNS window pays the pool, "farm" being no address)
    let pool_addr = pool_key.address.to_string();
    let solo_addr = solo_key.address.to_string();
    let start = node.height().await;
    common::until("3 blocks through custom jobs", 120, async || {
        blocks_above(&node, start)
            .await
            .iter()
            .filter(|b| b.tagged() && b.pays(&pool_addr) > 0)
            .count()
            >= 3
    })
    .await;
    let first = blocks_above(&node, start).await;
    for b in &first {
        assert!(b.tagged(), "block {} was not built by the JDC", b.height);
        assert!(
            b.pays(&pool_addr) > 0 && b.pays(&solo_addr) == 0,
            "block {} does not pay the pool's required output: {:?}",
            b.height,
            b.outputs
        );
    }
    let since = miner_since(proxy.api_addr)
        .await
        .expect("the miner is listed");

    // 2. Full-Template: a mempool transaction of the farm's node is mined through the pool
    let txid = spend_to_mempool(&node, &key, &funds).await;
    let at = node.height().await;
    common::until(
        "the mempool transaction in a declared block",
        60,
        async || {
            blocks_above(&node, at)
                .await
                .iter()
                .any(|b| b.tagged() && b.txids.contains(&txid) && b.pays(&pool_addr) > 0)
        },
    )
    .await;
    // the pool credits the blocks of its custom jobs like its own
    let recorded: Value = common::get_json(format!("http://{}/api/v1/blocks", pool.api_addr)).await;
    let recorded: Vec<String> = recorded
        .as_array()
        .expect("a list of blocks")
        .iter()
        .map(|b| b["hash"].as_str().unwrap().to_string())
        .collect();
    assert!(
        first.iter().any(|b| recorded.contains(&b.hash)),
        "the pool recorded none of {:?}: {recorded:?}",
        first.iter().map(|b| &b.hash).collect::<Vec<_>>()
    );

    // 3. the pool stops: solo blocks paying the solo address the whole reward
    pool.shutdown.cancel();
    pool.wait().await;
    let down = node.height().await;
    common::until("2 solo blocks", 60, async || {
        blocks_above(&node, down)
            .await
            .iter()
            .filter(|b| b.tagged() && b.pays(&solo_addr) >= 50_000_000 && b.pays(&pool_addr) == 0)
            .count()
            >= 2
    })
    .await;
    assert_eq!(
        miner_since(proxy.api_addr).await,
        Some(since),
        "the miner stayed connected"
    );

    let stats = proxy.jdc.as_ref().expect("the JDC runs").borrow().clone();
    assert_eq!(stats.mode, Some(strata_proxy::jdc::Mode::Solo));
    assert!(stats.last_failure.is_some(), "{stats:?}");

    // 4. the pool is back (same ports, same keys): custom jobs again
    let pool = strata_pool::server::start(pcfg).await.unwrap();
    let back = node.height().await;
    common::until("custom jobs on the pool again", 90, async || {
        blocks_above(&node, back)
            .await
            .iter()
            .any(|b| b.tagged() && b.pays(&pool_addr) > 0 && b.pays(&solo_addr) == 0)
    })
    .await;
    assert_eq!(
        miner_since(proxy.api_addr).await,
        Some(since),
        "the miner stayed connected"
    );

    // one chain: the pool's node has every block the farm's node has
    pool_node.sync_with(&node).await;

    let stats = proxy.jdc.as_ref().expect("the JDC runs").borrow().clone();
    assert_eq!(stats.mode, Some(strata_proxy::jdc::Mode::Pool));
    let (d, t) = (stats.declare_round_trip, stats.tip_to_custom_job);
    assert!(d.samples >= 5 && t.samples >= 3, "{stats:?}");
    eprintln!(
        "DeclareMiningJob -> Success: {} samples, median {} us, p99 {} us, max {} us",
        d.samples, d.p50_us, d.p99_us, d.max_us
    );
    eprintln!(
        "new tip -> custom job set: {} samples, median {} us, p99 {} us, max {} us",
        t.samples, t.p50_us, t.p99_us, t.max_us
    );

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}

/// Coinbase-only mode against our pool's JDS, which serves Full-Template only: the setup is
/// refused with the JDS's code, the proxy says why and mines solo on the farm's node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_only_refused_by_our_jds_mines_solo_with_the_reason() {
    let node = CoreNode::start(Flavor::Bitcoind, &[]).await;
    node.generate_to(101, &TestKey::new(0x41).address.to_string())
        .await;
    let solo_key = TestKey::new(0x43);
    let dir = tempfile::tempdir().unwrap();
    let mut pcfg = node.pool_config(dir.path(), SourceKind::Rpc);
    pcfg.payout.mode = PayoutKind::Pplns;
    pcfg.jds.listen = Some("127.0.0.1:0".parse().unwrap());
    let pool = strata_pool::server::start(pcfg).await.unwrap();

    let pdir = tempfile::tempdir().unwrap();
    let mut cfg = common::jdc_proxy_config(
        pdir.path(),
        common::pool_url(&pool),
        format!(
            "stratum2+tcp://{}/{}",
            pool.jds_addr.unwrap(),
            pool.authority
        ),
        solo_key.address.to_string(),
    );
    cfg.jdc.mode = strata_proxy::jdc::DeclareMode::CoinbaseOnly;
    cfg.jdc.rpc.url = node.rpc_url();
    cfg.jdc.rpc.cookie = Some(node.cookie());
    cfg.jdc.rpc.poll_ms = 100;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();
    let stop = CancellationToken::new();
    common::sv1_miners(proxy.sv1_addr, 1, &Reporter::silent(), &stop);

    let solo_addr = solo_key.address.to_string();
    let start = node.height().await;
    common::until("a solo block", 60, async || {
        blocks_above(&node, start)
            .await
            .iter()
            .any(|b| b.tagged() && b.pays(&solo_addr) >= 50_000_000)
    })
    .await;
    let stats = proxy.jdc.as_ref().unwrap().borrow().clone();
    assert_eq!(stats.mode, Some(strata_proxy::jdc::Mode::Solo));
    let why = stats.last_failure.unwrap_or_default();
    assert!(
        why.contains("missing-declare-tx-data-flag"),
        "the reason names the JDS's code: {why}"
    );
    for b in blocks_above(&node, start).await {
        assert!(
            b.tagged() && b.pays(&solo_addr) > 0,
            "block {} not solo",
            b.height
        );
    }

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}

/// Full-Template with the farm's templates over Bitcoin Core's IPC Mining interface
/// (`bitcoin-node`; the pool on the same node over RPC): a mempool transaction is declared
/// and mined in a block paying the pool's required output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_template_over_ipc_declares_the_nodes_mempool() {
    let node = CoreNode::start(Flavor::Ipc, &[]).await;
    let key = TestKey::new(0x51);
    let funds = fund(&node, &key, 1).await;
    let pool_key = TestKey::new(0x52);
    let dir = tempfile::tempdir().unwrap();
    let mut pcfg = node.pool_config(dir.path(), SourceKind::Rpc);
    pcfg.rpc.poll_ms = 100;
    pcfg.payout.mode = PayoutKind::Pplns;
    pcfg.pool_address = Some(pool_key.address.to_string());
    pcfg.jds.listen = Some("127.0.0.1:0".parse().unwrap());
    pcfg.jds.mempool_poll_ms = 100;
    let pool = strata_pool::server::start(pcfg).await.unwrap();

    let pdir = tempfile::tempdir().unwrap();
    let mut cfg = common::jdc_proxy_config(
        pdir.path(),
        common::pool_url(&pool),
        format!(
            "stratum2+tcp://{}/{}",
            pool.jds_addr.unwrap(),
            pool.authority
        ),
        TestKey::new(0x53).address.to_string(),
    );
    cfg.jdc.source = JdcSource::Ipc;
    cfg.jdc.ipc.socket = Some(node.socket());
    cfg.jdc.ipc.wait_ms = 200;
    cfg.jdc.startup_grace_ms = 10_000;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();

    let txid = spend_to_mempool(&node, &key, &funds).await;
    let stop = CancellationToken::new();
    common::sv1_miners(proxy.sv1_addr, 1, &Reporter::silent(), &stop);
    let pool_addr = pool_key.address.to_string();
    let start = node.height().await;
    common::until(
        "the mempool transaction declared over ipc and mined",
        90,
        async || {
            blocks_above(&node, start)
                .await
                .iter()
                .any(|b| b.tagged() && b.txids.contains(&txid) && b.pays(&pool_addr) > 0)
        },
    )
    .await;
    let stats = proxy.jdc.as_ref().unwrap().borrow().clone();
    assert_eq!(stats.mode, Some(strata_proxy::jdc::Mode::Pool), "{stats:?}");

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}
