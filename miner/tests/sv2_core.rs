//! The SV2 miner core driven by hand-built messages; its shares are checked by the same
//! channel state and validator the pool uses (strata_work).

mod common;

use common::*;
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner, Sv2Output, Sv2State};
use strata_miner::{Event, MinerError};
use strata_protocol::common::{
    CommonMessage, Reconnect, SetupConnectionError, SetupConnectionSuccess,
};
use strata_protocol::mining::{
    CloseChannel, MiningMessage, OpenExtendedMiningChannelSuccess, OpenMiningChannelError,
    OpenStandardMiningChannelSuccess, SetExtranoncePrefix, SetGroupChannel, SetTarget,
    SubmitSharesError, SubmitSharesSuccess, REQUIRES_STANDARD_JOBS, REQUIRES_VERSION_ROLLING,
};
use strata_protocol::{Message, Seq0_64K, Str0_255, B0_32, U256};
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::share::{validate_extended, validate_standard};
use strata_work::target::Target;

fn miner(channel: ChannelRequest) -> Sv2Miner {
    Sv2Miner::new(Sv2Config {
        index: 0,
        user: "bcrt1qtest.sim0".into(),
        channel,
        nominal_hashrate: 1000.0,
        record_latency: true,
    })
    .expect("miner")
}

fn feed(m: &mut Sv2Miner, msg: impl Into<Message>) {
    m.handle(msg.into(), now()).expect("handled");
}

/// Connects, answers setup; returns the open request's id.
fn setup(m: &mut Sv2Miner) -> u32 {
    m.connect("127.0.0.1", 3333);
    let (sent, _, _) = drain(m);
    match &sent[..] {
        [Message::Common(CommonMessage::SetupConnection(s))] => {
            assert_eq!(s.protocol, 0);
            assert_eq!((s.min_version, s.max_version), (2, 2));
            assert_ne!(s.flags & REQUIRES_VERSION_ROLLING, 0);
            assert_eq!(s.flags & REQUIRES_STANDARD_JOBS, 0);
            assert_eq!(s.endpoint_port, 3333);
        }
        other => panic!("expected SetupConnection, got {other:?}"),
    }
    feed(
        m,
        SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        },
    );
    let (sent, _, _) = drain(m);
    match &sent[..] {
        [Message::Mining(MiningMessage::OpenStandardMiningChannel(o))] => {
            assert_eq!(o.user_identity.as_str(), "bcrt1qtest.sim0");
            assert_eq!(o.nominal_hash_rate, 1000.0);
            o.request_id
        }
        [Message::Mining(MiningMessage::OpenExtendedMiningChannel(o))] => {
            assert_eq!(o.min_extranonce_size, 8);
            o.request_id
        }
        other => panic!("expected an open, got {other:?}"),
    }
}

fn open_standard(m: &mut Sv2Miner, channel_id: u32, group: u32, target: Target) {
    let request_id = setup(m);
    feed(
        m,
        OpenStandardMiningChannelSuccess {
            request_id,
            channel_id,
            target: U256(target.to_le_bytes()),
            extranonce_prefix: B0_32::new(&[7, 7, 7, 7]).expect("prefix"),
            group_channel_id: group,
        },
    );
    assert_eq!(m.state(), Sv2State::Open { channel_id });
}

fn server_standard(channel_id: u32, target: Target) -> Channel {
    Channel::new_standard(channel_id, &[7, 7, 7, 7], target, ChannelConfig::default())
        .expect("channel")
}

fn as_standard(msg: Message) -> strata_protocol::mining::SubmitSharesStandard {
    match msg {
        Message::Mining(MiningMessage::SubmitSharesStandard(s)) => s,
        other => panic!("expected SubmitSharesStandard, got {other:?}"),
    }
}

fn as_extended(msg: Message) -> strata_protocol::mining::SubmitSharesExtended {
    match msg {
        Message::Mining(MiningMessage::SubmitSharesExtended(s)) => s,
        other => panic!("expected SubmitSharesExtended, got {other:?}"),
    }
}

