//! Setup and opens: what is refused, targets against `UpdateChannel` and the upstream,
//! version rolling the upstream forbids.

use super::*;

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
