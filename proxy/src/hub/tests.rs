//! The hub's logic with the clock and the upstream side as values.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;
use crate::upstream::{ShareRoute, CODE_STALE_UPSTREAM};
use crate::work::ForwardShare;
use strata_work::extranonce::MinerId;
use strata_work::target::{hashrate_from_target, Target};
use strata_work::vardiff::Vardiff;

fn peer(n: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], n))
}

/// The hub as its task drives it ([`HubEdge`]: the channels' work `watch`es, the joins'
/// answers), with the time and the upstream side's commands in the test's hands.
struct TestHub {
    edge: HubEdge,
    commands: mpsc::UnboundedReceiver<UpstreamCommand>,
}

impl std::ops::Deref for TestHub {
    type Target = Hub;
    fn deref(&self) -> &Hub {
        &self.edge.hub
    }
}

impl std::ops::DerefMut for TestHub {
    fn deref_mut(&mut self) -> &mut Hub {
        &mut self.edge.hub
    }
}

impl TestHub {
    fn on_event(&mut self, ev: UpstreamEvent) {
        self.edge.on_event(ev, HubNow::read());
    }

    fn on_report(&mut self, channel: usize, report: MinerReport, at: Instant) {
        let now = HubNow { at, unix_ms: 0 };
        self.edge
            .on_request(HubRequest::Report { channel, report }, || now);
    }
}

fn hub(miners_per_channel: u32) -> TestHub {
    let (tx, rx) = mpsc::unbounded_channel();
    let cfg = HubConfig {
        miners_per_channel,
        pools: vec!["stratum2+tcp://pool:1/KEY".into()],
        ..HubConfig::default()
    };
    TestHub {
        edge: HubEdge::new(Hub::new(cfg, Monitor::detached(0)), tx),
        commands: rx,
    }
}

/// Pool 0 active, its share queue gone (shares come back as `stale-upstream`).
fn active(epoch: u64, channel_id: u32, prefix: u8) -> UpstreamEvent {
    active_via(ShareRoute::channel(epoch, 1).0, channel_id, prefix)
}

/// Pool 0 active, its shares going to `route`.
fn active_via(route: ShareRoute, channel_id: u32, prefix: u8) -> UpstreamEvent {
    UpstreamEvent::Active {
        epoch: route.epoch(),
        route,
        pool: 0,
        url: "stratum2+tcp://pool:1/KEY".into(),
        channel_id,
        extranonce_prefix: bytes::Bytes::from(vec![prefix; 6]),
        extranonce_size: 10,
        target: Target::MAX,
    }
}

fn opened(epoch: u64, channel: usize, channel_id: u32, prefix: u8) -> UpstreamEvent {
    UpstreamEvent::ChannelOpened {
        epoch,
        channel,
        channel_id,
        extranonce_prefix: bytes::Bytes::from(vec![prefix; 6]),
        extranonce_size: 10,
        target: Target::MAX,
    }
}

/// Upstream work of job `job_id` with extranonce prefix `[prefix; 6]`.
fn work(job_id: u32, prefix: u8, upstream_target: Target) -> UpstreamWork {
    UpstreamWork {
        epoch: 1,
        seq: u64::from(job_id),
        job_id,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        version_mask: 0x1fff_e000,
        prev_hash: [1; 32],
        nbits: 0x207f_ffff,
        min_ntime: 1,
        coinbase_prefix: bytes::Bytes::from_static(&[1]),
        coinbase_suffix: bytes::Bytes::from_static(&[2]),
        merkle_path: Arc::from(vec![]),
        extended: strata_work::channel::ExtendedWork::new(
            bytes::Bytes::from_static(&[1]),
            bytes::Bytes::from_static(&[2]),
            Arc::from(vec![]),
        ),
        extranonce_prefix: bytes::Bytes::from(vec![prefix; 6]),
        extranonce_size: 10,
        id_width: 0,
        extranonce2_size: 0,
        upstream_target,
        clean: true,
        route: None,
    }
}

