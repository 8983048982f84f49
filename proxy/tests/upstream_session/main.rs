//! The sans-IO upstream session against hand-built pool message sequences: one channel here,
//! several (group channels, a refused further channel) in `channels.rs`.
#![allow(clippy::unwrap_used)]

mod channels;

use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_protocol::common::{
    CommonMessage, Reconnect, SetupConnectionError, SetupConnectionSuccess,
};
use strata_protocol::extensions::{ExtensionsMessage, RequestExtensionsSuccess, UserIdentity};
use strata_protocol::mining::{
    self as m, CloseChannel, MiningMessage, NewExtendedMiningJob, OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError, SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash, SetTarget,
    SubmitSharesError, SubmitSharesSuccess, UpdateChannel,
};
use strata_protocol::tlv::TlvField;
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::Message;
use strata_proxy::upstream::session::{
    Action, SessionConfig, SessionError, UpstreamSession, CODE_UPSTREAM_CLOSED,
};
use strata_proxy::work::ForwardShare;
use strata_work::extranonce::MinerId;
use strata_work::target::Target;

const CH: u32 = 7;

fn cfg() -> SessionConfig {
    SessionConfig {
        user_identity: "farm.main".into(),
        nominal_hashrate: 1.0e15,
        min_extranonce_size: 10,
        setup_timeout: Duration::from_secs(10),
        first_job_timeout: Duration::from_secs(15),
        ..SessionConfig::default()
    }
}

fn sent(out: &[Action]) -> Vec<Message> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { msg, .. } => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn target(byte: u8) -> Target {
    let mut le = [0u8; 32];
    le[30] = byte;
    Target::from_le_bytes(le)
}

fn job(job_id: u32, min_ntime: Option<u32>, tag: u8) -> NewExtendedMiningJob {
    NewExtendedMiningJob {
        channel_id: CH,
        job_id,
        min_ntime,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: vec![U256([tag; 32]), U256([tag + 1; 32])]
            .try_into()
            .unwrap(),
        coinbase_tx_prefix: vec![1, 2, 3, tag].try_into().unwrap(),
        coinbase_tx_suffix: vec![9, 8, tag].try_into().unwrap(),
    }
}

/// The pool's `OpenExtendedMiningChannelSuccess`: 10 extranonce bytes after a 6-byte prefix
/// of `prefix`, no group.
fn opened(
    request_id: u32,
    channel_id: u32,
    target_le: [u8; 32],
    prefix: u8,
) -> OpenExtendedMiningChannelSuccess {
    OpenExtendedMiningChannelSuccess {
        request_id,
        channel_id,
        target: U256(target_le),
        extranonce_size: 10,
        extranonce_prefix: B0_32::new(&[prefix; 6]).unwrap(),
        group_channel_id: 0,
    }
}

/// A regtest `SetNewPrevHash` for `job_id` on `channel_id`, its prevhash `tag` repeated.
fn prevhash(channel_id: u32, job_id: u32, tag: u8, min_ntime: u32) -> SetNewPrevHash {
    SetNewPrevHash {
        channel_id,
        job_id,
        prev_hash: U256([tag; 32]),
        min_ntime,
        nbits: 0x207f_ffff,
    }
}

fn share(n: u32, worker: &str) -> ForwardShare {
    ForwardShare {
        channel: 0,
        miner: MinerId(n),
        worker: worker.into(),
        epoch: 1,
        job_id: 2,
        nonce: n,
        ntime: 1_700_000_000,
        version: 0x2000_0000,
        extranonce: Bytes::from(vec![n as u8; 10]),
        difficulty: 1.0,
        received: std::time::Instant::now(),
    }
}

