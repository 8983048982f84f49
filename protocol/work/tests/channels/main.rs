//! Channel state and share validation driven by message sequences, including out-of-order
//! and hostile ones.

use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::ScriptBuf;
use bytes::Bytes;
use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash,
    SetTarget, SubmitSharesExtended, SubmitSharesStandard, UpdateChannel,
    ERROR_BAD_EXTRANONCE_SIZE, ERROR_DIFFICULTY_TOO_LOW, ERROR_DUPLICATE_SHARE,
    ERROR_INVALID_CHANNEL_ID, ERROR_INVALID_JOB_ID, ERROR_INVALID_NON_ROLLABLE_VERSION_BIT,
    ERROR_NTIME_TOO_EARLY, ERROR_NTIME_TOO_LATE, ERROR_STALE_SHARE,
    ERROR_VERSION_ROLLING_NOT_ALLOWED,
};
use strata_protocol::{Seq0_255, Seq0_64K, B0_32, B0_64K, U256};
use strata_work::channel::{Channel, ChannelConfig, ChannelError, Channels, ExtendedWork};
use strata_work::coinbase::{bip34_height_push, output, Coinbase, CoinbaseParams};
use strata_work::header::Header;
use strata_work::merkle::{
    merkle_root_from_path, witness_commitment, witness_commitment_script, witness_merkle_root,
};
use strata_work::share::{
    validate_extended, validate_standard, AcceptedShare, BatchValidator, Rejection, SuccessBatch,
};
use strata_work::target::{hash_meets, Target};

const VERSION: u32 = 0x2000_0000;
const MIN_NTIME: u32 = 1_700_000_000;
/// Mainnet difficulty 1: no test share finds a block.
const NBITS_HARD: u32 = 0x1d00_ffff;
/// Regtest: about half of all hashes are blocks.
const NBITS_REGTEST: u32 = 0x207f_ffff;
const PREV: [u8; 32] = [0x42; 32];

/// A target about one hash in 16 meets.
fn easy_target() -> Target {
    let mut t = [0xff; 32];
    t[31] = 0x0f;
    Target::from_le_bytes(t)
}

fn std_job(channel_id: u32, job_id: u32, min_ntime: Option<u32>, root: u8) -> NewMiningJob {
    NewMiningJob {
        channel_id,
        job_id,
        min_ntime,
        version: VERSION,
        merkle_root: U256([root; 32]),
    }
}

fn prevhash(channel_id: u32, job_id: u32, nbits: u32) -> SetNewPrevHash {
    SetNewPrevHash {
        channel_id,
        job_id,
        prev_hash: U256(PREV),
        min_ntime: MIN_NTIME,
        nbits,
    }
}

fn share(channel_id: u32, job_id: u32, nonce: u32) -> SubmitSharesStandard {
    SubmitSharesStandard {
        channel_id,
        sequence_number: nonce,
        job_id,
        nonce,
        ntime: MIN_NTIME,
        version: VERSION,
    }
}

fn coinbase(extranonce_len: usize) -> Coinbase {
    Coinbase::build(&CoinbaseParams {
        version: 2,
        script_sig_prefix: bip34_height_push(1000),
        pool_tag: b"/strata/".to_vec(),
        extranonce_len,
        sequence: u32::MAX,
        pool_outputs: vec![output(5_000_000_000, ScriptBuf::from_bytes(vec![0x51]))],
        template_outputs: vec![output(
            0,
            ScriptBuf::from_bytes(
                witness_commitment_script(&witness_commitment(&witness_merkle_root(&[]), &[0; 32]))
                    .to_vec(),
            ),
        )],
        lock_time: 0,
        witness_reserved_value: [0; 32],
    })
    .expect("valid coinbase")
}