type Reply = oneshot::Receiver<Result<Joined, JoinError>>;

/// A join; returns the pending answer and the command it caused.
fn join(h: &mut TestHub, n: u16) -> (Reply, Option<UpstreamCommand>) {
    let (tx, rx) = oneshot::channel();
    let join = HubRequest::Join {
        peer: peer(n),
        reply: tx,
    };
    h.edge.on_request(join, HubNow::read);
    (rx, h.commands.try_recv().ok())
}

fn joined(rx: &mut Reply) -> Joined {
    rx.try_recv()
        .expect("answered")
        .expect("joined without error")
}

fn report(miner: MinerId, hashrate: f64) -> MinerReport {
    MinerReport {
        worker: format!("rig{}", miner.0),
        protocol: "sv1",
        difficulty: 1.0,
        hashrate,
        ..MinerReport::joined(miner, String::new(), 0)
    }
}

/// The upstream side takes no shares while it has events for the hub (share results of
/// a pool refusing a flood of forwards): the hub still takes every share and every
/// event. With bounded queues both ways the two waited on each other for good.
#[tokio::test]
async fn the_hub_takes_events_while_the_upstream_side_takes_no_shares() {
    const SHARES: u32 = 10_000;
    let (events_tx, events_rx) = mpsc::channel(2);
    let (commands_tx, _commands_rx) = mpsc::unbounded_channel();
    let (route, mut shares_rx) = ShareRoute::channel(1, SHARES as usize);
    let shutdown = CancellationToken::new();
    let cfg = HubConfig {
        pools: vec!["stratum2+tcp://pool:1/KEY".into()],
        ..HubConfig::default()
    };
    let (handle, _queries) = spawn(
        cfg,
        Monitor::detached(0),
        events_rx,
        commands_tx,
        shutdown.clone(),
    );
    events_tx
        .send(active_via(route, 7, 0xaa))
        .await
        .expect("hub up");
    let (reply_tx, reply_rx) = oneshot::channel();
    handle
        .requests
        .send(HubRequest::Join {
            peer: peer(1),
            reply: reply_tx,
        })
        .await
        .expect("hub up");
    let joined = reply_rx.await.expect("answered").expect("joined");
    let share = |nonce| ForwardShare {
        channel: joined.channel,
        miner: joined.slot.miner,
        worker: "rig".into(),
        epoch: 1,
        job_id: 1,
        nonce,
        ntime: 0,
        version: 0x2000_0000,
        extranonce: bytes::Bytes::from_static(&[0; 4]),
        difficulty: 1.0,
        received: Instant::now(),
    };
    let flood = tokio::time::timeout(Duration::from_secs(10), async {
        for nonce in 0..SHARES {
            handle
                .requests
                .send(HubRequest::Share(share(nonce)))
                .await
                .expect("hub up");
            // the upstream side's answer for an earlier share, through a queue of two
            events_tx
                .send(UpstreamEvent::ShareResult {
                    share: share(nonce),
                    accepted: false,
                    code: Some("invalid-share".into()),
                })
                .await
                .expect("hub up");
        }
    })
    .await;
    assert!(flood.is_ok(), "the hub stopped taking shares or events");
    let mut forwarded = 0;
    let all = tokio::time::timeout(Duration::from_secs(10), async {
        while forwarded < SHARES && shares_rx.recv().await.is_some() {
            forwarded += 1;
        }
    })
    .await;
    assert!(all.is_ok(), "{forwarded} shares forwarded");
    shutdown.cancel();
}

