//! Hostile clients on the proxy's SV1 port while honest miners mine through it: connections
//! that send nothing, random bytes or a malformed JSON line are closed within the handshake
//! timeout (random bytes at once, on their first byte), a subscribed and authorized
//! connection that sends more malformed lines than its budget is closed at the next one, and
//! the honest miners are not disturbed: every one stays connected and keeps getting shares
//! accepted. The connections that never subscribe take no miner slot (`max_miners` is
//! smaller than their number); the few that do (past the budget) take one each until closed.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{get_json, pool_config, pool_url, start_pool, sv1_miners, until};
use strata_miner::report::Reporter;
use strata_proxy::config::Config;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Hostile connections of each kind that never subscribes.
const EACH: usize = 50;
/// Connections that subscribe and authorize, then send malformed lines (each holds a slot).
const PAST_BUDGET: usize = 5;
/// The handshake timeout the proxy is given here.
const HANDSHAKE_SECS: u64 = 3;
const HONEST: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Connects and sends nothing.
    Silent,
    /// Sends random bytes (no newline).
    Random,
    /// Sends one line that starts like JSON but is not.
    MalformedLine,
    /// Subscribes and authorizes, then sends malformed lines past the budget.
    PastBudget,
}

/// Opens one hostile connection of `kind` (number `i`) and returns how long the proxy took to
/// close it (end of stream or reset), or `None` if still open after `limit`.
async fn hostile(
    addr: std::net::SocketAddr,
    kind: Kind,
    i: usize,
    limit: Duration,
) -> Option<Duration> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    match kind {
        Kind::Silent => {}
        Kind::Random => {
            // xorshift bytes; the first is never `{` nor whitespace
            let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut bytes: Vec<u8> = (0..200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .filter(|&b| b != b'\n')
                .collect();
            bytes[0] |= 0x80;
            let _ = tcp.write_all(&bytes).await;
        }
        Kind::MalformedLine => {
            let _ = tcp
                .write_all(b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\n")
                .await;
        }
        Kind::PastBudget => {
            let hello = format!(
                "{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"hostile/1.0\"]}}\n\
                 {{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"bad.{i}\",\"x\"]}}\n"
            );
            let _ = tcp.write_all(hello.as_bytes()).await;
            // well past the handshake timeout: only the budget may close it
            tokio::time::sleep(Duration::from_secs(HANDSHAKE_SECS + 1)).await;
            let junk = "{not json\n".repeat(17);
            let _ = tcp.write_all(junk.as_bytes()).await;
        }
    }
    let mut buf = [0u8; 4096];
    let read_until_closed = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return t0.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_until_closed).await.ok()
}

/// The peer addresses of the miners the proxy's API lists as connected, sorted.
async fn connected_addresses(api: std::net::SocketAddr) -> Vec<String> {
    let miners = get_json(format!("http://{api}/api/v1/miners")).await;
    let mut a: Vec<String> = miners
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["connected"] == true)
        .map(|m| m["address"].as_str().unwrap().to_string())
        .collect();
    a.sort();
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_are_closed_and_honest_miners_keep_mining() {
    let pool_dir = tempfile::tempdir().unwrap();
    let mut pc = pool_config(pool_dir.path(), "127.0.0.1:0".parse().unwrap());
    // every share is a block on regtest: few new tips
    pc.min_block_interval_ms = 30_000;
    let pool = start_pool(pc).await;
    let proxy_dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        upstreams: vec![pool_url(&pool)],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: proxy_dir.path().to_path_buf(),
        // fewer slots than hostile connections: they must not take any
        max_miners: 16,
        ..Config::default()
    };
    cfg.sv1.initial_difficulty = 0.0001;
    cfg.sv1.shares_per_minute = 60.0;
    cfg.sv1.handshake_timeout_secs = HANDSHAKE_SECS;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();
    let (sv1, api) = (proxy.sv1_addr, proxy.api_addr);

    let stop = CancellationToken::new();
    let reporter = Reporter::silent();
    sv1_miners(sv1, HONEST, &reporter, &stop);
    until("honest miners' first shares", 120, async || {
        reporter.acked_total() >= HONEST as u64
    })
    .await;
    let before = reporter.acked_total();
    let honest_addresses = connected_addresses(api).await;
    assert_eq!(honest_addresses.len(), HONEST, "{honest_addresses:?}");

    // the hostile crowd, all at once
    let limit = Duration::from_secs(HANDSHAKE_SECS * 4 + 10);
    let mut tasks = Vec::new();
    for kind in [
        Kind::Silent,
        Kind::Random,
        Kind::MalformedLine,
        Kind::PastBudget,
    ] {
        let n = if kind == Kind::PastBudget {
            PAST_BUDGET
        } else {
            EACH
        };
        for i in 0..n {
            tasks.push((kind, tokio::spawn(hostile(sv1, kind, i, limit))));
        }
    }
    let handshake = Duration::from_secs(HANDSHAKE_SECS);
    let mut slowest = std::collections::BTreeMap::new();
    for (kind, t) in tasks {
        let closed = t
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a {kind:?} connection still open after {limit:?}"));
        let s = slowest.entry(format!("{kind:?}")).or_insert(Duration::ZERO);
        *s = (*s).max(closed);
        match kind {
            // closed on their first byte, long before the handshake timeout
            Kind::Random => assert!(closed < handshake / 2, "random bytes: {closed:?}"),
            // the handshake timeout, with room for a busy machine
            Kind::Silent | Kind::MalformedLine => {
                assert!(
                    closed >= handshake - Duration::from_millis(100),
                    "{closed:?}"
                );
                assert!(
                    closed < handshake + Duration::from_secs(3),
                    "{kind:?}: {closed:?}"
                )
            }
            // handshaken: only the 17th malformed line closes it
            Kind::PastBudget => {
                assert!(closed > handshake, "{closed:?}");
                assert!(closed < handshake + Duration::from_secs(4), "{closed:?}")
            }
        }
    }
    eprintln!("slowest close per kind: {slowest:?}");

    // the honest miners were not disturbed: all still there, shares still accepted
    until("honest shares after the crowd", 60, async || {
        reporter.acked_total() >= before + 2 * HONEST as u64
    })
    .await;
    until("only the honest miners left", 30, async || {
        let stats = get_json(format!("http://{api}/api/v1/stats")).await;
        stats["miners"].as_u64() == Some(HONEST as u64)
    })
    .await;
    // the same connections as before the crowd: none of them was dropped or reconnected
    assert_eq!(connected_addresses(api).await, honest_addresses);

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}
