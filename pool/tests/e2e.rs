//! The pool end to end on 127.0.0.1: its embedded regtest chain (Bitcoin Core's consensus),
//! simulated SV2 miners (standard and extended channels) that really hash, blocks accepted
//! by Core and paid as the ledger says, the HTTP API, restarts.
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strata_miner::identity::default_user;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_pool::config::{Config, PayoutKind};
use strata_pool::ledger::{BlockStatus, Ledger, LedgerConfig, PplnsWindow};
use strata_pool::payout::{pplns_split, PplnsConfig};
use strata_pool::template::embedded::{EmbeddedConfig, EmbeddedSource};
use tokio_util::sync::CancellationToken;

fn config(dir: &std::path::Path, mode: PayoutKind) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    c.payout.mode = mode;
    c.payout.window_shares = 50;
    // quick shares: a block (every regtest share is one) every second or so per miner
    c.vardiff.shares_per_minute = 60.0;
    c
}

/// Starts `n` miners against the pool; returns their stop token and join handles.
fn miners(
    pool: &strata_pool::server::RunningPool,
    kinds: &[ChannelRequest],
    reporter: &Reporter,
) -> (CancellationToken, Vec<tokio::task::JoinHandle<()>>) {
    let stop = CancellationToken::new();
    let mut handles = vec![];
    for (i, kind) in kinds.iter().enumerate() {
        let connect = Sv2Connect {
            endpoint: Endpoint::parse(&pool.sv2_addr.to_string()).unwrap(),
            authority: Some(pool.authority),
            options: Sv2Options::default(),
        };
        let cfg = Sv2Config {
            index: i,
            user: default_user(i),
            channel: *kind,
            nominal_hashrate: 50_000.0,
            record_latency: false,
        };
        let reporter = reporter.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let mut miner = Sv2Miner::new(cfg).unwrap();
            let _ = run_sv2(
                &mut miner,
                &connect,
                Pacing::Hashrate(50_000.0),
                &reporter,
                &stop,
            )
            .await;
        }));
    }
    (stop, handles)
}

async fn get_json(url: String) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn wait_for_blocks(api: std::net::SocketAddr, n: u64) -> serde_json::Value {
    wait_for_stats(api, "blocks_found", n).await
}