/// Each share the pool answers (accepted or refused) adds the time since the proxy took
/// it from the miner; a share the proxy gave up on itself (`stale-upstream`) adds nothing.
#[test]
fn accepted_shares_time_their_acknowledgement() {
    let mut h = hub(0);
    let (route, _shares) = ShareRoute::channel(1, 16);
    h.on_event(active_via(route, 7, 0xaa));
    let (mut reply, _) = join(&mut h, 1);
    let joined = joined(&mut reply);
    let share = |ago_ms: u64| ForwardShare {
        received: Instant::now() - Duration::from_millis(ago_ms),
        ..forward_share(&joined, 1)
    };
    let result = |ago_ms, code: Option<&str>| UpstreamEvent::ShareResult {
        share: share(ago_ms),
        accepted: code.is_none(),
        code: code.map(Into::into),
    };
    assert_eq!(
        h.stats().upstream_ack_latency_ms,
        AckLatency::of(&ack_histogram())
    );
    for ago in [3, 4, 6] {
        h.on_event(result(ago, None));
    }
    h.on_event(result(8, Some("stale-share")));
    h.on_event(result(500, Some(CODE_STALE_UPSTREAM)));
    let a = h.stats().upstream_ack_latency_ms;
    assert_eq!(a.samples, 4, "{a:?}");
    // two significant digits (the clock moved on a little since each share was made)
    assert!((3.9..4.5).contains(&a.p50), "{a:?}");
    assert!((7.9..8.5).contains(&a.p99) && a.p99 <= a.max, "{a:?}");
    // Prometheus: cumulative counts at 5 ms and 10 ms, the sum in seconds
    let at = |le: f64| a.buckets[ACK_BUCKETS_S.iter().position(|b| *b == le).unwrap()];
    assert_eq!((at(0.002), at(0.005), at(0.01)), (0, 2, 4), "{a:?}");
    assert!((0.0209..0.0225).contains(&a.sum_s), "{a:?}");
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["samples"], 4);
    assert!(json.get("buckets").is_none(), "{json}");
    // the active pool's own figure: the same shares
    assert_eq!(h.upstreams()[0].ack_latency_ms.samples, 4);
    // the pool goes down: answers arriving meanwhile count for no pool
    h.on_event(UpstreamEvent::Down {
        pool: 0,
        url: "stratum2+tcp://pool:1/KEY".into(),
        reason: "eof".into(),
        was_active: true,
    });
    h.on_event(result(3, None));
    assert_eq!(h.upstreams()[0].ack_latency_ms.samples, 4);
    assert_eq!(h.stats().upstream_ack_latency_ms.samples, 5);
}

/// A share of the miner `j` mined in `epoch`, received now.
fn forward_share(j: &Joined, epoch: u64) -> ForwardShare {
    ForwardShare {
        channel: j.channel,
        miner: j.slot.miner,
        worker: "rig".into(),
        epoch,
        job_id: 1,
        nonce: 0,
        ntime: 0,
        version: 0x2000_0000,
        extranonce: bytes::Bytes::from_static(&[0; 4]),
        difficulty: 1.0,
        received: Instant::now(),
    }
}

/// The pool's answer for a share of a miner that left comes after another miner took its
/// id: it counts in the departed figures (the proxy's totals), not for the new miner
/// (found by the `proxy_hub` fuzz target).
#[test]
fn a_late_answer_counts_for_the_miner_that_left_not_the_next_holder_of_its_id() {
    let mut h = hub(0);
    let (route, mut shares) = ShareRoute::channel(1, 16);
    h.on_event(active_via(route, 7, 0xaa));
    let (mut a, _) = join(&mut h, 1);
    let old = joined(&mut a);
    let share = forward_share(&old, 1);
    h.edge.on_request(HubRequest::Share(share), HubNow::read);
    h.edge.on_request(
        HubRequest::Leave {
            channel: old.channel,
            miner: old.slot.miner,
        },
        HubNow::read,
    );
    let (mut b, _) = join(&mut h, 2);
    let new = joined(&mut b);
    assert_eq!(new.slot.miner, old.slot.miner, "the id is reused");
    let share = shares.try_recv().expect("forwarded");
    h.on_event(UpstreamEvent::ShareResult {
        share,
        accepted: true,
        code: None,
    });
    let m = &h.miners()[0];
    assert_eq!((m.forwarded, m.upstream_accepted), (0, 0), "{m:?}");
    let s = h.stats();
    assert_eq!((s.shares_forwarded, s.upstream_accepted), (1, 1), "{s:?}");
}

