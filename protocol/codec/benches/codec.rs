//! Our codec beside SRI's (binary_sv2 / parsers_sv2), on the same bytes, in the same run.
//!
//! Benchmark ids pair up as `<op>/<Message>/strata` and `<op>/<Message>/sri`:
//!
//! * `decode/...`: payload bytes -> message struct (ours: `from_bytes(&[u8])`; SRI:
//!   `binary_sv2::from_bytes(&mut [u8])`, which decodes in place, so it gets a fresh copy of
//!   the bytes made outside the timed region; ours is run the same way for equal overhead).
//! * `decode_any/...`: frame header + payload -> the all-protocols message enum (ours:
//!   `Message::decode`; SRI: `AnyMessage::try_from((Header, &mut [u8]))`).
//! * `encode/...`: message -> payload bytes in a reused buffer (ours: `encode` into a cleared
//!   `Vec`; SRI: `binary_sv2::to_writer`, which consumes the message, so it gets a clone made
//!   outside the timed region).
//!
//! Run: `cargo bench -p strata-protocol --bench codec -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, BatchSize, Criterion};
use std::time::{Duration, Instant};
use strata_protocol::mining::{NewExtendedMiningJob, SubmitSharesExtended};
use strata_protocol::template_distribution::NewTemplate;
use strata_protocol::{Decode, Encode, Message, Seq0_255, Sv2Message, B0_255, B0_32, B0_64K, U256};

fn hash(i: u8) -> [u8; 32] {
    let mut a = [0u8; 32];
    for (j, b) in a.iter_mut().enumerate() {
        *b = i.wrapping_mul(37).wrapping_add(j as u8);
    }
    a
}

fn share() -> SubmitSharesExtended {
    SubmitSharesExtended {
        channel_id: 7,
        sequence_number: 123_456,
        job_id: 42,
        nonce: 0xdead_beef,
        ntime: 1_700_000_000,
        version: 0x2000_0000,
        extranonce: B0_32::new(&[0xa5; 8]).expect("8 bytes"),
    }
}

/// A realistic extended job: 12-hash merkle path (a ~3000-transaction block), a 41-byte
/// coinbase prefix (version, input count, null outpoint, script length, BIP34 height, pool
/// tag) and a 60-byte suffix (sequence, one P2WPKH output, locktime).
fn job() -> NewExtendedMiningJob {
    NewExtendedMiningJob {
        channel_id: 3,
        job_id: 17,
        min_ntime: None,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: Seq0_255::new((0..12).map(|i| U256(hash(i))).collect()).expect("12 < 255"),
        coinbase_tx_prefix: B0_64K::new((0..41u8).collect::<Vec<u8>>()).expect("small"),
        coinbase_tx_suffix: B0_64K::new((100..160u8).collect::<Vec<u8>>()).expect("small"),
    }
}

/// A realistic template: 12-hash merkle path, BIP34 height push as coinbase prefix, two
/// outputs (a 47-byte witness commitment and a 31-byte P2WPKH) concatenated without a count.
fn template() -> NewTemplate {
    let mut outputs = Vec::new();
    outputs.extend_from_slice(&0u64.to_le_bytes());
    outputs.push(38);
    outputs.extend_from_slice(&[0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed]);
    outputs.extend_from_slice(&hash(200));
    outputs.extend_from_slice(&312_500_000u64.to_le_bytes());
    outputs.push(22);
    outputs.extend_from_slice(&[0x00, 0x14]);
    outputs.extend_from_slice(&hash(201)[..20]);
    NewTemplate {
        template_id: 1_700_000_000_123,
        future_template: false,
        version: 0x2000_0000,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(vec![0x03, 0x4b, 0x1f, 0x0d]).expect("small"),
        coinbase_tx_input_sequence: 0xffff_ffff,
        coinbase_tx_value_remaining: 312_500_000,
        coinbase_tx_outputs_count: 2,
        coinbase_tx_outputs: B0_64K::new(outputs).expect("small"),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0_255::new((0..12).map(|i| U256(hash(i + 50))).collect())
            .expect("12 < 255"),
    }
}