fn ext_job(
    channel_id: u32,
    job_id: u32,
    min_ntime: Option<u32>,
    cb: &Coinbase,
    path: &[[u8; 32]],
    rolling: bool,
) -> NewExtendedMiningJob {
    NewExtendedMiningJob {
        channel_id,
        job_id,
        min_ntime,
        version: VERSION,
        version_rolling_allowed: rolling,
        merkle_path: Seq0_255::new(path.iter().map(|h| U256(*h)).collect()).expect("<= 255"),
        coinbase_tx_prefix: B0_64K::new(cb.prefix().to_vec()).expect("fits"),
        coinbase_tx_suffix: B0_64K::new(cb.suffix().to_vec()).expect("fits"),
    }
}

fn ext_share(channel_id: u32, job_id: u32, nonce: u32, extranonce: &[u8]) -> SubmitSharesExtended {
    SubmitSharesExtended {
        channel_id,
        sequence_number: nonce,
        job_id,
        nonce,
        ntime: MIN_NTIME,
        version: VERSION,
        extranonce: B0_32::new(extranonce).expect("<= 32"),
    }
}

/// A standard channel 7 with future job 1 activated under `nbits`.
fn standard_channel(nbits: u32) -> Channel {
    let mut c = Channel::new_standard(7, &[1, 2, 3, 4], easy_target(), ChannelConfig::default())
        .expect("valid");
    c.on_new_mining_job(&std_job(7, 1, None, 0xaa))
        .expect("future job");
    c.on_set_new_prev_hash(&prevhash(7, 1, nbits))
        .expect("activates");
    c
}

fn header_of(c: &Channel, s: &SubmitSharesStandard) -> Header {
    let job = c.job(s.job_id).expect("job");
    let p = c.prev_hash().expect("prevhash");
    Header {
        version: s.version,
        prev_hash: p.prev_hash,
        merkle_root: job.merkle_root(),
        ntime: s.ntime,
        nbits: p.nbits,
        nonce: s.nonce,
    }
}

/// A nonce from `from` up whose share hash meets (or not) the channel target.
fn nonce_where(c: &Channel, job_id: u32, from: u32, meets: bool) -> u32 {
    let target = c.job(job_id).expect("job").target();
    (from..)
        .find(|&n| header_of(c, &share(c.id(), job_id, n)).meets(&target) == meets)
        .expect("found")
}

fn code(r: Result<AcceptedShare, Rejection>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.error_code(),
    }
}

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

fn extended_channel(nbits: u32, rolling: bool, path: &[[u8; 32]]) -> (Channel, Coinbase) {
    let cb = coinbase(8);
    let mut c = Channel::new_extended(
        9,
        &[0xe0, 0xe1, 0xe2, 0xe3],
        4,
        easy_target(),
        ChannelConfig::default(),
    )
    .expect("valid");
    c.on_new_extended_mining_job(&ext_job(9, 1, None, &cb, path, rolling))
        .expect("future");
    c.on_set_new_prev_hash(&prevhash(9, 1, nbits))
        .expect("activates");
    (c, cb)
}

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
fn group_job_ids_skip_ids_in_use_on_members() {
    let mut chans = Channels::new();
    let mut a =
        Channel::new_standard(1, &[0; 4], easy_target(), ChannelConfig::default()).expect("valid");
    a.on_new_mining_job(&std_job(1, 1, None, 1))
        .expect("own job");
    a.on_new_mining_job(&std_job(1, 2, None, 1))
        .expect("own job");
    chans.insert(a).expect("new");
    chans.create_group(100, Some(4)).expect("group");
    chans.add_to_group(100, 1).expect("size 4");
    assert_eq!(chans.next_job_id(100).expect("group"), 3);
}

