//! Upstream work: jobs active at once on the same prevhash, clean work, new epochs.

use super::*;

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
