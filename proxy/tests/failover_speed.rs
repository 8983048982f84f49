//! Failover speed end to end (issue 15): three SV1 miners -> strata-proxy -> two
//! strata-pools on their embedded regtest chains, the primary stopped (the proxy sees its
//! connection end at once, as after `kill -9`). The first share the backup accepts must come
//! within 2 s of the primary's death, and the backup's share rate must be about the
//! primary's.
//!
//! The time to a first accepted share is the switch plus the wait for a share meeting the
//! new pool's target: the pools here ask for 4 shares/s (the default of 6 per minute would
//! make a 10 s wait ordinary, switch or no switch).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{get_json, pool_config, pool_url, start_pool, sv1_miners};
use strata_miner::report::{Reporter, Sink};
use strata_pool::server::RunningPool;
use strata_proxy::config::Config;
use tokio_util::sync::CancellationToken;

/// Shares per minute the pools ask of the proxy's channel.
const POOL_SPM: f64 = 240.0;

async fn pool(dir: &std::path::Path) -> RunningPool {
    let mut c = pool_config(dir, SocketAddr::from(([127, 0, 0, 1], 0)));
    c.vardiff.shares_per_minute = POOL_SPM;
    start_pool(c).await
}

/// Shares each pool accepted from the proxy, as the proxy's API counts them.
async fn accepted(api: SocketAddr) -> (u64, u64) {
    let ups = get_json(format!("http://{api}/api/v1/upstreams")).await;
    let n = |i: usize| ups[i]["shares_accepted"].as_u64().unwrap_or(0);
    (n(0), n(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_accepts_a_share_within_two_seconds_of_the_primarys_death() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let dp = tempfile::tempdir().unwrap();
    let primary = pool(d1.path()).await;
    let backup = pool(d2.path()).await;
    let mut cfg = Config {
        upstreams: vec![pool_url(&primary), pool_url(&backup)],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dp.path().to_path_buf(),
        ..Config::default()
    };
    // the miners' own shares come faster than the pool's, so that the pool's target decides
    cfg.sv1.initial_difficulty = 1e-5;
    cfg.sv1.shares_per_minute = 120.0;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();
    let api = proxy.api_addr;
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    sv1_miners(proxy.sv1_addr, 3, &reporter, &stop);

    // warm-up: the pool's vardiff settles on the proxy's channel
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(15) || accepted(api).await.0 < 20 {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the primary accepts no shares"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let window = Duration::from_secs(10);
    let b0 = accepted(api).await.0;
    tokio::time::sleep(window).await;
    let before = (accepted(api).await.0 - b0) as f64 / window.as_secs_f64();

    let killed = Instant::now();
    primary.shutdown.cancel();
    primary.wait().await;
    let first = loop {
        if accepted(api).await.1 > 0 {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no share accepted by the backup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(window.saturating_sub(killed.elapsed())).await;
    let after = accepted(api).await.1 as f64 / killed.elapsed().as_secs_f64();
    eprintln!(
        "first share accepted by the backup {:.2} s after the primary's death; \
         {before:.2} shares/s before, {after:.2} shares/s in the {:.0} s after",
        first.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    assert!(
        first < Duration::from_secs(2),
        "first share accepted by the backup {first:?} after the primary's death"
    );
    assert!(
        after >= before / 2.0,
        "{after:.2} shares/s on the backup, {before:.2} on the primary"
    );

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    backup.shutdown.cancel();
    backup.wait().await;
}