#[test]
fn standard_job_shares_validate_on_the_server_channel() {
    let mut m = miner(ChannelRequest::Standard);
    open_standard(&mut m, 1, 0, easy_target());
    let mut server = server_standard(1, easy_target());
    let job = standard_job(1, 5, true, 0x42);
    let prev = prevhash(1, 5, 0x99, HARD_NBITS);
    server.on_new_mining_job(&job).expect("job");
    server.on_set_new_prev_hash(&prev).expect("prev");
    feed(&mut m, job);
    assert!(!m.has_work(), "a future job alone is kept, not mined");
    feed(&mut m, prev);
    assert_eq!(m.current_job(), Some((1, 5)));
    let mut seqs = vec![];
    let mut versions = vec![];
    for _ in 0..5 {
        let share = as_standard(mine_share(&mut m));
        let ok = validate_standard(&mut server, &share, now_ms()).expect("valid share");
        assert!(ok.is_block.is_none());
        seqs.push(share.sequence_number);
        versions.push(share.version);
    }
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    // the version is rolled inside BIP320's bits, never outside
    assert!(versions.iter().all(|v| v & !0x1fff_e000 == 0x2000_0000));
    assert!(versions.iter().any(|&v| v != 0x2000_0000));
    assert_eq!(m.stats().submitted, 5);
    assert_eq!(m.pending_shares(), 5);

    // acknowledgements: a batch covering seq 0..=2, then an error for 4
    feed(
        &mut m,
        SubmitSharesSuccess {
            channel_id: 1,
            last_sequence_number: 2,
            new_submits_accepted_count: 3,
            new_shares_sum: 3,
        },
    );
    feed(
        &mut m,
        SubmitSharesError {
            channel_id: 1,
            sequence_number: 4,
            error_code: Str0_255::new("stale-share").expect("code"),
        },
    );
    let (_, events, _) = drain(&mut m);
    assert!(events.contains(&Event::ShareAccepted {
        channel: Some(1),
        seq: 2,
        count: 3,
        acked: 3
    }));
    assert_eq!(m.stats().acknowledged, 3);
    assert_eq!(m.stats().rejected.get("stale-share"), Some(&1));
    assert_eq!(m.stats().latencies_us.len(), 3);
    assert_eq!(m.pending_shares(), 1);
}

#[test]
fn block_candidates_are_reported() {
    let mut m = miner(ChannelRequest::Standard);
    open_standard(&mut m, 1, 0, easy_target());
    feed(&mut m, standard_job(1, 1, true, 1));
    feed(&mut m, prevhash(1, 1, 2, REGTEST_NBITS));
    // half of all hashes meet the regtest target: a few shares give a block
    for _ in 0..8 {
        m.mine(4096, now());
    }
    let (_, events, _) = drain(&mut m);
    assert!(m.stats().blocks > 0);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::BlockCandidate { hash, .. } if hash.len() == 64)));
}

#[test]
fn extended_channel_shares_validate_and_follow_the_extranonce_prefix() {
    let mut m = miner(ChannelRequest::Extended {
        min_extranonce_size: 8,
    });
    let request_id = setup(&mut m);
    feed(
        &mut m,
        OpenExtendedMiningChannelSuccess {
            request_id,
            channel_id: 3,
            target: U256(easy_target().to_le_bytes()),
            extranonce_size: 8,
            extranonce_prefix: B0_32::new(&[1, 2, 3, 4]).expect("prefix"),
            group_channel_id: 0,
        },
    );
    let mut server =
        Channel::new_extended(3, &[1, 2, 3, 4], 8, easy_target(), ChannelConfig::default())
            .expect("channel");
    let job = extended_job(3, 1, true, true);
    let prev = prevhash(3, 1, 0x55, HARD_NBITS);
    server.on_new_extended_mining_job(&job).expect("job");
    server.on_set_new_prev_hash(&prev).expect("prev");
    feed(&mut m, job);
    feed(&mut m, prev);
    let mut extranonces = vec![];
    for _ in 0..3 {
        let share = as_extended(mine_share(&mut m));
        assert_eq!(share.extranonce.as_slice().len(), 8);
        validate_extended(&mut server, &share, now_ms()).expect("valid extended share");
        extranonces.push(share.extranonce.as_slice().to_vec());
    }

    // a new prefix applies to jobs sent after it
    let p = SetExtranoncePrefix {
        channel_id: 3,
        extranonce_prefix: B0_32::new(&[9, 9, 9, 9]).expect("prefix"),
    };
    server.on_set_extranonce_prefix(&p).expect("prefix");
    feed(&mut m, p);
    let job2 = extended_job(3, 2, false, false);
    server.on_new_extended_mining_job(&job2).expect("job");
    feed(&mut m, job2);
    assert_eq!(m.current_job(), Some((3, 2)));
    let share = as_extended(mine_share(&mut m));
    assert_eq!(share.job_id, 2);
    assert_eq!(share.version, 0x2000_0000, "rolling not allowed on job 2");
    validate_extended(&mut server, &share, now_ms()).expect("valid under the new prefix");
    assert!(!extranonces.contains(&share.extranonce.as_slice().to_vec()));
}

