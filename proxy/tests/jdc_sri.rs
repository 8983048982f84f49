//! The proxy as Job Declarator Client against SRI's pool and its Job Declaration Server
//! (`pool_sv2` 0.7.0 from crates.io with a `[jds]` section: SRI publishes no separate JDS
//! program), both on one regtest `bitcoin-node` (SRI's pool takes its templates and checks
//! declared jobs over the IPC mining interface; the proxy's JDC reads the same node over RPC),
//! simulated SV1 miners behind the proxy.
//!
//! Blocks found through custom jobs must be accepted by the node (its tip moves, the blocks
//! are the JDC's: its tag in the coinbase), pay the output SRI's JDS requires (the pool's
//! `coinbase_reward_script` address), and carry a mempool transaction of the farm's node
//! declared in Full-Template mode.
//!
//! SRI's pool is installed by `scripts/sri-apps.sh` (see `pool/tests/common/sri.rs` for how
//! the test finds it; skipped outside CI when it is not installed):
//! `cargo test -p strata-proxy --test jdc_sri -- --nocapture`.
//!
//! It prints the JDC's latencies (DeclareMiningJob to .Success, new tip to custom job set);
//! `STRATA_JD_BLOCKS=N` mines N blocks instead of 3, for a benchmark (BENCHMARKS.md).
#![allow(clippy::unwrap_used)]

#[path = "../../pool/tests/common/bitcoin_core.rs"]
mod bitcoin_core;
mod common;
#[path = "../../pool/tests/common/sri.rs"]
mod sri;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bitcoin_core::{fund, spend_to_mempool, CoreNode, Flavor, TestKey};
use serde_json::json;
use strata_miner::report::Reporter;
use strata_proxy::config::JdcSource;
use tokio_util::sync::CancellationToken;

/// SRI's pool, stopped by its pid when dropped; its log in `log`.
struct SriPool {
    child: Child,
    log: std::path::PathBuf,
}

impl SriPool {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for SriPool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("SRI pool's log (last lines):\n{}", self.log_tail());
        }
    }
}

/// Waits until `port` on 127.0.0.1 accepts connections.
async fn wait_listening(port: u16, pool: &mut SriPool) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Some(status) = pool.child.try_wait().unwrap() {
            panic!("SRI's pool exited ({status}):\n{}", pool.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("SRI's pool does not listen on {port}:\n{}", pool.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_jdc_mines_through_sri_jds_and_pool() {
    let Some(pool_bin) = sri::bin(sri::App::Pool) else {
        return;
    };
    // RUST_LOG=strata_proxy::jdc=debug shows the JDC's steps
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let node = CoreNode::start(Flavor::Ipc, &[]).await;
    let key = TestKey::new(0x61);
    let funds = fund(&node, &key, 1).await;
    let pool_key = TestKey::new(0x62);
    let solo_key = TestKey::new(0x63);
    let pool_addr = pool_key.address.to_string();
    let solo_addr = solo_key.address.to_string();

    // SRI's pool with its JDS, on the node's IPC socket
    let dir = tempfile::tempdir().unwrap();
    let (port, jds_port) = (common::free_port(), common::free_port());
    let toml = sri::pool_config(
        port,
        common::free_port(),
        "regtest",
        node.datadir.path(),
        &pool_addr,
        60.0,
        Some(jds_port),
    );
    let conf = dir.path().join("pool.toml");
    std::fs::write(&conf, toml).unwrap();
    let log = dir.path().join("pool.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(&pool_bin)
        .arg("-c")
        .arg(&conf)
        .env(
            "RUST_LOG",
            std::env::var("SRI_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("SRI's pool_sv2");
    let mut pool = SriPool { child, log };
    wait_listening(port, &mut pool).await;
    wait_listening(jds_port, &mut pool).await;
    let authority = sri::pool_authority();

    // the proxy in [jdc] mode: templates from the same node over RPC
    let pdir = tempfile::tempdir().unwrap();
    let mut cfg = common::jdc_proxy_config(
        pdir.path(),
        format!("stratum2+tcp://127.0.0.1:{port}/{authority}"),
        format!("stratum2+tcp://127.0.0.1:{jds_port}/{authority}"),
        solo_addr.clone(),
    );
    cfg.sv1.shares_per_minute = 30.0;
    cfg.jdc.source = JdcSource::Rpc;
    cfg.jdc.rpc.url = node.rpc_url();
    cfg.jdc.rpc.cookie = Some(node.cookie());
    cfg.jdc.rpc.poll_ms = 100;
    cfg.jdc.startup_grace_ms = 20_000;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();

    // a mempool transaction of the farm's node (the same node as the pool's)
    let txid = spend_to_mempool(&node, &key, &funds).await;

    let stop = CancellationToken::new();
    common::sv1_miners(proxy.sv1_addr, 2, &Reporter::silent(), &stop);
    let start = node.height().await;
    let blocks: u64 = std::env::var("STRATA_JD_BLOCKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let (mut carried, mut seen) = (false, start);
    let what = format!("{blocks} blocks through SRI's JDS and pool, one with the transaction");
    common::until(&what, 120 + blocks * 3, async || {
        let tip = node.height().await;
        while !carried && seen < tip {
            seen += 1;
            let hash = node.rpc("getblockhash", json!([seen])).await;
            let b = node.block(hash.as_str().unwrap()).await;
            carried = b["tx"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["txid"] == txid);
        }
        carried && tip >= start + blocks
    })
    .await;

    // every block above `start` is the JDC's and pays SRI's required output
    let tip = node.height().await;
    for height in start + 1..=tip {
        let hash = node.rpc("getblockhash", json!([height])).await;
        let b = node.block(hash.as_str().unwrap()).await;
        let cb = &b["tx"][0];
        let script_sig = cb["vin"][0]["coinbase"].as_str().unwrap();
        let outs = common::coinbase_outputs(cb);
        assert!(
            script_sig.contains(&hex::encode(b"/strata-jdc/")),
            "block {height} was not built by our JDC: {script_sig}"
        );
        let paid: u64 = outs
            .iter()
            .filter(|(a, _)| *a == pool_addr)
            .map(|(_, v)| v)
            .sum();
        assert!(
            paid > 0 && outs.iter().all(|(a, _)| *a != solo_addr),
            "block {height} does not pay SRI's required output: {outs:?}"
        );
    }
    let best = node.tip().await;
    assert_eq!(best["height"].as_u64(), Some(tip));
    assert_eq!(
        best["confirmations"].as_i64(),
        Some(1),
        "the tip is the node's"
    );

    let stats = proxy.jdc.as_ref().expect("the JDC runs").borrow().clone();
    assert_eq!(stats.mode, Some(strata_proxy::jdc::Mode::Pool), "{stats:?}");
    let (d, t) = (stats.declare_round_trip, stats.tip_to_custom_job);
    eprintln!(
        "{} blocks; DeclareMiningJob -> Success: {} samples, median {} us, p99 {} us; \
         new tip -> custom job set: {} samples, median {} us, p99 {} us",
        tip - start,
        d.samples,
        d.p50_us,
        d.p99_us,
        t.samples,
        t.p50_us,
        t.p99_us
    );
    assert!(d.samples >= 3, "{stats:?}");

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    drop(pool);
}
