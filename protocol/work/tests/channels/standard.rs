//! Standard channels: shares against jobs, prevhashes, the nTime window and the version
//! mask.

use super::*;

#[test]
fn valid_share_then_duplicate() {
    let mut c = standard_channel(NBITS_HARD);
    let n = nonce_where(&c, 1, 0, true);
    let s = share(7, 1, n);
    let ok = validate_standard(&mut c, &s, 0).expect("accepted");
    assert_eq!(ok.hash, header_of(&c, &s).hash());
    assert!(ok.is_block.is_none());
    assert_eq!(ok.difficulty, easy_target().difficulty());
    assert_eq!(
        code(validate_standard(&mut c, &s, 0)),
        ERROR_DUPLICATE_SHARE
    );
    // same header under another sequence number is still a duplicate
    let again = SubmitSharesStandard {
        sequence_number: 99,
        ..s
    };
    assert_eq!(
        code(validate_standard(&mut c, &again, 0)),
        ERROR_DUPLICATE_SHARE
    );
    let low = nonce_where(&c, 1, 0, false);
    assert_eq!(
        code(validate_standard(&mut c, &share(7, 1, low), 0)),
        ERROR_DIFFICULTY_TOO_LOW
    );
    assert_eq!(c.seen_shares(), 1);
}

#[test]
fn unknown_channel_job_and_future_job() {
    let mut chans = Channels::new();
    chans.insert(standard_channel(NBITS_HARD)).expect("new id");
    assert_eq!(
        code(chans.validate_standard(&share(8, 1, 0), 0)),
        ERROR_INVALID_CHANNEL_ID
    );
    assert_eq!(
        code(chans.validate_standard(&share(7, 99, 0), 0)),
        ERROR_INVALID_JOB_ID
    );
    chans
        .on_new_mining_job(&std_job(7, 2, None, 0xbb))
        .expect("future");
    // a future job takes no shares until activated
    assert_eq!(
        code(chans.validate_standard(&share(7, 2, 0), 0)),
        ERROR_INVALID_JOB_ID
    );
    // an extended share on a standard channel
    assert_eq!(
        code(chans.validate_extended(&ext_share(7, 1, 0, &[]), 0)),
        ERROR_INVALID_CHANNEL_ID
    );
    let e = Rejection::InvalidJobId { job_id: 99 }.to_message(7, 5);
    assert_eq!(
        (e.channel_id, e.sequence_number, e.error_code.as_str()),
        (7, 5, ERROR_INVALID_JOB_ID)
    );
}

#[test]
fn stale_after_prevhash_and_past_jobs() {
    let mut c = standard_channel(NBITS_HARD);
    // job 2 active under the same prevhash: job 1 becomes a past job, still valid
    c.on_new_mining_job(&std_job(7, 2, Some(MIN_NTIME + 5), 0xbb))
        .expect("active");
    let n1 = nonce_where(&c, 1, 0, true);
    assert_eq!(code(validate_standard(&mut c, &share(7, 1, n1), 0)), "ok");
    c.on_new_mining_job(&std_job(7, 3, None, 0xcc))
        .expect("future");
    c.on_set_new_prev_hash(&SetNewPrevHash {
        prev_hash: U256([0x43; 32]),
        ..prevhash(7, 3, NBITS_HARD)
    })
    .expect("activates");
    for job in [1, 2] {
        assert_eq!(
            code(validate_standard(&mut c, &share(7, job, n1 + 1), 0)),
            ERROR_STALE_SHARE
        );
    }
    assert_eq!(c.jobs().count(), 1);
    assert_eq!(c.seen_shares(), 0);
    let n3 = nonce_where(&c, 3, 0, true);
    assert_eq!(code(validate_standard(&mut c, &share(7, 3, n3), 0)), "ok");
}

