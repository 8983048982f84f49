//! Proxies that chain, end to end on 127.0.0.1: simulated SV1 and SV2 miners -> a farm proxy
//! -> a site proxy -> strata-pool on its embedded regtest chain (Bitcoin Core's consensus).
//! The farm proxy's upstream is an SV2 extended channel on the site proxy's SV2 downstream
//! (the one mining-server core, extended channels included). Blocks found by the miners
//! behind both proxies are accepted by Core, and the pool credits each device by its own
//! worker name: the farm proxy names each forwarded share's worker (extension 0x0002), the
//! site proxy passes that name on.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::{
    get_json, pool_config, pool_url, pool_worker_names, start_pool, sv1_miners_named, until,
};
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_proxy::config::Config;
use strata_proxy::server::RunningProxy;
use tokio_util::sync::CancellationToken;

fn proxy_config(upstream: String, user: &str, dir: &std::path::Path) -> Config {
    let mut c = Config {
        upstreams: vec![upstream],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: Some("127.0.0.1:0".parse().unwrap()),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    c.upstream.user_identity = user.into();
    c.sv1.initial_difficulty = 0.0001;
    c.sv1.shares_per_minute = 60.0;
    c
}

fn proxy_url(p: &RunningProxy) -> String {
    format!(
        "stratum2+tcp://{}/{}",
        p.sv2_addr.unwrap(),
        p.authority.unwrap()
    )
}

fn sv2_miner(
    proxy: &RunningProxy,
    index: usize,
    user: &str,
    channel: ChannelRequest,
    reporter: &Reporter,
    stop: &CancellationToken,
) {
    let connect = Sv2Connect {
        endpoint: Endpoint::parse(&proxy.sv2_addr.unwrap().to_string()).unwrap(),
        authority: proxy.authority,
        options: Sv2Options::default(),
    };
    let cfg = Sv2Config {
        index,
        user: user.into(),
        channel,
        nominal_hashrate: 20_000.0,
        record_latency: false,
    };
    let (reporter, stop) = (reporter.clone(), stop.clone());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miners_behind_a_farm_proxy_behind_a_site_proxy_mine_blocks_under_their_own_names() {
    let dp = tempfile::tempdir().unwrap();
    let ds = tempfile::tempdir().unwrap();
    let df = tempfile::tempdir().unwrap();
    let mut pc = pool_config(dp.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
    pc.vardiff.shares_per_minute = 120.0;
    let pool = start_pool(pc).await;

    let site = strata_proxy::server::start(proxy_config(pool_url(&pool), "site", ds.path()))
        .await
        .unwrap();
    // the site proxy gives each SV2 connection 8 bytes (its SV1 miners' extranonce2): one
    // for the channel's block, 7 for the farm proxy to split among its miners, which asks
    // for the 6 it needs (2 id bytes + a 4-byte extranonce2) and takes the 7 by default
    let farm = strata_proxy::server::start(proxy_config(proxy_url(&site), "farm", df.path()))
        .await
        .unwrap();

    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let sv1: Vec<String> = (0..2).map(|i| format!("farm.rig{i}")).collect();
    sv1_miners_named(farm.sv1_addr, &sv1, &reporter, &stop);
    sv2_miner(
        &farm,
        10,
        "farm.sv2rig",
        ChannelRequest::Standard,
        &reporter,
        &stop,
    );
    sv2_miner(
        &farm,
        11,
        "farm.extrig",
        ChannelRequest::Extended {
            min_extranonce_size: 2,
        },
        &reporter,
        &stop,
    );
    // a miner on the site proxy itself, beside the farm proxy
    sv1_miners_named(site.sv1_addr, &["site.rig0".to_string()], &reporter, &stop);

    // blocks found through both proxies, validated by Bitcoin Core in the pool
    until("blocks at the pool", 120, async || {
        get_json(format!("http://{}/api/v1/stats", pool.api_addr)).await["blocks_found"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    })
    .await;
    // every device by its own name at the pool, under the site proxy's channel
    until("each worker at the pool", 90, async || {
        let names = pool_worker_names(pool.api_addr).await;
        [
            "site/farm.rig0",
            "site/farm.rig1",
            "site/farm.sv2rig",
            "site/farm.extrig",
            "site/site.rig0",
        ]
        .iter()
        .all(|w| names.iter().any(|n| n == w))
    })
    .await;
    let names = pool_worker_names(pool.api_addr).await;
    assert!(
        names.iter().all(|n| n.starts_with("site")),
        "every share came through the site proxy's channel: {names:?}"
    );
    // the site proxy sees the farm proxy as one SV2 miner beside its own SV1 miner (worker
    // names arrive with the miners' first reports); the farm proxy sees its four devices
    let site_api = site.api_addr;
    until("the site proxy's miners", 30, async || {
        let miners = get_json(format!("http://{site_api}/api/v1/miners")).await;
        let list = miners.as_array().unwrap();
        list.len() == 2
            && list
                .iter()
                .any(|m| m["worker"] == "farm" && m["protocol"] == "sv2")
            && list.iter().any(|m| m["worker"] == "site.rig0")
    })
    .await;
    let farm_miners = get_json(format!("http://{}/api/v1/miners", farm.api_addr)).await;
    assert_eq!(farm_miners.as_array().unwrap().len(), 4, "{farm_miners}");
    // the farm proxy's shares reach the pool: its upstream acknowledged them
    let farm_stats = get_json(format!("http://{}/api/v1/stats", farm.api_addr)).await;
    assert!(
        farm_stats["shares_forwarded"].as_u64().unwrap() > 0,
        "{farm_stats}"
    );
    assert!(reporter.acked_total() > 0);

    stop.cancel();
    farm.shutdown.cancel();
    farm.wait().await;
    site.shutdown.cancel();
    site.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}
