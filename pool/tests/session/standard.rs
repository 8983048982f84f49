//! Standard channels: jobs, shares acknowledged after commit, new tips, retargets and vardiff.

use super::*;

#[test]
fn setup_then_standard_channel_gets_a_job_and_shares_are_acked_after_commit() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    assert!(ev.is_empty(), "no work before setup");
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    assert_eq!(names(&ev), ["SetupConnection.Success"]);
    ev.clear();
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    assert_eq!(
        names(&ev),
        [
            "OpenStandardMiningChannel.Success",
            "NewMiningJob",
            "SetNewPrevHash"
        ]
    );
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    ev.clear();

    // a share that is not a block on regtest is rare; ask for a block candidate
    let share = miner.standard_share(1, true);
    s.on_message(share.clone().into(), &[], clock.now(), &mut ev);
    let mut acks = vec![];
    let mut block = None;
    for e in &ev {
        match e {
            Event::Accepted(b) => acks.push(b.1.clone()),
            Event::Block(f) => block = Some(f.clone()),
            Event::Send(m) => panic!("nothing may be sent before the commit, got {}", m.name()),
            _ => {}
        }
    }
    assert_eq!(acks.len(), 1);
    let found = block.expect("the share meets the regtest target");
    // the block the pool would submit is valid per the bitcoin crate
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    assert!(b.check_merkle_root());
    assert!(b.check_witness_commitment());
    assert_eq!(b.bip34_block_height().unwrap(), 101);
    assert_eq!(b.txdata[0].output[0].script_pubkey, pool_script());
    assert_eq!(found.hash, b.block_hash().to_string());
    let _ = b.block_hash().to_byte_array();

    ev.clear();
    s.on_committed(&acks, &mut ev);
    let msgs = sent(&ev);
    assert_eq!(msgs.len(), 1);
    let Message::Mining(MiningMessage::SubmitSharesSuccess(ok)) = &msgs[0] else {
        panic!("expected SubmitShares.Success, got {}", msgs[0].name());
    };
    assert_eq!(
        (
            ok.channel_id,
            ok.last_sequence_number,
            ok.new_submits_accepted_count
        ),
        (1, share.sequence_number, 1)
    );

    // the same share again is a duplicate
    ev.clear();
    s.on_message(share.into(), &[], clock.now(), &mut ev);
    assert_eq!(names(&ev), ["SubmitShares.Error"]);
}

#[test]
fn new_tip_makes_old_shares_stale_and_same_tip_work_is_active_at_once() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(REQUIRES_STANDARD_JOBS), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    let old = miner.standard_share(1, false);
    ev.clear();

    // same tip, new template: an active job, no SetNewPrevHash
    s.on_work(work(2, template(2, 101, 0xaa)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewMiningJob"]);
    miner.feed(&sent(&ev));
    ev.clear();

    // new tip: a future job then SetNewPrevHash; the old share is stale
    s.on_work(work(3, template(3, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewMiningJob", "SetNewPrevHash"]);
    miner.feed(&sent(&ev));
    ev.clear();
    s.on_message(old.into(), &[], clock.now(), &mut ev);
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SubmitSharesError(e)) = &msgs[0] else {
        panic!("expected an error");
    };
    assert_eq!(e.error_code.as_str(), "stale-share");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Rejected {
            code: "stale-share",
            ..
        }
    )));
}

#[test]
fn update_channel_retargets_and_vardiff_follows_the_share_rate() {
    let mut clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(REQUIRES_STANDARD_JOBS), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    ev.clear();
    // 1 TH/s at 6 shares/min: a much harder target than the minimum
    s.on_message(
        UpdateChannel {
            channel_id: 1,
            nominal_hash_rate: 1e12,
            maximum_target: U256([0xff; 32]),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    assert_eq!(names(&ev), ["SetTarget"]);
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SetTarget(t)) = &msgs[0] else {
        panic!()
    };
    let d = Target::from_le_bytes(t.maximum_target.0).difficulty();
    assert!(
        (d / (1e12 * 10.0 / 4_294_967_296.0) - 1.0).abs() < 0.05,
        "difficulty {d}"
    );
    miner.feed(&msgs);
    // a silent channel: after the ramp-up checks, vardiff lowers the difficulty
    ev.clear();
    for _ in 0..20 {
        clock.advance(Duration::from_secs(60));
        s.on_tick(clock.now(), &mut ev);
    }
    let targets: Vec<f64> = sent(&ev)
        .iter()
        .filter_map(|m| match m {
            Message::Mining(MiningMessage::SetTarget(t)) => {
                Some(Target::from_le_bytes(t.maximum_target.0).difficulty())
            }
            _ => None,
        })
        .collect();
    assert!(
        !targets.is_empty() && targets.last().unwrap() < &d,
        "{targets:?}"
    );
}
