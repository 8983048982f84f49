//! Share validation, ours beside SRI's `channels_sv2` 8.0.0 on the same shares and the same
//! messages, one core (SRI's client channels, which take the Mining Protocol messages we
//! record; its server channel, whose jobs come from its job factory, is measured by
//! `examples/perf/shares.rs`):
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

#[path = "fixtures/shares.rs"]
mod fixtures;

use std::collections::HashMap;
use std::hint::black_box;

use channels_sv2::client::extended::ExtendedChannel as SriExtended;
use channels_sv2::client::standard::StandardChannel as SriStandard;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fixtures::*;
use strata_protocol::mining::{SubmitSharesExtended, SubmitSharesStandard};
use strata_protocol::B0_32;
use strata_work::channel::Channels;
use strata_work::share::BatchValidator;

/// A new job on every channel every 10 shares per channel (`JOB_EVERY`), a new prevhash
/// every 100.
const PREVHASH_EVERY: u32 = 100 * CHANNELS;

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
        let mut c = ours_std_channel(id);
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
            let mut c = sri_std_channel(id);
            c.on_new_mining_job(sri_std_job(id, 1, None)).unwrap();
            c.on_set_new_prev_hash(sri_prevhash(id, 1)).unwrap();
            (id, c)
        })
        .collect()
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

    // the same stream with every share at its job's version: hashed from the job's cached
    // header midstate
    let mut chans = ours_standard();
    let mut i = 0u32;
    g.bench_function("ours_fixed_version", |b| {
        b.iter(|| {
            ours_tick(&mut chans, i);
            let share = SubmitSharesStandard {
                version: VERSION,
                ..std_share(i)
            };
            let r = chans.validate_standard(&share, 0);
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
                .validate_share(sri_std_share(&s));
            black_box(r.is_ok())
        })
    });
    g.finish();
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
    let (cb, path) = (ext_coinbase(), path());
    let mut chans = Channels::new();
    for id in 1..=EXT_CHANNELS {
        let mut c = ours_ext_channel(id);
        c.on_new_extended_mining_job(&ext_job(id, 1, &cb, &path))
            .unwrap();
        c.on_set_new_prev_hash(&prevhash(id, 1)).unwrap();
        chans.insert(c).unwrap();
    }
    chans
}

fn sri_extended() -> HashMap<u32, SriExtended> {
    let (cb, path) = (ext_coinbase(), path());
    (1..=EXT_CHANNELS)
        .map(|id| {
            let mut c = sri_ext_channel(id);
            c.on_new_extended_mining_job(sri_ext_job(id, 1, &cb, &path))
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
                .validate_share(sri_ext_share(&s));
            black_box(r.is_ok())
        })
    });
    g.finish();
}

criterion_group!(benches, standard, extended);
criterion_main!(benches);
