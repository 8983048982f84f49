//! The SV1 miner's tokio shell against a tiny SV1 server built from strata_sv1 types, and
//! the load generator against both test servers.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::sv2_server::{Behaviour, Sv2TestServer};
use common::{easy_target, HARD_NBITS};
use futures::StreamExt;
use strata_miner::load::{run_load, LoadConfig, LoadTarget};
use strata_miner::pace::Pacing;
use strata_miner::shell::{run_sv1, Endpoint, Sv2Connect};
use strata_miner::sv1::{Sv1Config, Sv1Miner};
use strata_miner::sv2::ChannelRequest;
use strata_miner::{Reporter, Sink};
use strata_net::sv1::Sv1Codec;
use strata_net::sv2::Sv2Options;
use strata_sv1::{
    ClientMessage, ClientMethod, ConfigureResult, Difficulty, Id, Notify, Response, ServerMethod,
    SubscribeResult, Text,
};
use strata_work::coinbase::txid_from_parts;
use strata_work::merkle::merkle_root_from_path;
use strata_work::sha256d::sha256d;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

const EN1: [u8; 4] = [1, 2, 3, 4];
const MASK: u32 = 0x1fff_e000;

fn notify() -> Notify {
    Notify {
        job_id: Text::from("a1"),
        prev_hash: [0x44; 32],
        coinb1: Bytes::from_static(&[1, 0, 0, 0, 1, 0x99]),
        coinb2: Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]),
        merkle_branch: vec![[0x21; 32]],
        version: 0x2000_0000,
        nbits: HARD_NBITS,
        ntime: 1_700_000_000,
        clean_jobs: true,
    }
}

fn valid(n: &Notify, s: &strata_sv1::Submit) -> bool {
    let txid = txid_from_parts(&n.coinb1, &[&EN1, s.extranonce2.as_bytes()], &n.coinb2);
    let root = merkle_root_from_path(txid, n.merkle_branch.iter());
    let bits = s.version_bits.unwrap_or(0);
    if bits & !MASK != 0 || s.job_id.as_str() != n.job_id.as_str() || s.ntime < n.ntime {
        return false;
    }
    let version = strata_sv1::rolled_version(n.version, bits, MASK);
    let mut h = Vec::with_capacity(80);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&n.prev_hash);
    h.extend_from_slice(&root);
    h.extend_from_slice(&s.ntime.to_le_bytes());
    h.extend_from_slice(&n.nbits.to_le_bytes());
    h.extend_from_slice(&s.nonce.to_le_bytes());
    easy_target().is_met_by(&sha256d(&h))
}

