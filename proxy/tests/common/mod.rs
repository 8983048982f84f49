//! Helpers shared by the proxy's end-to-end tests (each test binary uses a subset).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use strata_miner::pace::Pacing;
use strata_miner::report::Reporter;
use strata_miner::shell::{run_sv1, Endpoint};
use strata_miner::sv1::{Sv1Config, Sv1Miner};
use strata_pool::server::RunningPool;
use tokio_util::sync::CancellationToken;

/// A port free on 127.0.0.1 when asked (for a pool restarted on the same port).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("local address")
        .port()
}

/// A strata-pool configuration on its embedded regtest chain in `dir`, SV2 on `listen`, the
/// API on a free port, everything else at its default.
pub(crate) fn pool_config(dir: &Path, listen: SocketAddr) -> strata_pool::config::Config {
    strata_pool::config::Config {
        data_dir: dir.to_path_buf(),
        listen,
        api_listen: "127.0.0.1:0".parse().expect("address"),
        ..Default::default()
    }
}

/// Starts the pool.
pub(crate) async fn start_pool(c: strata_pool::config::Config) -> RunningPool {
    strata_pool::server::start(c).await.expect("pool starts")
}

/// The pool's `stratum2+tcp://` URL with its authority key.
pub(crate) fn pool_url(p: &RunningPool) -> String {
    format!("stratum2+tcp://{}/{}", p.sv2_addr, p.authority)
}

/// GET `url` as JSON.
pub(crate) async fn get_json(url: String) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

/// GET `url` as text (Prometheus `/metrics`).
pub(crate) async fn get_text(url: String) -> String {
    reqwest::get(url)
        .await
        .expect("GET")
        .text()
        .await
        .expect("text")
}

/// The worker names the pool lists (`GET /api/v1/workers` on its API at `pool_api`).
pub(crate) async fn pool_worker_names(pool_api: SocketAddr) -> Vec<String> {
    let workers = get_json(format!("http://{pool_api}/api/v1/workers")).await;
    workers
        .as_array()
        .expect("a list")
        .iter()
        .map(|w| w["worker"].as_str().expect("a name").to_string())
        .collect()
}

/// Polls `f` every 200 ms until it holds; fails the test after `secs` seconds. Prints how
/// long it took.
pub(crate) async fn until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let t0 = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{what}: {:.1} s", t0.elapsed().as_secs_f64());
}

/// `n` simulated SV1 miners (`farm.rig{i}`, 20 kH/s each) on `addr` until `stop`.
pub(crate) fn sv1_miners(
    addr: SocketAddr,
    n: usize,
    reporter: &Reporter,
    stop: &CancellationToken,
) {
    let names: Vec<String> = (0..n).map(|i| format!("farm.rig{i}")).collect();
    sv1_miners_named(addr, &names, reporter, stop);
}

/// One simulated SV1 miner (20 kH/s) per name on `addr` until `stop`.
pub(crate) fn sv1_miners_named(
    addr: SocketAddr,
    names: &[String],
    reporter: &Reporter,
    stop: &CancellationToken,
) {
    for (i, name) in names.iter().enumerate() {
        let endpoint = Endpoint::parse(&addr.to_string()).expect("address");
        let reporter = reporter.clone();
        let stop = stop.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut m = Sv1Miner::new(Sv1Config::new(i, name));
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
}

/// A proxy in `[jdc]` mode for the Job Declaration tests, on regtest: its one pool at
/// `upstream` and that pool's JDS at `jds_url`, mining solo to `solo_address` when they fail;
/// SV1 miners at difficulty 0.00001 (a CPU miner's shares) as "farm"; no history. Where the
/// templates come from (`jdc.source`) is the test's to set.
pub(crate) fn jdc_proxy_config(
    data_dir: &Path,
    upstream: String,
    jds_url: String,
    solo_address: String,
) -> strata_proxy::config::Config {
    let mut cfg = strata_proxy::config::Config {
        upstreams: vec![upstream],
        sv1_listen: "127.0.0.1:0".parse().expect("an address"),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().expect("an address"),
        data_dir: data_dir.to_path_buf(),
        ..strata_proxy::config::Config::default()
    };
    cfg.sv1.initial_difficulty = 0.00001;
    cfg.upstream.user_identity = "farm".into();
    cfg.history.enabled = false;
    cfg.jdc.jds_url = jds_url;
    cfg.jdc.solo_address = solo_address;
    cfg.jdc.network = bitcoin::Network::Regtest;
    cfg
}

/// A coinbase's outputs, from the node's `getblock` (verbosity 2) JSON of the transaction:
/// (address, sats) each, the address empty for a script without one (the witness
/// commitment).
pub(crate) fn coinbase_outputs(coinbase: &serde_json::Value) -> Vec<(String, u64)> {
    coinbase["vout"]
        .as_array()
        .expect("vout")
        .iter()
        .map(|o| {
            let address = o["scriptPubKey"]["address"].as_str().unwrap_or("");
            let btc = o["value"].as_f64().expect("value");
            let sats = bitcoin::Amount::from_btc(btc).expect("an amount").to_sat();
            (address.to_string(), sats)
        })
        .collect()
}
