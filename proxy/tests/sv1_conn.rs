//! The SV1 connection tasks over 127.0.0.1 with a fake hub: the workspace's simulated SV1
//! miner gets shares accepted and forwarded (and each forwarded share validates on an
//! upstream-side channel); garbage, an oversized line and a miner that never reads are each
//! closed alone while another miner keeps mining; a miner's first report reaches the hub as
//! soon as it mines; shutdown sends `client.reconnect`.
#![allow(clippy::unwrap_used)]

mod upstream_view;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv1, Endpoint};
use strata_miner::sv1::{Sv1Config as MinerConfig, Sv1Miner};
use strata_protocol::mining::SubmitSharesExtended;
use strata_protocol::B0_32;
use strata_proxy::downstream::sv1::Sv1Config;
use strata_proxy::downstream::sv1_conn::listen_sv1;
use strata_proxy::hub::{HubHandle, HubRequest, Joined, MinerReport, Slot};
use strata_proxy::work::{ForwardShare, UpstreamWork};
use strata_work::channel::ExtendedWork;
use strata_work::extranonce::MinerId;
use strata_work::share::validate_extended;
use strata_work::target::{hashrate_from_target, Target};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upstream_view::upstream_channel;

/// Generous bound for anything a test waits on (a failure, not a synchronization).
const LIMIT: Duration = Duration::from_secs(60);

/// What the fake hub saw.
#[derive(Debug)]
enum HubEvent {
    Joined(MinerId, SocketAddr),
    Left(MinerId),
    Share(ForwardShare),
    Report(MinerReport),
}

struct FakeHub {
    handle: HubHandle,
    work_tx: watch::Sender<Option<Arc<UpstreamWork>>>,
    events: mpsc::UnboundedReceiver<HubEvent>,
    _task: JoinHandle<()>,
}

fn fake_hub() -> FakeHub {
    let (req_tx, mut req_rx) = mpsc::channel::<HubRequest>(64);
    let (work_tx, work_rx) = watch::channel(None);
    let (ev_tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let work_rx: watch::Receiver<Option<Arc<UpstreamWork>>> = work_rx;
        let mut next = 1u32;
        while let Some(r) = req_rx.recv().await {
            let ev = match r {
                HubRequest::Join { peer, reply } => {
                    let miner = MinerId(next);
                    next += 1;
                    let _ = reply.send(Ok(Joined {
                        slot: Slot { miner },
                        channel: 0,
                        work: work_rx.clone(),
                    }));
                    HubEvent::Joined(miner, peer)
                }
                HubRequest::Leave { miner, .. } => HubEvent::Left(miner),
                HubRequest::Share(s) => HubEvent::Share(s),
                HubRequest::Report { report, .. } => HubEvent::Report(report),
            };
            let _ = ev_tx.send(ev);
        }
    });
    FakeHub {
        handle: HubHandle { requests: req_tx },
        work_tx,
        events,
        _task: task,
    }
}

impl FakeHub {
    async fn next(&mut self) -> HubEvent {
        let ev = tokio::time::timeout(LIMIT, self.events.recv()).await;
        ev.expect("hub event in time").expect("hub running")
    }
}

fn work(seq: u64, coinbase_pad: usize) -> Arc<UpstreamWork> {
    let mut prefix = hex::decode(
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff\
         1703a08601",
    )
    .unwrap();
    prefix.extend(std::iter::repeat_n(0x51, coinbase_pad));
    let suffix = hex::decode(
        "ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    Arc::new(UpstreamWork {
        epoch: 1,
        seq,
        job_id: 1000 + seq as u32,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        version_mask: 0x1fff_e000,
        prev_hash: [7; 32],
        nbits: 0x1d00_ffff,
        min_ntime: now,
        extended: ExtendedWork::new(
            Bytes::from(prefix.clone()),
            Bytes::from(suffix.clone()),
            Arc::from(vec![[0x33; 32]]),
        ),
        coinbase_prefix: Bytes::from(prefix),
        coinbase_suffix: Bytes::from(suffix),
        merkle_path: Arc::from(vec![[0x33; 32]]),
        extranonce_prefix: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
        extranonce_size: 8,
        id_width: 2,
        extranonce2_size: 6,
        upstream_target: Target::MAX,
        clean: seq == 1,
        route: None,
    })
}

fn proxy_config() -> Arc<Sv1Config> {
    Arc::new(Sv1Config {
        initial_difficulty: 1e-6,
        write_timeout: Duration::from_millis(500),
        max_malformed_lines: 3,
        ..Sv1Config::default()
    })
}