/// A session with the channel open (0x0002 granted or not).
fn open_session(grant: bool) -> (UpstreamSession, Instant) {
    let t0 = Instant::now();
    let mut s = UpstreamSession::new(cfg());
    let mut out = vec![];
    s.start(t0, &mut out);
    let msgs = sent(&out);
    assert_eq!(msgs.len(), 1);
    let Message::Common(CommonMessage::SetupConnection(setup)) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert_eq!(setup.protocol, 0);
    assert_eq!((setup.min_version, setup.max_version), (2, 2));
    assert_eq!(setup.flags, m::REQUIRES_VERSION_ROLLING);

    out.clear();
    s.on_message(
        SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    let msgs = sent(&out);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let Message::Extensions(ExtensionsMessage::RequestExtensions(r)) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert_eq!(r.requested_extensions.as_slice(), &[0x0002]);
    let Message::Mining(MiningMessage::OpenExtendedMiningChannel(o)) = &msgs[1] else {
        panic!("{msgs:?}")
    };
    assert_eq!(o.user_identity.as_str(), "farm.main");
    assert_eq!(o.min_extranonce_size, 10);
    assert_eq!(o.nominal_hash_rate, 1.0e15);

    if grant {
        out.clear();
        s.on_message(
            RequestExtensionsSuccess {
                request_id: r.request_id,
                supported_extensions: vec![0x0002].try_into().unwrap(),
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        assert!(s.worker_identity_granted());
    }
    out.clear();
    s.on_message(
        opened(o.request_id, CH, target(0x7f).to_le_bytes(), 0xaa).into(),
        t0,
        &mut out,
    )
    .unwrap();
    let [Action::Opened(info)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(info.channel_id, CH);
    assert_eq!(info.extranonce_size, 10);
    assert_eq!(&info.extranonce_prefix[..], &[0xaa; 6]);
    assert_eq!(info.target, target(0x7f));
    assert!(s.is_open());
    (s, t0)
}

fn works(out: &[Action]) -> Vec<strata_proxy::work::UpstreamWork> {
    out.iter()
        .filter_map(|a| match a {
            Action::Work { channel: 0, work } => Some(work.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn future_job_and_prevhash_then_target_prefix_and_active_jobs_give_work() {
    let (mut s, t0) = open_session(true);
    let mut out = vec![];
    // a future job alone is no work yet
    s.on_message(job(1, None, 0x10).into(), t0, &mut out)
        .unwrap();
    assert!(out.is_empty(), "{out:?}");
    // the prevhash activates it
    s.on_message(prevhash(CH, 1, 0x55, 1_700_000_000).into(), t0, &mut out)
        .unwrap();
    let w = works(&out);
    assert_eq!(w.len(), 1, "{out:?}");
    let w1 = &w[0];
    assert!(w1.clean);
    assert_eq!(w1.job_id, 1);
    assert_eq!(w1.version, 0x2000_0000);
    assert!(w1.version_rolling_allowed);
    assert_ne!(w1.version_mask, 0);
    assert_eq!(w1.prev_hash, [0x55; 32]);
    assert_eq!(w1.nbits, 0x207f_ffff);
    assert_eq!(w1.min_ntime, 1_700_000_000);
    assert_eq!(&w1.coinbase_prefix[..], &[1, 2, 3, 0x10]);
    assert_eq!(&w1.coinbase_suffix[..], &[9, 8, 0x10]);
    assert_eq!(&w1.merkle_path[..], &[[0x10; 32], [0x11; 32]]);
    assert_eq!(&w1.extranonce_prefix[..], &[0xaa; 6]);
    assert_eq!(w1.extranonce_size, 10);
    assert_eq!(w1.upstream_target, target(0x7f));
    assert_eq!((w1.epoch, w1.id_width, w1.extranonce2_size), (0, 0, 0));

    // SetTarget: kept in the channel state, nothing to relay (spec 5.3.21: it applies to the
    // jobs activated after it): the current work keeps its job's target, the next job carries
    // the new one
    out.clear();
    s.on_message(
        SetTarget {
            channel_id: CH,
            maximum_target: U256(target(0x0f).to_le_bytes()),
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.channel(0).unwrap().target(), target(0x0f));
    let current = s.current_work(0, false).expect("current work");
    assert_eq!((current.job_id, current.upstream_target), (1, target(0x7f)));

    // SetExtranoncePrefix: reported, and the next job carries it
    out.clear();
    s.on_message(
        SetExtranoncePrefix {
            channel_id: CH,
            extranonce_prefix: B0_32::new(&[0xbb; 6]).unwrap(),
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        vec![Action::ExtranoncePrefix {
            channel: 0,
            prefix: Bytes::from_static(&[0xbb; 6])
        }]
    );

    // a job active at once on the same prevhash: new work, not clean
    out.clear();
    s.on_message(job(2, Some(1_700_000_010), 0x20).into(), t0, &mut out)
        .unwrap();
    let w = works(&out);
    assert_eq!(w.len(), 1, "{out:?}");
    let w2 = &w[0];
    assert!(!w2.clean);
    assert_eq!(w2.job_id, 2);
    assert!(w2.seq > w1.seq);
    assert_eq!(w2.prev_hash, [0x55; 32]);
    assert_eq!(w2.min_ntime, 1_700_000_010);
    assert_eq!(w2.upstream_target, target(0x0f));
    assert_eq!(&w2.extranonce_prefix[..], &[0xbb; 6]);
    assert_eq!(&w2.coinbase_prefix[..], &[1, 2, 3, 0x20]);

    // a SetNewPrevHash naming a job that was never a future job is a protocol error
    let e = s
        .on_message(prevhash(CH, 99, 0x66, 1_700_000_100).into(), t0, &mut out)
        .unwrap_err();
    assert!(matches!(e, SessionError::Channel { .. }), "{e}");
}

#[test]
fn success_batches_and_errors_map_back_to_the_shares() {
    let (mut s, t0) = open_session(true);
    let mut out = vec![];
    let long = "rig-with-a-very-long-name-0123456789abcdef";
    for n in 0..5 {
        s.submit(share(n, if n == 0 { long } else { "rig1" }), &mut out);
    }
    let mut seqs = vec![];
    for a in &out {
        let Action::Send { msg, tlvs } = a else {
            panic!("{a:?}")
        };
        let Message::Mining(MiningMessage::SubmitSharesExtended(x)) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(x.channel_id, CH);
        assert_eq!(x.extranonce.as_slice(), &[x.nonce as u8; 10]);
        assert_eq!(tlvs.len(), 1);
        let id = UserIdentity::decode_value(tlvs[0].value()).unwrap();
        if x.nonce == 0 {
            assert_eq!(id.as_str(), &long[..32]);
        } else {
            assert_eq!(id.as_str(), "rig1");
        }
        seqs.push(x.sequence_number);
    }
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert_eq!(s.pending_shares(), 5);

    // one error at once, then a batch acknowledging everything up to 3
    out.clear();
    s.on_message(
        SubmitSharesError {
            channel_id: CH,
            sequence_number: 1,
            error_code: Str0_255::new("difficulty-too-low").unwrap(),
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    s.on_message(
        SubmitSharesSuccess {
            channel_id: CH,
            last_sequence_number: 3,
            new_submits_accepted_count: 3,
            new_shares_sum: 3,
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    let results: Vec<(u32, bool, Option<String>)> = out
        .iter()
        .map(|a| match a {
            Action::ShareResult {
                share,
                accepted,
                code,
            } => (share.miner.0, *accepted, code.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        results,
        vec![
            (1, false, Some("difficulty-too-low".into())),
            (0, true, None),
            (2, true, None),
            (3, true, None),
        ]
    );
    assert_eq!(s.pending_shares(), 1);
    // the connection ends: the unanswered share is reported, not dropped
    out.clear();
    s.close(&mut out);
    assert!(matches!(
        out.as_slice(),
        [Action::ShareResult { share, accepted: false, code: Some(c) }]
            if share.miner.0 == 4 && c == CODE_UPSTREAM_CLOSED
    ));
}

#[test]
fn without_the_extension_shares_carry_no_tlv_and_pending_is_bounded() {
    let t0 = Instant::now();
    let (mut s, _) = open_session(false);
    let mut out = vec![];
    s.submit(share(1, "rig1"), &mut out);
    assert!(matches!(out.as_slice(), [Action::Send { tlvs, .. }] if tlvs.is_empty()));

    let mut small = UpstreamSession::new(SessionConfig {
        max_pending_shares: 2,
        request_worker_identity: false,
        ..cfg()
    });
    let mut out = vec![];
    // before the channel is open a share comes straight back
    small.submit(share(9, "x"), &mut out);
    assert!(matches!(
        out.as_slice(),
        [Action::ShareResult { accepted: false, code: Some(c), .. }] if c == "stale-upstream"
    ));
    small.start(t0, &mut out);
    small
        .on_message(
            SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap();
    small
        .on_message(opened(1, CH, [0xff; 32], 1).into(), t0, &mut out)
        .unwrap();
    out.clear();
    for n in 0..3 {
        small.submit(share(n, "x"), &mut out);
    }
    assert_eq!(small.pending_shares(), 2);
    let given_up: Vec<u32> = out
        .iter()
        .filter_map(|a| match a {
            Action::ShareResult {
                share,
                accepted: false,
                code: Some(c),
            } if c == "no-response" => Some(share.miner.0),
            _ => None,
        })
        .collect();
    assert_eq!(given_up, vec![0]);
}

#[test]
fn refusals_closes_reconnects_and_timeouts_end_the_session() {
    let t0 = Instant::now();
    // SetupConnection.Error
    let mut s = UpstreamSession::new(cfg());
    let mut out = vec![];
    s.start(t0, &mut out);
    let e = s
        .on_message(
            SetupConnectionError {
                flags: 0,
                error_code: Str0_255::new("protocol-version-mismatch").unwrap(),
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(&e, SessionError::SetupRefused { code, .. } if code == "protocol-version-mismatch")
    );
    // no answer at all: setup timeout
    let mut s = UpstreamSession::new(cfg());
    s.start(t0, &mut out);
    assert!(s.check_timeout(t0 + Duration::from_secs(9)).is_ok());
    assert!(matches!(
        s.check_timeout(t0 + Duration::from_secs(10)),
        Err(SessionError::SetupTimeout { .. })
    ));
    // OpenMiningChannel.Error
    s.on_message(
        SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    let e = s
        .on_message(
            OpenMiningChannelError {
                request_id: 1,
                error_code: Str0_255::new("min-extranonce-size-too-large").unwrap(),
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(&e, SessionError::ChannelRefused { code } if code == "min-extranonce-size-too-large")
    );

    // an open channel without a job: no-job timeout; a job clears the timer
    let (mut s, t0) = open_session(false);
    assert!(matches!(
        s.check_timeout(t0 + Duration::from_secs(15)),
        Err(SessionError::NoJobTimeout { .. })
    ));
    s.on_message(job(1, None, 1).into(), t0, &mut out).unwrap();
    s.on_message(prevhash(CH, 1, 1, 1).into(), t0, &mut out)
        .unwrap();
    assert_eq!(s.deadline(), None);
    assert!(s.check_timeout(t0 + Duration::from_secs(3600)).is_ok());

    // a pool that sends no job of its own to a work-selection channel (SRI's pool with its
    // JDS) but accepts our custom jobs: an accepted custom job clears the timer too
    let (mut s, t0) = open_session(false);
    s.on_message(
        m::SetCustomMiningJobSuccess {
            channel_id: CH,
            request_id: 7,
            job_id: 3,
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    assert_eq!(s.deadline(), None);
    assert!(s.check_timeout(t0 + Duration::from_secs(3600)).is_ok());
    // a refused one does not
    let (mut s, t0) = open_session(false);
    s.on_message(
        m::SetCustomMiningJobError {
            channel_id: CH,
            request_id: 7,
            error_code: Str0_255::new("invalid-mining-job-token").unwrap(),
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    assert!(s.check_timeout(t0 + Duration::from_secs(15)).is_err());

    // CloseChannel and Reconnect end the session with their reason
    let e = s
        .on_message(
            CloseChannel {
                channel_id: CH,
                reason_code: Str0_255::new("maintenance").unwrap(),
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(&e, SessionError::ChannelClosed { reason } if reason == "maintenance"));
    let (mut s, t0) = open_session(false);
    let e = s
        .on_message(
            Reconnect {
                new_host: Str0_255::new("pool2.example").unwrap(),
                new_port: 3336,
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        e,
        SessionError::Reconnect {
            host: "pool2.example".into(),
            port: 3336
        }
    );
}

#[test]
fn a_pool_requiring_a_fixed_version_gives_work_without_version_rolling() {
    let t0 = Instant::now();
    let mut s = UpstreamSession::new(SessionConfig {
        request_worker_identity: false,
        ..cfg()
    });
    let mut out = vec![];
    s.start(t0, &mut out);
    for msg in [
        Message::from(SetupConnectionSuccess {
            used_version: 2,
            flags: m::REQUIRES_FIXED_VERSION,
        }),
        opened(1, CH, [0xff; 32], 1).into(),
        job(1, None, 3).into(),
        prevhash(CH, 1, 2, 5).into(),
    ] {
        s.on_message(msg, t0, &mut out).unwrap();
    }
    let w = works(&out);
    assert_eq!(w.len(), 1);
    assert!(!w[0].version_rolling_allowed);
    assert_eq!(w[0].version_mask, 0);
    // after close the session takes nothing more
    s.close(&mut out);
    assert!(s.on_message(job(2, None, 4).into(), t0, &mut out).is_err());
}

// -------------------------------------------------------------------------------------------
// several channels on one connection, group channels
// -------------------------------------------------------------------------------------------

/// Channel 1's upstream id in the tests below (channel 0 is [`CH`]).
const CH1: u32 = 8;
/// The pool's group channel.
const GROUP: u32 = 100;