/// `/api/v1/stats` once its `field` is at least `n`. A block counts as found when it goes to
/// the node; the share that found it counts as accepted once its group commit is durable,
/// a moment later.
async fn wait_for_stats(api: std::net::SocketAddr, field: &str, n: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stats = get_json(format!("http://{api}/api/v1/stats")).await;
        if stats[field].as_u64().unwrap_or(0) >= n {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {stats} after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pplns_pool_mines_regtest_blocks_core_accepts_and_the_ledger_explains_each_split() {
    let dir = tempfile::tempdir().unwrap();
    let pool = strata_pool::server::start(config(dir.path(), PayoutKind::Pplns))
        .await
        .unwrap();
    let api = pool.api_addr;
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let (stop, handles) = miners(
        &pool,
        &[
            ChannelRequest::Standard,
            ChannelRequest::Extended {
                min_extranonce_size: 8,
            },
        ],
        &reporter,
    );
    wait_for_blocks(api, 4).await;
    let stats = wait_for_stats(api, "shares_accepted", 4).await;
    assert!(stats["blocks_found"].as_u64().unwrap() >= 4, "{stats}");
    // the template after the 4th block may still be on its way
    assert!(stats["height"].as_u64().unwrap() >= 4, "{stats}");
    assert_eq!(stats["connections"].as_u64().unwrap(), 2, "{stats}");

    // both miners' shares show up per worker (which miner finds the first blocks is luck)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let workers = get_json(format!("http://{api}/api/v1/workers")).await;
        let names: Vec<&str> = workers
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["worker"].as_str().unwrap())
            .collect();
        if names.contains(&default_user(0).as_str()) && names.contains(&default_user(1).as_str()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{workers}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = reqwest::get(format!("http://{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("strata_pool_blocks_found_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strata_pool_shares_rejected_total"),
        "{metrics}"
    );
    // every committed share request is in the commit-time histogram, whose buckets count up
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let commits = metric("strata_pool_ledger_commit_seconds_count");
    assert!(commits >= 4.0, "{metrics}");
    assert_eq!(
        metric("strata_pool_ledger_commit_seconds_bucket{le=\"+Inf\"}"),
        commits
    );
    assert!(metric("strata_pool_ledger_commit_seconds_sum") > 0.0);
    assert!(metric("strata_pool_ledger_transactions_total") >= 1.0);

    // the last found block's acknowledgement may still be on its way to its miner
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reporter.acked_total() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    for h in handles {
        h.await.unwrap();
    }
    assert!(reporter.acked_total() >= 4);
    let blocks = get_json(format!("http://{api}/api/v1/blocks")).await;
    pool.shutdown.cancel();
    pool.wait().await;

    // Bitcoin Core's validation accepted every block the pool calls accepted: the chain in
    // the data directory is as long as the highest of them
    let accepted: Vec<&serde_json::Value> = blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"]["status"] == "accepted")
        .collect();
    assert!(accepted.len() >= 4, "{blocks}");

    // the pool records a found block in the background (the new tip's work does not wait for
    // it) and every record is in the ledger once it has stopped
    let (ledger, thread) =
        Ledger::open(LedgerConfig::new(dir.path().join("ledger.sqlite"))).unwrap();
    let recorded = ledger.blocks(100).await.unwrap();
    let top = recorded
        .iter()
        .filter(|b| b.status == BlockStatus::Accepted)
        .map(|b| u64::from(b.height))
        .max()
        .unwrap();
    let node = EmbeddedSource::open(dir.path(), EmbeddedConfig::default()).unwrap();
    assert_eq!(u64::from(node.chain_tip().height), top);
    drop(node);

    // every PPLNS block's outputs follow from its recorded window of shares
    let mut checked = 0;
    for b in recorded
        .iter()
        .filter(|b| b.status == BlockStatus::Accepted)
    {
        let Some((first, last)) = b.window else {
            continue;
        };
        let shares = ledger.shares_in(first, last).await.unwrap();
        let window = PplnsWindow::from_shares(
            shares
                .iter()
                .map(|(id, s)| (*id, s.worker.as_str(), s.difficulty)),
        );
        let cfg = PplnsConfig {
            window_shares: 50,
            fee_ppm: 10_000,
            dust_sats: 1_000,
            max_outputs: 100,
        };
        let pool_script = strata_pool::server::keys::pool_script(
            &config(dir.path(), PayoutKind::Pplns),
            &std::fs::read_to_string(dir.path().join("authority.pub"))
                .unwrap()
                .trim()
                .parse()
                .unwrap(),
        )
        .unwrap();
        let split = pplns_split(
            b.reward_sats,
            &window,
            &pool_script,
            &cfg,
            bitcoin::Network::Regtest,
        );
        assert_eq!(split.payouts, b.outputs, "block {}", b.hash);
        assert!(
            b.outputs.iter().any(|p| p.owner.starts_with("bcrt1")),
            "miners are paid: {b:?}"
        );
        checked += 1;
    }
    assert!(
        checked >= 1,
        "at least one block with a window: {recorded:?}"
    );
    drop(ledger);
    thread.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_pool_pays_the_finder_and_the_chain_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pool = strata_pool::server::start(config(dir.path(), PayoutKind::Solo))
        .await
        .unwrap();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let (stop, handles) = miners(&pool, &[ChannelRequest::Standard], &reporter);
    wait_for_blocks(pool.api_addr, 2).await;
    stop.cancel();
    for h in handles {
        h.await.unwrap();
    }
    let blocks = get_json(format!("http://{}/api/v1/blocks", pool.api_addr)).await;
    let address = default_user(0).split('.').next().unwrap().to_string();
    for b in blocks.as_array().unwrap() {
        assert_eq!(b["mode"], "solo");
        let outputs = b["outputs"].as_array().unwrap();
        let paid: u64 = outputs
            .iter()
            .filter(|o| o["owner"] == address.as_str())
            .map(|o| o["sats"].as_u64().unwrap())
            .sum();
        assert_eq!(
            paid,
            b["reward_sats"].as_u64().unwrap() * 99 / 100,
            "the finder gets the reward less the 1% fee: {b}"
        );
    }
    // let the last submission settle
    let mut height = 0;
    loop {
        let h = get_json(format!("http://{}/api/v1/stats", pool.api_addr)).await["height"]
            .as_u64()
            .unwrap();
        if h == height {
            break;
        }
        height = h;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    pool.shutdown.cancel();
    pool.wait().await;

    // restart on the same data directory: same chain, same totals, same authority key
    let pool = strata_pool::server::start(config(dir.path(), PayoutKind::Solo))
        .await
        .unwrap();
    let stats = get_json(format!("http://{}/api/v1/stats", pool.api_addr)).await;
    assert_eq!(stats["height"].as_u64().unwrap(), height, "{stats}");
    assert!(stats["blocks_found"].as_u64().unwrap() >= 2, "{stats}");
    pool.shutdown.cancel();
    pool.wait().await;
}

/// `max_connections_per_ip`: a further connection from an address at the limit is closed
/// before the handshake; once one of its connections ends, the address may connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_capped_and_a_closed_one_frees_its_place() {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), PayoutKind::Pplns);
    cfg.max_connections_per_ip = 2;
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let handshake = |tcp: TcpStream| async move {
        let (rd, wr) = tcp.into_split();
        strata_net::sv2::initiate(rd, wr, pool.authority, &Sv2Options::default()).await
    };
    let a = handshake(TcpStream::connect(pool.sv2_addr).await.unwrap())
        .await
        .expect("first connection");
    let _b = handshake(TcpStream::connect(pool.sv2_addr).await.unwrap())
        .await
        .expect("second connection");
    // the third from 127.0.0.1 is closed at once: end of stream before any handshake byte
    let mut third = TcpStream::connect(pool.sv2_addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
        .await
        .expect("closed at once, not left waiting")
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection got bytes");
    // the first one leaves: its place is free once the pool has seen it go
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let tcp = TcpStream::connect(pool.sv2_addr).await.unwrap();
        if handshake(tcp).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed connection's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.shutdown.cancel();
    pool.wait().await;
}

/// The block-change benchmark's client (`strata-miner tips`, run by scripts/bench-tip.sh)
/// against the pool: every connection gets every new tip, each tip is a block the pool's
/// chain accepted, and the pool's CPU is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_gets_each_new_tip_as_the_tip_bench_measures_it() {
    use strata_miner::tips::{run_tips, TipsConfig, Trigger};

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), PayoutKind::Pplns);
    cfg.max_connections_per_ip = 0;
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let api = pool.api_addr;
    let height = |s: serde_json::Value| s["height"].as_u64().unwrap();
    let before = height(get_json(format!("http://{api}/api/v1/stats")).await);
    let report = run_tips(TipsConfig {
        pool: pool.sv2_addr.to_string(),
        authority: pool.authority,
        connections: 40,
        channels_per_connection: 1,
        rounds: 3,
        trigger: Trigger::Submit,
        connect_rate: 1000.0,
        pool_pid: Some(std::process::id()),
        mempool_txs: 0,
    })
    .await
    .unwrap();
    assert_eq!(report.connections, 40);
    assert_eq!(report.rounds.len(), 3);
    for r in &report.rounds {
        assert!(r.first_ms > 0.0 && r.first_ms <= r.last_ms, "{r:?}");
    }
    assert!(report.pool_cpu_ms_per_round.is_some_and(|c| c > 0.0));
    // the statistics follow the work a moment later
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut after = before;
    while after < before + 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = height(get_json(format!("http://{api}/api/v1/stats")).await);
    }
    assert_eq!(after, before + 3, "one block per round");
    assert_eq!(report.prev_hash_messages_per_round, 40.0);

    // channels that share connections, as a proxy's: the pool groups them and sends each
    // new tip once per connection (connection 0 asks for standard jobs: one per channel)
    let report = run_tips(TipsConfig {
        pool: pool.sv2_addr.to_string(),
        authority: pool.authority,
        connections: 10,
        channels_per_connection: 4,
        rounds: 2,
        trigger: Trigger::Submit,
        connect_rate: 1000.0,
        pool_pid: None,
        mempool_txs: 0,
    })
    .await
    .unwrap();
    assert_eq!((report.connections, report.channels), (10, 40));
    assert_eq!(report.rounds.len(), 2);
    assert_eq!(report.prev_hash_messages_per_round, 4.0 + 9.0);
    pool.shutdown.cancel();
    pool.wait().await;
}
