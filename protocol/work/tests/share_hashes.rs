//! The hash a validated share is judged by is the SHA-256d of the header it implies, whatever
//! shortcut the validator takes: a standard job's cached midstate (shares at the job's
//! version), the full header (rolled versions), an extended job's coinbase-prefix midstate
//! (single and batched paths).

use bitcoin::hashes::{sha256d, Hash};
use bytes::Bytes;
use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};
use strata_protocol::{Seq0_255, B0_32, B0_64K, U256};
use strata_work::channel::{Channel, ChannelConfig, Channels, ExtendedWork};
use strata_work::coinbase::txid_from_parts;
use strata_work::merkle::merkle_root_from_path;
use strata_work::share::{validate_extended, validate_standard, AcceptedShare, BatchValidator};
use strata_work::target::Target;

const VERSION: u32 = 0x2000_0000;
const MIN_NTIME: u32 = 1_700_000_000;
/// Mainnet difficulty 1: no share here is a block.
const NBITS: u32 = 0x1d00_ffff;

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn random_bytes(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng(seed) as u8).collect()
}

/// SHA-256d of `version ‖ prev ‖ root ‖ ntime ‖ nbits ‖ nonce`, computed independently of
/// strata-work (`bitcoin::hashes`).
fn header_hash(version: u32, prev: &[u8; 32], root: &[u8; 32], ntime: u32, nonce: u32) -> [u8; 32] {
    let mut h = Vec::with_capacity(80);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(prev);
    h.extend_from_slice(root);
    h.extend_from_slice(&ntime.to_le_bytes());
    h.extend_from_slice(&NBITS.to_le_bytes());
    h.extend_from_slice(&nonce.to_le_bytes());
    sha256d::Hash::hash(&h).to_byte_array()
}

fn prevhash(channel_id: u32, job_id: u32, prev: [u8; 32]) -> SetNewPrevHash {
    SetNewPrevHash {
        channel_id,
        job_id,
        prev_hash: U256(prev),
        min_ntime: MIN_NTIME,
        nbits: NBITS,
    }
}

fn accepted(r: Result<AcceptedShare, strata_work::share::Rejection>) -> AcceptedShare {
    match r {
        Ok(a) => a,
        Err(e) => panic!("share rejected: {e}"),
    }
}

#[test]
fn standard_share_hash_is_the_header_hash_at_fixed_and_rolled_versions() {
    let mut seed = 0x5eed_u64;
    // two jobs kept: a new job is written into the slot of the job it evicts, whose cached
    // midstate must not survive
    let config = ChannelConfig {
        max_jobs: 2,
        ..ChannelConfig::default()
    };
    let mut c = Channel::new_standard(1, &[], Target::MAX, config).expect("channel");
    let mut nonce = 0u32;
    // a few blocks, each with a few jobs, so cached midstates must follow new prevhashes and
    // new merkle roots
    for block in 0..4u32 {
        let prev: [u8; 32] = random_bytes(&mut seed, 32).try_into().expect("32 bytes");
        let first = 100 * block + 1;
        let root0: [u8; 32] = random_bytes(&mut seed, 32).try_into().expect("32 bytes");
        c.on_new_mining_job(&NewMiningJob {
            channel_id: 1,
            job_id: first,
            min_ntime: None,
            version: VERSION,
            merkle_root: U256(root0),
        })
        .expect("future job");
        c.on_set_new_prev_hash(&prevhash(1, first, prev))
            .expect("prevhash");
        let mut roots = vec![(first, root0)];
        for j in 1..6 {
            let root: [u8; 32] = random_bytes(&mut seed, 32).try_into().expect("32 bytes");
            c.on_new_mining_job(&NewMiningJob {
                channel_id: 1,
                job_id: first + j,
                min_ntime: Some(MIN_NTIME),
                version: VERSION,
                merkle_root: U256(root),
            })
            .expect("active job");
            roots.push((first + j, root));
            roots.retain(|&(id, _)| id + 2 > first + j);
            for _ in 0..20 {
                share_and_check(&mut c, &mut seed, &mut nonce, &roots, &prev);
            }
        }
        for _ in 0..200 {
            share_and_check(&mut c, &mut seed, &mut nonce, &roots, &prev);
        }
    }
}