#[test]
fn block_candidate_on_regtest() {
    let path: Vec<[u8; 32]> = (0..12u8).map(|i| [i; 32]).collect();
    let (mut c, cb) = extended_channel(NBITS_REGTEST, true, &path);
    let extranonce = [7, 7, 7, 7];
    let (r, s) = (0..)
        .find_map(|n| {
            let s = ext_share(9, 1, n, &extranonce);
            validate_extended(&mut c, &s, 0)
                .ok()
                .filter(|r| r.is_block.is_some())
                .map(|r| (r, s))
        })
        .expect("regtest blocks are easy");
    let block = r.is_block.expect("block");
    let network = Target::from_compact(NBITS_REGTEST).expect("valid");
    assert_eq!(block.header.hash(), r.hash);
    assert!(hash_meets(&block.header.hash(), &network));
    assert_eq!(block.header.nonce, s.nonce);
    assert_eq!(block.header.prev_hash, PREV);
    // the merkle root is that of prefix ‖ extranonce_prefix ‖ extranonce ‖ suffix
    let parts = block.coinbase.expect("extended job");
    assert_eq!(
        parts.extranonce.as_slice(),
        &[0xe0, 0xe1, 0xe2, 0xe3, 7, 7, 7, 7]
    );
    let stripped = parts.stripped();
    let tx: bitcoin::Transaction = deserialize(&stripped).expect("a transaction");
    assert_eq!(tx.compute_txid().to_byte_array(), parts.txid());
    assert_eq!(
        merkle_root_from_path(tx.compute_txid().to_byte_array(), path.iter()),
        block.header.merkle_root
    );
    let mut full = vec![];
    cb.write_full(&[parts.extranonce.as_slice()], &mut full)
        .expect("8 bytes");
    assert_eq!(
        deserialize::<bitcoin::Transaction>(&full)
            .expect("full coinbase")
            .compute_txid(),
        tx.compute_txid()
    );
}

#[test]
fn coinbase_only_block_assembles_and_validates() {
    let (mut c, cb) = extended_channel(NBITS_REGTEST, true, &[]);
    let block = (0..)
        .find_map(|n| {
            validate_extended(&mut c, &ext_share(9, 1, n, &[1, 1, 1, 1]), 0)
                .ok()
                .and_then(|r| r.is_block)
        })
        .expect("regtest blocks are easy");
    let parts = block.coinbase.clone().expect("extended");
    let mut full = vec![];
    cb.write_full(&[parts.extranonce.as_slice()], &mut full)
        .expect("8 bytes");
    let bytes = block.assemble::<Vec<u8>>(&full, &[]);
    let b: bitcoin::Block = deserialize(&bytes).expect("a block");
    assert!(b.check_merkle_root());
    assert!(b.check_witness_commitment());
    assert_eq!(b.block_hash().to_byte_array(), block.hash);
    assert!(b.header.validate_pow(b.header.target()).is_ok());
}