/// Decode and encode benchmarks for one message `$m` (ours) against SRI's type `$sri`.
macro_rules! pair {
    ($c:expr, $m:expr, $ours:ty, $sri:ty) => {{
        type M = $ours;
        let c: &mut Criterion = $c;
        let m: &M = $m;
        let name = M::NAME;
        let mut frame = Vec::new();
        m.encode_frame(&mut frame);
        let payload = frame[6..].to_vec();
        let header = m.header();
        let sri_header = framing_sv2::header::Header::from_bytes(&frame[..6]).expect("SRI header");

        // Sanity: both decoders accept the bytes and SRI re-encodes them identically.
        assert!(M::from_bytes(&payload).is_ok());
        let mut copy = payload.clone();
        let sri_owned: Vec<u8> = {
            let v: $sri = binary_sv2::from_bytes(&mut copy).expect("SRI decodes");
            binary_sv2::to_bytes(v).expect("SRI encodes")
        };
        assert_eq!(sri_owned, payload);

        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.bench_function("strata", |b| {
            b.iter_batched_ref(
                || payload.clone(),
                |p| {
                    let v = M::from_bytes(black_box(p.as_slice())).expect("decodes");
                    black_box(&v);
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("sri", |b| {
            b.iter_batched_ref(
                || payload.clone(),
                |p| {
                    let v: $sri =
                        binary_sv2::from_bytes(black_box(p.as_mut_slice())).expect("decodes");
                    black_box(&v);
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();

        let mut g = c.benchmark_group(format!("decode_any/{name}"));
        g.bench_function("strata", |b| {
            b.iter_batched_ref(
                || payload.clone(),
                |p| {
                    let v = Message::decode(black_box(&header), black_box(p.as_slice()))
                        .expect("decodes");
                    black_box(&v);
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("sri", |b| {
            b.iter_batched_ref(
                || payload.clone(),
                |p| {
                    let v: parsers_sv2::AnyMessage<'_> =
                        (black_box(sri_header), black_box(p.as_mut_slice()))
                            .try_into()
                            .expect("decodes");
                    black_box(&v);
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();

        // SRI's message value, borrowing from a buffer that outlives the encode benchmark.
        let mut sri_buf = payload.clone();
        let sri_msg: $sri = binary_sv2::from_bytes(&mut sri_buf).expect("SRI decodes");

        let mut g = c.benchmark_group(format!("encode/{name}"));
        let mut out: Vec<u8> = Vec::with_capacity(payload.len());
        g.bench_function("strata", |b| {
            b.iter_batched_ref(
                || m.clone(),
                |m| {
                    out.clear();
                    black_box(&*m).encode(&mut out);
                    black_box(&out);
                },
                BatchSize::SmallInput,
            )
        });
        let mut dst = vec![0u8; payload.len()];
        g.bench_function("sri", |b| {
            b.iter_batched(
                || sri_msg.clone(),
                |v| {
                    let n = binary_sv2::to_writer(black_box(v), &mut dst).expect("encodes");
                    black_box(&dst[..n]);
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();

        if summary_wanted() {
            const N: usize = 2000;
            let dec_ours = median_ns(N, |n| {
                let t = Instant::now();
                for _ in 0..n {
                    black_box(M::from_bytes(black_box(payload.as_slice())).expect("decodes"));
                }
                t.elapsed()
            });
            let dec_sri = median_ns(N, |n| {
                let mut copies = vec![payload.clone(); n];
                let t = Instant::now();
                for p in &mut copies {
                    let v: $sri =
                        binary_sv2::from_bytes(black_box(p.as_mut_slice())).expect("decodes");
                    black_box(&v);
                }
                t.elapsed()
            });
            let mut out: Vec<u8> = Vec::with_capacity(payload.len());
            let enc_ours = median_ns(N, |n| {
                let t = Instant::now();
                for _ in 0..n {
                    out.clear();
                    black_box(m).encode(&mut out);
                    black_box(&out);
                }
                t.elapsed()
            });
            let mut dst = vec![0u8; payload.len()];
            let enc_sri = median_ns(N, |n| {
                let values: Vec<$sri> = (0..n).map(|_| sri_msg.clone()).collect();
                let t = Instant::now();
                for v in values {
                    let k = binary_sv2::to_writer(black_box(v), &mut dst).expect("encodes");
                    black_box(&dst[..k]);
                }
                t.elapsed()
            });
            SUMMARY.with(|s| {
                s.borrow_mut().push((name, "decode", dec_ours, dec_sri));
                s.borrow_mut().push((name, "encode", enc_ours, enc_sri));
            });
        }
    }};
}

thread_local! {
    static SUMMARY: std::cell::RefCell<Vec<(&'static str, &'static str, f64, f64)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The ratio table is printed by `cargo bench` runs only (not `--test`/`--list`).
fn summary_wanted() -> bool {
    std::env::args().any(|a| a == "--bench")
        && !std::env::args().any(|a| a == "--test" || a == "--list")
}

/// Median over 51 samples of the time per iteration, each sample timing `n` iterations.
fn median_ns(n: usize, mut sample: impl FnMut(usize) -> Duration) -> f64 {
    let mut v: Vec<f64> = (0..51)
        .map(|_| sample(n).as_nanos() as f64 / n as f64)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn print_summary() {
    SUMMARY.with(|s| {
        let rows = s.borrow();
        if rows.is_empty() {
            return;
        }
        println!("\nsummary (median of 51 samples x 2000 iterations, one core)");
        for (name, op, ours, sri) in rows.iter() {
            println!(
                "  {op:<6} {name:<22} strata {ours:>8.1} ns   sri {sri:>8.1} ns   sri/strata {:>5.1}x",
                sri / ours
            );
        }
    });
}

fn mining(c: &mut Criterion) {
    pair!(
        c,
        &share(),
        SubmitSharesExtended,
        mining_sv2::SubmitSharesExtended<'_>
    );
    pair!(
        c,
        &job(),
        NewExtendedMiningJob,
        mining_sv2::NewExtendedMiningJob<'_>
    );
}

fn template_distribution(c: &mut Criterion) {
    pair!(
        c,
        &template(),
        NewTemplate,
        template_distribution_sv2::NewTemplate<'_>
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    mining(&mut c);
    template_distribution(&mut c);
    c.final_summary();
    print_summary();
}