/// A share on a random job of `roots` (ids and merkle roots of the channel's jobs) at the
/// job's version, one of two rolled versions that repeat, or a fresh one; checks its hash.
fn share_and_check(
    c: &mut Channel,
    seed: &mut u64,
    nonce: &mut u32,
    roots: &[(u32, [u8; 32])],
    prev: &[u8; 32],
) {
    let (job_id, root) = roots[rng(seed) as usize % roots.len()];
    let version = match rng(seed) % 5 {
        0 | 1 => VERSION,
        2 => VERSION | 0x0001_e000,
        3 => VERSION | 0x1fff_e000,
        _ => VERSION | (rng(seed) as u32 & 0x1fff_ffe0),
    };
    *nonce += 1;
    let ntime = MIN_NTIME + (rng(seed) % 100) as u32;
    let share = SubmitSharesStandard {
        channel_id: 1,
        sequence_number: *nonce,
        job_id,
        nonce: *nonce,
        ntime,
        version,
    };
    let a = accepted(validate_standard(c, &share, 0));
    assert_eq!(
        a.hash,
        header_hash(version, prev, &root, ntime, *nonce),
        "job {job_id} version {version:#x}"
    );
}

#[test]
fn standard_batch_and_single_agree_at_fixed_versions() {
    let mut seed = 0xabcd_u64;
    let mut single = Channels::new();
    let mut batch = Channels::new();
    for chans in [&mut single, &mut batch] {
        chans
            .insert(
                Channel::new_standard(7, &[], Target::MAX, ChannelConfig::default())
                    .expect("channel"),
            )
            .expect("insert");
        chans
            .on_new_mining_job(&NewMiningJob {
                channel_id: 7,
                job_id: 1,
                min_ntime: None,
                version: VERSION,
                merkle_root: U256([9; 32]),
            })
            .expect("job");
        chans
            .on_set_new_prev_hash(&prevhash(7, 1, [3; 32]))
            .expect("prevhash");
    }
    let shares: Vec<SubmitSharesStandard> = (0..100)
        .map(|i| SubmitSharesStandard {
            channel_id: 7,
            sequence_number: i,
            job_id: 1,
            nonce: i,
            ntime: MIN_NTIME,
            version: if rng(&mut seed).is_multiple_of(2) {
                VERSION
            } else {
                VERSION | 0x0000_2000
            },
        })
        .collect();
    let one: Vec<_> = shares
        .iter()
        .map(|s| accepted(single.validate_standard(s, 0)).hash)
        .collect();
    let mut out = vec![];
    BatchValidator::new().validate_standard(&mut batch, &shares, 0, &mut out);
    let many: Vec<_> = out.into_iter().map(|r| accepted(r).hash).collect();
    assert_eq!(one, many);
    for (s, h) in shares.iter().zip(&one) {
        assert_eq!(
            *h,
            header_hash(s.version, &[3; 32], &[9; 32], s.ntime, s.nonce)
        );
    }
}

#[test]
fn extended_work_txid_equals_the_plain_computation() {
    let mut seed = 0x7777_u64;
    let suffix = Bytes::from(random_bytes(&mut seed, 90));
    for prefix_len in 0..200 {
        let prefix = Bytes::from(random_bytes(&mut seed, prefix_len));
        let w = ExtendedWork::new(prefix.clone(), suffix.clone(), vec![[1; 32]].into());
        for (p, e) in [(0, 0), (0, 1), (4, 4), (4, 8), (8, 16), (16, 16), (0, 32)] {
            let ep = random_bytes(&mut seed, p);
            let en = random_bytes(&mut seed, e);
            assert_eq!(
                w.txid(&[&ep, &en]),
                txid_from_parts(&prefix, &[&ep, &en], &suffix),
                "prefix {prefix_len}, extranonce {p}+{e}"
            );
        }
        assert_eq!(w.txid(&[]), txid_from_parts(&prefix, &[], &suffix));
    }
}