/// The work the hub publishes carries the route of its epoch: a miner's task queues its
/// shares there itself (`queue_share`, no hub wake-up), and the hub counts each one
/// forwarded when its answer comes. A share of an older epoch comes back from the route to
/// the hub, which refuses it (`stale-upstream`) without forwarding it.
#[test]
fn published_work_carries_the_route_and_shares_count_when_answered() {
    let mut h = hub(0);
    let (route, mut shares) = ShareRoute::channel(1, 16);
    h.on_event(active_via(route.clone(), 7, 0xaa));
    let (mut a, _) = join(&mut h, 1);
    let j = joined(&mut a);
    h.on_event(UpstreamEvent::Work {
        channel: j.channel,
        work: work(5, 0xaa, Target::MAX),
    });
    let published = j.work.borrow().clone().expect("work");
    assert_eq!(published.route.as_ref(), Some(&route));
    let share = |epoch| forward_share(&j, epoch);

    assert!(crate::work::queue_share(Some(&j.work), share(1)).is_none());
    let queued = shares.try_recv().expect("queued by the miner's task");
    assert_eq!(h.miners()[0].forwarded, 0, "not answered yet");
    h.on_event(UpstreamEvent::ShareResult {
        share: queued,
        accepted: true,
        code: None,
    });
    let m = &h.miners()[0];
    assert_eq!((m.forwarded, m.upstream_accepted), (1, 1), "{m:?}");

    let old = crate::work::queue_share(Some(&j.work), share(0)).expect("refused by the route");
    h.edge.on_request(HubRequest::Share(old), HubNow::read);
    assert!(
        shares.try_recv().is_err(),
        "an old epoch's share is not forwarded"
    );
    let m = &h.miners()[0];
    assert_eq!((m.forwarded, m.upstream_rejected), (2, 1), "{m:?}");
    let s = h.stats();
    assert_eq!((s.shares_forwarded, s.upstream_accepted), (2, 1), "{s:?}");
}

/// `/api/v1/upstreams`: the active pool's announced hashrate is the sum over its open
/// channels; a pool that is not active announces nothing.
#[test]
fn the_active_pool_shows_its_announced_hashrate() {
    let mut h = hub(1);
    h.on_event(active(1, 7, 0xaa));
    let (mut a, _) = join(&mut h, 1);
    let ja = joined(&mut a);
    let (_b, _) = join(&mut h, 2);
    h.on_event(opened(1, 1, 8, 0xbb));
    h.on_report(ja.channel, report(ja.slot.miner, 100.0), Instant::now());
    let t = Instant::now() + Duration::from_secs(60);
    let _ = h.channel_updates(t);
    assert_eq!(h.upstreams()[0].announced_hashrate, 100.0);
    h.on_event(UpstreamEvent::Down {
        pool: 0,
        url: "stratum2+tcp://pool:1/KEY".into(),
        reason: "eof".into(),
        was_active: true,
    });
    assert_eq!(h.upstreams()[0].announced_hashrate, 0.0);
}

