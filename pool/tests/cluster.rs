//! Three pool processes on one PostgreSQL ledger and one real `bitcoind` (each server its
//! own `rpc` source): SV2 miners on each server, a farm proxy listing all three; server 1 is
//! `kill -9`ed mid-run. No acknowledged share is lost (the miners' nor the proxy's), the
//! proxy moves to server 2 within seconds, blocks keep being accepted, the other servers
//! follow a new tip within a second through their own node connection, a block found after
//! the kill pays miners of all three servers (the PPLNS window is read from the shared
//! ledger), and the API's stats (naming the answering server) and workers are pool-wide.
//!
//! Needs the test PostgreSQL server (`common/pg.rs`) and the cached Bitcoin Core build
//! (`common/bitcoin_core.rs`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::bitcoin_core::{payee_addresses, pool_reserved_weight, CoreNode, Flavor};
use common::pg;
use common::process::PoolProcess;
use serde_json::Value;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv1, run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv1::{Sv1Config, Sv1Miner};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_pool::ledger::{Ledger, LedgerConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// SV2 miners per server.
const MINERS_PER_SERVER: usize = 2;

/// One `strata-pool` process of the cluster.
struct Server {
    process: PoolProcess,
    id: u8,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(id: u8, node: &CoreNode, db: &pg::Database) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("STRATA_POOL_CLUSTER__SERVER_ID", id.to_string()),
            ("STRATA_POOL_LEDGER__POSTGRES_URL", db.url.clone()),
            ("STRATA_POOL_TEMPLATE_SOURCE", "rpc".to_string()),
            ("STRATA_POOL_RPC__URL", node.rpc_url()),
            (
                "STRATA_POOL_RPC__COOKIE",
                node.cookie().display().to_string(),
            ),
            (
                "STRATA_POOL_RPC__BLOCK_RESERVED_WEIGHT",
                pool_reserved_weight().to_string(),
            ),
            ("STRATA_POOL_PAYOUT__MODE", "pplns".to_string()),
            ("STRATA_POOL_PAYOUT__WINDOW_SHARES", "100000".to_string()),
            ("STRATA_POOL_VARDIFF__SHARES_PER_MINUTE", "600".to_string()),
            // every share is a block on regtest: a block every 3 s per server at most
            ("STRATA_POOL_MIN_BLOCK_INTERVAL_MS", "3000".to_string()),
            // the pool-wide hashrate and connections come from the history samples
            ("STRATA_POOL_HISTORY__SAMPLE_SECS", "1".to_string()),
        ];
        Server {
            process: PoolProcess::start(dir.path(), &env, true),
            id,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("stratum2+tcp://{}/{}", self.process.sv2, self.process.key)
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("http://{}{path}", self.process.api))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// `share accepted miner=I ... acked=N` lines of the reporter: (miner, acknowledged so far).
fn accepted(line: &str) -> Option<(usize, u64)> {
    let rest = line.strip_prefix("share accepted ")?;
    let field = |k: &str| rest.split_whitespace().find_map(|kv| kv.strip_prefix(k));
    Some((
        field("miner=")?.parse().ok()?,
        field("acked=")?.parse().ok()?,
    ))
}

/// Shares acknowledged to each SV2 miner (by index), from the reporter's lines.
fn drain(rx: &mut mpsc::UnboundedReceiver<String>, acked: &mut BTreeMap<usize, u64>) {
    while let Ok(line) = rx.try_recv() {
        if let Some((i, n)) = accepted(&line) {
            let a = acked.entry(i).or_default();
            *a = (*a).max(n);
        }
    }
}

async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    secs: u64,
    mut check: impl FnMut() -> F,
) -> Duration {
    let t0 = Instant::now();
    while !check().await {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t0.elapsed()
}

/// Blocks the cluster recorded as accepted (from the shared ledger, through `server`).
async fn accepted_blocks(server: &Server) -> Vec<Value> {
    let blocks = server.get("/api/v1/blocks?limit=1000").await;
    blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"]["status"] == "accepted")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_server_loses_no_share_and_the_pool_goes_on() {
    let Some(db) = pg::Database::create() else {
        return;
    };
    let node = CoreNode::start(Flavor::Bitcoind, &[]).await;
    let servers: Vec<Server> = (1..=3).map(|id| Server::start(id, &node, &db)).collect();

    // SV2 miners straight on each server, each paid to its own address
    let addresses = payee_addresses(3 * MINERS_PER_SERVER + 1);
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let reporter = Reporter::new(Sink::Channel(tx), None, CancellationToken::new());
    let stop: Vec<CancellationToken> = servers.iter().map(|_| CancellationToken::new()).collect();
    let mut handles = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        for m in 0..MINERS_PER_SERVER {
            let index = s * MINERS_PER_SERVER + m;
            let connect = Sv2Connect {
                endpoint: Endpoint::parse(&server.process.sv2).unwrap(),
                authority: Some(server.process.key.parse().unwrap()),
                options: Sv2Options::default(),
            };
            let cfg = Sv2Config {
                index,
                user: format!("{}.s{}m{m}", addresses[index], server.id),
                channel: ChannelRequest::Standard,
                nominal_hashrate: 20_000.0,
                record_latency: false,
            };
            let (reporter, stop) = (reporter.clone(), stop[s].clone());
            handles.push(tokio::spawn(async move {
                let mut miner = Sv2Miner::new(cfg).unwrap();
                let _ = run_sv2(
                    &mut miner,
                    &connect,
                    Pacing::Hashrate(20_000.0),
                    &reporter,
                    &stop,
                )
                .await;
            }));
        }
    }

    // a farm proxy listing the three servers, server 1 first, with two SV1 miners
    let farm = addresses[3 * MINERS_PER_SERVER].clone();
    let proxy_dir = tempfile::tempdir().unwrap();
    let mut pcfg = strata_proxy::config::Config {
        upstreams: servers.iter().map(Server::url).collect(),
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: proxy_dir.path().to_path_buf(),
        ..strata_proxy::config::Config::default()
    };
    pcfg.upstream.user_identity = farm.clone();
    pcfg.sv1.initial_difficulty = 1e-5;
    pcfg.sv1.shares_per_minute = 120.0;
    let proxy = strata_proxy::server::start(pcfg).await.unwrap();
    let proxy_stop = CancellationToken::new();
    let silent = Reporter::new(Sink::Silent, None, CancellationToken::new());
    for i in 0..2 {
        let endpoint = Endpoint::parse(&proxy.sv1_addr.to_string()).unwrap();
        let (reporter, stop) = (silent.clone(), proxy_stop.clone());
        tokio::spawn(async move {
            let mut m = Sv1Miner::new(Sv1Config::new(i, format!("farm.rig{i}")));
            let _ = run_sv1(
                &mut m,
                &endpoint,
                Pacing::Hashrate(20_000.0),
                &reporter,
                &stop,
            )
            .await;
        });
    }
    let proxy_api = format!("http://{}/api/v1/upstreams", proxy.api_addr);
    let upstream_accepted = |i: usize| {
        let url = proxy_api.clone();
        async move {
            let ups: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            ups[i]["shares_accepted"].as_u64().unwrap_or(0)
        }
    };

    // every miner gets shares acknowledged, the proxy mines on server 1, blocks are found
    let mut acked = BTreeMap::new();
    let t0 = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drain(&mut rx, &mut acked);
        let all_miners = (0..3 * MINERS_PER_SERVER).all(|i| acked.get(&i).copied() >= Some(5));
        if all_miners
            && upstream_accepted(0).await >= 5
            && accepted_blocks(&servers[1]).await.len() >= 2
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "warm-up: acked {acked:?}, proxy on server 1: {}",
            upstream_accepted(0).await
        );
    }

    // kill -9 server 1 in the middle of the flow
    let mut servers = servers;
    let mut killed = servers.remove(0);
    killed.process.kill_9();
    let killed_at = Instant::now();
    stop[0].cancel();
    let height_at_kill = node.height().await;

    // the proxy moves to server 2 and its shares are accepted there
    let moved = wait_for("the proxy's shares accepted by server 2", 20, || async {
        upstream_accepted(1).await >= 3
    })
    .await;
    eprintln!("proxy accepted by server 2 {moved:?} after the kill");

    // blocks keep coming; each new tip reaches the other server within a second
    let mut seen_tips = 0;
    while seen_tips < 2 {
        let before = node.height().await;
        wait_for("a new block after the kill", 30, || async {
            node.height().await > before
        })
        .await;
        let tip = node.height().await;
        let lag = wait_for("both servers mine on the new tip", 3, || async {
            let mut on_tip = true;
            for s in &servers {
                let h = s.get("/api/v1/stats").await["height"].as_u64().unwrap_or(0);
                on_tip &= h > tip;
            }
            on_tip
        })
        .await;
        assert!(
            lag < Duration::from_secs(1),
            "servers followed tip {tip} after {lag:?}"
        );
        seen_tips += 1;
    }
    assert!(node.height().await >= height_at_kill + 2);

    // a block found after the kill pays miners of all three servers and the farm
    let killed_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64)
        .saturating_sub(killed_at.elapsed().as_millis() as u64);
    let after_kill: Vec<Value> = accepted_blocks(&servers[0])
        .await
        .into_iter()
        .filter(|b| b["time_ms"].as_u64().unwrap() > killed_ms)
        .collect();
    assert!(!after_kill.is_empty(), "no block recorded after the kill");
    let block = &after_kill[0];
    let owners: Vec<&str> = block["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["owner"].as_str().unwrap())
        .collect();
    for (s, id) in [(0, 1), (1, 2), (2, 3)] {
        let paid = (0..MINERS_PER_SERVER)
            .any(|m| owners.contains(&addresses[s * MINERS_PER_SERVER + m].as_str()));
        assert!(
            paid,
            "block {} pays no miner of server {id}: {owners:?}",
            block["hash"]
        );
    }
    assert!(
        owners.contains(&farm.as_str()),
        "the farm is not paid: {owners:?}"
    );
    // and the other server lists the same block, from the same ledger
    let hash = block["hash"].as_str().unwrap();
    let other = servers[1].get(&format!("/api/v1/blocks/{hash}")).await;
    assert_eq!(other["block"]["outputs"], block["outputs"]);

    // the pool-wide figures name the answering server
    let stats = servers[1].get("/api/v1/stats").await;
    assert_eq!(stats["server_id"], 3);
    assert!(
        stats["cluster"]["shares_accepted"].as_u64().unwrap() > 0,
        "{stats}"
    );
    // the pool-wide hashrate and connections are the live servers' (sampled every second
    // here; the killed server's samples age out after two periods), on either server
    for server in &servers {
        wait_for("pool-wide connections of the live servers", 10, || async {
            let mut live = 0;
            for s in &servers {
                live += s.get("/api/v1/stats").await["connections"]
                    .as_u64()
                    .unwrap();
            }
            let wide = server.get("/api/v1/stats").await["cluster"].clone();
            let hashrate = wide["hashrate"].as_f64().unwrap();
            wide["connections"].as_u64() == Some(live) && live > 0 && hashrate > 0.0
        })
        .await;
    }
    // and so do the pool-wide workers: server 3 lists every server's, the killed one's too
    let workers = servers[1].get("/api/v1/workers").await;
    let listed: Vec<&str> = workers
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker"].as_str().unwrap())
        .collect();
    for (i, address) in addresses.iter().enumerate().take(3 * MINERS_PER_SERVER) {
        let (server, m) = (i / MINERS_PER_SERVER + 1, i % MINERS_PER_SERVER);
        let worker = format!("{address}.s{server}m{m}");
        assert!(
            listed.contains(&worker.as_str()),
            "{worker} not in {listed:?}"
        );
    }
    assert!(
        listed.iter().any(|w| w.starts_with(farm.as_str())),
        "the farm not in {listed:?}"
    );

    // stop everyone, then compare what was acknowledged with what the ledger holds
    for s in &stop {
        s.cancel();
    }
    proxy_stop.cancel();
    for h in handles {
        h.await.unwrap();
    }
    // what the pools acknowledged to the proxy, on any server (answers still in flight are
    // not counted here, so the ledger may hold more)
    let proxy_stats: Value = reqwest::get(format!("http://{}/api/v1/stats", proxy.api_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let proxy_acked = proxy_stats["upstream_accepted"].as_u64().unwrap();
    proxy.shutdown.cancel();
    proxy.wait().await;
    drain(&mut rx, &mut acked);
    drop(servers);
    // (opened alone, the ledger also counts in the workers table what the killed servers
    // committed without counting it)
    let (ledger, thread) = Ledger::open(LedgerConfig::postgres(&db.url)).unwrap();
    let totals = ledger.totals().await.unwrap();
    let stored = ledger.shares_in(1, i64::MAX).await.unwrap();
    assert_eq!(totals.shares_accepted, stored.len() as u64);
    for (i, n) in &acked {
        let server = i / MINERS_PER_SERVER + 1;
        let worker = format!("{}.s{server}m{}", addresses[*i], i % MINERS_PER_SERVER);
        let in_ledger = stored.iter().filter(|(_, s)| s.worker == worker).count() as u64;
        assert!(
            in_ledger >= *n,
            "miner {i} on server {server}: {n} shares acknowledged, {in_ledger} in the ledger"
        );
        let counted = totals
            .workers
            .iter()
            .find(|w| w.worker == worker)
            .map_or(0, |w| w.shares);
        assert_eq!(counted, in_ledger, "workers table of miner {i}");
    }
    let farm_in_ledger = stored
        .iter()
        .filter(|(_, s)| s.worker.starts_with(farm.as_str()))
        .count() as u64;
    assert!(
        farm_in_ledger >= proxy_acked,
        "the proxy: {proxy_acked} shares acknowledged, {farm_in_ledger} in the ledger"
    );
    eprintln!(
        "acknowledged per miner: {acked:?}, to the proxy: {proxy_acked}; {} shares in the ledger",
        stored.len()
    );
    drop(ledger);
    thread.join().unwrap();
}
