//! Standard channels: unique extranonces, forwarded shares that validate upstream, and the
//! hashrate reports.

use super::*;

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
