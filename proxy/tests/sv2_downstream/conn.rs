//! The connection task over TCP with a simulated SV2 miner: Noise and plaintext, and a
//! garbage client closed alone.

use super::*;

// -------------------------------------------------------------------------------------------
// tokio: serve_sv2 / listen_sv2 with a fake hub and the simulated SV2 miner
// -------------------------------------------------------------------------------------------

/// What the fake hub saw (joins are answered by the hub itself).
#[derive(Debug)]
enum Seen {
    Join,
    Share(ForwardShare),
    Report(MinerReport),
    Leave(MinerId),
}

fn fake_hub(
    work: UpstreamWork,
) -> (
    HubHandle,
    mpsc::UnboundedReceiver<Seen>,
    watch::Sender<Option<Arc<UpstreamWork>>>,
) {
    let (req_tx, mut req_rx) = mpsc::channel::<HubRequest>(64);
    let (work_tx, work_rx) = watch::channel(Some(Arc::new(work)));
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let work_rx: watch::Receiver<Option<Arc<UpstreamWork>>> = work_rx;
        let mut next = 7u32;
        while let Some(req) = req_rx.recv().await {
            let seen = match req {
                HubRequest::Join { reply, .. } => {
                    let _ = reply.send(Ok(Joined {
                        slot: Slot {
                            miner: MinerId(next),
                        },
                        channel: 0,
                        work: work_rx.clone(),
                    }));
                    next += 1;
                    Seen::Join
                }
                HubRequest::Share(s) => Seen::Share(s),
                HubRequest::Report { report, .. } => Seen::Report(report),
                HubRequest::Leave { miner, .. } => Seen::Leave(miner),
            };
            let _ = seen_tx.send(seen);
        }
    });
    (HubHandle { requests: req_tx }, seen_rx, work_tx)
}

fn live_work() -> UpstreamWork {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    UpstreamWork {
        min_ntime: now,
        ..work(1, 1, 42, 0x5a, &[0xaa, 0xbb], true)
    }
}

fn context(responder: Responder, plaintext: bool) -> Sv2DownContext {
    let mut ctx = Sv2DownContext::new(tokio::sync::watch::channel(Arc::new(responder)).1);
    ctx.plaintext = plaintext;
    ctx.session = Arc::new(Sv2DownConfig {
        vardiff: VardiffConfig {
            shares_per_minute: 120.0,
            ..VardiffConfig::default()
        },
        ..Sv2DownConfig::default()
    });
    ctx.report_interval = Duration::from_millis(300);
    ctx
}

fn responder() -> (PublicKey, Responder) {
    let authority = AuthorityKeypair::generate();
    let server = StaticKeypair::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let cert = Certificate::issue(&authority, &server.public_key(), now - 3600, now + 86_400);
    (authority.public_key(), Responder::new(server, cert))
}

/// Runs one simulated SV2 miner (standard channel) until `goal` shares are acknowledged.
async fn mine_until(addr: SocketAddr, authority: Option<PublicKey>, goal: u64) -> u64 {
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, Some(goal), stop.clone());
    let connect = Sv2Connect {
        endpoint: Endpoint::parse(&addr.to_string()).unwrap(),
        authority,
        options: Sv2Options::default(),
    };
    let cfg = Sv2Config {
        index: 0,
        user: "farm.rig1".into(),
        channel: ChannelRequest::Standard,
        nominal_hashrate: 20_000.0,
        record_latency: false,
    };
    let mut miner = Sv2Miner::new(cfg).unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(90),
        run_sv2(
            &mut miner,
            &connect,
            Pacing::Hashrate(20_000.0),
            &reporter,
            &stop,
        ),
    )
    .await
    .expect("the miner reached its goal in time");
    r.unwrap();
    miner.stats().acknowledged
}

/// Collects what the hub saw until the miner left.
async fn until_leave(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
    let mut all = vec![];
    loop {
        let s = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("the connection task leaves the hub")
            .unwrap();
        let leave = matches!(s, Seen::Leave(_));
        all.push(s);
        if leave {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_sv2_miner_over_noise_gets_shares_acknowledged_and_a_garbage_client_is_closed_alone(
) {
    let (authority, responder) = responder();
    let (hub, mut seen, _work_tx) = fake_hub(live_work());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(listen_sv2(
        listener,
        hub,
        Arc::new(context(responder, false)),
        8,
        shutdown.clone(),
    ));

    let miner = tokio::spawn(mine_until(addr, Some(authority), 6));
    // meanwhile a client sends garbage: its connection is closed, the miner's is not
    let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
    garbage.write_all(&[0x5a; 300]).await.unwrap();
    let mut sink = vec![];
    let closed =
        tokio::time::timeout(Duration::from_secs(15), garbage.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the garbage client was not disconnected");

    let acknowledged = miner.await.unwrap();
    assert!(acknowledged >= 6, "{acknowledged} shares acknowledged");

    let all = until_leave(&mut seen).await;
    let joins = all.iter().filter(|s| matches!(s, Seen::Join)).count();
    assert_eq!(joins, 1, "one miner id per connection: {all:?}");
    let shares: Vec<&ForwardShare> = all
        .iter()
        .filter_map(|s| match s {
            Seen::Share(f) => Some(f),
            _ => None,
        })
        .collect();
    assert!(!shares.is_empty(), "no share met the upstream target");
    for f in &shares {
        assert_eq!(f.miner, MinerId(7));
        assert_eq!(f.worker, "farm.rig1");
        assert_eq!(f.job_id, 42);
        assert_eq!(f.extranonce.as_ref(), [0, 7, 0, 0, 0, 0, 0, 0]);
    }
    let last = all
        .iter()
        .rev()
        .find_map(|s| match s {
            Seen::Report(r) => Some(r),
            _ => None,
        })
        .expect("a final report");
    assert!(!last.connected);
    assert_eq!(last.protocol, "sv2");
    assert!(last.accepted >= 6, "{last:?}");
    assert!(matches!(all.last(), Some(Seen::Leave(MinerId(7)))));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the listener stops")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_option_serves_the_simulated_miner_without_noise() {
    let (_authority, responder) = responder();
    let (hub, mut seen, _work_tx) = fake_hub(live_work());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(listen_sv2(
        listener,
        hub,
        Arc::new(context(responder, true)),
        8,
        shutdown.clone(),
    ));
    let acknowledged = mine_until(addr, None, 3).await;
    assert!(acknowledged >= 3);
    let all = until_leave(&mut seen).await;
    assert!(all.iter().any(|s| matches!(s, Seen::Share(_))));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the listener stops")
        .unwrap();
}
