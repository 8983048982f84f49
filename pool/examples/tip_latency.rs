//! New tip to last job: how long after a block is found every channel has its new work.
//!
//! Starts the pool in-process, connects `--channels` SV2 clients (one standard channel each,
//! Noise over loopback), then, round after round, makes a new tip and measures the time until
//! the last client received its `SetNewPrevHash` for it.
//!
//! * `--source embedded` (default): the pool's own regtest chain; client 0 submits a share
//!   that is a block, and the clock starts at that submit.
//! * `--source rpc` / `--source ipc`: a real Bitcoin Core on regtest (`bitcoind`, or
//!   `bitcoin-node -ipcbind=unix`; binaries from `STRATA_BITCOIN_CORE_BIN` or
//!   `scripts/bitcoin-core.sh`); the node mines a block itself (`generatetoaddress`), and the
//!   clock starts when that call is sent (the node has the block when it answers: the time
//!   of the call is printed too).
//!
//! ```text
//! cargo run --release -p strata-pool --example tip_latency -- --channels 1000 --rounds 7
//! cargo run --release -p strata-pool --example tip_latency -- --source rpc --channels 100
//! ```
//! Prints `bench tip_to_last_job value=<median ms> unit=ms channels=<n> source=<s>` and each
//! round.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/bitcoin_core.rs"]
mod bitcoin_core;

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_net::sv2::{initiate, Sv2Options};
use strata_pool::config::{Config, SourceKind};
use strata_protocol::common::SetupConnection;
use strata_protocol::mining::{
    MiningMessage, OpenStandardMiningChannel, SubmitSharesStandard, REQUIRES_STANDARD_JOBS,
};
use strata_protocol::wire::{Str0_255, U256};
use strata_protocol::Message;
use strata_work::header::Header;
use strata_work::target::Target;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Barrier};

#[derive(Debug)]
struct Job {
    channel_id: u32,
    job_id: u32,
    version: u32,
    merkle_root: [u8; 32],
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // RUST_LOG=strata_pool=debug shows what the pool does between the rounds
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let channels: usize = arg("--channels", 1000);
    let rounds: usize = arg("--rounds", 7);
    let source: String = arg("--source", String::from("embedded"));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let key = bitcoin_core::TestKey::new(0x51);
    let node = match source.as_str() {
        "embedded" => None,
        "rpc" | "ipc" => {
            let flavor = if source == "rpc" {
                cfg.template_source = SourceKind::Rpc;
                bitcoin_core::Flavor::Bitcoind
            } else {
                cfg.template_source = SourceKind::Ipc;
                bitcoin_core::Flavor::Ipc
            };
            // room for the pool's coinbase with its default 100 payees (see the README)
            let node = bitcoin_core::CoreNode::start(flavor, &["-blockreservedweight=40000"]).await;
            cfg.rpc.block_reserved_weight = 40_000;
            node.generate_to(1, &key.address.to_string()).await;
            cfg.rpc.url = node.rpc_url();
            cfg.rpc.cookie = Some(node.cookie());
            cfg.ipc.socket = Some(node.socket());
            Some(node)
        }
        other => panic!("--source embedded|rpc|ipc, not {other}"),
    };
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let addr = pool.sv2_addr;
    let authority = pool.authority;

