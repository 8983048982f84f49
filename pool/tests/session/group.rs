//! Group channels: one extended job for all standard channels, extended channels joining
//! the group.

use super::*;

#[test]
fn group_channel_gets_one_extended_job_for_all_standard_channels() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    s.on_message(open_standard(2, "alice"), &[], clock.now(), &mut ev);
    let mut miner = Miner::new();
    let ids: Vec<u32> = sent(&ev)
        .iter()
        .filter_map(|m| match m {
            Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => {
                Some(ok.channel_id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    miner.feed(&sent(&ev));
    ev.clear();
    s.on_work(work(2, template(2, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewExtendedMiningJob", "SetNewPrevHash"]);
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SetNewPrevHash(p)) = &msgs[1] else {
        panic!()
    };
    assert!(!ids.contains(&p.channel_id), "addressed to the group");
    miner.feed(&msgs);
    ev.clear();
    // both members mine on the group job with their own merkle roots
    let share2 = miner.standard_share(ids[1], false);
    let share1 = miner.standard_share(ids[0], false);
    for sh in [share1, share2] {
        s.on_message(sh.into(), &[], clock.now(), &mut ev);
    }
    let accepted = ev
        .iter()
        .filter(|e| matches!(e, Event::Accepted(_)))
        .count();
    assert_eq!(accepted, 2, "events: {:?}", names(&ev));
}

/// Spec 5.2.3: extended channels whose full extranonce size is the group's join the
/// connection's group channel (`SetGroupChannel`) at the next work; one extended job then
/// reaches standard and extended members alike, and a block found on it by the extended
/// member is assembled from the group job's coinbase.
#[test]
fn extended_channels_join_the_group_and_mine_its_jobs() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    s.on_message(
        OpenExtendedMiningChannel {
            request_id: 2,
            user_identity: Str0_255::new("proxy").unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    let msgs = sent(&ev);
    let (std_id, group_id) = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => {
                Some((ok.channel_id, ok.group_channel_id))
            }
            _ => None,
        })
        .unwrap();
    let ext = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) => {
                Some(ok.clone())
            }
            _ => None,
        })
        .unwrap();
    ev.clear();
    s.on_work(work(2, template(2, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(
        names(&ev),
        ["SetGroupChannel", "NewExtendedMiningJob", "SetNewPrevHash"]
    );
    let msgs = sent(&ev);
    match &msgs[0] {
        Message::Mining(MiningMessage::SetGroupChannel(g)) => {
            assert_eq!(g.group_channel_id, group_id);
            assert_eq!(
                g.channel_ids.iter().copied().collect::<Vec<_>>(),
                [ext.channel_id]
            );
        }
        other => panic!("{other:?}"),
    }
    miner.feed(&msgs);
    // both members mine on the group's job
    ev.clear();
    s.on_message(
        miner.standard_share(std_id, false).into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let c = miner.channels.get(ext.channel_id).unwrap();
    let job = c.active_job().unwrap();
    let prev = *c.prev_hash().unwrap();
    let extranonce = [3u8; 10];
    let parts = job.extended().unwrap();
    let txid = parts.txid(&[ext.extranonce_prefix.as_slice(), &extranonce]);
    let root = strata_work::merkle::merkle_root_from_path(txid, parts.merkle_path.iter());
    let mut h = Header {
        version: job.version(),
        prev_hash: prev.prev_hash,
        merkle_root: root,
        ntime: job.min_ntime().unwrap(),
        nbits: prev.nbits,
        nonce: 0,
    };
    // regtest: a share at the channel's target is a block
    while !h.meets(&Target::from_compact(REGTEST_BITS).unwrap()) {
        h.nonce += 1;
    }
    s.on_message(
        SubmitSharesExtended {
            channel_id: ext.channel_id,
            sequence_number: 1,
            job_id: job.id(),
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(&extranonce).unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let accepted: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Accepted(b) => Some(b.0.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(accepted.len(), 2, "events: {:?}", names(&ev));
    assert_eq!(accepted[1].height, 102, "the group job's template");
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a block candidate");
    assert_eq!(found.height, 102);
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    assert!(b.check_merkle_root() && b.check_witness_commitment());

    // a later work: one group job, no per-channel job for either member
    ev.clear();
    s.on_work(work(3, template(3, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewExtendedMiningJob"]);
}
