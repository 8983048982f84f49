//! Several upstream channels end to end on 127.0.0.1: five simulated SV1 miners -> strata-proxy
//! with `miners_per_channel = 2` -> strata-pool on its embedded regtest chain. The proxy holds
//! three extended channels on one pool connection, every miner's shares are accepted by the
//! pool, and when the pool dies all three channels reopen on the backup pool while every
//! miner keeps its TCP connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::{
    free_port, get_json, pool_config, pool_url, pool_worker_names, start_pool, sv1_miners, until,
};
use strata_miner::report::{Reporter, Sink};
use strata_pool::server::RunningPool;
use strata_proxy::config::Config;
use tokio_util::sync::CancellationToken;

const MINERS: usize = 5;

async fn pool(dir: &std::path::Path, port: u16) -> RunningPool {
    let mut c = pool_config(dir, SocketAddr::from(([127, 0, 0, 1], port)));
    c.vardiff.shares_per_minute = 120.0;
    start_pool(c).await
}

/// Each miner's (channel, id) -> (connected since, shares the pool accepted).
async fn miners(api: SocketAddr) -> BTreeMap<(u64, u64), (u64, u64)> {
    get_json(format!("http://{api}/api/v1/miners"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                (m["channel"].as_u64().unwrap(), m["id"].as_u64().unwrap()),
                (
                    m["connected_since_ms"].as_u64().unwrap(),
                    m["upstream_accepted"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The active pool's open channel ids, as the proxy's API shows them.
async fn channel_ids(api: SocketAddr, pool: usize) -> Vec<u64> {
    let ups = get_json(format!("http://{api}/api/v1/upstreams")).await;
    if ups[pool]["state"] != "active" {
        return vec![];
    }
    ups[pool]["channel_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_miners_two_per_channel_hold_three_channels_across_a_failover() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let dp = tempfile::tempdir().unwrap();
    let primary = pool(d1.path(), 0).await;
    // the backup's address and key are known up front; it starts only when the primary dies
    let port2 = free_port();
    let backup = pool(d2.path(), port2).await;
    let backup_url = pool_url(&backup);
    backup.shutdown.cancel();
    backup.wait().await;

    let mut cfg = Config {
        upstreams: vec![pool_url(&primary), backup_url],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dp.path().to_path_buf(),
        ..Config::default()
    };
    cfg.sv1.initial_difficulty = 5e-6;
    cfg.sv1.shares_per_minute = 60.0;
    cfg.upstream.miners_per_channel = 2;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();
    let api = proxy.api_addr;

    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    sv1_miners(proxy.sv1_addr, MINERS, &reporter, &stop);

    // three channels on the one pool connection, two miners at most on each
    until("three channels on the primary", 20, async || {
        channel_ids(api, 0).await.len() == 3
    })
    .await;
    let mut ids = channel_ids(api, 0).await;
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct upstream channel ids: {ids:?}");
    let stats = get_json(format!("http://{}/api/v1/stats", primary.api_addr)).await;
    assert_eq!(stats["connections"].as_u64(), Some(1), "{stats}");
    until("every miner listed", 20, async || {
        miners(api).await.len() == MINERS
    })
    .await;
    let listed = miners(api).await;
    let mut per_channel = BTreeMap::<u64, usize>::new();
    for (c, _) in listed.keys() {
        *per_channel.entry(*c).or_default() += 1;
    }
    assert_eq!(
        per_channel.into_values().collect::<Vec<_>>(),
        vec![2, 2, 1],
        "{listed:?}"
    );

    // every miner's shares reach the pool and are accepted there
    until(
        "a share of every miner accepted by the primary",
        40,
        async || {
            let m = miners(api).await;
            m.len() == MINERS && m.values().all(|(_, accepted)| *accepted > 0)
        },
    )
    .await;
    until("every worker at the pool", 20, async || {
        let names = pool_worker_names(primary.api_addr).await;
        (0..MINERS).all(|i| names.iter().any(|n| n.ends_with(&format!("/farm.rig{i}"))))
    })
    .await;
    let before = miners(api).await;

    // the primary dies, the backup comes up: all three channels reopen there
    primary.shutdown.cancel();
    primary.wait().await;
    let backup = pool(d2.path(), port2).await;
    until("three channels on the backup", 30, async || {
        channel_ids(api, 1).await.len() == 3
    })
    .await;
    let stats = get_json(format!("http://{}/api/v1/stats", backup.api_addr)).await;
    assert_eq!(stats["connections"].as_u64(), Some(1), "{stats}");
    until(
        "a new share of every miner accepted by the backup",
        40,
        async || {
            let now = miners(api).await;
            now.len() == MINERS
                && now
                    .iter()
                    .all(|(k, (_, acc))| before.get(k).is_some_and(|(_, was)| acc > was))
        },
    )
    .await;
    // the same connections, on the same channels with the same ids
    let after = miners(api).await;
    assert_eq!(
        after
            .iter()
            .map(|(k, (since, _))| (*k, *since))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|(k, (since, _))| (*k, *since))
            .collect::<Vec<_>>(),
        "every miner kept its TCP connection"
    );
    let stats = get_json(format!("http://{}/api/v1/stats", backup.api_addr)).await;
    assert!(stats["shares_accepted"].as_u64().unwrap() > 0, "{stats}");

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    backup.shutdown.cancel();
    backup.wait().await;
}
