//! Extended channels: their share checks and custom jobs.

use super::*;

#[test]
fn extended_checks() {
    let (mut c, _) = extended_channel(NBITS_HARD, false, &[[5; 32]]);
    assert_eq!(
        code(validate_extended(
            &mut c,
            &ext_share(9, 1, 0, &[1, 2, 3]),
            0
        )),
        ERROR_BAD_EXTRANONCE_SIZE
    );
    assert_eq!(
        code(validate_extended(&mut c, &ext_share(9, 1, 0, &[1; 5]), 0)),
        ERROR_BAD_EXTRANONCE_SIZE
    );
    let mut s = ext_share(9, 1, 0, &[1, 2, 3, 4]);
    s.version |= 0x2000;
    assert_eq!(
        code(validate_extended(&mut c, &s, 0)),
        ERROR_VERSION_ROLLING_NOT_ALLOWED
    );
    // a standard share on an extended channel
    assert_eq!(
        code(validate_standard(&mut c, &share(9, 1, 0), 0)),
        ERROR_INVALID_CHANNEL_ID
    );
    // accepted and duplicate
    let (n, r) = (0..)
        .find_map(|n| {
            validate_extended(&mut c, &ext_share(9, 1, n, &[1, 2, 3, 4]), 0)
                .ok()
                .map(|r| (n, r))
        })
        .expect("some nonce");
    assert!(r.is_block.is_none());
    assert_eq!(
        code(validate_extended(
            &mut c,
            &ext_share(9, 1, n, &[1, 2, 3, 4]),
            0
        )),
        ERROR_DUPLICATE_SHARE
    );
    // same nonce, other extranonce: a different header
    let other = validate_extended(&mut c, &ext_share(9, 1, n, &[9, 9, 9, 9]), 0);
    assert_ne!(code(other), ERROR_DUPLICATE_SHARE);
}

#[test]
fn custom_jobs_are_active_at_once_on_extended_channels_only() {
    let (mut c, cb) = extended_channel(NBITS_HARD, false, &[]);
    let work = ExtendedWork::new(
        Bytes::from(cb.prefix().to_vec()),
        Bytes::from(cb.suffix().to_vec()),
        Vec::new().into(),
    );
    // job 1 is taken; 2 is active at once, its min_ntime raised to the prevhash's
    assert!(matches!(
        c.on_custom_job(1, VERSION, MIN_NTIME, work.clone()),
        Err(ChannelError::JobIdInUse { .. })
    ));
    c.on_custom_job(2, VERSION, 0, work.clone())
        .expect("custom job");
    assert_eq!(c.active_job().map(|j| j.id()), Some(2));
    assert_eq!(c.active_job().and_then(|j| j.min_ntime()), Some(MIN_NTIME));
    let n = nonce_where_ext(&mut c, 2);
    assert!(validate_extended(&mut c, &ext_share(9, 2, n, &[1, 2, 3, 4]), 0).is_ok());

    // no prevhash yet, or a standard channel: refused
    let mut fresh =
        Channel::new_extended(3, &[1], 4, easy_target(), ChannelConfig::default()).expect("valid");
    assert!(matches!(
        fresh.on_custom_job(1, VERSION, MIN_NTIME, work.clone()),
        Err(ChannelError::NoPrevHash { .. })
    ));
    let mut std = standard_channel(NBITS_HARD);
    assert!(matches!(
        std.on_custom_job(5, VERSION, MIN_NTIME, work),
        Err(ChannelError::WrongChannelKind { .. })
    ));
}
