//! `strata verify-payout` across the servers of a cluster: two pool servers (`[cluster]
//! server_id` 1 and 2) on one PostgreSQL ledger and one real `bitcoind`, miners on each; a
//! block's split counts the shares of both servers, and the CLI confirms it through either
//! server's API (the window is read from the shared ledger). Needs the test PostgreSQL
//! server and the cached Bitcoin Core build (see the pool's `tests/common`).
#![allow(clippy::unwrap_used)]

#[path = "../../../pool/tests/common/bitcoin_core.rs"]
mod bitcoin_core;
mod common;
#[path = "../../../pool/tests/common/pg.rs"]
mod pg;

use std::time::Duration;

use bitcoin_core::{CoreNode, Flavor};
use common::{address, start_miners_from, wait_for_block};
use serde_json::Value;
use strata_miner::sv2::ChannelRequest;
use strata_pool::config::{PayoutKind, SourceKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_verifies_through_every_server_of_a_cluster() {
    let Some(db) = pg::Database::create() else {
        return;
    };
    let node = CoreNode::start(Flavor::Bitcoind, &[]).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut pools = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut cfg = node.pool_config(dir.path(), SourceKind::Rpc);
        cfg.min_block_interval_ms = 2_000;
        cfg.payout.mode = PayoutKind::Pplns;
        cfg.payout.window_shares = 10_000;
        cfg.vardiff.shares_per_minute = 60.0;
        cfg.ledger.postgres_url = db.url.clone();
        cfg.cluster.server_id = i as u8 + 1;
        pools.push(strata_pool::server::start(cfg).await.unwrap());
    }
    // miners 0-1 on server 1, 2-3 on server 2
    let stops = [
        start_miners_from(&pools[0], 0, 2, |_| ChannelRequest::Standard),
        start_miners_from(&pools[1], 2, 2, |_| ChannelRequest::Standard),
    ];
    let pays_both_servers = |b: &Value| {
        let owners: Vec<&str> = b["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["owner"].as_str().unwrap())
            .collect();
        b["status"]["status"] == "accepted"
            && [0u8, 1]
                .iter()
                .any(|i| owners.contains(&address(*i).as_str()))
            && [2u8, 3]
                .iter()
                .any(|i| owners.contains(&address(*i).as_str()))
    };
    let block = wait_for_block(
        pools[0].api_addr,
        Duration::from_secs(120),
        Duration::from_millis(200),
        "paying miners of both servers",
        pays_both_servers,
    )
    .await;
    for s in &stops {
        s.cancel();
    }
    let hash = block["hash"].as_str().unwrap().to_string();

    for pool in &pools {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "verify-payout",
                "--pool",
                &format!("http://{}", pool.api_addr),
            ])
            .args(["--block", &hash, "--node", &node.rpc_url(), "--rpc-cookie"])
            .arg(node.cookie())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            out.status.success(),
            "through {}: {stdout}\n{stderr}",
            pool.api_addr
        );
        let ok_lines = stdout.lines().filter(|l| l.starts_with("ok")).count();
        assert_eq!(
            ok_lines,
            block["outputs"].as_array().unwrap().len(),
            "one ok line per payee:\n{stdout}"
        );
    }
    for pool in pools {
        pool.shutdown.cancel();
        pool.wait().await;
    }
}
