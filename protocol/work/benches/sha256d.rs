//! SHA-256d of 80-byte headers: ours (single, midstate, batch per backend) beside `sha2` 0.10
//! and `bitcoin::hashes` in the same run. Throughput is reported in headers per second.
//!
//! `cargo bench -p strata-work --bench sha256d -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_work::sha256d::{self, Backend, Hasher, Midstate};

const BATCH: usize = 1024;

fn headers(n: usize) -> Vec<[u8; 80]> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            let mut h = [0u8; 80];
            for b in &mut h {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            h
        })
        .collect()
}

fn single(c: &mut Criterion) {
    let hs = headers(1);
    let h = hs[0];
    let mid = Midstate::of_header(&h);
    let tail = Midstate::tail_of(&h);
    let mut g = c.benchmark_group("sha256d_single");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bitcoin_hashes", |b| {
        use bitcoin::hashes::{sha256d, Hash};
        b.iter(|| sha256d::Hash::hash(black_box(&h)).to_byte_array())
    });
    g.bench_function("sha2", |b| {
        use sha2::{Digest, Sha256};
        b.iter(|| -> [u8; 32] { Sha256::digest(Sha256::digest(black_box(&h))).into() })
    });
    g.bench_function(format!("strata_{}", sha256d::single_backend()), |b| {
        b.iter(|| sha256d::hash_header(black_box(&h)))
    });
    g.bench_function(
        format!("strata_midstate_{}", sha256d::single_backend()),
        |b| b.iter(|| mid.hash_tail(black_box(&tail))),
    );
    g.finish();
}

fn batch(c: &mut Criterion) {
    let hs = headers(BATCH);
    let mid = Midstate::of_header(&hs[0]);
    let tails: Vec<[u8; 16]> = hs.iter().map(Midstate::tail_of).collect();
    let mut out = vec![[0u8; 32]; BATCH];
    let mut g = c.benchmark_group("sha256d_batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("bitcoin_hashes", |b| {
        use bitcoin::hashes::{sha256d, Hash};
        b.iter(|| {
            for (h, o) in black_box(&hs).iter().zip(out.iter_mut()) {
                *o = sha256d::Hash::hash(h).to_byte_array();
            }
        })
    });
    g.bench_function("sha2", |b| {
        use sha2::{Digest, Sha256};
        b.iter(|| {
            for (h, o) in black_box(&hs).iter().zip(out.iter_mut()) {
                *o = Sha256::digest(Sha256::digest(h)).into();
            }
        })
    });
    g.bench_function(
        format!("strata_headers_dispatch_{}", sha256d::batch_backend()),
        |b| b.iter(|| sha256d::hash_headers(black_box(&hs), &mut out)),
    );
    for backend in Backend::available() {
        let h = Hasher::with_backend(backend).unwrap();
        g.bench_function(format!("strata_headers_{backend}"), |b| {
            b.iter(|| h.hash_headers(black_box(&hs), &mut out))
        });
        g.bench_function(format!("strata_midstate_{backend}"), |b| {
            b.iter(|| h.hash_tails(&mid, black_box(&tails), &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, single, batch);
criterion_main!(benches);
