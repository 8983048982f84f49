//! Share validation, ours beside SRI's `channels_sv2` 8.0.0 on the same shares and the same
//! messages, one core (SRI's client channels, which take the Mining Protocol messages we
//! record; its server channel, whose jobs come from its job factory, is measured by
//! `examples/perf_shares.rs`):
//!
//! * `share_standard`: 1000 standard channels in a map; per share: lookup by channel id, job,
//!   nTime and version checks, header hash, target compare, duplicate check. Every channel gets
//!   a new job every 10 shares per channel and a new prevhash every 100 (a pool's cadence at
//!   10-20 shares/min), inside the timing for both. SRI's client duplicate check is a linear
//!   scan (up to 4096 hashes per channel; here at most 100).
//! * `share_extended`: 100 extended channels, 12-level merkle path, ~200-byte coinbase; per
//!   share: coinbase txid, merkle root, header, checks. Single and batched (lanes across
//!   shares). One job; the duplicate sets grow through the run.
//!
//! Every share is accepted (maximum target). Throughput is in shares per second.
//!
//! `cargo bench -p strata-work --bench shares -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;

use binary_sv2::Sv2OptionOwned;
use bitcoin::ScriptBuf;
use channels_sv2::client::extended::ExtendedChannel as SriExtended;
use channels_sv2::client::standard::StandardChannel as SriStandard;
use channels_sv2::extranonce_manager::ExtranoncePrefix;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mining_sv2::{
    NewExtendedMiningJobOwned, NewMiningJobOwned, SetNewPrevHashOwned, SubmitSharesExtendedOwned,
    SubmitSharesStandardOwned,
};
use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};
use strata_protocol::{Seq0_255, B0_32, B0_64K, U256};
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::coinbase::{bip34_height_push, output, Coinbase, CoinbaseParams};
use strata_work::share::BatchValidator;
use strata_work::target::Target;

const CHANNELS: u32 = 1000;
const EXT_CHANNELS: u32 = 100;
/// A new job on every channel every 10 shares per channel, a new prevhash every 100.
const JOB_EVERY: u32 = 10 * CHANNELS;
const PREVHASH_EVERY: u32 = 100 * CHANNELS;
const VERSION: u32 = 0x2000_0000;
const MIN_NTIME: u32 = 1_746_839_905;
const NBITS: u32 = 0x1703_a30c;
const BATCH: usize = 256;

fn config() -> ChannelConfig {
    ChannelConfig {
        max_seen_shares: 1 << 22,
        ..ChannelConfig::default()
    }
}

fn std_job(id: u32, job: u32, min_ntime: Option<u32>) -> NewMiningJob {
    NewMiningJob {
        channel_id: id,
        job_id: job,
        min_ntime,
        version: VERSION,
        merkle_root: U256([job as u8 ^ id as u8; 32]),
    }
}

fn prevhash(id: u32, job: u32) -> SetNewPrevHash {
    SetNewPrevHash {
        channel_id: id,
        job_id: job,
        prev_hash: U256([job as u8; 32]),
        min_ntime: MIN_NTIME,
        nbits: NBITS,
    }
}

fn sri_prevhash(id: u32, job: u32) -> SetNewPrevHashOwned {
    SetNewPrevHashOwned {
        channel_id: id,
        job_id: job,
        prev_hash: [job as u8; 32].into(),
        min_ntime: MIN_NTIME,
        nbits: NBITS,
    }
}

/// The `i`-th share of the stream: a pseudo-random channel, the job current at `i`.
fn std_share(i: u32) -> SubmitSharesStandard {
    let x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    SubmitSharesStandard {
        channel_id: ((x >> 40) % u64::from(CHANNELS)) as u32 + 1,
        sequence_number: i,
        job_id: 1 + i / JOB_EVERY,
        nonce: i,
        ntime: MIN_NTIME,
        version: VERSION | (x as u32 & 0x1fff_e000),
    }
}

fn ours_standard() -> Channels {
    let mut chans = Channels::new();
    for id in 1..=CHANNELS {
        let mut c = Channel::new_standard(id, &id.to_le_bytes(), Target::MAX, config()).unwrap();
        c.on_new_mining_job(&std_job(id, 1, None)).unwrap();
        c.on_set_new_prev_hash(&prevhash(id, 1)).unwrap();
        chans.insert(c).unwrap();
    }
    chans
}

/// SRI's client channels (message-driven like ours: they get the very same messages).
fn sri_standard() -> HashMap<u32, SriStandard> {
    (1..=CHANNELS)
        .map(|id| {
            let mut c = SriStandard::new(
                id,
                "u".into(),
                ExtranoncePrefix::from_wire(id.to_le_bytes().to_vec()).unwrap(),
                bitcoin::Target::from_le_bytes([0xff; 32]),
                1.0,
                None,
            )
            .unwrap();
            c.on_new_mining_job(sri_std_job(id, 1, None)).unwrap();
            c.on_set_new_prev_hash(sri_prevhash(id, 1)).unwrap();
            (id, c)
        })
        .collect()
}

