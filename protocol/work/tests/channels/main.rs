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

mod batch;
mod blocks;
mod duplicates;
mod extended;
mod group;
mod jobs;
mod memory;
mod standard;

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

/// A nonce whose extended share on `job_id` (extranonce 1,2,3,4) meets the channel target.
fn nonce_where_ext(c: &mut Channel, job_id: u32) -> u32 {
    (0..)
        .find(|&n| {
            let mut probe = c.clone();
            validate_extended(&mut probe, &ext_share(9, job_id, n, &[1, 2, 3, 4]), 0).is_ok()
        })
        .expect("some nonce")
}