#[test]
fn two_miners_per_channel_the_third_asks_for_a_second_channel() {
    let mut h = hub(2);
    h.on_event(active(1, 7, 0xaa));
    let (mut a, cmd_a) = join(&mut h, 1);
    let (mut b, cmd_b) = join(&mut h, 2);
    assert_eq!((cmd_a, cmd_b), (None, None));
    let (ja, jb) = (joined(&mut a), joined(&mut b));
    assert_eq!((ja.channel, jb.channel), (0, 0));
    assert_ne!(ja.slot.miner, jb.slot.miner);

    // the third finds every channel full: one more is asked for, the miner waits
    let (mut c, cmd_c) = join(&mut h, 3);
    assert_eq!(cmd_c, Some(UpstreamCommand::Channels(2)));
    assert!(matches!(
        c.try_recv(),
        Err(oneshot::error::TryRecvError::Empty)
    ));
    // a fourth fits the new channel: no further request
    let (mut d, cmd_d) = join(&mut h, 4);
    assert_eq!(cmd_d, None);
    // channel 1 opens: both waiting miners are answered on it, with its own work
    h.on_event(opened(1, 1, 8, 0xcc));
    let (jc, jd) = (joined(&mut c), joined(&mut d));
    assert_eq!((jc.channel, jd.channel), (1, 1));
    // ids are per channel: the hub tells them apart by (channel, id)
    assert_eq!(jc.slot.miner, ja.slot.miner);
    assert_eq!(h.miners.len(), 4);
    let ups = h.upstreams();
    assert_eq!(ups[0].channel_ids, vec![7, 8]);
    assert_eq!(ups[0].channel_id, Some(7));
    assert_eq!(
        ups[0].channels.iter().map(|c| c.miners).collect::<Vec<_>>(),
        vec![2, 2]
    );

    // work reaches each channel's miners only, with that channel's prefix
    let mut w = work(5, 0xcc, Target::MAX);
    h.on_event(UpstreamEvent::Work {
        channel: 1,
        work: w.clone(),
    });
    assert!(ja.work.borrow().is_none());
    let got = jc.work.borrow().clone().expect("channel 1 work");
    assert_eq!(&got.extranonce_prefix[..], &[0xcc; 6]);
    assert!(got.id_width > 0 && got.extranonce2_size > 0);
    w.extranonce_prefix = bytes::Bytes::from(vec![0xaa; 6]);
    h.on_event(UpstreamEvent::Work {
        channel: 0,
        work: w,
    });
    assert!(jb.work.borrow().is_some());

    // a miner of channel 0 leaves: the next one takes its place there
    h.forget(0, ja.slot.miner);
    let (mut e, cmd_e) = join(&mut h, 5);
    assert_eq!(cmd_e, None);
    assert_eq!(joined(&mut e).channel, 0);
}

/// A `SetTarget` applies to the jobs activated after it (spec 5.3.21): it never reaches
/// the hub (the upstream session keeps it in its channel state, which
/// `tests/upstream_session/` checks); each work the hub publishes is judged at its own
/// job's target, and the next work, which the session builds with the new target, carries
/// it.
#[test]
fn a_set_target_waits_for_the_next_job() {
    let mut h = hub(0);
    h.on_event(active(1, 7, 0xaa));
    let (mut a, _) = join(&mut h, 1);
    let mut rx = joined(&mut a).work;
    let job_target = Target::from_le_bytes([0x11; 32]);
    let work = |job_id, upstream_target| UpstreamEvent::Work {
        channel: 0,
        work: work(job_id, 0xaa, upstream_target),
    };
    h.on_event(work(5, job_target));
    assert!(rx.has_changed().unwrap());
    let got = rx.borrow_and_update().clone().expect("work");
    assert_eq!(got.upstream_target, job_target);
    // the pool makes shares easier (a SetTarget the hub does not see): the current job is
    // still judged at its own target, and the miners are not woken until the next job
    assert!(!rx.has_changed().unwrap(), "miners woken without new work");
    h.on_event(work(6, Target::MAX));
    let got = rx.borrow_and_update().clone().expect("work");
    assert_eq!((got.job_id, got.upstream_target), (6, Target::MAX));
}

#[test]
fn zero_means_every_miner_on_channel_zero() {
    let mut h = hub(0);
    let (mut a, _) = join(&mut h, 1);
    // no upstream yet: the miner waits
    assert!(a.try_recv().is_err());
    h.on_event(active(1, 7, 0xaa));
    assert_eq!(joined(&mut a).channel, 0);
    for n in 2..50 {
        let (mut r, cmd) = join(&mut h, n);
        assert_eq!(cmd, None);
        assert_eq!(joined(&mut r).channel, 0);
    }
    assert_eq!(h.channels.len(), 1);
}