#[test]
fn prevhash_must_name_a_future_job() {
    let mut c = standard_channel(NBITS_HARD);
    let before = format!("{c:?}");
    assert!(matches!(
        c.on_set_new_prev_hash(&prevhash(7, 55, NBITS_HARD)),
        Err(ChannelError::UnknownJob { job_id: 55, .. })
    ));
    // job 1 is active, not future
    assert!(matches!(
        c.on_set_new_prev_hash(&prevhash(7, 1, NBITS_HARD)),
        Err(ChannelError::NotAFutureJob { job_id: 1, .. })
    ));
    assert_eq!(before, format!("{c:?}"), "channel unchanged");
    // invalid nbits
    c.on_new_mining_job(&std_job(7, 2, None, 1))
        .expect("future");
    assert!(matches!(
        c.on_set_new_prev_hash(&prevhash(7, 2, 0x2100_0000 | 0x0080_0001)),
        Err(ChannelError::InvalidNbits { .. })
    ));
    // an active job before any prevhash
    let mut fresh =
        Channel::new_standard(1, &[], easy_target(), ChannelConfig::default()).expect("valid");
    assert!(matches!(
        fresh.on_new_mining_job(&std_job(1, 1, Some(MIN_NTIME), 1)),
        Err(ChannelError::NoPrevHash { .. })
    ));
    // a job id colliding with a valid job
    assert!(matches!(
        c.on_new_mining_job(&std_job(7, 1, Some(MIN_NTIME), 1)),
        Err(ChannelError::JobIdInUse { job_id: 1, .. })
    ));
    assert!(matches!(
        c.on_new_mining_job(&std_job(7, 3, Some(MIN_NTIME - 1), 1)),
        Err(ChannelError::MinNtimeBelowPrevHash { .. })
    ));
}

#[test]
fn ntime_window() {
    let mut c = standard_channel(NBITS_HARD);
    let n = nonce_where(&c, 1, 0, true);
    let early = SubmitSharesStandard {
        ntime: MIN_NTIME - 1,
        ..share(7, 1, n)
    };
    assert_eq!(
        code(validate_standard(&mut c, &early, 0)),
        ERROR_NTIME_TOO_EARLY
    );
    assert!(matches!(
        validate_standard(&mut c, &early, 0),
        Err(Rejection::NtimeTooEarly { .. })
    ));
    // without a clock: min_ntime + 2h
    let late = SubmitSharesStandard {
        ntime: MIN_NTIME + 7201,
        ..share(7, 1, n)
    };
    assert!(matches!(
        validate_standard(&mut c, &late, 0),
        Err(Rejection::NtimeTooLate { .. })
    ));
    assert_eq!(
        code(validate_standard(&mut c, &late, 0)),
        ERROR_NTIME_TOO_LATE
    );
    // with a clock one hour later, it is within now + 2h (the hash decides then)
    let now_ms = u64::from(MIN_NTIME + 3600) * 1000;
    assert!(!matches!(
        validate_standard(&mut c, &late, now_ms),
        Err(Rejection::NtimeTooLate { .. })
    ));
    let edge = SubmitSharesStandard {
        ntime: MIN_NTIME + 7200,
        ..share(7, 1, n)
    };
    assert!(!matches!(
        validate_standard(&mut c, &edge, 0),
        Err(Rejection::NtimeTooLate { .. } | Rejection::NtimeTooEarly { .. })
    ));
}

#[test]
fn version_mask() {
    let mut c = standard_channel(NBITS_HARD);
    let mut s = share(7, 1, 0);
    s.version = VERSION | 0x1fff_ffe0; // every BIP323 bit: fine
    s.nonce = (0..)
        .find(|&n| header_of(&c, &SubmitSharesStandard { nonce: n, ..s }).meets(&easy_target()))
        .expect("found");
    assert_eq!(code(validate_standard(&mut c, &s, 0)), "ok");
    for bad in [
        VERSION | 0x10,
        VERSION | 0x4000_0000,
        0x3000_0000 ^ 0x2000_0000,
    ] {
        s.version = bad;
        assert_eq!(
            code(validate_standard(&mut c, &s, 0)),
            ERROR_INVALID_NON_ROLLABLE_VERSION_BIT,
            "{bad:#x}"
        );
    }
    // fixed-version channel
    let mut fixed = Channel::new_standard(
        3,
        &[],
        easy_target(),
        ChannelConfig {
            version_mask: 0,
            ..ChannelConfig::default()
        },
    )
    .expect("valid");
    fixed
        .on_new_mining_job(&std_job(3, 1, None, 1))
        .expect("future");
    fixed
        .on_set_new_prev_hash(&prevhash(3, 1, NBITS_HARD))
        .expect("activates");
    let s = SubmitSharesStandard {
        version: VERSION | 0x2000,
        ..share(3, 1, 0)
    };
    assert_eq!(
        code(validate_standard(&mut fixed, &s, 0)),
        ERROR_VERSION_ROLLING_NOT_ALLOWED
    );
}