#[test]
fn group_channel_extended_job_on_a_standard_channel() {
    let mut m = miner(ChannelRequest::Standard);
    open_standard(&mut m, 1, 10, easy_target());
    let mut server = Channels::new();
    server
        .insert(server_standard(1, easy_target()))
        .expect("insert");
    server.add_to_group(10, 1).expect("group");
    let job = extended_job(10, 7, true, true);
    let prev = prevhash(10, 7, 0x31, HARD_NBITS);
    server.on_new_extended_mining_job(&job).expect("job");
    server.on_set_new_prev_hash(&prev).expect("prev");
    feed(&mut m, job);
    feed(&mut m, prev);
    assert_eq!(m.current_job(), Some((1, 7)));
    for _ in 0..3 {
        let share = as_standard(mine_share(&mut m));
        assert_eq!(share.channel_id, 1);
        server
            .validate_standard(&share, now_ms())
            .expect("valid share on the group member");
    }
    // SetGroupChannel to another group keeps mining
    feed(
        &mut m,
        SetGroupChannel {
            group_channel_id: 11,
            channel_ids: Seq0_64K::new(vec![1]).expect("ids"),
        },
    );
    assert_eq!(m.channels().get(1).and_then(|c| c.group_id()), Some(11));
    assert!(m.has_work());
    assert_eq!(m.stats().protocol_warnings, 0);
}

#[test]
fn set_target_changes_the_difficulty_of_jobs_activated_later() {
    let mut m = miner(ChannelRequest::Standard);
    open_standard(&mut m, 1, 0, easy_target());
    let mut server = server_standard(1, easy_target());
    let job = standard_job(1, 1, true, 1);
    server.on_new_mining_job(&job).expect("job");
    feed(&mut m, job);
    let prev = prevhash(1, 1, 3, HARD_NBITS);
    server.on_set_new_prev_hash(&prev).expect("prev");
    feed(&mut m, prev);
    assert_eq!(m.current_target(), Some(easy_target()));

    let st = SetTarget {
        channel_id: 1,
        maximum_target: U256(easier_target().to_le_bytes()),
    };
    server.on_set_target(&st).expect("target");
    feed(&mut m, st);
    // the active job keeps its target (spec 5.3.21)
    assert_eq!(m.current_target(), Some(easy_target()));
    let job = standard_job(1, 2, false, 2);
    server.on_new_mining_job(&job).expect("job");
    feed(&mut m, job);
    assert_eq!(m.current_target(), Some(easier_target()));
    let share = as_standard(mine_share(&mut m));
    let ok = validate_standard(&mut server, &share, now_ms()).expect("valid");
    assert_eq!(ok.job_id, 2);
    assert!((ok.difficulty - easier_target().difficulty()).abs() < 1e-12);

    // a harder target: shares of later jobs meet it
    let hard = Target::from_difficulty(1.0 / 1_048_576.0).expect("difficulty");
    let st = SetTarget {
        channel_id: 1,
        maximum_target: U256(hard.to_le_bytes()),
    };
    server.on_set_target(&st).expect("target");
    feed(&mut m, st);
    let job = standard_job(1, 3, false, 3);
    server.on_new_mining_job(&job).expect("job");
    feed(&mut m, job);
    let share = as_standard(mine_share(&mut m));
    let ok = validate_standard(&mut server, &share, now_ms()).expect("valid at the harder target");
    assert!(hard.is_met_by(&ok.hash));
}

#[test]
fn set_new_prev_hash_drops_old_work_at_once() {
    let mut m = miner(ChannelRequest::Standard);
    open_standard(&mut m, 1, 0, easy_target());
    let mut server = server_standard(1, easy_target());
    let msgs: Vec<Message> = vec![
        standard_job(1, 1, true, 1).into(),
        prevhash(1, 1, 0x10, HARD_NBITS).into(),
        standard_job(1, 2, true, 2).into(),
    ];
    for msg in msgs {
        match &msg {
            Message::Mining(MiningMessage::NewMiningJob(j)) => {
                server.on_new_mining_job(j).expect("job")
            }
            Message::Mining(MiningMessage::SetNewPrevHash(p)) => {
                server.on_set_new_prev_hash(p).expect("prev")
            }
            _ => unreachable!(),
        }
        feed(&mut m, msg);
    }
    assert_eq!(
        m.current_job(),
        Some((1, 1)),
        "future job 2 waits for its prevhash"
    );
    let old = as_standard(mine_share(&mut m));
    assert_eq!(old.job_id, 1);
    let prev = prevhash(1, 2, 0x20, HARD_NBITS);
    server.on_set_new_prev_hash(&prev).expect("prev");
    feed(&mut m, prev);
    assert_eq!(m.current_job(), Some((1, 2)));
    for _ in 0..3 {
        let share = as_standard(mine_share(&mut m));
        assert_eq!(share.job_id, 2);
        validate_standard(&mut server, &share, now_ms()).expect("valid on the new tip");
    }
    // the share of the old tip is stale for the server
    let err = validate_standard(&mut server, &old, now_ms()).expect_err("stale");
    assert_eq!(err.error_code(), "stale-share");
}