#[test]
fn a_refused_channel_sends_its_waiting_miners_to_an_open_one() {
    let mut h = hub(1);
    h.on_event(active(1, 7, 0xaa));
    let (mut a, _) = join(&mut h, 1);
    let ja = joined(&mut a);
    let (mut b, cmd) = join(&mut h, 2);
    assert_eq!(cmd, Some(UpstreamCommand::Channels(2)));
    h.on_event(UpstreamEvent::ChannelRefused {
        epoch: 1,
        channel: 1,
        reason: "max-channels".into(),
    });
    // the waiting miner goes to the open channel, above the per-channel count
    let jb = joined(&mut b);
    assert_eq!((ja.channel, jb.channel), (0, 0));
    let ups = h.upstreams();
    assert_eq!(ups[0].channels[1].state, "refused");
    assert_eq!(ups[0].channels[1].error.as_deref(), Some("max-channels"));
    assert_eq!(ups[0].channels[0].state, "open");
    assert_eq!(ups[0].channels[0].miners, 2);
    // and so do later miners, without asking for more refusals
    let (mut c, cmd) = join(&mut h, 3);
    assert_eq!(cmd, None);
    assert_eq!(joined(&mut c).channel, 0);
    // a new pool opens channel 1: the next miner goes there
    h.on_event(active(2, 70, 0xbb));
    h.on_event(opened(2, 1, 71, 0xbc));
    let (mut d, cmd) = join(&mut h, 4);
    assert_eq!(cmd, None);
    assert_eq!(joined(&mut d).channel, 1);
    // an event of an old epoch changes nothing
    h.on_event(UpstreamEvent::ChannelRefused {
        epoch: 1,
        channel: 1,
        reason: "late".into(),
    });
    assert_eq!(h.upstreams()[0].channels[1].state, "open");
}

#[test]
fn a_miners_hashrate_is_the_implied_one_until_its_window_holds_enough_shares() {
    let t0 = Instant::now();
    let cfg = strata_work::vardiff::VardiffConfig::default();
    let mut v = Vardiff::new(cfg, 1024.0, t0).unwrap();
    // difficulty x 2^32 x shares_per_minute / 60, up to the target's rounding
    let implied = hashrate_from_target(&v.target(), cfg.shares_per_minute).unwrap();
    let formula = 1024.0 * 2f64.powi(32) * cfg.shares_per_minute / 60.0;
    assert!((implied - formula).abs() < 1e-3 * formula);
    assert_eq!(v.hashrate(t0), 0.0, "no estimate without shares");
    assert_eq!(miner_hashrate(&v, t0), implied);
    // shares every 100 ms: far more than the difficulty is for
    let target = v.target();
    let at = |k: u64| t0 + Duration::from_millis(100 * k);
    for k in 1..ESTIMATE_MIN_SHARES {
        v.on_share(at(k), &target);
        assert_eq!(miner_hashrate(&v, at(k)), implied, "{k} shares");
    }
    let n = ESTIMATE_MIN_SHARES;
    v.on_share(at(n), &target);
    assert_eq!(miner_hashrate(&v, at(n)), v.hashrate(at(n)));
    assert!(v.hashrate(at(n)) > 50.0 * implied);
}

/// Joins `n` miners on an open channel 0; their ids.
fn joined_miners(h: &mut TestHub, n: u16) -> Vec<MinerId> {
    (1..=n)
        .map(|p| {
            let (mut r, _) = join(h, p);
            joined(&mut r).slot.miner
        })
        .collect()
}

fn update(channel: usize, hashrate: f64) -> UpstreamCommand {
    UpstreamCommand::UpdateHashrate { channel, hashrate }
}

