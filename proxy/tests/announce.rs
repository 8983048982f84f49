//! The proxy tells the pool its miners' hashrate within seconds of their arrival, on
//! 127.0.0.1: four simulated SV1 miners (strata-miner, 20 kH/s each) -> strata-proxy ->
//! strata-pool on its embedded regtest chain.
//!
//! The proxy opens its upstream channel with a nominal hashrate of 0, so the pool starts the
//! channel at its minimum difficulty, where every miner share is forwarded. Each miner's
//! first report goes to the hub as soon as it mines (with the hashrate its starting
//! difficulty implies, before vardiff has any evidence) and the hub's first `UpdateChannel`
//! follows a second later. Checked on both sides: the proxy's API shows the announced
//! hashrate within a few seconds and of the miners' order, and the pool's target for the
//! channel follows it (the difficulty the pool credits the proxy's shares at rises from its
//! minimum to about what that hashrate calls for, sooner than the pool's own vardiff could:
//! it first checks 15 s after the open and, seeing twice its share rate, at most doubles).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{get_json, pool_config, pool_url, start_pool, sv1_miners, until};
use strata_miner::report::{Reporter, Sink};
use strata_proxy::config::Config;
use tokio_util::sync::CancellationToken;

const MINERS: usize = 4;
/// strata-miner's pace in [`sv1_miners`].
const MINER_HASHRATE: f64 = 20_000.0;
/// The pool's share rate per channel.
const POOL_SHARES_PER_MINUTE: f64 = 120.0;

/// The proxy's channel 0 as its API shows it.
async fn channel(api: SocketAddr) -> serde_json::Value {
    let ups = get_json(format!("http://{api}/api/v1/upstreams")).await;
    ups[0]["channels"][0].clone()
}

/// Shares the pool accepted from the proxy and the sum of the difficulties it credited them
/// at (each share counts at its job's target: the pool's target for the channel).
async fn credited(pool_api: SocketAddr) -> (u64, f64) {
    let workers = get_json(format!("http://{pool_api}/api/v1/workers")).await;
    workers
        .as_array()
        .unwrap()
        .iter()
        .fold((0, 0.0), |(n, d), w| {
            (
                n + w["shares_accepted"].as_u64().unwrap(),
                d + w["difficulty_accepted"].as_f64().unwrap(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_gets_the_miners_hashrate_within_seconds() {
    let dpool = tempfile::tempdir().unwrap();
    let dproxy = tempfile::tempdir().unwrap();
    let mut pc = pool_config(dpool.path(), "127.0.0.1:0".parse().unwrap());
    pc.vardiff.shares_per_minute = POOL_SHARES_PER_MINUTE;
    let pool_min_difficulty = pc.vardiff.min_difficulty;
    let pool = start_pool(pc).await;

    let mut cfg = Config {
        upstreams: vec![pool_url(&pool)],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dproxy.path().to_path_buf(),
        ..Config::default()
    };
    // a starting difficulty about right for the miners: about 1 share per second each,
    // implying 5e-6 x 2^32 x 60 / 60 ≈ 21.5 kH/s
    cfg.sv1.initial_difficulty = 5e-6;
    cfg.sv1.shares_per_minute = 60.0;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();
    let api = proxy.api_addr;
    until("the proxy's channel open at the pool", 20, async || {
        channel(api).await["state"] == "open"
    })
    .await;
    assert_eq!(channel(api).await["announced_hashrate"].as_f64(), Some(0.0));

    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let started = Instant::now();
    sv1_miners(proxy.sv1_addr, MINERS, &reporter, &stop);

    // the proxy announces within seconds (the report interval and the hub's debounce are
    // 10 s each: a wait for either fails this)
    until("the proxy announced its miners' hashrate", 5, async || {
        channel(api).await["announced_hashrate"].as_f64().unwrap() > 0.0
    })
    .await;
    let announced_after = started.elapsed();
    let announced = channel(api).await["announced_hashrate"].as_f64().unwrap();
    let actual = MINERS as f64 * MINER_HASHRATE;
    assert!(
        announced > actual / 2.0 && announced < actual * 2.0,
        "announced {announced} h/s for {actual} h/s of miners"
    );
    eprintln!("announced {announced:.0} h/s after {announced_after:.1?}");

    // the pool follows: its target for the channel is set from the announced hashrate
    // (its jobs from then on carry it; on regtest every share is a block, so new jobs come
    // with every share)
    let called_for = announced * 60.0 / (POOL_SHARES_PER_MINUTE * 2f64.powi(32));
    assert!(called_for > 5.0 * pool_min_difficulty, "{called_for}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (n0, d0) = credited(pool.api_addr).await;
    // within 14 s of the miners' start at most: the pool's own vardiff (at most one check
    // by then, seeing twice its share rate) could not have raised it half this far
    until(
        "the pool credits the proxy's shares at the announced hashrate's difficulty",
        8,
        async || {
            let (n, d) = credited(pool.api_addr).await;
            n >= n0 + 4 && (d - d0) / (n - n0) as f64 > called_for / 2.0
        },
    )
    .await;
    let (n, d) = credited(pool.api_addr).await;
    let per_share = (d - d0) / (n - n0) as f64;
    eprintln!(
        "pool credits {per_share:.3e} per share (minimum {pool_min_difficulty:.0e}, called for \
         {called_for:.3e}) within {:.1?} of the miners' start",
        started.elapsed()
    );

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}
