//! Memory: per channel and job, shared extended work, idle channels.

use super::*;

#[test]
fn memory_per_channel_and_job_stays_small() {
    // the figures the `channel` module documents
    let job = std::mem::size_of::<strata_work::channel::Job>();
    let channel = std::mem::size_of::<Channel>();
    eprintln!("Job {job} bytes, Channel {channel} bytes");
    assert!(job <= 320, "Job is {job} bytes");
    assert!(channel <= 448, "Channel is {channel} bytes");
}

#[test]
fn shared_extended_work_is_recorded_without_a_copy() {
    let cb = coinbase(8);
    let path = [[5u8; 32], [6u8; 32]];
    let work = ExtendedWork::new(
        Bytes::copy_from_slice(cb.prefix()),
        Bytes::copy_from_slice(cb.suffix()),
        path.to_vec().into(),
    );
    let new = |id: u32| {
        Channel::new_extended(
            id,
            &[0xe0, id as u8],
            4,
            easy_target(),
            ChannelConfig::default(),
        )
        .expect("valid")
    };
    let (mut a, mut b) = (new(1), new(2));
    for c in [&mut a, &mut b] {
        let id = c.id();
        c.on_new_extended_mining_job_shared(&ext_job(id, 1, None, &cb, &path, true), &work)
            .expect("the job's own work");
        c.on_set_new_prev_hash(&prevhash(id, 1, NBITS_HARD))
            .expect("activates");
    }
    let held = |c: &Channel| {
        std::ptr::from_ref(c.job(1).and_then(|j| j.extended()).expect("extended job"))
    };
    assert_eq!(held(&a), std::ptr::from_ref(&*work));
    assert_eq!(held(&b), std::ptr::from_ref(&*work));
    // validation is the same as with a private copy
    let (mut private, _) = extended_channel(NBITS_HARD, true, &path);
    let mut shared = Channel::new_extended(
        9,
        &[0xe0, 0xe1, 0xe2, 0xe3],
        4,
        easy_target(),
        ChannelConfig::default(),
    )
    .expect("valid");
    shared
        .on_new_extended_mining_job_shared(&ext_job(9, 1, None, &cb, &path, true), &work)
        .expect("shared");
    shared
        .on_set_new_prev_hash(&prevhash(9, 1, NBITS_HARD))
        .expect("activates");
    for n in 0..64 {
        let s = ext_share(9, 1, n, &[1, 2, 3, 4]);
        assert_eq!(
            validate_extended(&mut shared, &s, 0).map(|r| r.hash),
            validate_extended(&mut private, &s, 0).map(|r| r.hash)
        );
    }
    // work that is not the job's is refused, and nothing is recorded
    let other = ExtendedWork::new(
        Bytes::copy_from_slice(cb.prefix()),
        Bytes::copy_from_slice(cb.suffix()),
        vec![[7u8; 32]].into(),
    );
    assert_eq!(
        a.on_new_extended_mining_job_shared(&ext_job(1, 2, None, &cb, &path, true), &other),
        Err(ChannelError::WorkMismatch { job_id: 2 })
    );
    assert!(a.future_job(2).is_none());
}

#[test]
fn idle_channel_memory_is_released_and_sized() {
    // the future queue is given back after SetNewPrevHash, and the duplicate set reserves
    // what the configuration says at the first share
    let config = ChannelConfig {
        initial_seen_capacity: 2,
        ..ChannelConfig::default()
    };
    let mut c = Channel::new_standard(7, &[1, 2, 3, 4], Target::MAX, config).expect("valid");
    c.on_new_mining_job(&std_job(7, 1, None, 0xaa))
        .expect("future job");
    c.on_set_new_prev_hash(&prevhash(7, 1, NBITS_HARD))
        .expect("activates");
    assert_eq!(c.capacities().future_jobs, 0);
    assert_eq!(c.capacities().seen, 0);
    validate_standard(&mut c, &share(7, 1, 0), 0).expect("max target: accepted");
    assert!(
        (1..=4).contains(&c.capacities().seen),
        "{}",
        c.capacities().seen
    );
    let mut d = Channel::new_standard(8, &[1], Target::MAX, ChannelConfig::default()).expect("ok");
    d.on_new_mining_job(&std_job(8, 1, None, 0xaa))
        .expect("future job");
    d.on_set_new_prev_hash(&prevhash(8, 1, NBITS_HARD))
        .expect("activates");
    validate_standard(&mut d, &share(8, 1, 0), 0).expect("accepted");
    assert!(d.capacities().seen >= strata_work::channel::INITIAL_SEEN_CAPACITY);
}
