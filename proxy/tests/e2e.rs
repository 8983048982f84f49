//! The proxy end to end on 127.0.0.1: simulated SV1 and SV2 miners -> strata-proxy ->
//! strata-pool on its embedded regtest chain (Bitcoin Core's consensus). Blocks found through
//! the proxy are accepted by Core and the shares are credited to the proxy's channel; the
//! proxy's API shows every miner; killing the primary pool moves the miners' work to the
//! secondary without dropping their connections, and the proxy returns to the primary. A
//! proxy whose pool identity is a bare payout address has its PPLNS part paid to that
//! address, whatever its miners' worker names.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::{
    free_port, get_json, get_text, pool_config, pool_url, pool_worker_names, start_pool,
    sv1_miners, sv1_miners_named, until,
};
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_pool::server::RunningPool;
use strata_proxy::config::Config;
use tokio_util::sync::CancellationToken;

async fn pool(dir: &std::path::Path, port: u16) -> RunningPool {
    let mut c = pool_config(dir, SocketAddr::from(([127, 0, 0, 1], port)));
    c.vardiff.shares_per_minute = 120.0;
    start_pool(c).await
}

fn proxy_config(upstreams: Vec<String>, dir: &std::path::Path) -> Config {
    let mut c = Config {
        upstreams,
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: Some("127.0.0.1:0".parse().unwrap()),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    c.sv1.initial_difficulty = 0.0001;
    c.sv1.shares_per_minute = 60.0;
    c.upstream.stable_secs = 2;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sv1_and_sv2_miners_mine_blocks_through_the_proxy_and_survive_a_failover() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let dp = tempfile::tempdir().unwrap();
    let port1 = free_port();
    let primary = pool(d1.path(), port1).await;
    let secondary = pool(d2.path(), 0).await;
    let proxy = strata_proxy::server::start(proxy_config(
        vec![pool_url(&primary), pool_url(&secondary)],
        dp.path(),
    ))
    .await
    .unwrap();
    let api = proxy.api_addr;

    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    sv1_miners(proxy.sv1_addr, 3, &reporter, &stop);
    {
        let connect = Sv2Connect {
            endpoint: Endpoint::parse(&proxy.sv2_addr.unwrap().to_string()).unwrap(),
            authority: proxy.authority,
            options: Sv2Options::default(),
        };
        let cfg = Sv2Config {
            index: 10,
            user: "farm.sv2rig".into(),
            channel: ChannelRequest::Standard,
            nominal_hashrate: 20_000.0,
            record_latency: false,
        };
        let reporter = reporter.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut m = Sv2Miner::new(cfg).unwrap();
            let _ = run_sv2(
                &mut m,
                &connect,
                Pacing::Hashrate(20_000.0),
                &reporter,
                &stop,
            )
            .await;
        });
    }

    // blocks found through the proxy, validated by Bitcoin Core in the primary pool
    until("blocks on the primary", 90, async || {
        get_json(format!("http://{}/api/v1/stats", primary.api_addr)).await["blocks_found"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    })
    .await;
    // every miner listed at once; worker names arrive with the miners' first reports
    let miners = get_json(format!("http://{api}/api/v1/miners")).await;
    assert_eq!(miners.as_array().unwrap().len(), 4, "{miners}");
    until("worker names in the API", 30, async || {
        let miners = get_json(format!("http://{api}/api/v1/miners")).await;
        let list = miners.as_array().unwrap();
        list.iter().any(|m| m["worker"] == "farm.rig0")
            && list.iter().any(|m| m["worker"] == "farm.sv2rig")
    })
    .await;
    // the pool sees each worker behind the proxy (extension 0x0002), SV1 and SV2 alike,
    // once one of its shares met the upstream target
    until("SV1 and SV2 workers at the pool", 60, async || {
        let names = pool_worker_names(primary.api_addr).await;
        names.iter().any(|n| n.ends_with("/farm.sv2rig"))
            && names.iter().any(|n| n.contains("/farm.rig"))
    })
    .await;
    let acked_before = reporter.acked_total();
    let since = |m: &serde_json::Value| -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = m
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["id"].as_u64().unwrap(),
                    m["connected_since_ms"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort_unstable();
        v
    };
    let connections_before = since(&get_json(format!("http://{api}/api/v1/miners")).await);

    // kill the primary: the miners stay connected, shares flow to the secondary
    primary.shutdown.cancel();
    primary.wait().await;
    until("blocks on the secondary", 60, async || {
        get_json(format!("http://{}/api/v1/stats", secondary.api_addr)).await["shares_accepted"]
            .as_u64()
            .unwrap_or(0)
            >= 5
    })
    .await;
    let stats = get_json(format!("http://{api}/api/v1/stats")).await;
    assert_eq!(
        stats["miners"].as_u64().unwrap(),
        4,
        "no miner dropped: {stats}"
    );
    // the same connections: SV1 miners keep their extranonce1 (the upstream prefix travels in
    // coinbase1), SV2 miners get SetExtranoncePrefix
    assert_eq!(
        since(&get_json(format!("http://{api}/api/v1/miners")).await),
        connections_before,
        "every miner kept its TCP connection"
    );
    assert_eq!(stats["active_pool"].as_u64(), Some(1), "{stats}");
    assert!(reporter.acked_total() > acked_before);

    // the primary comes back on the same address: the proxy returns to it
    let primary = pool(d1.path(), port1).await;
    until("back on the primary", 60, async || {
        get_json(format!("http://{api}/api/v1/stats")).await["active_pool"].as_u64() == Some(0)
    })
    .await;
    let before = get_json(format!("http://{}/api/v1/stats", primary.api_addr)).await
        ["shares_accepted"]
        .as_u64()
        .unwrap();
    until("shares on the returned primary", 60, async || {
        get_json(format!("http://{}/api/v1/stats", primary.api_addr)).await["shares_accepted"]
            .as_u64()
            .unwrap_or(0)
            > before
    })
    .await;
    let ups = get_json(format!("http://{api}/api/v1/upstreams")).await;
    assert_eq!(ups[0]["state"], "active", "{ups}");

    // every share the pools answered was timed from the miner's submit to the answer
    let stats = get_json(format!("http://{api}/api/v1/stats")).await;
    let ack = &stats["upstream_ack_latency_ms"];
    let samples = ack["samples"].as_u64().unwrap();
    assert!(samples > 0, "{stats}");
    assert!(
        samples <= stats["shares_forwarded"].as_u64().unwrap(),
        "{stats}"
    );
    let (p50, p99, max) = (
        ack["p50"].as_f64().unwrap(),
        ack["p99"].as_f64().unwrap(),
        ack["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{stats}");
    let metrics = get_text(format!("http://{api}/metrics")).await;
    assert!(
        metrics.contains("# TYPE strata_proxy_upstream_ack_seconds histogram"),
        "{metrics}"
    );
    // the count may have grown since the stats were read
    let count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("strata_proxy_upstream_ack_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(count >= samples, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "strata_proxy_upstream_ack_seconds_bucket{{le=\"+Inf\"}} {count}"
        )),
        "{metrics}"
    );

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    primary.shutdown.cancel();
    secondary.shutdown.cancel();
    primary.wait().await;
    secondary.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_address_identity_is_paid_for_its_dotted_workers() {
    let dp = tempfile::tempdir().unwrap();
    let dpool = tempfile::tempdir().unwrap();
    let pool = pool(dpool.path(), 0).await;
    // the proxy's channel identity is a bare regtest address: no `.worker` part
    let address = bitcoin::Address::p2wsh(
        &bitcoin::ScriptBuf::from(b"farm payout".to_vec()),
        bitcoin::Network::Regtest,
    );
    let mut cfg = proxy_config(vec![pool_url(&pool)], dp.path());
    cfg.upstream.user_identity = address.to_string();
    let proxy = strata_proxy::server::start(cfg).await.unwrap();

    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    // worker names with dots, tagged on the proxy's shares (extension 0x0002)
    let names = vec!["rig.1".to_owned(), "rig.2".to_owned()];
    sv1_miners_named(proxy.sv1_addr, &names, &reporter, &stop);

    let tagged = format!("{address}/rig.1");
    until("the pool sees the tagged worker", 60, async || {
        pool_worker_names(pool.api_addr).await.contains(&tagged)
    })
    .await;
    // a block whose PPLNS window holds the proxy's shares pays the address
    let paid = |b: &serde_json::Value| {
        b["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["owner"] == address.to_string())
    };
    until("a block paying the proxy's address", 90, async || {
        let blocks = get_json(format!("http://{}/api/v1/blocks", pool.api_addr)).await;
        blocks.as_array().unwrap().iter().any(paid)
    })
    .await;

    // every block with shares in its window pays the address (the only miner) all but the
    // 1 % fee, to its script
    let blocks = get_json(format!("http://{}/api/v1/blocks", pool.api_addr)).await;
    let script = address.script_pubkey().to_hex_string();
    let mut checked = 0;
    for b in blocks.as_array().unwrap() {
        if b["mode"] != "pplns" || b["window"].is_null() {
            continue;
        }
        let reward = b["reward_sats"].as_u64().unwrap();
        let output = b["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["owner"] == address.to_string())
            .unwrap_or_else(|| panic!("the address is not paid: {b}"));
        assert_eq!(output["script_hex"], script.as_str(), "{b}");
        let sats = output["sats"].as_u64().unwrap();
        assert!(sats >= reward / 100 * 98, "{sats} of {reward}: {b}");
        checked += 1;
    }
    assert!(checked > 0, "{blocks}");
    // per-worker statistics keep the worker labels
    let names = pool_worker_names(pool.api_addr).await;
    assert!(names.contains(&tagged), "{names:?}");

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}