#[test]
fn reconnect_is_parsed_into_an_endpoint_change() {
    let mut m = miner(ChannelRequest::Standard);
    open_standard(&mut m, 1, 0, easy_target());
    feed(
        &mut m,
        Reconnect {
            new_host: Str0_255::new("").expect("host"),
            new_port: 0,
        },
    );
    feed(
        &mut m,
        Reconnect {
            new_host: Str0_255::new("pool2.example").expect("host"),
            new_port: 4444,
        },
    );
    let (_, _, other) = drain(&mut m);
    assert_eq!(
        other,
        vec![
            Sv2Output::Reconnect {
                host: None,
                port: None
            },
            Sv2Output::Reconnect {
                host: Some("pool2.example".into()),
                port: Some(4444)
            },
        ]
    );
    // after reconnecting, the core starts over with a SetupConnection
    m.connect("pool2.example", 4444);
    assert_eq!(m.state(), Sv2State::AwaitingSetup);
    assert!(!m.has_work());
}

#[test]
fn close_channel_reopens_and_unknown_jobs_are_warnings() {
    let mut m = miner(ChannelRequest::Standard);
    open_standard(&mut m, 1, 0, easy_target());
    feed(&mut m, standard_job(1, 1, true, 1));
    feed(&mut m, prevhash(1, 1, 1, HARD_NBITS));
    assert!(m.has_work());
    drain(&mut m);
    feed(
        &mut m,
        CloseChannel {
            channel_id: 1,
            reason_code: Str0_255::new("maintenance").expect("reason"),
        },
    );
    assert!(!m.has_work());
    let (sent, events, _) = drain(&mut m);
    let reopen = match &sent[..] {
        [Message::Mining(MiningMessage::OpenStandardMiningChannel(o))] => o.request_id,
        other => panic!("expected a new open, got {other:?}"),
    };
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ChannelClosed { channel: 1, .. })));
    // a job for the closed channel: reported, not fatal
    feed(&mut m, standard_job(1, 2, false, 1));
    assert_eq!(m.stats().protocol_warnings, 1);
    feed(
        &mut m,
        OpenStandardMiningChannelSuccess {
            request_id: reopen,
            channel_id: 2,
            target: U256(easy_target().to_le_bytes()),
            extranonce_prefix: B0_32::new(&[1]).expect("prefix"),
            group_channel_id: 0,
        },
    );
    feed(&mut m, standard_job(2, 1, true, 1));
    feed(&mut m, prevhash(2, 1, 1, HARD_NBITS));
    assert_eq!(m.current_job(), Some((2, 1)));
}

#[test]
fn setup_and_open_errors_are_fatal() {
    let mut m = miner(ChannelRequest::Standard);
    m.connect("h", 1);
    let err = m
        .handle(
            SetupConnectionError {
                flags: 0,
                error_code: Str0_255::new("unsupported-protocol").expect("code"),
            }
            .into(),
            now(),
        )
        .expect_err("fatal");
    assert!(
        matches!(err, MinerError::SetupRejected { ref code, .. } if code == "unsupported-protocol")
    );
    assert_eq!(err.exit_code(), 1);
    let (_, events, _) = drain(&mut m);
    assert!(events.iter().any(|e| matches!(e, Event::SetupError { .. })));

    let mut m = miner(ChannelRequest::Standard);
    let request_id = setup(&mut m);
    let err = m
        .handle(
            OpenMiningChannelError {
                request_id,
                error_code: Str0_255::new("unknown-user").expect("code"),
            }
            .into(),
            now(),
        )
        .expect_err("fatal");
    assert!(matches!(err, MinerError::ChannelRejected { ref code } if code == "unknown-user"));
    assert_eq!(err.exit_code(), 1);
}
