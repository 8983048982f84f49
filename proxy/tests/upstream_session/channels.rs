//! Sessions with several upstream channels: jobs addressed to their group, a further channel
//! the pool refuses, channels asked for before the setup.

use super::*;

/// Every work action, as (channel index, work).
fn works_by_channel(out: &[Action]) -> Vec<(usize, strata_proxy::work::UpstreamWork)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Work { channel, work } => Some((*channel, work.clone())),
            _ => None,
        })
        .collect()
}

/// `open_session` plus a second channel asked for later (request id 2, upstream id [`CH1`]).
fn two_channels() -> (UpstreamSession, Instant) {
    let (mut s, t0) = open_session(true);
    let mut out = vec![];
    s.set_channels(2, &mut out);
    let msgs = sent(&out);
    let [Message::Mining(MiningMessage::OpenExtendedMiningChannel(o))] = msgs.as_slice() else {
        panic!("{msgs:?}")
    };
    assert_eq!(o.request_id, 2, "the request id carries the channel index");
    assert_eq!(o.user_identity.as_str(), "farm.main");
    // asking again for as many opens nothing more
    out.clear();
    s.set_channels(2, &mut out);
    assert!(out.is_empty(), "{out:?}");
    s.on_message(
        opened(2, CH1, target(0x3f).to_le_bytes(), 0xcc).into(),
        t0,
        &mut out,
    )
    .unwrap();
    let [Action::Opened(info)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!((info.index, info.channel_id), (1, CH1));
    assert_eq!(&info.extranonce_prefix[..], &[0xcc; 6]);
    assert_eq!(info.target, target(0x3f));
    assert!(s.is_channel_open(1));
    assert_eq!(s.channel_count(), 2);
    (s, t0)
}

#[test]
fn group_addressed_jobs_and_prevhash_reach_every_member_channel() {
    let (mut s, t0) = two_channels();
    let mut out = vec![];
    // the pool groups both channels (and one of another connection, which is not ours)
    s.on_message(
        SetGroupChannel {
            group_channel_id: GROUP,
            channel_ids: vec![CH, CH1, 999].try_into().unwrap(),
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.channel(0).unwrap().group_id(), Some(GROUP));
    assert_eq!(s.channel(1).unwrap().group_id(), Some(GROUP));

    // a future job and its prevhash, both addressed to the group: work for each member
    let mut j = job(1, None, 0x40);
    j.channel_id = GROUP;
    s.on_message(j.into(), t0, &mut out).unwrap();
    assert!(out.is_empty(), "{out:?}");
    s.on_message(prevhash(GROUP, 1, 0x77, 1_700_000_000).into(), t0, &mut out)
        .unwrap();
    let w = works_by_channel(&out);
    assert_eq!(
        w.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        vec![0, 1],
        "{out:?}"
    );
    for (c, work) in &w {
        assert!(work.clean);
        assert_eq!(work.job_id, 1);
        assert_eq!(work.prev_hash, [0x77; 32]);
        assert_eq!(&work.coinbase_prefix[..], &[1, 2, 3, 0x40]);
        // each member keeps its own extranonce prefix and target
        let (prefix, t) = if *c == 0 {
            ([0xaa; 6], target(0x7f))
        } else {
            ([0xcc; 6], target(0x3f))
        };
        assert_eq!(&work.extranonce_prefix[..], &prefix);
        assert_eq!(work.upstream_target, t);
    }

    // a job active at once on the group: again one work per member
    out.clear();
    let mut j = job(2, Some(1_700_000_005), 0x50);
    j.channel_id = GROUP;
    s.on_message(j.into(), t0, &mut out).unwrap();
    let w = works_by_channel(&out);
    assert_eq!(w.len(), 2, "{out:?}");
    assert!(w.iter().all(|(_, w)| w.job_id == 2 && !w.clean));

    // SetTarget and SetExtranoncePrefix stay per channel
    out.clear();
    for msg in [
        Message::from(SetTarget {
            channel_id: CH1,
            maximum_target: U256(target(0x1f).to_le_bytes()),
        }),
        SetExtranoncePrefix {
            channel_id: CH1,
            extranonce_prefix: B0_32::new(&[0xdd; 6]).unwrap(),
        }
        .into(),
    ] {
        s.on_message(msg, t0, &mut out).unwrap();
    }
    assert_eq!(
        out,
        vec![Action::ExtranoncePrefix {
            channel: 1,
            prefix: Bytes::from_static(&[0xdd; 6])
        }]
    );
    assert_eq!(s.channel(1).unwrap().target(), target(0x1f));
    assert_eq!(s.channel(0).unwrap().target(), target(0x7f));
    // the group's next job carries each member's own target and prefix
    out.clear();
    let mut j = job(3, Some(1_700_000_006), 0x60);
    j.channel_id = GROUP;
    s.on_message(j.into(), t0, &mut out).unwrap();
    let w = works_by_channel(&out);
    assert_eq!(w.len(), 2, "{out:?}");
    for (c, work) in &w {
        let (prefix, t) = if *c == 0 {
            ([0xaa; 6], target(0x7f))
        } else {
            ([0xdd; 6], target(0x1f))
        };
        assert_eq!((work.job_id, work.upstream_target), (3, t));
        assert_eq!(&work.extranonce_prefix[..], &prefix);
    }

    // a share on each channel goes out with that channel's id and its own sequence numbers
    out.clear();
    let mut on1 = share(2, "rig2");
    on1.channel = 1;
    s.submit(share(1, "rig1"), &mut out);
    s.submit(on1, &mut out);
    let submits: Vec<(u32, u32, u32)> = sent(&out)
        .iter()
        .map(|m| match m {
            Message::Mining(MiningMessage::SubmitSharesExtended(x)) => {
                (x.channel_id, x.sequence_number, x.nonce)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(submits, vec![(CH, 0, 1), (CH1, 0, 2)]);
    assert_eq!(s.pending_shares(), 2);
    // the pool acknowledges channel 1's: only that share comes back
    out.clear();
    s.on_message(
        SubmitSharesSuccess {
            channel_id: CH1,
            last_sequence_number: 0,
            new_submits_accepted_count: 1,
            new_shares_sum: 1,
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    assert!(
        matches!(out.as_slice(), [Action::ShareResult { share, accepted: true, .. }]
            if share.channel == 1 && share.miner.0 == 2),
        "{out:?}"
    );
    assert_eq!(s.pending_shares(), 1);

    // UpdateChannel per channel
    out.clear();
    s.update_hashrate(1, 5.0e12, &mut out);
    assert!(
        matches!(sent(&out).as_slice(), [Message::Mining(MiningMessage::UpdateChannel(UpdateChannel { channel_id, nominal_hash_rate, .. }))]
            if *channel_id == CH1 && *nominal_hash_rate == 5.0e12),
        "{out:?}"
    );

    // closing the group closes every member: the session ends
    let e = s
        .on_message(
            CloseChannel {
                channel_id: GROUP,
                reason_code: Str0_255::new("maintenance").unwrap(),
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(e, SessionError::ChannelClosed { .. }), "{e}");
}

#[test]
fn a_refused_further_channel_is_reported_and_the_others_go_on() {
    let (mut s, t0) = two_channels();
    let mut out = vec![];
    s.set_channels(3, &mut out);
    s.on_message(
        OpenMiningChannelError {
            request_id: 3,
            error_code: Str0_255::new("max-channels-reached").unwrap(),
        }
        .into(),
        t0,
        &mut out,
    )
    .unwrap();
    assert!(
        matches!(out.last(), Some(Action::ChannelRefused { channel: 2, code }) if code == "max-channels-reached"),
        "{out:?}"
    );
    assert!(s.is_open());
    assert!(!s.is_channel_open(2));
    // its shares come straight back; the other channels still work
    out.clear();
    let mut on2 = share(3, "rig3");
    on2.channel = 2;
    s.submit(on2, &mut out);
    assert!(matches!(
        out.as_slice(),
        [Action::ShareResult { accepted: false, code: Some(c), .. }] if c == "stale-upstream"
    ));
    out.clear();
    s.on_message(job(1, None, 1).into(), t0, &mut out).unwrap();
    s.on_message(prevhash(CH, 1, 1, 1).into(), t0, &mut out)
        .unwrap();
    assert_eq!(
        works_by_channel(&out)
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>(),
        vec![0]
    );
    // an answer to a request never made is a protocol error
    let e = s
        .on_message(
            OpenMiningChannelError {
                request_id: 9,
                error_code: Str0_255::new("x").unwrap(),
            }
            .into(),
            t0,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(e, SessionError::Protocol { .. }), "{e}");
}

#[test]
fn channels_asked_before_the_setup_open_with_it() {
    let t0 = Instant::now();
    let mut s = UpstreamSession::new(SessionConfig {
        channels: 2,
        channel_hashrates: vec![1.0, 2.0e9],
        request_worker_identity: false,
        ..cfg()
    });
    let mut out = vec![];
    s.start(t0, &mut out);
    s.set_channels(3, &mut out);
    assert_eq!(sent(&out).len(), 1, "only SetupConnection before the setup");
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
    let opens: Vec<(u32, f32)> = sent(&out)
        .iter()
        .map(|m| match m {
            Message::Mining(MiningMessage::OpenExtendedMiningChannel(o)) => {
                (o.request_id, o.nominal_hash_rate)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(opens, vec![(1, 1.0), (2, 2.0e9), (3, 1.0e15)]);
}