    // (client index, when it saw a new tip) for every SetNewPrevHash after the first
    let (tips_tx, mut tips_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let ready = Arc::new(Barrier::new(channels + 1));
    let (job_tx, mut job_rx) = mpsc::unbounded_channel::<(Job, [u8; 32], u32, u32)>();
    // client 0 sends the block shares it is given
    let (sub_tx0, sub_rx0) = mpsc::unbounded_channel::<SubmitSharesStandard>();
    let mut sub_rx0 = Some(sub_rx0);
    for i in 0..channels {
        let tips = tips_tx.clone();
        let ready = ready.clone();
        let job_tx = (i == 0).then(|| job_tx.clone());
        let mut submits = if i == 0 { sub_rx0.take() } else { None };
        tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (rd, wr) = tcp.into_split();
            let (mut reader, mut writer) = initiate(rd, wr, authority, &Sv2Options::default())
                .await
                .unwrap();
            writer
                .send(&SetupConnection {
                    protocol: 0,
                    min_version: 2,
                    max_version: 2,
                    flags: REQUIRES_STANDARD_JOBS,
                    endpoint_host: Str0_255::new("127.0.0.1").unwrap(),
                    endpoint_port: addr.port(),
                    vendor: Str0_255::new("tip_latency").unwrap(),
                    hardware_version: Str0_255::default(),
                    firmware: Str0_255::default(),
                    device_id: Str0_255::default(),
                })
                .await
                .unwrap();
            writer
                .send(&OpenStandardMiningChannel {
                    request_id: 1,
                    user_identity: Str0_255::new(format!("bench.{i}")).unwrap(),
                    nominal_hash_rate: 0.0,
                    max_target: U256([0xff; 32]),
                })
                .await
                .unwrap();
            let mut job: Option<Job> = None;
            let mut first = true;
            loop {
                tokio::select! {
                    m = reader.read_message() => {
                        let Some((_, msg)) = m.unwrap() else { return };
                        match msg {
                            Message::Mining(MiningMessage::NewMiningJob(j)) => {
                                job = Some(Job {
                                    channel_id: j.channel_id,
                                    job_id: j.job_id,
                                    version: j.version,
                                    merkle_root: j.merkle_root.0,
                                });
                            }
                            Message::Mining(MiningMessage::SetNewPrevHash(p)) => {
                                let now = Instant::now();
                                if first {
                                    first = false;
                                    ready.wait().await;
                                } else {
                                    let _ = tips.send((i, now));
                                }
                                if let (Some(tx), Some(j)) = (&job_tx, job.take()) {
                                    let _ = tx.send((j, p.prev_hash.0, p.min_ntime, p.nbits));
                                }
                            }
                            _ => {}
                        }
                    }
                    Some(s) = async { match submits.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                        writer.send(&s).await.unwrap();
                    }
                }
            }
        });
    }
    drop(tips_tx);
    ready.wait().await;
    eprintln!("{channels} channels connected");
    let mut results = Vec::new();
    for round in 0..rounds {
        let (job, prev, ntime, nbits) = job_rx.recv().await.unwrap();
        if let Some(node) = &node {
            let t0 = Instant::now();
            tracing::debug!("round start");
            node.generate_to(1, &key.address.to_string()).await;
            let rpc_ms = t0.elapsed().as_secs_f64() * 1e3;
            let (first_ms, total) = wait_all(&mut tips_rx, channels, t0).await;
            eprintln!(
                "round {round}: generatetoaddress took {rpc_ms:.2} ms, first job after {first_ms:.2} ms, last after {total:.2} ms"
            );
            results.push(total);
            continue;
        }
        let target = Target::from_compact(nbits).unwrap();
        let mut h = Header {
            version: job.version,
            prev_hash: prev,
            merkle_root: job.merkle_root,
            ntime,
            nbits,
            nonce: 0,
        };
        while !h.meets(&target) {
            h.nonce += 1;
        }
        let t0 = Instant::now();
        sub_tx0
            .send(SubmitSharesStandard {
                channel_id: job.channel_id,
                sequence_number: round as u32 + 1,
                job_id: job.job_id,
                nonce: h.nonce,
                ntime: h.ntime,
                version: h.version,
            })
            .unwrap();
        let (first_ms, total) = wait_all(&mut tips_rx, channels, t0).await;
        eprintln!("round {round}: first job after {first_ms:.2} ms, last after {total:.2} ms");
        results.push(total);
    }
    results.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = results[results.len() / 2];
    println!("bench tip_to_last_job value={median:.2} unit=ms channels={channels} source={source}");
    pool.shutdown.cancel();
    pool.wait().await;
    drop(node);
}

/// Waits until every channel saw a new tip; (first, last) in ms after `t0`.
async fn wait_all(
    tips_rx: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    channels: usize,
    t0: Instant,
) -> (f64, f64) {
    let mut seen = vec![false; channels];
    let mut n = 0;
    let mut first = None;
    let mut last = t0;
    while n < channels {
        let (i, t) = tokio::time::timeout(Duration::from_secs(30), tips_rx.recv())
            .await
            .expect("every channel gets the new tip")
            .unwrap();
        if !seen[i] {
            seen[i] = true;
            n += 1;
            first.get_or_insert(t);
            last = last.max(t);
        }
    }
    let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1e3;
    (ms(first.unwrap()), ms(last))
}