#[test]
fn update_channel_per_channel_with_its_miners_hashrate() {
    let mut h = hub(2);
    h.on_event(active(1, 7, 0xaa));
    let mut ids = vec![];
    for n in 1..=3 {
        let (mut r, _) = join(&mut h, n);
        if n == 3 {
            h.on_event(opened(1, 1, 8, 0xcc));
        }
        let j = joined(&mut r);
        ids.push((j.channel, j.slot.miner));
    }
    let t0 = Instant::now();
    for (i, (c, m)) in ids.iter().enumerate() {
        h.on_report(*c, report(*m, 100.0 * (i as f64 + 1.0)), t0);
    }
    let first = t0 + FIRST_UPDATE_DELAY;
    assert_eq!(h.next_update, Some(first));
    assert!(h.channel_updates(t0).is_empty(), "not before the delay");
    assert_eq!(
        h.channel_updates(first),
        vec![update(0, 300.0), update(1, 300.0)]
    );
    assert_eq!(h.upstreams()[0].channels[1].announced_hashrate, 300.0);

    // debounced: nothing new before an interval has passed, then only beyond the threshold
    let interval = h.cfg.update_interval;
    assert_eq!(h.next_update, Some(first + interval));
    let (c, m) = ids[2];
    h.on_report(c, report(m, 400.0), first + Duration::from_secs(1));
    let (c0, m0) = ids[0];
    h.on_report(c0, report(m0, 105.0), first + Duration::from_secs(1));
    assert!(h
        .channel_updates(first + interval - Duration::from_millis(1))
        .is_empty());
    assert_eq!(
        h.channel_updates(first + interval),
        vec![update(1, 400.0)],
        "channel 0 moved by 2.5 %, channel 1 by a third"
    );
    assert_eq!(h.next_update, Some(first + 2 * interval));
}

#[test]
fn the_first_update_channel_goes_out_a_second_after_the_first_report_with_a_hashrate() {
    let mut h = hub(0);
    h.on_event(active(1, 7, 0xaa));
    let ids = joined_miners(&mut h, 3);
    // joins alone (their listing has no hashrate) schedule nothing
    assert_eq!(h.next_update, None);
    let t0 = Instant::now();
    h.on_report(0, report(ids[0], 0.0), t0);
    assert_eq!(h.next_update, None, "a report without a hashrate");
    h.on_report(0, report(ids[0], 1e12), t0);
    assert_eq!(h.next_update, Some(t0 + FIRST_UPDATE_DELAY));
    // the miners connecting meanwhile are part of the first announcement
    let t1 = t0 + Duration::from_millis(600);
    h.on_report(0, report(ids[1], 2e12), t1);
    h.on_report(0, report(ids[2], 3e12), t1);
    assert_eq!(h.next_update, Some(t0 + FIRST_UPDATE_DELAY));
    assert!(h.channel_updates(t1).is_empty());
    assert_eq!(
        h.channel_updates(t0 + FIRST_UPDATE_DELAY),
        vec![update(0, 6e12)]
    );
    assert_eq!(h.upstreams()[0].channels[0].announced_hashrate, 6e12);
}

