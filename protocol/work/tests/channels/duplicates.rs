//! Duplicate detection: the share budget, its renewal above an nTime floor, and what
//! counts as the same share.

use super::*;

/// A full duplicate set is renewed: emptied, with an nTime floor above every share it held.
/// No share it held can be replayed, newer shares count again, memory stays bounded. (A farm
/// restarting at its starting difficulty used to be refused every share for the rest of the
/// block once the pool's budget was spent.)
#[test]
fn a_full_duplicate_set_is_renewed_above_an_ntime_floor() {
    let mut c = budget_channel(10, NBITS_HARD);
    for n in 0..10 {
        assert_eq!(code(validate_standard(&mut c, &share(1, 1, n), 0)), "ok");
    }
    assert_eq!(c.seen_shares(), 10);
    // the eleventh renews the set; at the old nTime it is refused as stale
    let floor = MIN_NTIME + 1;
    assert!(matches!(
        validate_standard(&mut c, &share(1, 1, 10), 0),
        Err(Rejection::BelowNtimeFloor { ntime: MIN_NTIME, floor: f }) if f == floor
    ));
    assert_eq!(c.seen_shares(), 0);
    // a forgotten share cannot come back
    assert_eq!(
        code(validate_standard(&mut c, &share(1, 1, 3), 0)),
        ERROR_STALE_SHARE
    );
    // shares at the floor count, and are duplicates the second time
    for n in 0..10 {
        assert_eq!(
            code(validate_standard(&mut c, &share_at(n, floor), 0)),
            "ok"
        );
    }
    assert_eq!(
        code(validate_standard(&mut c, &share_at(3, floor), 0)),
        ERROR_DUPLICATE_SHARE
    );
    // full again: a share past the floor renews it and is accepted at once
    assert_eq!(
        code(validate_standard(&mut c, &share_at(10, floor + 5), 0)),
        "ok"
    );
    assert_eq!(c.seen_shares(), 1);
    // the new floor is one above the highest nTime the set held then (`floor`)
    assert_eq!(
        code(validate_standard(&mut c, &share_at(11, floor), 0)),
        ERROR_STALE_SHARE
    );
    assert_eq!(
        code(validate_standard(&mut c, &share_at(11, floor + 1), 0)),
        "ok"
    );
    // a new prevhash forgets the floor
    c.on_new_mining_job(&std_job(1, 2, None, 2))
        .expect("future");
    c.on_set_new_prev_hash(&SetNewPrevHash {
        prev_hash: U256([0x43; 32]),
        ..prevhash(1, 2, NBITS_HARD)
    })
    .expect("activates");
    assert_eq!(code(validate_standard(&mut c, &share(1, 2, 10), 0)), "ok");
}

/// The batch validator renews the set between the shares of one batch: a share hashed
/// before the renewal is still held to the new floor.
#[test]
fn a_batch_that_renews_the_set_holds_its_later_shares_to_the_floor() {
    let mut chans = Channels::new();
    chans.insert(budget_channel(4, NBITS_HARD)).expect("new id");
    let shares: Vec<_> = [0, 1, 2, 3, 4, 2].map(|n| share(1, 1, n)).into();
    let mut v = BatchValidator::new();
    let mut out = Vec::new();
    v.validate_standard(&mut chans, &shares, 0, &mut out);
    let codes: Vec<_> = out.into_iter().map(code).collect();
    // the fifth renews the set (refused below the new floor); the sixth, a share the old
    // set held, is refused too rather than counted twice
    assert_eq!(
        codes,
        ["ok", "ok", "ok", "ok", ERROR_STALE_SHARE, ERROR_STALE_SHARE]
    );
}

