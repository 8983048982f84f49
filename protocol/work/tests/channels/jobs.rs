//! Job ids and targets: unique ids under eviction, `SetTarget` and `UpdateChannel`.

use super::*;

#[test]
fn job_ids_unique_over_100k_jobs_with_eviction() {
    let config = ChannelConfig {
        max_jobs: 4,
        max_future_jobs: 3,
        ..ChannelConfig::default()
    };
    let mut c = Channel::new_standard(1, &[], easy_target(), config).expect("valid");
    // wrap-around included
    c.set_next_job_id(u32::MAX - 50_000);
    let mut last_future = None;
    for i in 0..100_000u32 {
        let id = c.next_job_id();
        assert_ne!(id, 0);
        assert!(!c.job_id_in_use(id), "{id} collides");
        let future = i.is_multiple_of(10);
        if future {
            c.on_new_mining_job(&std_job(1, id, None, i as u8))
                .expect("unique id");
            last_future = Some(id);
        } else if c.prev_hash().is_none() || i % 10 == 5 {
            if let Some(f) = last_future.take() {
                c.on_set_new_prev_hash(&prevhash(1, f, NBITS_HARD))
                    .expect("future job");
            }
        } else {
            c.on_new_mining_job(&std_job(1, id, Some(MIN_NTIME), i as u8))
                .expect("unique id");
        }
        assert!(c.jobs().count() <= 4);
        let ids: Vec<u32> = c.jobs().map(|j| j.id()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }
    // the counter wrapped and skipped 0
    assert!(c.active_job().expect("active").id() < 100_000);
}

#[test]
fn set_target_applies_to_later_and_future_jobs() {
    let mut c = standard_channel(NBITS_HARD);
    c.on_new_mining_job(&std_job(7, 2, None, 2))
        .expect("future");
    let hard = Target::from_le_bytes({
        let mut t = [0xff; 32];
        t[31] = 0;
        t
    });
    c.on_set_target(&SetTarget {
        channel_id: 7,
        maximum_target: U256(hard.to_le_bytes()),
    })
    .expect("non-zero");
    // job 1 (active) keeps the easy target
    assert_eq!(c.job(1).expect("job").target(), easy_target());
    c.on_new_mining_job(&std_job(7, 3, Some(MIN_NTIME), 3))
        .expect("active");
    assert_eq!(c.job(3).expect("job").target(), hard);
    c.on_set_new_prev_hash(&prevhash(7, 2, NBITS_HARD))
        .expect("future");
    assert_eq!(c.job(2).expect("job").target(), hard);
    assert!(c
        .on_set_target(&SetTarget {
            channel_id: 7,
            maximum_target: U256([0; 32]),
        })
        .is_err());
}

#[test]
fn update_channel_picks_a_target_below_max() {
    let mut c = standard_channel(NBITS_HARD);
    let max = easy_target();
    let st = c
        .update_channel(&UpdateChannel {
            channel_id: 7,
            nominal_hash_rate: 1e12,
            maximum_target: U256(max.to_le_bytes()),
        })
        .expect("valid")
        .expect("target changed");
    let t = Target::from_le_bytes(st.maximum_target.0);
    assert!(t <= max);
    assert_eq!(c.target(), t);
    // at 1 TH/s and 6 shares/min: ~1e13 hashes per share
    assert!((t.work() / 1e13 - 1.0).abs() < 0.01);
    // a tiny hashrate is clamped to the maximum target
    let st = c
        .update_channel(&UpdateChannel {
            channel_id: 7,
            nominal_hash_rate: 1.0,
            maximum_target: U256(max.to_le_bytes()),
        })
        .expect("valid")
        .expect("changed");
    assert_eq!(Target::from_le_bytes(st.maximum_target.0), max);
    let bad = c.update_channel(&UpdateChannel {
        channel_id: 7,
        nominal_hash_rate: -1.0,
        maximum_target: U256(max.to_le_bytes()),
    });
    assert_eq!(
        bad.expect_err("negative").error_code(),
        Some("invalid-nominal-hashrate")
    );
    let bad = c.update_channel(&UpdateChannel {
        channel_id: 7,
        nominal_hash_rate: 1.0,
        maximum_target: U256([0; 32]),
    });
    assert_eq!(
        bad.expect_err("zero").error_code(),
        Some("max-target-out-of-range")
    );
}
