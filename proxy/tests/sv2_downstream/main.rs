//! The SV2 downstream (SV2 firmware behind the proxy): the sans-IO session driven by hand
//! with synthetic upstream work, a miner mirror built from strata-work's client-side
//! channels and an upstream-side extended channel that checks every forwarded share; then
//! the tokio task over 127.0.0.1 with a fake hub and the workspace's simulated SV2 miner.
#![allow(clippy::unwrap_used)]

mod upstream_view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_noise::{AuthorityKeypair, Certificate, PublicKey, Responder, StaticKeypair};
use strata_protocol::common::{CommonMessage, SetupConnection};
use strata_protocol::mining::{
    MiningMessage, OpenExtendedMiningChannel, OpenStandardMiningChannel, SubmitSharesExtended,
    SubmitSharesStandard, UpdateChannel, REQUIRES_WORK_SELECTION,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::Message;
use strata_proxy::downstream::sv2::{Action, Now, Sv2DownConfig, Sv2DownSession};
use strata_proxy::downstream::sv2_conn::{listen_sv2, Sv2DownContext};
use strata_proxy::hub::{HubHandle, HubRequest, JoinError, Joined, MinerReport, Slot};
use strata_proxy::work::{ForwardShare, UpstreamWork};
use strata_work::channel::ExtendedWork;
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::extranonce::MinerId;
use strata_work::header::Header;
use strata_work::target::{hashrate_from_target, Target};
use strata_work::vardiff::VardiffConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use upstream_view::upstream_channel;

/// Mainnet-like nBits: no test share is a block.
const HARD_BITS: u32 = 0x1d00_ffff;
const MIN_NTIME: u32 = 1_700_000_000;
const MINER: MinerId = MinerId(0x0102);

fn upstream_target() -> Target {
    // about 4096 hashes per upstream share
    Target::from_difficulty(2f64.powi(-20)).unwrap()
}

fn work(epoch: u64, seq: u64, job_id: u32, prev: u8, prefix: &[u8], clean: bool) -> UpstreamWork {
    UpstreamWork {
        epoch,
        seq,
        job_id,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        version_mask: 0x1fff_e000,
        prev_hash: [prev; 32],
        nbits: HARD_BITS,
        min_ntime: MIN_NTIME,
        coinbase_prefix: Bytes::from_static(b"\x02\x00\x00\x00\x01coinbase-prefix"),
        coinbase_suffix: Bytes::from_static(b"coinbase-suffix\x00\x00\x00\x00"),
        merkle_path: Arc::from(vec![[0x11u8; 32], [0x22u8; 32]]),
        extended: ExtendedWork::new(
            Bytes::from_static(b"\x02\x00\x00\x00\x01coinbase-prefix"),
            Bytes::from_static(b"coinbase-suffix\x00\x00\x00\x00"),
            Arc::from(vec![[0x11u8; 32], [0x22u8; 32]]),
        ),
        extranonce_prefix: Bytes::copy_from_slice(prefix),
        extranonce_size: 8,
        id_width: 2,
        extranonce2_size: 6,
        upstream_target: upstream_target(),
        clean,
    }
}

struct Clock(Instant, u64);

impl Clock {
    fn new() -> Self {
        Clock(Instant::now(), 1_700_000_100_000)
    }
    fn now(&self) -> Now {
        Now {
            mono: self.0,
            unix_ms: self.1,
        }
    }
}

fn config() -> Arc<Sv2DownConfig> {
    Arc::new(Sv2DownConfig {
        // channels start at about 64 hashes per share (nominal hashrate 0 = minimum)
        vardiff: VardiffConfig {
            min_difficulty: 2f64.powi(-26),
            ..VardiffConfig::default()
        },
        ..Sv2DownConfig::default()
    })
}

fn peer() -> SocketAddr {
    "192.168.1.20:4000".parse().unwrap()
}

fn setup(flags: u32) -> Message {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: Str0_255::new("proxy").unwrap(),
        endpoint_port: 3336,
        vendor: Str0_255::new("bitmain").unwrap(),
        hardware_version: Str0_255::new("S21").unwrap(),
        firmware: Str0_255::new("sv2-fw 1.0").unwrap(),
        device_id: Str0_255::default(),
    }
    .into()
}