#[test]
fn standard_block_candidate_without_coinbase() {
    let mut c = standard_channel(NBITS_REGTEST);
    let r = (0..)
        .find_map(|n| {
            validate_standard(&mut c, &share(7, 1, n), 0)
                .ok()
                .filter(|r| r.is_block.is_some())
        })
        .expect("regtest");
    let b = r.is_block.expect("block");
    assert!(b.coinbase.is_none());
    assert_eq!(b.header.merkle_root, [0xaa; 32]);
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

#[test]
fn group_channel_with_standard_and_extended_members() {
    let cb = coinbase(8);
    let path = [[3u8; 32], [4; 32]];
    let mut chans = Channels::new();
    chans
        .insert(
            Channel::new_standard(
                1,
                &[1, 1, 1, 1, 1, 1, 1, 1],
                easy_target(),
                ChannelConfig::default(),
            )
            .expect("valid"),
        )
        .expect("new");
    chans
        .insert(
            Channel::new_extended(2, &[2, 2, 2, 2], 4, easy_target(), ChannelConfig::default())
                .expect("valid"),
        )
        .expect("new");
    chans
        .insert(
            Channel::new_extended(3, &[3, 3], 4, easy_target(), ChannelConfig::default())
                .expect("valid"),
        )
        .expect("new");
    chans
        .on_set_group_channel(&SetGroupChannel {
            group_channel_id: 100,
            channel_ids: Seq0_64K::new(vec![1, 2]).expect("small"),
        })
        .expect("same full extranonce size 8");
    assert!(matches!(
        chans.add_to_group(100, 3),
        Err(ChannelError::ExtranonceSizeMismatch {
            expected: 8,
            got: 6,
            ..
        })
    ));
    let id = chans.next_job_id(100).expect("group");
    chans
        .on_new_extended_mining_job(&ext_job(100, id, None, &cb, &path, true))
        .expect("to members");
    chans
        .on_set_new_prev_hash(&prevhash(100, id, NBITS_HARD))
        .expect("to members");
    // the standard member's merkle root is that of its prefix
    let root = merkle_root_from_path(cb.txid(&[&[1u8; 8]]).expect("8 bytes"), path.iter());
    assert_eq!(
        chans
            .get(1)
            .expect("ch")
            .job(id)
            .expect("job")
            .merkle_root(),
        root
    );
    let mut accepted = 0;
    for n in 0..200 {
        if chans.validate_standard(&share(1, id, n), 0).is_ok() {
            accepted += 1;
        }
        if chans
            .validate_extended(&ext_share(2, id, n, &[0, 0, 0, 1]), 0)
            .is_ok()
        {
            accepted += 1;
        }
    }
    assert!(accepted > 5);
    // SetExtranoncePrefix must keep the group's size
    assert!(matches!(
        chans.on_set_extranonce_prefix(&SetExtranoncePrefix {
            channel_id: 2,
            extranonce_prefix: B0_32::new(&[9; 5]).expect("small"),
        }),
        Err(ChannelError::ExtranonceSizeMismatch { .. })
    ));
    chans
        .on_set_extranonce_prefix(&SetExtranoncePrefix {
            channel_id: 2,
            extranonce_prefix: B0_32::new(&[9; 4]).expect("small"),
        })
        .expect("same size");
    // earlier jobs keep the old prefix
    assert_eq!(
        chans
            .get(2)
            .expect("ch")
            .job(id)
            .expect("job")
            .extranonce_prefix(),
        &[2, 2, 2, 2]
    );
    // closing the group closes its members
    let mut closed = chans.close(100);
    closed.sort_unstable();
    assert_eq!(closed, vec![1, 2]);
    assert!(chans.get(3).is_some());
}

/// A standard channel 1 remembering at most `max_seen_shares`, its job 1 active under `nbits`.
fn budget_channel(max_seen_shares: usize, nbits: u32) -> Channel {
    let mut c = Channel::new_standard(
        1,
        &[],
        Target::MAX,
        ChannelConfig {
            max_seen_shares,
            ..ChannelConfig::default()
        },
    )
    .expect("valid");
    c.on_new_mining_job(&std_job(1, 1, None, 1))
        .expect("future");
    c.on_set_new_prev_hash(&prevhash(1, 1, nbits))
        .expect("activates");
    c
}

/// `share(1, 1, nonce)` at `ntime`.
fn share_at(nonce: u32, ntime: u32) -> SubmitSharesStandard {
    SubmitSharesStandard {
        ntime,
        ..share(1, 1, nonce)
    }
}

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

/// A tiny deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as u32
    }
}

fn same(a: &[Result<AcceptedShare, Rejection>], b: &[Result<AcceptedShare, Rejection>]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x, y, "share {i}");
    }
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

#[test]
fn memory_per_channel_and_job_stays_small() {
    // the figures the `channel` module documents
    let job = std::mem::size_of::<strata_work::channel::Job>();
    let channel = std::mem::size_of::<Channel>();
    eprintln!("Job {job} bytes, Channel {channel} bytes");
    assert!(job <= 320, "Job is {job} bytes");
    assert!(channel <= 448, "Channel is {channel} bytes");
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

/// A nonce whose extended share on `job_id` (extranonce 1,2,3,4) meets the channel target.
fn nonce_where_ext(c: &mut Channel, job_id: u32) -> u32 {
    (0..)
        .find(|&n| {
            let mut probe = c.clone();
            validate_extended(&mut probe, &ext_share(9, job_id, n, &[1, 2, 3, 4]), 0).is_ok()
        })
        .expect("some nonce")
}
