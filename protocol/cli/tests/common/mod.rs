//! Helpers shared by the `verify-payout` tests (each test file uses some of them).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bitcoin::{Address, Network, ScriptBuf};
use serde_json::Value;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use tokio_util::sync::CancellationToken;

/// The pools' API token in these tests (a pool without one ignores it).
pub const TOKEN: &str = "verify-payout-test-token";

/// Each simulated miner's hashrate (h/s).
const HASHRATE: f64 = 50_000.0;

/// A distinct regtest address per miner.
pub fn address(i: u8) -> String {
    Address::p2wsh(&ScriptBuf::from(vec![0x51, i]), Network::Regtest).to_string()
}

/// GET `url` with the token, as JSON.
pub async fn get_json(url: String) -> Value {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Starts `n` miners against `pool`, miner `i` paid to [`address`]`(i)` on the channel
/// `channel(i)` asks for; returns their stop token.
pub fn start_miners(
    pool: &strata_pool::server::RunningPool,
    n: u8,
    channel: fn(u8) -> ChannelRequest,
) -> CancellationToken {
    start_miners_from(pool, 0, n, channel)
}

/// [`start_miners`] for miners `first..first + n`.
pub fn start_miners_from(
    pool: &strata_pool::server::RunningPool,
    first: u8,
    n: u8,
    channel: fn(u8) -> ChannelRequest,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    for i in first..first + n {
        let connect = Sv2Connect {
            endpoint: Endpoint::parse(&pool.sv2_addr.to_string()).unwrap(),
            authority: Some(pool.authority),
            options: Sv2Options::default(),
        };
        let cfg = Sv2Config {
            index: usize::from(i),
            user: format!("{}.rig{i}", address(i)),
            channel: channel(i),
            nominal_hashrate: HASHRATE as f32,
            record_latency: false,
        };
        let (reporter, stop) = (reporter.clone(), stop.clone());
        tokio::spawn(async move {
            let mut miner = Sv2Miner::new(cfg).unwrap();
            let pace = Pacing::Hashrate(HASHRATE);
            let _ = run_sv2(&mut miner, &connect, pace, &reporter, &stop).await;
        });
    }
    stop
}

/// Whether the API's block `b` was accepted and its coinbase pays at least two miners.
pub fn accepted_paying_two_miners(b: &Value) -> bool {
    b["status"]["status"] == "accepted"
        && b["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["owner"].as_str().unwrap().starts_with("bcrt1"))
            .count()
            >= 2
}

/// The first block of the pool's API at `api` (newest first) that `wanted`, polling every
/// `poll` for at most `timeout`; panics with the blocks seen and `what` after that.
pub async fn wait_for_block(
    api: std::net::SocketAddr,
    timeout: Duration,
    poll: Duration,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let blocks = get_json(format!("http://{api}/api/v1/blocks?limit=1000")).await;
        if let Some(b) = blocks.as_array().unwrap().iter().find(|b| wanted(b)) {
            return b.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no block {what}: {blocks}"
        );
        tokio::time::sleep(poll).await;
    }
}