fn sri_std_job(id: u32, job: u32, min_ntime: Option<u32>) -> NewMiningJobOwned {
    NewMiningJobOwned {
        channel_id: id,
        job_id: job,
        min_ntime: Sv2OptionOwned::new(min_ntime),
        version: VERSION,
        merkle_root: [job as u8 ^ id as u8; 32].into(),
    }
}

/// The messages due before share `i`: a new active job every `JOB_EVERY` shares, a new
/// prevhash (future job + SetNewPrevHash) every `PREVHASH_EVERY`.
fn ours_tick(chans: &mut Channels, i: u32) {
    if i == 0 || !i.is_multiple_of(JOB_EVERY) {
        return;
    }
    let job = 1 + i / JOB_EVERY;
    for id in 1..=CHANNELS {
        if i.is_multiple_of(PREVHASH_EVERY) {
            chans.on_new_mining_job(&std_job(id, job, None)).unwrap();
            chans.on_set_new_prev_hash(&prevhash(id, job)).unwrap();
        } else {
            chans
                .on_new_mining_job(&std_job(id, job, Some(MIN_NTIME)))
                .unwrap();
        }
    }
}

/// The same messages for SRI.
fn sri_tick(sri: &mut HashMap<u32, SriStandard>, i: u32) {
    if i == 0 || !i.is_multiple_of(JOB_EVERY) {
        return;
    }
    let job = 1 + i / JOB_EVERY;
    for id in 1..=CHANNELS {
        let c = sri.get_mut(&id).unwrap();
        if i.is_multiple_of(PREVHASH_EVERY) {
            c.on_new_mining_job(sri_std_job(id, job, None)).unwrap();
            c.on_set_new_prev_hash(sri_prevhash(id, job)).unwrap();
        } else {
            c.on_new_mining_job(sri_std_job(id, job, Some(MIN_NTIME)))
                .unwrap();
        }
    }
}

fn standard(c: &mut Criterion) {
    let mut g = c.benchmark_group("share_standard");
    g.throughput(Throughput::Elements(1));

    let mut chans = ours_standard();
    let mut i = 0u32;
    g.bench_function("ours", |b| {
        b.iter(|| {
            ours_tick(&mut chans, i);
            let r = chans.validate_standard(&std_share(i), 0);
            i += 1;
            black_box(r.is_ok())
        })
    });

    let mut chans = ours_standard();
    let mut v = BatchValidator::new();
    let mut out = Vec::with_capacity(BATCH);
    let mut shares = Vec::with_capacity(BATCH);
    let mut i = 0u32;
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("ours_batch_256", |b| {
        b.iter(|| {
            shares.clear();
            for _ in 0..BATCH {
                if i > 0 && i.is_multiple_of(JOB_EVERY) {
                    // the messages come before the shares that follow them
                    if !shares.is_empty() {
                        out.clear();
                        v.validate_standard(&mut chans, &shares, 0, &mut out);
                        shares.clear();
                    }
                    ours_tick(&mut chans, i);
                }
                shares.push(std_share(i));
                i += 1;
            }
            out.clear();
            v.validate_standard(&mut chans, &shares, 0, &mut out);
            black_box(out.len())
        })
    });

    g.throughput(Throughput::Elements(1));
    let mut sri = sri_standard();
    let mut i = 0u32;
    g.bench_function("sri_channels_sv2_client", |b| {
        b.iter(|| {
            sri_tick(&mut sri, i);
            let s = std_share(i);
            i += 1;
            let r = sri
                .get_mut(&s.channel_id)
                .unwrap()
                .validate_share(SubmitSharesStandardOwned {
                    channel_id: s.channel_id,
                    sequence_number: s.sequence_number,
                    job_id: s.job_id,
                    nonce: s.nonce,
                    ntime: s.ntime,
                    version: s.version,
                });
            black_box(r.is_ok())
        })
    });
    g.finish();
}

fn ext_coinbase() -> Coinbase {
    Coinbase::build(&CoinbaseParams {
        version: 2,
        script_sig_prefix: bip34_height_push(840_000),
        pool_tag: b"/strata pool/".to_vec(),
        extranonce_len: 12,
        sequence: u32::MAX,
        pool_outputs: vec![
            output(312_500_000, ScriptBuf::from_bytes(vec![0x00; 22])),
            output(1000, ScriptBuf::from_bytes(vec![0x51; 34])),
        ],
        template_outputs: vec![output(0, ScriptBuf::from_bytes(vec![0x6a; 38]))],
        lock_time: 0,
        witness_reserved_value: [0; 32],
    })
    .unwrap()
}