/// A share that is a block is never refused for the shares' floor or budget (the block would
/// be lost) and cannot be replayed: blocks are remembered apart, across the shares' renewals,
/// up to twice the budget. Regtest, where about every other share is a block, reaches that;
/// the blocks' set is then renewed like the shares' (a pool on regtest used to refuse every
/// block candidate after 131,072 of them on one prevhash).
#[test]
fn share_budget_never_refuses_a_block_below_its_own_budget() {
    // regtest: about every other share meets the network target (2^255)
    let mut c = budget_channel(10, NBITS_REGTEST);
    let mut probe = budget_channel(usize::MAX, NBITS_REGTEST);
    let mut is_block = |nonce| {
        validate_standard(&mut probe, &share(1, 1, nonce), 0)
            .expect("ok")
            .is_block
            .is_some()
    };
    let (mut blocks, mut others) = (Vec::new(), 0);
    let mut nonce = 0;
    while blocks.len() < 20 {
        let block = is_block(nonce);
        match validate_standard(&mut c, &share(1, 1, nonce), 0) {
            Ok(a) => {
                assert_eq!(a.is_block.is_some(), block);
                if block {
                    blocks.push(nonce);
                } else {
                    others += 1;
                }
            }
            // ordinary shares past the budget: the set renews and the old nTime is refused
            Err(Rejection::BelowNtimeFloor { .. }) => assert!(!block, "a block refused"),
            Err(e) => panic!("nonce {nonce}: {e}"),
        }
        nonce += 1;
    }
    assert_eq!(others, 10, "ordinary shares: the budget");
    assert_eq!(
        code(validate_standard(&mut c, &share(1, 1, blocks[3]), 0)),
        ERROR_DUPLICATE_SHARE,
        "a block below the floor is still remembered"
    );
    // the twenty-first block renews the blocks' set (only regtest finds that many blocks
    // on one prevhash): at the old nTime it is refused as stale, and so is any old block
    let floor = MIN_NTIME + 1;
    let twenty_first = loop {
        let block = is_block(nonce);
        let r = validate_standard(&mut c, &share(1, 1, nonce), 0);
        nonce += 1;
        if block {
            assert!(
                matches!(r, Err(Rejection::BelowNtimeFloor { ntime: MIN_NTIME, floor: f }) if f == floor),
                "{r:?}"
            );
            break nonce - 1;
        }
    };
    assert_eq!(
        code(validate_standard(&mut c, &share(1, 1, blocks[3]), 0)),
        ERROR_STALE_SHARE
    );
    // a block at the new floor counts once; the shares' floor is apart (and lower)
    assert_eq!(
        code(validate_standard(&mut c, &share_at(twenty_first, floor), 0)),
        "ok"
    );
    assert_eq!(
        code(validate_standard(&mut c, &share_at(twenty_first, floor), 0)),
        ERROR_DUPLICATE_SHARE
    );
    // held now: that block alone (the ordinary shares past their budget were refused below
    // their own floor, and the blocks' set was emptied)
    assert_eq!(c.seen_shares(), 1);
}

/// Found by the differential test against SRI's server channel: a template re-sent as a new
/// job gives the same merkle root, so a share resubmitted under the new job id is the same
/// header and must not be credited twice.
#[test]
fn same_header_under_another_job_is_a_duplicate() {
    let mut c = Channel::new_standard(1, &[], Target::MAX, ChannelConfig::default()).expect("ok");
    c.on_new_mining_job(&std_job(1, 1, None, 0x77))
        .expect("future");
    c.on_set_new_prev_hash(&prevhash(1, 1, NBITS_HARD))
        .expect("activates");
    c.on_new_mining_job(&std_job(1, 2, Some(MIN_NTIME), 0x77))
        .expect("same root");
    assert_eq!(code(validate_standard(&mut c, &share(1, 1, 5), 0)), "ok");
    assert_eq!(
        code(validate_standard(&mut c, &share(1, 2, 5), 0)),
        ERROR_DUPLICATE_SHARE
    );
}

/// A `SetNewPrevHash` repeating the current tip keeps the duplicate set: otherwise a share
/// could be replayed under a new job carrying an old job's merkle root.
#[test]
fn repeated_tip_keeps_duplicates() {
    let mut c = Channel::new_standard(1, &[], Target::MAX, ChannelConfig::default()).expect("ok");
    c.on_new_mining_job(&std_job(1, 1, None, 0x77))
        .expect("future");
    c.on_set_new_prev_hash(&prevhash(1, 1, NBITS_HARD))
        .expect("activates");
    assert_eq!(code(validate_standard(&mut c, &share(1, 1, 5), 0)), "ok");
    c.on_new_mining_job(&std_job(1, 2, None, 0x77))
        .expect("future");
    c.on_set_new_prev_hash(&prevhash(1, 2, NBITS_HARD))
        .expect("same tip");
    assert_eq!(
        code(validate_standard(&mut c, &share(1, 1, 5), 0)),
        ERROR_STALE_SHARE
    );
    assert_eq!(
        code(validate_standard(&mut c, &share(1, 2, 5), 0)),
        ERROR_DUPLICATE_SHARE
    );
}