#[test]
fn extended_share_hash_is_the_header_hash_for_any_prefix_length() {
    let mut seed = 0x4242_u64;
    let path: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
    let prev = [0x11; 32];
    let mut hasher = BatchValidator::new();
    for prefix_len in 0..200usize {
        for (prefix_size, size) in [(0usize, 8u8), (4, 4), (8, 16), (2, 1)] {
            let ep = random_bytes(&mut seed, prefix_size);
            let prefix = random_bytes(&mut seed, prefix_len);
            let suffix = random_bytes(&mut seed, 60 + prefix_len % 70);
            let job = NewExtendedMiningJob {
                channel_id: 1,
                job_id: 1,
                min_ntime: None,
                version: VERSION,
                version_rolling_allowed: true,
                merkle_path: Seq0_255::new(path.iter().map(|h| U256(*h)).collect())
                    .expect("<= 255"),
                coinbase_tx_prefix: B0_64K::new(prefix.clone()).expect("fits"),
                coinbase_tx_suffix: B0_64K::new(suffix.clone()).expect("fits"),
            };
            let mut single =
                Channel::new_extended(1, &ep, size, Target::MAX, ChannelConfig::default())
                    .expect("channel");
            single.on_new_extended_mining_job(&job).expect("job");
            single
                .on_set_new_prev_hash(&prevhash(1, 1, prev))
                .expect("prevhash");
            let mut batch = single.clone();
            let shares: Vec<SubmitSharesExtended> = (0..6u32)
                .map(|i| SubmitSharesExtended {
                    channel_id: 1,
                    sequence_number: i,
                    job_id: 1,
                    nonce: i,
                    ntime: MIN_NTIME,
                    version: VERSION,
                    extranonce: B0_32::new(&random_bytes(&mut seed, usize::from(size)))
                        .expect("<= 32"),
                })
                .collect();
            let mut out = vec![];
            hasher.validate_extended_on(&mut batch, &shares, 0, &mut out);
            for (s, b) in shares.iter().zip(out) {
                let txid = txid_from_parts(&prefix, &[&ep, s.extranonce.as_slice()], &suffix);
                let root = merkle_root_from_path(txid, path.iter());
                let want = header_hash(s.version, &prev, &root, s.ntime, s.nonce);
                let what = format!("prefix {prefix_len}, extranonce {prefix_size}+{size}");
                assert_eq!(accepted(b).hash, want, "batch, {what}");
                let a = accepted(validate_extended(&mut single, s, 0));
                assert_eq!(a.hash, want, "single, {what}");
            }
        }
    }
}

#[test]
fn extended_work_with_a_replaced_prefix_does_not_use_a_stale_midstate() {
    let mut seed = 0x9999_u64;
    let suffix = Bytes::from(random_bytes(&mut seed, 70));
    let prefix = Bytes::from(random_bytes(&mut seed, 150));
    let w = ExtendedWork::new(prefix.clone(), suffix.clone(), vec![[2; 32]].into());
    let en = random_bytes(&mut seed, 8);
    let plain = |w: &ExtendedWork| txid_from_parts(&w.coinbase_prefix, &[&en], &w.coinbase_suffix);
    let mut edited = (*w).clone();
    for replacement in [
        Bytes::from(random_bytes(&mut seed, 150)),
        Bytes::from(random_bytes(&mut seed, 20)),
        // the same bytes cut short: before, and after, the end of the cached blocks
        prefix.slice(0..100),
        prefix.slice(0..140),
        prefix.slice(64..150),
        Bytes::new(),
    ] {
        edited.coinbase_prefix = replacement;
        assert_eq!(edited.txid(&[&en]), plain(&edited));
    }
    assert_eq!(w.txid(&[&en]), plain(&w));
}
