//! SRI's Job Declarator Client (`jd_client_sv2` 0.6.0 from crates.io, installed by
//! `scripts/sri-apps.sh`, found as `common::sri` says) against the pool's JDS:
//! the JDC takes templates (with a mempool transaction) from Bitcoin Core over IPC, declares
//! them to our JDS, sets custom jobs on our mining port, and a strata SV2 miner mines through
//! it; the node must accept blocks that the JDC's custom jobs made (its signature in the
//! coinbase, the transaction in a block) and the pool must record them. Skipped when the
//! binary is not installed, outside CI: `cargo test -p strata-pool --test jds_sri -- --nocapture`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::bitcoin_core::{fund, CoreNode, Flavor, TestKey};
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_pool::config::{PayoutKind, SourceKind};
use tokio_util::sync::CancellationToken;

/// The authority key pair of SRI's example configurations (the JDC's downstream side).
const JDC_AUTHORITY: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
const JDC_SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sri_jdc_mines_through_our_jds() {
    let Some(jdc_bin) = common::sri::bin(common::sri::App::Jdc) else {
        return;
    };
    // RUST_LOG=strata_pool::jds=debug shows the JDS's side
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let node = CoreNode::start(Flavor::Ipc, &[]).await;
    let key = TestKey::new(0x33);
    let funds = fund(&node, &key, 1).await;
    // a mempool transaction for the JDC's templates
    let tx = key.spend(
        &funds,
        vec![bitcoin::TxOut {
            value: funds[0].1 - bitcoin::Amount::from_sat(20_000),
            script_pubkey: key.script(),
        }],
    );
    node.rpc(
        "sendrawtransaction",
        serde_json::json!([hex::encode(bitcoin::consensus::serialize(&tx))]),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = node.pool_config(dir.path(), SourceKind::Rpc);
    cfg.rpc.poll_ms = 200;
    cfg.payout.mode = PayoutKind::Pplns;
    cfg.jds.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.jds.mempool_poll_ms = 200;
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let jds = pool.jds_addr.unwrap();

    let jdc_port = free_port();
    let config = format!(
        r#"listening_address = "127.0.0.1:{jdc_port}"
max_supported_version = 2
min_supported_version = 2
authority_public_key = "{JDC_AUTHORITY}"
authority_secret_key = "{JDC_SECRET}"
cert_validity_sec = 3600
shares_per_minute = 60.0
share_batch_size = 1
mode = "FULLTEMPLATE"
jdc_signature = "sri-jdc"
coinbase_reward_script = "addr({addr})"
supported_extensions = []
monitoring_address = "127.0.0.1:{mon}"
monitoring_cache_refresh_secs = 15

[[upstreams]]
authority_pubkey = "{authority}"
pool_address = "127.0.0.1"
pool_port = {pool_port}
jds_address = "127.0.0.1"
jds_port = {jds_port}
user_identity = "sri-jdc"

[template_provider_type.BitcoinCoreIpc]
version = 31
network = "regtest"
data_dir = "{datadir}"
fee_threshold = 0
min_interval = 1
"#,
        addr = key.address,
        mon = free_port(),
        authority = pool.authority,
        pool_port = pool.sv2_addr.port(),
        jds_port = jds.port(),
        datadir = node.datadir.path().display(),
    );
    let conf = dir.path().join("jdc.toml");
    std::fs::write(&conf, config).unwrap();
    let mut jdc = Command::new(&jdc_bin)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("SRI's jd_client_sv2");
    // its log, shown as it comes and read for its latencies
    let log = std::io::BufReader::new(jdc.stdout.take().unwrap());
    let timeline = std::thread::spawn(move || {
        let mut t = sri_log::Timeline::default();
        for line in std::io::BufRead::lines(log).map_while(Result::ok) {
            eprintln!("{line}");
            t.line(&line);
        }
        t
    });
    tokio::time::sleep(Duration::from_secs(5)).await;

    let start = node.height().await;
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let connect = Sv2Connect {
        endpoint: Endpoint::parse(&format!("127.0.0.1:{jdc_port}")).unwrap(),
        authority: Some(JDC_AUTHORITY.parse().unwrap()),
        options: Sv2Options::default(),
    };
    let miner_cfg = Sv2Config {
        index: 0,
        user: "farm-miner".into(),
        channel: ChannelRequest::Standard,
        nominal_hashrate: 1e3,
        record_latency: false,
    };
    let (r, s) = (reporter.clone(), stop.clone());
    let miner = tokio::spawn(async move {
        let mut m = Sv2Miner::new(miner_cfg).unwrap();
        let _ = run_sv2(&mut m, &connect, Pacing::Hashrate(1e3), &r, &s).await;
    });
    // STRATA_JD_BLOCKS=60 for latencies worth a median
    let blocks: u64 = std::env::var("STRATA_JD_BLOCKS")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(2);
    let reached = tokio::time::timeout(
        Duration::from_secs(30 + 15 * blocks),
        node.wait_height(start + blocks, Duration::from_secs(30 + 15 * blocks)),
    )
    .await;
    stop.cancel();
    let _ = miner.await;
    let _ = jdc.kill();
    let _ = jdc.wait();
    assert!(reached.is_ok(), "no block through SRI's JDC");
    let timeline = timeline.join().unwrap();
    eprintln!(
        "SRI's JDC against our JDS, from its log: {}",
        timeline.summary()
    );
    assert!(
        !timeline.custom_jobs.is_empty(),
        "SRI's JDC logged no SetCustomMiningJob.Success"
    );
    let tip = node.tip().await;
    let block = node.block(tip["hash"].as_str().unwrap()).await;
    let script_sig = block["tx"][0]["vin"][0]["coinbase"]
        .as_str()
        .unwrap()
        .to_string();
    eprintln!("tip {} coinbase scriptSig {script_sig}", tip["height"]);
    assert!(
        script_sig.contains(&hex::encode("sri-jdc")),
        "the block is the JDC's custom job (its jdc_signature in the scriptSig)"
    );
    // the pool recorded a block it submitted and the node accepted. On regtest nearly every
    // share is a block, so the JDC (through its own node connection) and the pool (from a
    // share forwarded to it) can each submit a different block at the same height: whichever
    // reaches the node first wins the tip and the other is kept as a stale branch. The node
    // stores both, so the check is "the node has the pool's block", not "it is on the tip".
    let mut waited = 0;
    let recorded = loop {
        let blocks = common::api_blocks(&pool).await;
        let mut stored = None;
        for b in &blocks {
            if b["status"]["status"] != "accepted" {
                continue;
            }
            let hash = b["hash"].as_str().unwrap();
            if node
                .rpc_result("getblock", serde_json::json!([hash, 1]))
                .await
                .is_ok()
            {
                stored = Some(b.clone());
                break;
            }
        }
        if let Some(b) = stored {
            break b;
        }
        waited += 1;
        assert!(
            waited < 100,
            "the node has none of the blocks the pool recorded as accepted: {blocks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let block = node.block(recorded["hash"].as_str().unwrap()).await;
    let paid = block["tx"][0]["vout"][0]["scriptPubKey"]["hex"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(recorded["outputs"][0]["script_hex"].as_str().unwrap(), paid);
    // the mempool transaction went into a block the JDC declared
    let mut carried = false;
    for h in start + 1..=node.height().await {
        let hash = node.rpc("getblockhash", serde_json::json!([h])).await;
        let b = node.block(hash.as_str().unwrap()).await;
        carried |= b["tx"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["txid"] == tx.compute_txid().to_string());
    }
    assert!(carried, "no block carried the JDC's mempool transaction");
    pool.shutdown.cancel();
    pool.wait().await;
}

/// Latencies read from SRI's JDC log (its own timestamps, microseconds of the day).
mod sri_log {
    /// What the log showed.
    #[derive(Default)]
    pub(crate) struct Timeline {
        /// The newest tip's `SetNewPrevHash` from its template provider, not yet followed by
        /// a custom job.
        tip_at: Option<u64>,
        /// A first custom job was set (the miner is connected).
        started: bool,
        /// The last `RequestTransactionData.Success`: the JDC declares right after it.
        declared_at: Option<u64>,
        /// `RequestTransactionData.Success` to `DeclareMiningJob.Success`, us.
        pub(crate) declarations: Vec<u64>,
        /// New tip to `SetCustomMiningJob.Success`, us.
        pub(crate) custom_jobs: Vec<u64>,
    }

    /// `2026-12-07T18:16:52.158367Z ...` -> microseconds since midnight.
    fn micros(line: &str) -> Option<u64> {
        let time = line.get(11..26)?;
        let (h, m, s) = (time.get(0..2)?, time.get(3..5)?, time.get(6..15)?);
        let secs: f64 = s.parse().ok()?;
        let hm = h.parse::<u64>().ok()? * 3600 + m.parse::<u64>().ok()? * 60;
        Some(hm * 1_000_000 + (secs * 1e6).round() as u64)
    }

    impl Timeline {
        pub(crate) fn line(&mut self, line: &str) {
            let Some(at) = micros(line) else {
                return;
            };
            if line.contains("template_message_handler: Received: SetNewPrevHash") {
                // tips before the first custom job wait for the miner to connect
                self.tip_at = self.started.then_some(at);
            } else if line.contains("Received: RequestTransactionDataSuccess") {
                self.declared_at = Some(at);
            } else if line.contains("Received: DeclareMiningJobSuccess") {
                if let Some(d) = self.declared_at.take() {
                    self.declarations.push(at.saturating_sub(d));
                }
            } else if line.contains("Received: SetCustomMiningJobSuccess") {
                self.started = true;
                if let Some(t) = self.tip_at.take() {
                    self.custom_jobs.push(at.saturating_sub(t));
                }
            }
        }

        pub(crate) fn summary(&self) -> String {
            fn stats(v: &[u64]) -> String {
                let mut v = v.to_vec();
                v.sort_unstable();
                if v.is_empty() {
                    return "no samples".into();
                }
                let p99 = v[((v.len() * 99).div_ceil(100)).saturating_sub(1)];
                format!(
                    "{} samples, median {} us, p99 {} us",
                    v.len(),
                    v[v.len() / 2],
                    p99
                )
            }
            format!(
                "RequestTransactionData.Success -> DeclareMiningJob.Success: {}; new tip -> SetCustomMiningJob.Success: {}",
                stats(&self.declarations),
                stats(&self.custom_jobs)
            )
        }
    }
}
