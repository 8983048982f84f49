//! Batched validation and `SubmitShares.Success` batching, checked against one-by-one
//! validation.

use super::*;

#[test]
fn success_batching() {
    let mut c =
        Channel::new_standard(1, &[], Target::MAX, ChannelConfig::default()).expect("valid");
    c.on_new_mining_job(&std_job(1, 1, None, 1))
        .expect("future");
    c.on_set_new_prev_hash(&prevhash(1, 1, NBITS_HARD))
        .expect("activates");
    let mut batch = SuccessBatch::new(1, 3);
    let mut msgs = vec![];
    for n in 0..7 {
        let ok = validate_standard(&mut c, &share(1, 1, n), 0).expect("max target");
        msgs.extend(batch.record(&ok));
    }
    msgs.extend(batch.flush());
    assert!(batch.flush().is_none());
    let counts: Vec<(u32, u32)> = msgs
        .iter()
        .map(|m| (m.last_sequence_number, m.new_submits_accepted_count))
        .collect();
    assert_eq!(counts, vec![(2, 3), (5, 3), (6, 1)]);
    // difficulty of Target::MAX is about 2^-32
    assert_eq!(msgs[0].new_shares_sum, 0);
}

#[test]
fn batch_matches_one_by_one_standard() {
    let mut chans = Channels::new();
    for id in 1..=5u32 {
        let mut c =
            Channel::new_standard(id, &[], easy_target(), ChannelConfig::default()).expect("valid");
        c.on_new_mining_job(&std_job(id, 1, None, id as u8))
            .expect("future");
        c.on_new_mining_job(&std_job(id, 2, None, 9))
            .expect("future");
        c.on_set_new_prev_hash(&prevhash(id, 2, 0x1f7f_ffff))
            .expect("activates");
        c.on_new_mining_job(&std_job(id, 3, Some(MIN_NTIME), 3))
            .expect("active");
        chans.insert(c).expect("new");
    }
    let mut rng = Rng(0x1234_5678);
    let mut shares = vec![];
    for i in 0..3000u32 {
        let mut s = share(rng.next() % 6 + 1, rng.next() % 4 + 1, rng.next() % 150);
        s.sequence_number = i;
        if rng.next().is_multiple_of(10) {
            s.ntime = MIN_NTIME - 1;
        }
        if rng.next().is_multiple_of(10) {
            s.version ^= 1 << (rng.next() % 32);
        }
        shares.push(s);
    }
    let mut one = chans.clone();
    let expected: Vec<_> = shares.iter().map(|s| one.validate_standard(s, 0)).collect();
    for batch_size in [1, 7, 16, 100, 3000] {
        let mut batched = chans.clone();
        let mut v = BatchValidator::new();
        let mut got = vec![];
        for chunk in shares.chunks(batch_size) {
            v.validate_standard(&mut batched, chunk, 0, &mut got);
        }
        same(&expected, &got);
    }
    let oks = expected.iter().filter(|r| r.is_ok()).count();
    let dups = expected
        .iter()
        .filter(|r| matches!(r, Err(Rejection::DuplicateShare { .. })))
        .count();
    assert!(
        oks > 50 && dups > 10,
        "a meaningful mix: {oks} ok, {dups} dup"
    );
}

#[test]
fn batch_matches_one_by_one_extended() {
    let cb8 = coinbase(8);
    let cb12 = coinbase(12);
    let mut chans = Channels::new();
    for id in 1..=4u32 {
        let (cb, size) = if id.is_multiple_of(2) {
            (&cb8, 4u8)
        } else {
            (&cb12, 8u8)
        };
        let path: Vec<[u8; 32]> = (0..id * 3).map(|i| [i as u8; 32]).collect();
        let mut c = Channel::new_extended(
            id,
            &[id as u8; 4],
            size,
            easy_target(),
            ChannelConfig::default(),
        )
        .expect("valid");
        c.on_new_extended_mining_job(&ext_job(id, 1, None, cb, &path, id != 3))
            .expect("future");
        c.on_set_new_prev_hash(&prevhash(id, 1, 0x1f7f_ffff))
            .expect("activates");
        c.on_new_extended_mining_job(&ext_job(
            id,
            2,
            Some(MIN_NTIME),
            cb,
            &path[..path.len() / 2],
            true,
        ))
        .expect("active");
        chans.insert(c).expect("new");
    }
    let mut rng = Rng(0xdead_beef);
    let mut shares = vec![];
    for i in 0..2000u32 {
        let ch = rng.next() % 5 + 1;
        let size = if rng.next().is_multiple_of(20) {
            3
        } else if ch.is_multiple_of(2) {
            4
        } else {
            8
        };
        let en: Vec<u8> = (0..size).map(|_| (rng.next() % 3) as u8).collect();
        let mut s = ext_share(ch, rng.next() % 3 + 1, rng.next() % 200, &en);
        s.sequence_number = i;
        if rng.next().is_multiple_of(10) {
            s.version |= 0x2000;
        }
        shares.push(s);
    }
    let mut one = chans.clone();
    let expected: Vec<_> = shares.iter().map(|s| one.validate_extended(s, 0)).collect();
    for batch_size in [1, 5, 64, 2000] {
        let mut batched = chans.clone();
        let mut v = BatchValidator::new();
        let mut got = vec![];
        for chunk in shares.chunks(batch_size) {
            v.validate_extended(&mut batched, chunk, 0, &mut got);
        }
        same(&expected, &got);
    }
    let oks = expected.iter().filter(|r| r.is_ok()).count();
    let blocks = expected
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|a| a.is_block.is_some()))
        .count();
    assert!(oks > 50 && blocks > 0, "{oks} ok, {blocks} blocks");
}
