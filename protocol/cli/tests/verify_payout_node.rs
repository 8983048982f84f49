//! `strata verify-payout --node` against a real Bitcoin Core: a PPLNS pool on `bitcoind`
//! (the `rpc` template source) mines blocks that carry mempool transactions (so the reward is
//! the subsidy plus their fees) and pay several miners; the CLI fetches the block from the
//! node with the node's cookie and confirms its coinbase pays the split of its window. The
//! node is built by `scripts/bitcoin-core.sh` (cached) or taken from
//! `STRATA_BITCOIN_CORE_BIN`.
#![allow(clippy::unwrap_used)]

#[path = "../../../pool/tests/common/bitcoin_core.rs"]
mod bitcoin_core;
mod common;

use std::time::Duration;

use bitcoin_core::{fill_mempool, fund, pool_reserved_weight, CoreNode, Flavor, TestKey};
use common::{accepted_paying_two_miners, start_miners, wait_for_block};
use serde_json::Value;
use strata_miner::sv2::ChannelRequest;
use strata_pool::config::{PayoutKind, SourceKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_payout_reads_the_block_from_a_real_node() {
    let reserve = pool_reserved_weight();
    let node = CoreNode::start(
        Flavor::Bitcoind,
        &[&format!("-blockreservedweight={reserve}")],
    )
    .await;
    let key = TestKey::new(0x42);
    let funds = fund(&node, &key, 4).await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = node.pool_config(dir.path(), SourceKind::Rpc);
    cfg.payout.mode = PayoutKind::Pplns;
    cfg.payout.window_shares = 1_000;
    cfg.vardiff.shares_per_minute = 60.0;
    let pool = strata_pool::server::start(cfg).await.unwrap();

    // three miners on standard channels, each paid to an address of its own
    let stop = start_miners(&pool, 3, |_| ChannelRequest::Standard);

    // once the window pays two miners, transactions with fees enter the mempool; then an
    // accepted block that carries them (a reward above the subsidy) and pays two miners
    let api = pool.api_addr;
    let with_fees = |b: &Value| {
        // regtest halves the subsidy every 150 blocks
        let subsidy = 5_000_000_000u64 >> (b["height"].as_u64().unwrap() / 150);
        b["reward_sats"].as_u64().unwrap() > subsidy
    };
    let (timeout, poll) = (Duration::from_secs(120), Duration::from_millis(200));
    wait_for_block(
        api,
        timeout,
        poll,
        "paying two miners",
        accepted_paying_two_miners,
    )
    .await;
    let sent = fill_mempool(&node, &key, &funds, 40).await;
    assert!(!sent.is_empty());
    let block = wait_for_block(api, timeout, poll, "paying two miners with fees", |b| {
        accepted_paying_two_miners(b) && with_fees(b)
    })
    .await;
    stop.cancel();
    let hash = block["hash"].as_str().unwrap().to_string();
    let tx_count = node.block(&hash).await["tx"].as_array().unwrap().len();
    assert!(tx_count > 1, "the block carries mempool transactions");

    // `strata verify-payout` taking the block from the node with this cookie file
    let verify = |cookie: std::path::PathBuf| {
        let (pool_url, hash, rpc) = (format!("http://{api}"), hash.clone(), node.rpc_url());
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["verify-payout", "--pool", &pool_url, "--block", &hash])
                .args(["--node", &rpc, "--rpc-cookie"])
                .arg(cookie)
                .output()
                .await
                .unwrap()
        }
    };
    let out = verify(node.cookie()).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    let recorded = block["outputs"].as_array().unwrap();
    let ok_lines = stdout.lines().filter(|l| l.starts_with("ok")).count();
    assert_eq!(ok_lines, recorded.len(), "one ok line per payee:\n{stdout}");
    for o in recorded {
        let owner = o["owner"].as_str().unwrap();
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(owner)),
            "{owner} not confirmed:\n{stdout}"
        );
    }

    // the same check with the wrong credentials fails loudly instead of passing
    let bad = dir.path().join("bad.cookie");
    std::fs::write(&bad, "__cookie__:wrong").unwrap();
    let out = verify(bad).await;
    assert!(!out.status.success(), "a refused node answer is an error");

    pool.shutdown.cancel();
    pool.wait().await;
}