fn path() -> Vec<[u8; 32]> {
    (0..12u8).map(|i| [i.wrapping_mul(29); 32]).collect()
}

fn ext_share(i: u64) -> SubmitSharesExtended {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    SubmitSharesExtended {
        channel_id: ((x >> 40) % u64::from(EXT_CHANNELS)) as u32 + 1,
        sequence_number: i as u32,
        job_id: 1,
        nonce: x as u32,
        ntime: MIN_NTIME,
        version: VERSION,
        extranonce: B0_32::new(&i.to_le_bytes()).unwrap(),
    }
}

fn ours_extended() -> Channels {
    let cb = ext_coinbase();
    let mut chans = Channels::new();
    for id in 1..=EXT_CHANNELS {
        let mut c = Channel::new_extended(id, &id.to_le_bytes(), 8, Target::MAX, config()).unwrap();
        c.on_new_extended_mining_job(&NewExtendedMiningJob {
            channel_id: id,
            job_id: 1,
            min_ntime: None,
            version: VERSION,
            version_rolling_allowed: true,
            merkle_path: Seq0_255::new(path().into_iter().map(U256).collect()).unwrap(),
            coinbase_tx_prefix: B0_64K::new(cb.prefix().to_vec()).unwrap(),
            coinbase_tx_suffix: B0_64K::new(cb.suffix().to_vec()).unwrap(),
        })
        .unwrap();
        c.on_set_new_prev_hash(&prevhash(id, 1)).unwrap();
        chans.insert(c).unwrap();
    }
    chans
}

fn sri_extended() -> HashMap<u32, SriExtended> {
    let cb = ext_coinbase();
    (1..=EXT_CHANNELS)
        .map(|id| {
            let mut c = SriExtended::new(
                id,
                "u".into(),
                ExtranoncePrefix::from_wire(id.to_le_bytes().to_vec()).unwrap(),
                bitcoin::Target::from_le_bytes([0xff; 32]),
                1.0,
                true,
                8,
                None,
            )
            .unwrap();
            c.on_new_extended_mining_job(NewExtendedMiningJobOwned {
                channel_id: id,
                job_id: 1,
                min_ntime: Sv2OptionOwned::new(None),
                version: VERSION,
                version_rolling_allowed: true,
                merkle_path: path()
                    .into_iter()
                    .map(Into::into)
                    .collect::<Vec<_>>()
                    .try_into()
                    .unwrap(),
                coinbase_tx_prefix: cb.prefix().to_vec().try_into().unwrap(),
                coinbase_tx_suffix: cb.suffix().to_vec().try_into().unwrap(),
            })
            .unwrap();
            c.on_set_new_prev_hash(sri_prevhash(id, 1)).unwrap();
            (id, c)
        })
        .collect()
}

fn extended(c: &mut Criterion) {
    let mut g = c.benchmark_group("share_extended");
    g.throughput(Throughput::Elements(1));
    // duplicate sets grow with the run (one job): a few million shares at most
    let mut chans = ours_extended();
    let mut i = 0u64;
    g.bench_function("ours", |b| {
        b.iter(|| {
            let r = chans.validate_extended(&ext_share(i), 0);
            i += 1;
            black_box(r.is_ok())
        })
    });

    let mut chans = ours_extended();
    let mut v = BatchValidator::new();
    let mut out = Vec::with_capacity(BATCH);
    let mut shares = Vec::with_capacity(BATCH);
    let mut i = 1u64 << 40;
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("ours_batch_256", |b| {
        b.iter(|| {
            shares.clear();
            shares.extend((i..i + BATCH as u64).map(ext_share));
            i += BATCH as u64;
            out.clear();
            v.validate_extended(&mut chans, &shares, 0, &mut out);
            black_box(out.len())
        })
    });

    g.throughput(Throughput::Elements(1));
    let mut sri = sri_extended();
    let mut i = 0u64;
    g.bench_function("sri_channels_sv2", |b| {
        b.iter(|| {
            let s = ext_share(i);
            i += 1;
            let r = sri
                .get_mut(&s.channel_id)
                .unwrap()
                .validate_share(SubmitSharesExtendedOwned {
                    channel_id: s.channel_id,
                    sequence_number: s.sequence_number,
                    job_id: s.job_id,
                    nonce: s.nonce,
                    ntime: s.ntime,
                    version: s.version,
                    extranonce: s.extranonce.as_slice().to_vec().try_into().unwrap(),
                });
            black_box(r.is_ok())
        })
    });
    g.finish();
}

criterion_group!(benches, standard, extended);
criterion_main!(benches);