/// The forwarded share re-validated as the upstream would.
fn validate_upstream(w: &UpstreamWork, f: &ForwardShare) {
    let mut ch = upstream_channel(w, 7);
    let r = validate_extended(
        &mut ch,
        &SubmitSharesExtended {
            channel_id: 7,
            sequence_number: 1,
            job_id: f.job_id,
            nonce: f.nonce,
            ntime: f.ntime,
            version: f.version,
            extranonce: B0_32::new(&f.extranonce).unwrap(),
        },
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    assert!(r.is_ok(), "upstream rejects {f:?}: {r:?}");
}

struct Proxy {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

async fn start_proxy(hub: &FakeHub, max_per_ip: usize) -> Proxy {
    start_proxy_with(hub, max_per_ip, proxy_config()).await
}

async fn start_proxy_with(hub: &FakeHub, max_per_ip: usize, cfg: Arc<Sv1Config>) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(listen_sv1(
        listener,
        hub.handle.clone(),
        cfg,
        max_per_ip,
        shutdown.clone(),
    ));
    Proxy {
        addr,
        shutdown,
        task,
    }
}

/// Starts a simulated miner that stops after `goal` acknowledged shares.
fn start_miner(addr: SocketAddr, index: usize, goal: u64) -> JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let stop = CancellationToken::new();
        let reporter = Reporter::new(Sink::Silent, Some(goal), stop.clone());
        let mut miner = Sv1Miner::new(MinerConfig::new(index, format!("farm.rig{index}")));
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let r = tokio::time::timeout(
            LIMIT,
            run_sv1(
                &mut miner,
                &endpoint,
                Pacing::ShareRate(40.0),
                &reporter,
                &stop,
            ),
        )
        .await
        .expect("miner reached its goal in time");
        r.expect("miner ran without error");
        let s = miner.stats();
        (s.acknowledged, s.rejected.values().sum())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_miners_get_shares_accepted_and_forwarded() {
    let mut hub = fake_hub();
    let w = work(1, 0);
    hub.work_tx.send_replace(Some(w.clone()));
    let proxy = start_proxy(&hub, 16).await;

    let a = start_miner(proxy.addr, 0, 12);
    let b = start_miner(proxy.addr, 1, 12);
    // every event until both miners reached their goal, disconnected and left
    let mut joined = HashMap::new();
    let mut per_miner: HashMap<MinerId, u64> = HashMap::new();
    let mut left = 0;
    let mut last_reports = 0;
    while left < 2 {
        match hub.next().await {
            HubEvent::Joined(m, p) => {
                joined.insert(m, p);
            }
            HubEvent::Share(f) => {
                validate_upstream(&w, &f);
                assert!(f.worker.starts_with("farm.rig"));
                *per_miner.entry(f.miner).or_default() += 1;
            }
            HubEvent::Left(m) => {
                assert!(joined.contains_key(&m));
                left += 1;
            }
            HubEvent::Report(r) if !r.connected => {
                assert_eq!(r.protocol, "sv1");
                assert!(r.accepted >= 12, "{r:?}");
                assert!(r.user_agent.starts_with("strata-miner/"));
                last_reports += 1;
            }
            HubEvent::Report(_) => {}
        }
    }
    let (acked_a, rejected_a) = a.await.unwrap();
    let (acked_b, rejected_b) = b.await.unwrap();
    assert!(acked_a >= 12 && acked_b >= 12);
    assert_eq!((rejected_a, rejected_b), (0, 0));
    assert_eq!(joined.len(), 2);
    assert_eq!(last_reports, 2, "a last report before each leave");
    assert_eq!(per_miner.len(), 2, "both miners forwarded shares");
    // shares still in flight when a miner stopped are forwarded but not acknowledged
    assert!(
        per_miner.values().sum::<u64>() >= acked_a + acked_b,
        "every acknowledged share was forwarded (upstream target = MAX)"
    );
    proxy.shutdown.cancel();
    tokio::time::timeout(LIMIT, proxy.task)
        .await
        .unwrap()
        .unwrap();
}

/// Reads lines until the server closes; returns them.
async fn read_until_closed(stream: TcpStream) -> Vec<String> {
    let mut r = BufReader::new(stream);
    let mut lines = Vec::new();
    tokio::time::timeout(LIMIT, async {
        loop {
            let mut l = String::new();
            match r.read_line(&mut l).await {
                Ok(0) | Err(_) => break,
                Ok(_) => lines.push(l),
            }
        }
    })
    .await
    .expect("closed by the proxy in time");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_are_closed_alone_while_a_miner_keeps_mining() {
    let mut hub = fake_hub();
    hub.work_tx.send_replace(Some(work(1, 0)));
    let proxy = start_proxy(&hub, 16).await;
    let good = start_miner(proxy.addr, 0, 1_000_000);

    // garbage beyond the malformed-line budget (the first line starts like JSON)
    let mut garbage = TcpStream::connect(proxy.addr).await.unwrap();
    garbage
        .write_all(b"{\"id\":1,\nhello\n\x00\x01\x02\n[1,2]\nmore garbage\n")
        .await
        .unwrap();
    // not JSON-RPC from the first byte: closed at once
    let mut not_json = TcpStream::connect(proxy.addr).await.unwrap();
    not_json.write_all(b"hello").await.unwrap();
    // an oversized line (no newline ever)
    let mut big = TcpStream::connect(proxy.addr).await.unwrap();
    big.write_all(&vec![b'{'; 5000]).await.unwrap();
    // a miner that subscribes and never reads
    let mut deaf = TcpStream::connect(proxy.addr).await.unwrap();
    let deaf_addr = deaf.local_addr().unwrap();
    deaf.write_all(
        b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n\
          {\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"deaf\",\"x\"]}\n",
    )
    .await
    .unwrap();

    let garbage_lines = read_until_closed(garbage).await;
    assert_eq!(garbage_lines.len(), 4, "{garbage_lines:?}");
    assert!(garbage_lines.iter().all(|l| l.contains("-32700")));
    let not_json_lines = read_until_closed(not_json).await;
    assert_eq!(not_json_lines.len(), 1, "{not_json_lines:?}");
    assert!(
        not_json_lines[0].contains("not JSON-RPC"),
        "{not_json_lines:?}"
    );
    let big_lines = read_until_closed(big).await;
    assert_eq!(big_lines.len(), 1);
    assert!(big_lines[0].contains("longer than 4096"), "{big_lines:?}");

    // feed new work (about 50 KB notifies) until the deaf miner's writes time out
    let mut joined: HashMap<MinerId, SocketAddr> = HashMap::new();
    let mut deaf_id = None;
    let mut seq = 1;
    let mut good_shares_after = 0;
    let mut deaf_left = false;
    while !deaf_left || good_shares_after < 5 {
        let ev = tokio::select! {
            ev = hub.next() => ev,
            () = tokio::time::sleep(Duration::from_millis(10)), if !deaf_left => {
                seq += 1;
                hub.work_tx.send_replace(Some(work(seq, 25_000)));
                continue;
            }
        };
        match ev {
            HubEvent::Joined(m, p) => {
                if p == deaf_addr {
                    deaf_id = Some(m);
                }
                joined.insert(m, p);
            }
            HubEvent::Left(m) if Some(m) == deaf_id => deaf_left = true,
            HubEvent::Left(m) => panic!("miner {m:?} ({:?}) left", joined.get(&m)),
            HubEvent::Share(f) if deaf_left && Some(f.miner) != deaf_id => good_shares_after += 1,
            _ => {}
        }
    }
    assert!(seq > 2, "the deaf miner was closed by the write timeout");
    assert!(!good.is_finished(), "the good miner is still mining");

    // shutdown: the good miner is told to reconnect; the listener returns
    let mut watcher = TcpStream::connect(proxy.addr).await.unwrap();
    watcher
        .write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await
        .unwrap();
    let mut first = [0u8; 1];
    tokio::time::timeout(LIMIT, watcher.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    proxy.shutdown.cancel();
    let lines = read_until_closed(watcher).await;
    assert!(
        lines.last().unwrap().contains("client.reconnect"),
        "{lines:?}"
    );
    tokio::time::timeout(LIMIT, proxy.task)
        .await
        .unwrap()
        .unwrap();
    good.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_address_limit_are_closed_at_once() {
    let hub = fake_hub();
    hub.work_tx.send_replace(Some(work(1, 0)));
    let proxy = start_proxy(&hub, 1).await;
    let mut first = TcpStream::connect(proxy.addr).await.unwrap();
    first
        .write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await
        .unwrap();
    let mut r = BufReader::new(&mut first);
    let mut l = String::new();
    tokio::time::timeout(LIMIT, r.read_line(&mut l))
        .await
        .unwrap()
        .unwrap();
    assert!(l.contains("\"0001\",6]"), "{l}");
    let second = TcpStream::connect(proxy.addr).await.unwrap();
    assert!(read_until_closed(second).await.is_empty());
    proxy.shutdown.cancel();
    tokio::time::timeout(LIMIT, proxy.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_miner_is_closed_at_the_idle_timeout_and_leaves_the_hub() {
    let mut hub = fake_hub();
    hub.work_tx.send_replace(Some(work(1, 0)));
    let cfg = Arc::new(Sv1Config {
        idle_timeout: Duration::from_millis(300),
        ..(*proxy_config()).clone()
    });
    let proxy = start_proxy_with(&hub, 4, cfg.clone()).await;
    let mut quiet = TcpStream::connect(proxy.addr).await.unwrap();
    quiet
        .write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await
        .unwrap();
    let lines = read_until_closed(quiet).await;
    assert_eq!(
        lines.len(),
        3,
        "subscribe answer, difficulty, job: {lines:?}"
    );
    let HubEvent::Joined(m, _) = hub.next().await else {
        panic!("join first")
    };
    // mining started: its first report comes at once (not after the 10 s report interval,
    // longer than this miner lives), with the hashrate its difficulty implies
    let HubEvent::Report(first) = hub.next().await else {
        panic!("an early report next")
    };
    assert!(first.connected);
    assert_eq!((first.miner, first.accepted), (m, 0));
    let implied = hashrate_from_target(
        &Target::from_difficulty(cfg.initial_difficulty).unwrap(),
        cfg.vardiff.shares_per_minute,
    )
    .unwrap();
    assert_eq!(first.hashrate, implied);
    loop {
        match hub.next().await {
            HubEvent::Left(left) => {
                assert_eq!(left, m);
                break;
            }
            HubEvent::Report(r) => assert!(!r.connected),
            other => panic!("{other:?}"),
        }
    }
    proxy.shutdown.cancel();
    tokio::time::timeout(LIMIT, proxy.task)
        .await
        .unwrap()
        .unwrap();
}