/// ASICs are first counted at the hashrate their starting difficulty implies, then at
/// their estimates a second later, a hundred times higher: that rise goes out after the
/// short delay, not after `update_interval`; a fall waits for the interval.
#[test]
fn a_sharp_rise_is_announced_without_waiting_for_the_interval() {
    let mut h = hub(0);
    h.on_event(active(1, 7, 0xaa));
    let ids = joined_miners(&mut h, 2);
    let t0 = Instant::now();
    h.on_report(0, report(ids[0], 1e12), t0);
    h.on_report(0, report(ids[1], 1e12), t0);
    let first = t0 + FIRST_UPDATE_DELAY;
    assert_eq!(h.channel_updates(first), vec![update(0, 2e12)]);
    let interval = h.cfg.update_interval;
    assert_eq!(h.next_update, Some(first + interval));
    // a rise under URGENT_RISE waits for the interval
    let t1 = first + Duration::from_millis(200);
    h.on_report(0, report(ids[0], 2.5e12), t1);
    assert_eq!(h.next_update, Some(first + interval));
    // the estimates take over: far above twice the announcement
    let t2 = t1 + Duration::from_millis(300);
    h.on_report(0, report(ids[1], 100e12), t2);
    assert_eq!(h.next_update, Some(t2 + FIRST_UPDATE_DELAY));
    assert!(
        h.channel_updates(t2).is_empty(),
        "not before the short delay"
    );
    assert_eq!(
        h.channel_updates(t2 + FIRST_UPDATE_DELAY),
        vec![update(0, 102.5e12)]
    );
    // a fall, however large, waits for the interval
    let t3 = t2 + FIRST_UPDATE_DELAY + Duration::from_millis(100);
    h.on_report(0, report(ids[1], 1e12), t3);
    assert_eq!(h.next_update, Some(t2 + FIRST_UPDATE_DELAY + interval));
    // a miner leaving takes its hashrate out of the running sum
    h.forget(0, ids[0]);
    h.on_report(0, report(ids[1], 3e12), t3);
    assert_eq!(
        h.next_update,
        Some(t2 + FIRST_UPDATE_DELAY + interval),
        "3e12 alone is not twice 102.5e12"
    );
}

#[test]
fn a_channel_whose_miners_all_left_announces_zero_then_its_next_miner_promptly() {
    let mut h = hub(0);
    h.on_event(active(1, 7, 0xaa));
    let ids = joined_miners(&mut h, 1);
    let t0 = Instant::now();
    h.on_report(0, report(ids[0], 500.0), t0);
    let first = t0 + FIRST_UPDATE_DELAY;
    assert_eq!(h.channel_updates(first), vec![update(0, 500.0)]);
    // the last report of a leaving miner does not count
    let mut last = report(ids[0], 500.0);
    last.connected = false;
    h.on_report(0, last, first + Duration::from_secs(2));
    h.forget(0, ids[0]);
    let interval = h.cfg.update_interval;
    assert_eq!(h.channel_updates(first + interval), vec![update(0, 0.0)]);
    assert_eq!(
        h.next_update, None,
        "nothing to look at until a miner reports"
    );
    // a miner comes back: its first report is announced after the short delay again
    let back = joined_miners(&mut h, 1);
    let t2 = first + interval + Duration::from_secs(3);
    h.on_report(0, report(back[0], 700.0), t2);
    assert_eq!(h.next_update, Some(t2 + FIRST_UPDATE_DELAY));
    assert_eq!(
        h.channel_updates(t2 + FIRST_UPDATE_DELAY),
        vec![update(0, 700.0)]
    );
}

#[test]
fn a_first_report_while_the_channel_has_no_upstream_waits_for_the_next_report() {
    let mut h = hub(0);
    h.on_event(active(1, 7, 0xaa));
    let ids = joined_miners(&mut h, 1);
    h.on_event(UpstreamEvent::Down {
        pool: 0,
        url: "stratum2+tcp://pool:1/KEY".into(),
        reason: "gone".into(),
        was_active: true,
    });
    let t0 = Instant::now();
    h.on_report(0, report(ids[0], 500.0), t0);
    let first = t0 + FIRST_UPDATE_DELAY;
    assert!(h.channel_updates(first).is_empty(), "no pool to tell");
    // no timer left running on it (no spinning while the pool is down)
    assert_eq!(h.next_update, None);
    h.on_event(active(2, 9, 0xab));
    let t1 = first + Duration::from_secs(10);
    h.on_report(0, report(ids[0], 500.0), t1);
    assert_eq!(
        h.channel_updates(t1 + FIRST_UPDATE_DELAY),
        vec![update(0, 500.0)]
    );
}
