//! Throughput of SHA-256d on 80-byte headers and of share validation (see `shares.rs`), one
//! core, one line per measurement:
//!
//! ```text
//! bench NAME value=N unit=headers/s
//! ```
//!
//! Each value is the median of several runs of about 0.2 s. The CPU model and the chosen
//! backends go to stderr. Run with `cargo run --release -p strata-work --example perf`
//! (optionally `-- FILTER` to run only the measurements whose name contains FILTER, or
//! `-- 'NAME$'` for exactly NAME).
#![allow(clippy::unwrap_used)]

mod shares;

use std::hint::black_box;
use std::time::{Duration, Instant};

use strata_work::sha256d::{self, Backend, Hasher, Midstate};

const BATCH: usize = 4096;
const RUNS: usize = 7;
const RUN_TIME: Duration = Duration::from_millis(200);

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

/// Median headers/s of `RUNS` runs of `f`, which hashes `per_call` headers per call; also
/// returns the spread (max/min - 1) of the runs.
fn measure(per_call: usize, mut f: impl FnMut()) -> (f64, f64) {
    // Warm-up.
    let start = Instant::now();
    while start.elapsed() < RUN_TIME / 4 {
        f();
    }
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < RUN_TIME {
            for _ in 0..8 {
                f();
            }
            calls += 8;
        }
        rates.push((calls * per_call as u64) as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let spread = rates[RUNS - 1] / rates[0] - 1.0;
    (rates[RUNS / 2], spread)
}

fn report(filter: &str, name: &str, per_call: usize, f: impl FnMut()) {
    report_unit(filter, name, "headers/s", per_call, f);
}

fn report_unit(filter: &str, name: &str, unit: &str, per_call: usize, f: impl FnMut()) {
    if !selected(filter, name) {
        return;
    }
    let (median, spread) = measure(per_call, f);
    println!("bench {name} value={median:.0} unit={unit}");
    eprintln!(
        "  {name}: {:.2} M {unit} (runs spread {:.1}%)",
        median / 1e6,
        spread * 100.0
    );
}

/// Whether the measurement `name` runs: its name contains `filter`, or equals it when
/// `filter` ends in `$` (`share_validate_standard$` runs only that one).
pub(crate) fn selected(filter: &str, name: &str) -> bool {
    match filter.strip_suffix('$') {
        Some(exact) => name == exact,
        None => name.contains(filter),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let available = Backend::available();
    eprintln!("cpu: {}", cpu_model());
    eprintln!(
        "backends available: {}",
        available
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "chosen: batch={} single={}",
        sha256d::batch_backend(),
        sha256d::single_backend()
    );

    let hs = headers(BATCH);
    let mid = Midstate::of_header(&hs[0]);
    let tails: Vec<[u8; 16]> = hs.iter().map(Midstate::tail_of).collect();
    let pairs: Vec<(Midstate, [u8; 16])> = hs
        .iter()
        .map(|h| (Midstate::of_header(h), Midstate::tail_of(h)))
        .collect();
    let mut out = vec![[0u8; 32]; BATCH];

    // Batch with one midstate: the share-validation hot path.
    report(&filter, "sha256d_batch", BATCH, || {
        sha256d::hash_tails(&mid, black_box(&tails), &mut out);
        black_box(&out);
    });
    report(&filter, "sha256d_batch_pairs", BATCH, || {
        sha256d::hash_tail_pairs(black_box(&pairs), &mut out);
        black_box(&out);
    });
    report(&filter, "sha256d_batch_headers", BATCH, || {
        sha256d::hash_headers(black_box(&hs), &mut out);
        black_box(&out);
    });
    report(&filter, "sha256d_single", 64, || {
        for h in black_box(&hs[..64]) {
            black_box(sha256d::hash_header(h));
        }
    });
    report(&filter, "sha256d_midstate", 64, || {
        for t in black_box(&tails[..64]) {
            black_box(mid.hash_tail(t));
        }
    });
    report(&filter, "sha256d_bitcoin_hashes", 64, || {
        use bitcoin::hashes::{sha256d, Hash};
        for h in black_box(&hs[..64]) {
            black_box(sha256d::Hash::hash(h).to_byte_array());
        }
    });
    report(&filter, "sha256d_sha2", 64, || {
        use sha2::{Digest, Sha256};
        for h in black_box(&hs[..64]) {
            let d: [u8; 32] = Sha256::digest(Sha256::digest(h)).into();
            black_box(d);
        }
    });
    // 64-byte merkle nodes, many at once (messages/s).
    let nodes: Vec<&[u8]> = hs.iter().map(|h| &h[..64]).collect();
    report_unit(&filter, "sha256d_many_64", "msgs/s", BATCH, || {
        sha256d::sha256d_many(black_box(&nodes), &mut out);
        black_box(&out);
    });
    report_unit(&filter, "sha256d_sha2_64", "msgs/s", BATCH, || {
        for (m, o) in black_box(&nodes).iter().zip(out.iter_mut()) {
            *o = sha256d::sha256d(m);
        }
        black_box(&out);
    });
    for b in available {
        let h = Hasher::with_backend(b).unwrap();
        let name = b.name().replace('-', "");
        report(&filter, &format!("sha256d_batch_{name}"), BATCH, || {
            h.hash_tails(&mid, black_box(&tails), &mut out);
            black_box(&out);
        });
        report(
            &filter,
            &format!("sha256d_batch_headers_{name}"),
            BATCH,
            || {
                h.hash_headers(black_box(&hs), &mut out);
                black_box(&out);
            },
        );
    }
    shares::run(&filter);
}