fn open_standard(request_id: u32, user: &str) -> Message {
    OpenStandardMiningChannel {
        request_id,
        user_identity: Str0_255::new(user).unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
    }
    .into()
}

fn sent(actions: &[Action]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn names(actions: &[Action]) -> Vec<&'static str> {
    sent(actions).iter().map(Message::name).collect()
}

fn forwards(actions: &[Action]) -> Vec<ForwardShare> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Forward(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn error_codes(actions: &[Action]) -> Vec<String> {
    sent(actions)
        .iter()
        .filter_map(|m| match m {
            Message::Mining(MiningMessage::SubmitSharesError(e)) => {
                Some(e.error_code.as_str().to_string())
            }
            _ => None,
        })
        .collect()
}

/// The miner's view: client-side channels fed with what the proxy sent.
struct Miner {
    channels: Channels,
    seq: u32,
    start_nonce: u32,
}

impl Miner {
    fn new() -> Self {
        Miner {
            channels: Channels::new(),
            seq: 0,
            start_nonce: 0,
        }
    }

    fn feed(&mut self, actions: &[Action]) {
        for m in sent(actions) {
            let Message::Mining(mm) = m else { continue };
            match mm {
                MiningMessage::OpenStandardMiningChannelSuccess(s) => {
                    assert_eq!(s.group_channel_id, 0);
                    let c = Channel::new_standard(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                }
                MiningMessage::OpenExtendedMiningChannelSuccess(s) => {
                    assert_eq!(s.group_channel_id, 0);
                    let c = Channel::new_extended(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        u8::try_from(s.extranonce_size).unwrap(),
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                }
                MiningMessage::NewMiningJob(j) => self.channels.on_new_mining_job(&j).unwrap(),
                MiningMessage::NewExtendedMiningJob(j) => {
                    self.channels.on_new_extended_mining_job(&j).unwrap()
                }
                MiningMessage::SetNewPrevHash(p) => self.channels.on_set_new_prev_hash(&p).unwrap(),
                MiningMessage::SetTarget(t) => self.channels.on_set_target(&t).unwrap(),
                MiningMessage::SetExtranoncePrefix(p) => {
                    self.channels.on_set_extranonce_prefix(&p).unwrap()
                }
                _ => {}
            }
        }
    }

    /// A share on the channel's active job at the channel's target; `upstream`: whether its
    /// hash must (or must not) also meet the upstream target.
    fn share(&mut self, channel_id: u32, upstream: Option<bool>) -> SubmitSharesStandard {
        let c = self.channels.get(channel_id).unwrap();
        let job = c.active_job().unwrap();
        let prev = *c.prev_hash().unwrap();
        let mut h = Header {
            version: job.version() | 0x0000_2000,
            prev_hash: prev.prev_hash,
            merkle_root: job.merkle_root(),
            ntime: job.min_ntime().unwrap(),
            nbits: prev.nbits,
            nonce: self.start_nonce,
        };
        loop {
            if h.meets(&job.target())
                && upstream.is_none_or(|want| h.meets(&upstream_target()) == want)
            {
                break;
            }
            h.nonce += 1;
        }
        self.start_nonce = h.nonce + 1;
        self.seq += 1;
        SubmitSharesStandard {
            channel_id,
            sequence_number: self.seq,
            job_id: job.id(),
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
        }
    }
}

fn validate_upstream(c: &mut Channel, f: &ForwardShare, seq: u32) {
    let share = SubmitSharesExtended {
        channel_id: 1,
        sequence_number: seq,
        job_id: f.job_id,
        nonce: f.nonce,
        ntime: f.ntime,
        version: f.version,
        extranonce: B0_32::new(&f.extranonce).unwrap(),
    };
    let r = strata_work::share::validate_extended(c, &share, 1_700_000_100_000);
    assert!(r.is_ok(), "upstream refused the forwarded share: {r:?}");
}

/// A ready session with channels opened for `users`, on `w`.
fn ready_session(
    clock: &Clock,
    w: &UpstreamWork,
    users: &[&str],
    miner: &mut Miner,
) -> Sv2DownSession {
    let mut s = Sv2DownSession::new(peer(), config(), clock.now());
    let mut out = vec![];
    s.on_work(Some(Arc::new(w.clone())), &mut out);
    s.on_message(setup(0), clock.now(), &mut out);
    assert_eq!(names(&out), ["SetupConnection.Success"]);
    out.clear();
    for (i, u) in users.iter().enumerate() {
        s.on_message(open_standard(i as u32 + 1, u), clock.now(), &mut out);
    }
    assert_eq!(
        out,
        vec![Action::Join],
        "one join per connection, opens wait"
    );
    out.clear();
    s.on_slot(Ok(Slot { miner: MINER }), &mut out);
    let per_channel = [
        "OpenStandardMiningChannel.Success",
        "NewMiningJob",
        "SetNewPrevHash",
    ];
    assert_eq!(names(&out), per_channel.repeat(users.len()));
    miner.feed(&out);
    s
}

#[test]
fn two_standard_channels_get_unique_extranonces_and_forwarded_shares_validate_upstream() {
    let clock = Clock::new();
    let w = work(1, 1, 77, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = ready_session(&clock, &w, &["farm.a", "farm.b"], &mut miner);
    assert_eq!(
        s.extranonce_prefix(1).unwrap(),
        [0xaa, 0xbb, 0x01, 0x02, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        s.extranonce_prefix(2).unwrap(),
        [0xaa, 0xbb, 0x01, 0x02, 0, 0, 0, 0, 0, 1]
    );
    let mut up = upstream_channel(&w, 1);

    let mut out = vec![];
    let a = miner.share(1, Some(true));
    let b = miner.share(2, Some(true));
    let small = miner.share(1, Some(false));
    for share in [&a, &b, &small] {
        s.on_message(share.clone().into(), clock.now(), &mut out);
    }
    assert!(names(&out).is_empty(), "acks wait for the end of the burst");
    let fw = forwards(&out);
    assert_eq!(fw.len(), 2, "only shares meeting the upstream target leave");
    assert_eq!(fw[0].miner, MINER);
    assert_eq!(fw[0].worker, "farm.a");
    assert_eq!(fw[1].worker, "farm.b");
    assert_eq!(fw[0].job_id, 77);
    assert_eq!(fw[0].epoch, 1);
    assert_eq!(fw[0].extranonce.as_ref(), [0x01, 0x02, 0, 0, 0, 0, 0, 0]);
    assert_eq!(fw[1].extranonce.as_ref(), [0x01, 0x02, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        fw[0].version, a.version,
        "rolled version bits are forwarded"
    );
    validate_upstream(&mut up, &fw[0], 1);
    validate_upstream(&mut up, &fw[1], 2);

    out.clear();
    s.flush_acks(&mut out);
    let acks: Vec<(u32, u32, u32)> = sent(&out)
        .iter()
        .map(|m| match m {
            Message::Mining(MiningMessage::SubmitSharesSuccess(x)) => (
                x.channel_id,
                x.last_sequence_number,
                x.new_submits_accepted_count,
            ),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        acks,
        [(1, small.sequence_number, 2), (2, b.sequence_number, 1)]
    );

    // the same share again: a duplicate, answered at once, not forwarded
    out.clear();
    s.on_message(a.clone().into(), clock.now(), &mut out);
    assert_eq!(error_codes(&out), ["duplicate-share"]);
    assert!(forwards(&out).is_empty());

    let r: MinerReport = s.report(clock.now()).unwrap();
    assert_eq!(r.protocol, "sv2");
    assert_eq!(r.miner, MINER);
    assert_eq!(r.worker, "farm.a");
    assert_eq!(r.user_agent, "bitmain S21 sv2-fw 1.0");
    assert_eq!(r.accepted, 3);
    assert_eq!(r.rejected.get("duplicate"), Some(&1));
    assert_eq!(r.stale, 0);
    assert!(r.connected);
    assert_eq!(r.last_share_ms, clock.1);
}

#[test]
fn reports_carry_the_nominal_hashrate_until_the_channel_estimate_rests_on_enough_shares() {
    let clock = Clock::new();
    let t0 = clock.now();
    let at = |secs: u64| Now {
        mono: t0.mono + Duration::from_secs(secs),
        unix_ms: t0.unix_ms,
    };
    let w = work(1, 1, 77, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = Sv2DownSession::new(peer(), config(), t0);
    let mut out = vec![];
    s.on_work(Some(Arc::new(w)), &mut out);
    s.on_message(setup(0), t0, &mut out);
    // 100 h/s: at 6 shares a minute about 1000 hashes a share, easier than the upstream
    // target (about 4096), so the channel mines at exactly what its vardiff picked
    let open = OpenStandardMiningChannel {
        request_id: 1,
        user_identity: Str0_255::new("farm.a").unwrap(),
        nominal_hash_rate: 100.0,
        max_target: U256([0xff; 32]),
    };
    s.on_message(open.into(), t0, &mut out);
    assert_eq!(s.take_early_report(t0), None, "no miner id yet");
    out.clear();
    s.on_slot(Ok(Slot { miner: MINER }), &mut out);
    miner.feed(&out);
    assert!(names(&out).contains(&"OpenStandardMiningChannel.Success"));

    // the channel opened: the hub gets the device's nominal hashrate at once (what the
    // channel's target implies at the configured share rate: 100 h/s up to rounding)
    let target = miner.channels.get(1).unwrap().target();
    let implied = hashrate_from_target(&target, config().vardiff.shares_per_minute).unwrap();
    assert!((implied - 100.0).abs() < 0.5, "{implied}");
    let first = s
        .take_early_report(t0)
        .expect("an early report at the open");
    assert_eq!(first.hashrate, implied);
    assert_eq!(s.take_early_report(t0), None, "once");

    let n = strata_proxy::hub::ESTIMATE_MIN_SHARES;
    for k in 1..n {
        out.clear();
        s.on_message(miner.share(1, None).into(), at(k), &mut out);
        assert!(error_codes(&out).is_empty(), "{out:?}");
        assert_eq!(s.take_early_report(at(k)), None);
        let r = s.report(at(k)).unwrap();
        assert_eq!(r.hashrate, implied, "before evidence");
    }
    // the share that fills the window to the threshold: the estimate takes over, at once
    out.clear();
    s.on_message(miner.share(1, None).into(), at(n), &mut out);
    let r = s
        .take_early_report(at(n))
        .expect("an early report when the estimate takes over");
    // n shares of `work` hashes each in n seconds
    let estimate = target.work();
    assert!(
        (r.hashrate - estimate).abs() < 1e-6 * estimate,
        "{} vs {estimate}",
        r.hashrate
    );
    assert_eq!(r.accepted, n);
    assert_eq!(s.take_early_report(at(n)), None);

    // the device announces a new nominal hashrate: the hub hears of it at once, and the
    // channel counts at it again until its new window holds enough shares
    out.clear();
    let upd = UpdateChannel {
        channel_id: 1,
        nominal_hash_rate: 200.0,
        maximum_target: U256([0xff; 32]),
    };
    s.on_message(upd.into(), at(n), &mut out);
    assert_eq!(names(&out), ["SetTarget"]);
    let r = s
        .take_early_report(at(n))
        .expect("an early report after UpdateChannel");
    assert!((r.hashrate - 200.0).abs() < 1.0, "{}", r.hashrate);
    assert_eq!(s.take_early_report(at(n)), None);
}

#[test]
fn same_prevhash_work_is_active_at_once_and_clean_work_makes_old_shares_stale() {
    let clock = Clock::new();
    let w1 = work(1, 1, 10, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = ready_session(&clock, &w1, &["farm.a"], &mut miner);
    let old = miner.share(1, None);

    // new transactions on the same tip: a job active at once, the old one still valid
    let mut out = vec![];
    let w2 = work(1, 2, 11, 0xaa, &[0xaa, 0xbb], false);
    s.on_work(Some(Arc::new(w2.clone())), &mut out);
    assert_eq!(names(&out), ["NewMiningJob"]);
    match &sent(&out)[0] {
        Message::Mining(MiningMessage::NewMiningJob(j)) => assert_eq!(j.min_ntime, Some(MIN_NTIME)),
        other => panic!("{other:?}"),
    }
    miner.feed(&out);
    out.clear();
    s.on_message(old.clone().into(), clock.now(), &mut out);
    assert!(
        error_codes(&out).is_empty(),
        "a past job on the same tip still counts"
    );
    let on_new = miner.share(1, Some(true));
    out.clear();
    s.on_message(on_new.into(), clock.now(), &mut out);
    let fw = forwards(&out);
    assert_eq!(fw.len(), 1);
    assert_eq!(fw[0].job_id, 11, "the upstream job of the local job");
    validate_upstream(&mut upstream_channel(&w2, 1), &fw[0], 1);

    // a new tip: future job + SetNewPrevHash; shares of older jobs are stale
    let w3 = work(1, 3, 12, 0xbb, &[0xaa, 0xbb], true);
    out.clear();
    s.on_work(Some(Arc::new(w3)), &mut out);
    assert_eq!(names(&out), ["NewMiningJob", "SetNewPrevHash"]);
    miner.feed(&out);
    let mut stale = old;
    stale.sequence_number = 99;
    out.clear();
    s.on_message(stale.into(), clock.now(), &mut out);
    assert_eq!(error_codes(&out), ["stale-share"]);
    let r = s.report(clock.now()).unwrap();
    assert_eq!(r.stale, 1);
    assert_eq!(r.rejected.get("stale"), Some(&1));

    // the upstream is lost: shares are refused until work returns
    out.clear();
    s.on_work(None, &mut out);
    assert!(out.is_empty());
    let share = miner.share(1, None);
    s.on_message(share.into(), clock.now(), &mut out);
    assert_eq!(error_codes(&out), ["stale-share"]);
    assert_eq!(
        s.report(clock.now()).unwrap().rejected.get("no-upstream"),
        Some(&1)
    );
}

#[test]
fn new_epoch_sends_set_extranonce_prefix_and_fresh_jobs_and_keeps_the_miner_id() {
    let clock = Clock::new();
    let w1 = work(1, 1, 10, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = ready_session(&clock, &w1, &["farm.a", "farm.b"], &mut miner);
    let old = miner.share(2, None);

    // failover to another pool: other prefix (3 bytes), same tip, another job id
    let w2 = work(2, 1, 500, 0xaa, &[0xcc, 0xdd, 0xee], true);
    let mut out = vec![];
    s.on_work(Some(Arc::new(w2.clone())), &mut out);
    assert_eq!(
        names(&out),
        ["SetExtranoncePrefix", "NewMiningJob", "SetNewPrevHash"].repeat(2)
    );
    miner.feed(&out);
    assert_eq!(
        s.extranonce_prefix(2).unwrap(),
        [0xcc, 0xdd, 0xee, 0x01, 0x02, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(
        miner.channels.get(2).unwrap().extranonce_prefix(),
        s.extranonce_prefix(2).unwrap()
    );
    out.clear();
    s.on_message(old.into(), clock.now(), &mut out);
    assert_eq!(error_codes(&out), ["stale-share"]);

    let mut up = upstream_channel(&w2, 1);
    for (i, ch) in [1u32, 2].into_iter().enumerate() {
        let share = miner.share(ch, Some(true));
        out.clear();
        s.on_message(share.into(), clock.now(), &mut out);
        let fw = forwards(&out);
        assert_eq!(fw.len(), 1);
        assert_eq!(fw[0].epoch, 2);
        assert_eq!(fw[0].job_id, 500);
        assert_eq!(fw[0].miner, MINER);
        validate_upstream(&mut up, &fw[0], i as u32 + 1);
    }

    // a split leaving no room for two channel counters closes the second channel
    let mut tight = work(3, 1, 600, 0xaa, &[0xcc], true);
    tight.extranonce_size = 2;
    tight.id_width = 2;
    tight.extranonce2_size = 0;
    out.clear();
    s.on_work(Some(Arc::new(tight)), &mut out);
    assert!(names(&out).contains(&"CloseChannel"), "{:?}", names(&out));
    assert_eq!(s.channel_count(), 1);
}

#[test]
fn opens_wait_for_work_and_unsupported_requests_are_refused() {
    let clock = Clock::new();
    let mut s = Sv2DownSession::new(peer(), config(), clock.now());
    let mut out = vec![];
    s.on_message(setup(0), clock.now(), &mut out);
    out.clear();
    // the hub is full: the open is refused, a later one asks again
    out.clear();
    s.on_message(open_standard(1, "farm.a"), clock.now(), &mut out);
    assert_eq!(out, vec![Action::Join]);
    out.clear();
    s.on_slot(Err(JoinError::Full), &mut out);
    assert_eq!(names(&out), ["OpenMiningChannel.Error"]);
    out.clear();
    s.on_message(open_standard(2, "farm.a"), clock.now(), &mut out);
    assert_eq!(out, vec![Action::Join]);
    out.clear();
    s.on_slot(Ok(Slot { miner: MINER }), &mut out);
    assert!(out.is_empty(), "no upstream work yet: the open waits");
    s.on_work(Some(Arc::new(work(1, 1, 1, 0xaa, &[0xaa], true))), &mut out);
    assert_eq!(
        names(&out),
        [
            "OpenStandardMiningChannel.Success",
            "NewMiningJob",
            "SetNewPrevHash"
        ]
    );

    // an empty user identity
    out.clear();
    s.on_message(open_standard(3, " "), clock.now(), &mut out);
    assert_eq!(names(&out), ["OpenMiningChannel.Error"]);

    // an extended channel asking for more than the miner's space leaves (6 bytes, one of
    // them the channel's block) is refused; the connection stays
    let ext = OpenExtendedMiningChannel {
        request_id: 5,
        user_identity: Str0_255::new("farm.x").unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
        min_extranonce_size: 6,
    };
    out.clear();
    s.on_message(ext.into(), clock.now(), &mut out);
    match &sent(&out)[..] {
        [Message::Mining(MiningMessage::OpenMiningChannelError(e))] => {
            assert_eq!(e.request_id, 5);
            assert_eq!(e.error_code.as_str(), "min-extranonce-size-too-large");
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.is_closed());

    // work selection is not offered
    let mut t = Sv2DownSession::new(peer(), config(), clock.now());
    out.clear();
    t.on_message(setup(REQUIRES_WORK_SELECTION), clock.now(), &mut out);
    assert_eq!(names(&out), ["SetupConnection.Error"]);
    assert!(matches!(out.last(), Some(Action::Close(_))));
    assert!(t.is_closed());

    // anything before SetupConnection closes
    let mut u = Sv2DownSession::new(peer(), config(), clock.now());
    out.clear();
    u.on_message(open_standard(1, "farm.a"), clock.now(), &mut out);
    assert!(matches!(&out[..], [Action::Close(_)]));
    assert!(
        u.report(clock.now()).is_none(),
        "no report without a miner id"
    );
}

/// Every `SetupConnection.protocol` but Mining is refused with `unsupported-protocol`: the
/// other two sub-protocols, 3 (listed in the spec's table as "Job Distribution", defined
/// nowhere) and the values no table lists.
#[test]
fn setup_for_another_or_no_sub_protocol_is_unsupported_protocol() {
    let clock = Clock::new();
    for protocol in [1, 2, 3, 4, 255] {
        let mut s = Sv2DownSession::new(peer(), config(), clock.now());
        let mut out = vec![];
        let Message::Common(CommonMessage::SetupConnection(mut bad)) = setup(0) else {
            panic!()
        };
        bad.protocol = protocol;
        s.on_message(bad.into(), clock.now(), &mut out);
        let sent = sent(&out);
        let [Message::Common(CommonMessage::SetupConnectionError(e))] = &sent[..] else {
            panic!("protocol {protocol}: {sent:?}")
        };
        assert_eq!(
            e.error_code.as_str(),
            "unsupported-protocol",
            "protocol {protocol}"
        );
        assert_eq!(e.flags, 0);
        assert!(matches!(out.last(), Some(Action::Close(_))));
        assert!(s.is_closed(), "protocol {protocol}");
    }
}

#[test]
fn targets_follow_update_channel_but_never_get_harder_than_upstream() {
    let clock = Clock::new();
    let w = work(1, 1, 10, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = ready_session(&clock, &w, &["farm.a"], &mut miner);
    let mut out = vec![];
    // 1 EH/s would call for a target far harder than the upstream's
    let upd = UpdateChannel {
        channel_id: 1,
        nominal_hash_rate: 1e18,
        maximum_target: U256([0xff; 32]),
    };
    s.on_message(upd.into(), clock.now(), &mut out);
    match &sent(&out)[..] {
        [Message::Mining(MiningMessage::SetTarget(t))] => {
            assert_eq!(Target::from_le_bytes(t.maximum_target.0), upstream_target());
        }
        other => panic!("{other:?}"),
    }
    // an unknown channel
    out.clear();
    let upd = UpdateChannel {
        channel_id: 9,
        nominal_hash_rate: 1.0,
        maximum_target: U256([0xff; 32]),
    };
    s.on_message(upd.into(), clock.now(), &mut out);
    assert_eq!(names(&out), ["UpdateChannel.Error"]);
}

#[test]
fn an_upstream_that_forbids_version_rolling_gets_no_rolled_shares() {
    let clock = Clock::new();
    let w1 = work(1, 1, 10, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = ready_session(&clock, &w1, &["farm.a"], &mut miner);
    // same tip, but the upstream's new job forbids rolling: the channel starts over
    let mut w2 = work(1, 2, 11, 0xaa, &[0xaa, 0xbb], false);
    w2.version_rolling_allowed = false;
    let mut out = vec![];
    s.on_work(Some(Arc::new(w2.clone())), &mut out);
    assert_eq!(names(&out), ["NewMiningJob", "SetNewPrevHash"]);
    miner.feed(&out);
    let rolled = miner.share(1, None);
    out.clear();
    s.on_message(rolled.into(), clock.now(), &mut out);
    assert_eq!(error_codes(&out), ["version-rolling-not-allowed"]);
    assert_eq!(
        s.report(clock.now()).unwrap().rejected.get("bad-version"),
        Some(&1)
    );
    // the same share without rolled bits is accepted and validates upstream
    let mut plain = miner.share(1, Some(true));
    plain.version = w2.version;
    let c = miner.channels.get(1).unwrap();
    let job = c.active_job().unwrap();
    let mut h = Header {
        version: w2.version,
        prev_hash: w2.prev_hash,
        merkle_root: job.merkle_root(),
        ntime: plain.ntime,
        nbits: w2.nbits,
        nonce: 0,
    };
    while !h.meets(&upstream_target()) {
        h.nonce += 1;
    }
    plain.nonce = h.nonce;
    out.clear();
    s.on_message(plain.into(), clock.now(), &mut out);
    assert!(error_codes(&out).is_empty(), "{:?}", names(&out));
    let fw = forwards(&out);
    assert_eq!(fw.len(), 1);
    validate_upstream(&mut upstream_channel(&w2, 1), &fw[0], 1);
}

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

/// A share on an extended channel's active job: `extranonce` rolled by the miner, header at
/// the channel's target and (if `upstream` says so) at the upstream target.
fn extended_share(
    miner: &mut Miner,
    channel_id: u32,
    extranonce: &[u8],
    upstream: bool,
) -> SubmitSharesExtended {
    let c = miner.channels.get(channel_id).unwrap();
    let job = c.active_job().unwrap();
    let prev = *c.prev_hash().unwrap();
    let work = job.extended().unwrap();
    let txid = work.txid(&[job.extranonce_prefix(), extranonce]);
    let root = strata_work::merkle::merkle_root_from_path(txid, work.merkle_path.iter());
    let mut h = Header {
        version: job.version(),
        prev_hash: prev.prev_hash,
        merkle_root: root,
        ntime: job.min_ntime().unwrap(),
        nbits: prev.nbits,
        nonce: miner.start_nonce,
    };
    while !(h.meets(&job.target()) && h.meets(&upstream_target()) == upstream) {
        h.nonce += 1;
    }
    miner.start_nonce = h.nonce + 1;
    miner.seq += 1;
    SubmitSharesExtended {
        channel_id,
        sequence_number: miner.seq,
        job_id: job.id(),
        nonce: h.nonce,
        ntime: h.ntime,
        version: h.version,
        extranonce: B0_32::new(extranonce).unwrap(),
    }
}

/// A proxy behind this one (or firmware that rolls its own extranonce) opens an extended
/// channel beside a standard one: it gets a block of the miner's space and rolls the rest;
/// its shares are forwarded under the worker name its TLV carries and validate upstream, and a
/// new epoch moves its prefix but not its size.
#[test]
fn extended_channels_roll_their_own_space_and_forward_per_worker_shares() {
    use strata_protocol::extensions::{RequestExtensions, FIELD_TYPE_USER_IDENTITY};
    use strata_protocol::{Tlv, EXTENSION_WORKER_HASHRATE};

    let clock = Clock::new();
    let w = work(1, 1, 77, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = ready_session(&clock, &w, &["farm.a"], &mut miner);
    let mut out = vec![];
    let ext = RequestExtensions {
        request_id: 9,
        requested_extensions: vec![EXTENSION_WORKER_HASHRATE].try_into().unwrap(),
    };
    s.on_message(ext.into(), clock.now(), &mut out);
    assert_eq!(names(&out), ["RequestExtensions.Success"]);
    out.clear();
    let open = OpenExtendedMiningChannel {
        request_id: 2,
        user_identity: Str0_255::new("farm-proxy").unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
        min_extranonce_size: 4,
    };
    s.on_message(open.into(), clock.now(), &mut out);
    assert_eq!(
        names(&out),
        [
            "OpenExtendedMiningChannel.Success",
            "NewExtendedMiningJob",
            "SetNewPrevHash"
        ]
    );
    match &sent(&out)[0] {
        Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) => {
            // the miner's 6 bytes: block 1, then 5 rolled
            assert_eq!(ok.extranonce_size, 5);
            assert_eq!(
                ok.extranonce_prefix.as_slice(),
                [0xaa, 0xbb, 0x01, 0x02, 0x01]
            );
        }
        other => panic!("{other:?}"),
    }
    miner.feed(&out);
    // the standard channel's full extranonce is outside the extended channel's block
    assert_eq!(
        s.extranonce_prefix(1).unwrap(),
        [0xaa, 0xbb, 0x01, 0x02, 0, 0, 0, 0, 0, 0]
    );

    let mut tlvs = Vec::new();
    strata_protocol::tlv::encode_list(
        &[Tlv::new(
            EXTENSION_WORKER_HASHRATE,
            FIELD_TYPE_USER_IDENTITY,
            &b"alice.rig7"[..],
        )
        .unwrap()],
        &mut tlvs,
    );
    let rolled = [9u8, 8, 7, 6, 5];
    let big = extended_share(&mut miner, 2, &rolled, true);
    let small = extended_share(&mut miner, 2, &rolled, false);
    out.clear();
    s.on_frame(big.clone().into(), &tlvs, clock.now(), &mut out);
    s.on_frame(small.into(), &[], clock.now(), &mut out);
    let fw = forwards(&out);
    assert_eq!(
        fw.len(),
        1,
        "only the share meeting the upstream target leaves"
    );
    assert_eq!(fw[0].worker, "alice.rig7", "the worker of the TLV");
    assert_eq!(fw[0].job_id, 77);
    assert_eq!(fw[0].extranonce.as_ref(), [0x01, 0x02, 0x01, 9, 8, 7, 6, 5]);
    validate_upstream(&mut upstream_channel(&w, 1), &fw[0], 1);
    out.clear();
    s.flush_acks(&mut out);
    assert_eq!(names(&out), ["SubmitShares.Success"]);
    // without a TLV the channel's identity names the share
    let plain = extended_share(&mut miner, 2, &[1, 1, 1, 1, 1], true);
    out.clear();
    s.on_frame(plain.into(), &[], clock.now(), &mut out);
    assert_eq!(forwards(&out)[0].worker, "farm-proxy");
    // the same share again is a duplicate
    out.clear();
    s.on_frame(big.into(), &tlvs, clock.now(), &mut out);
    assert_eq!(error_codes(&out), ["duplicate-share"]);

    // failover: a longer upstream prefix, the same space per miner; the extended channel
    // keeps its size under a new prefix and its shares validate on the new upstream
    let w2 = work(2, 1, 500, 0xaa, &[0xcc, 0xdd, 0xee], true);
    out.clear();
    s.on_work(Some(Arc::new(w2.clone())), &mut out);
    assert_eq!(
        names(&out),
        [
            "SetExtranoncePrefix",
            "NewMiningJob",
            "SetNewPrevHash",
            "SetExtranoncePrefix",
            "NewExtendedMiningJob",
            "SetNewPrevHash"
        ]
    );
    miner.feed(&out);
    let share = extended_share(&mut miner, 2, &rolled, true);
    out.clear();
    s.on_frame(share.into(), &[], clock.now(), &mut out);
    let fw = forwards(&out);
    assert_eq!(fw[0].epoch, 2);
    validate_upstream(&mut upstream_channel(&w2, 1), &fw[0], 1);

    // an upstream space too small for the extended channel's size closes it alone
    let mut tight = work(3, 1, 600, 0xaa, &[0xcc], true);
    tight.extranonce_size = 5;
    tight.id_width = 2;
    tight.extranonce2_size = 3;
    out.clear();
    s.on_work(Some(Arc::new(tight)), &mut out);
    assert!(names(&out).contains(&"CloseChannel"), "{:?}", names(&out));
    assert_eq!(s.channel_count(), 1);
    assert!(!s.is_closed());
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