/// A tiny SV1 server: answers configure/subscribe/authorize, then sends a non-JSON line, a
/// show_message, an unknown request, the difficulty and a job; validates every submit.
async fn sv1_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (rd, mut wr) = tcp.into_split();
                let mut lines = FramedRead::new(rd, Sv1Codec::default());
                let n = notify();
                while let Some(Ok(line)) = lines.next().await {
                    let mut out = Vec::new();
                    let Ok(ClientMessage::Request(req)) = ClientMessage::parse(line.freeze())
                    else {
                        continue;
                    };
                    match req.method {
                        ClientMethod::Configure(_) => {
                            let r = ConfigureResult {
                                version_rolling: Some(true),
                                version_rolling_mask: Some(MASK),
                                minimum_difficulty: Some(true),
                                ..Default::default()
                            };
                            Response::configure(req.id, &r).encode(&mut out);
                        }
                        ClientMethod::Subscribe(_) => {
                            let r =
                                SubscribeResult::new(Text::from("s"), Bytes::from_static(&EN1), 4);
                            Response::subscribe(req.id, &r).encode(&mut out);
                        }
                        ClientMethod::Authorize(_) => {
                            Response::bool(req.id, true).encode(&mut out);
                            out.extend_from_slice(b"this line is not json at all\n");
                            ServerMethod::ShowMessage(Text::from("welcome"))
                                .encode(&Id::Null, &mut out);
                            out.extend_from_slice(
                                b"{\"id\":\"v\",\"method\":\"client.get_version\",\"params\":[]}\n",
                            );
                            ServerMethod::SetDifficulty(
                                Difficulty::new(easy_target().difficulty()).expect("difficulty"),
                            )
                            .encode(&Id::Null, &mut out);
                            ServerMethod::Notify(n.clone()).encode(&Id::Null, &mut out);
                        }
                        ClientMethod::Submit(s) => {
                            Response::bool(req.id, valid(&n, &s)).encode(&mut out);
                        }
                        _ => {}
                    }
                    if wr.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sv1_miner_survives_garbage_and_gets_shares_acknowledged() {
    let addr = sv1_server().await;
    let mut miner = Sv1Miner::new(Sv1Config {
        record_latency: true,
        minimum_difficulty: Some(0.01),
        ..Sv1Config::new(0, "bcrt1qtest.sim0")
    });
    let stop = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reporter = Reporter::new(Sink::Channel(tx), Some(5), stop.clone());
    let endpoint = Endpoint::parse(&format!("stratum+tcp://{addr}")).expect("url");
    tokio::time::timeout(
        Duration::from_secs(60),
        run_sv1(
            &mut miner,
            &endpoint,
            Pacing::Hashrate(50_000.0),
            &reporter,
            &stop,
        ),
    )
    .await
    .expect("in time")
    .expect("stopped by the goal");
    let s = miner.stats();
    assert!(s.acknowledged >= 5, "{s:?}");
    assert!(s.rejected.is_empty(), "{s:?}");
    assert_eq!(s.malformed_lines, 1);
    assert_eq!(miner.version_mask(), Some(MASK));
    let mut lines = vec![];
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("malformed line miner=0 error=")));
    assert!(lines
        .iter()
        .any(|l| l == "server message miner=0 text=welcome"));
    assert!(lines
        .iter()
        .any(|l| l == "version mask miner=0 mask=1fffe000"));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("share accepted miner=0 seq=") && l.ends_with("acked_total=5")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_against_sv2_reports_shares_and_latency() {
    let server = Sv2TestServer::start(Behaviour::Mine).await;
    let config = LoadConfig {
        target: LoadTarget::Sv2 {
            connect: Sv2Connect {
                endpoint: Endpoint::parse(&server.addr.to_string()).expect("addr"),
                authority: Some(server.authority),
                options: Sv2Options::default(),
            },
            channel: ChannelRequest::Standard,
        },
        connections: 20,
        rate: 40.0,
        duration: Duration::from_secs(2),
        connect_rate: 1000.0,
        nominal_hashrate: 1.0,
        closed_loop: false,
    };
    let report = run_load(config, CancellationToken::new()).await;
    assert_eq!(report.connections.established, 20, "{report:?}");
    assert_eq!(report.connections.failed, 0, "{report:?}");
    // 40/s for 2 s, minus the ramp and the last round trips
    assert!(report.acknowledged >= 40, "{report:?}");
    assert!(report.submitted <= 100, "{report:?}");
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(report.latency_ms.samples, report.acknowledged);
    assert!(report.latency_ms.p50 <= report.latency_ms.p99);
    assert!(report.latency_ms.p99 <= report.latency_ms.max);
    assert!(report.errors.is_empty(), "{report:?}");
    assert_timeline(&report, Duration::from_secs(2));
    let json: serde_json::Value =
        serde_json::from_str(&report.to_json_line()).expect("json report");
    assert!(
        json["accepted_per_s"].as_f64().expect("rate") > 10.0,
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_against_sv1_reports_shares() {
    let addr = sv1_server().await;
    let config = sv1_load(addr, 10, 20.0, Duration::from_secs(2), false);
    let report = run_load(config, CancellationToken::new()).await;
    assert_eq!(report.connections.established, 10, "{report:?}");
    assert!(report.acknowledged >= 20, "{report:?}");
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(report.latency_ms.samples, report.acknowledged);
    assert_timeline(&report, Duration::from_secs(2));
}

/// Closed loop: each connection submits its next share as soon as the last one is answered,
/// far beyond the `rate` (not used), with never more than one share in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_load_keeps_one_share_in_flight_per_connection() {
    let addr = sv1_server().await;
    let config = sv1_load(addr, 4, 1.0, Duration::from_secs(2), true);
    let report = run_load(config, CancellationToken::new()).await;
    assert_eq!(report.connections.established, 4, "{report:?}");
    // a paced run would have submitted about 2
    assert!(report.acknowledged >= 100, "{report:?}");
    assert!(
        report.submitted - report.acknowledged <= 4,
        "at most one share in flight per connection: {report:?}"
    );
    assert!(report.rejected.is_empty(), "{report:?}");
}

/// A load of `connections` SV1 connections to `addr` (connected at once, 1 H/s each).
fn sv1_load(
    addr: std::net::SocketAddr,
    connections: usize,
    rate: f64,
    duration: Duration,
    closed_loop: bool,
) -> LoadConfig {
    LoadConfig {
        target: LoadTarget::Sv1 {
            endpoint: Endpoint::parse(&addr.to_string()).expect("addr"),
        },
        connections,
        rate,
        duration,
        connect_rate: 1000.0,
        nominal_hashrate: 1.0,
        closed_loop,
    }
}

/// The timeline holds every measured share, in submit order, within the run, with the
/// latencies the percentiles were taken from; and it is written one share per line.
fn assert_timeline(report: &strata_miner::load::LoadReport, duration: Duration) {
    let t = &report.timeline;
    assert_eq!(t.len() as u64, report.latency_ms.samples);
    assert!(t.windows(2).all(|w| w[0].0 <= w[1].0), "submit order");
    let last_us = t.last().expect("shares").0;
    assert!(u128::from(last_us) <= duration.as_micros(), "{last_us} us");
    let max_us = t.iter().map(|s| s.1).max().expect("shares");
    assert_eq!(f64::from(max_us) / 1000.0, report.latency_ms.max);
    let mut out = Vec::new();
    report.write_timeline(&mut out).expect("written");
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(text.lines().count(), t.len());
    let (ms, us) = text
        .lines()
        .next()
        .expect("a line")
        .split_once(' ')
        .expect("two fields");
    assert_eq!(ms, format!("{}.{:03}", t[0].0 / 1000, t[0].0 % 1000));
    assert_eq!(us, t[0].1.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_counts_failed_connections() {
    // nothing listens on this port
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let config = sv1_load(addr, 3, 3.0, Duration::from_millis(500), false);
    let report = run_load(config, CancellationToken::new()).await;
    assert_eq!(report.connections.failed, 3, "{report:?}");
    assert_eq!(report.errors.get("connect-failed"), Some(&3), "{report:?}");
}
