//! Hot paths: parsing `mining.submit` (server), encoding `mining.notify` and share responses
//! (server), line framing. The `serde_json::Value` lines are the naive baseline (parse into a
//! tree) that the borrowed parser replaces; sv1_api (SRI) is not a dependency here.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_sv1::{ClientMessage, Id, LineDecoder, Notify, Response, ServerMessage};

const SUBMIT: &[u8] = b"{\"params\": [\"slush.s9\", \"2b50\", \"0100000000000000\", \"5b8e7f0a\", \"4f0a8c2e\", \"00c00000\"], \"id\": 7, \"method\": \"mining.submit\"}";

fn notify() -> Notify {
    Notify {
        job_id: "6f2a".into(),
        prev_hash: [0x5a; 32],
        coinb1: Bytes::from(vec![0x01; 60]),
        coinb2: Bytes::from(vec![0xff; 120]),
        merkle_branch: vec![[0x11; 32]; 12],
        version: 0x2000_0000,
        nbits: 0x1703_4219,
        ntime: 0x64a1_b2c3,
        clean_jobs: true,
    }
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let line = Bytes::from_static(SUBMIT);
    g.bench_function("submit/strata", |b| {
        b.iter(|| ClientMessage::parse(black_box(line.clone())).unwrap())
    });
    g.bench_function("submit/serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(SUBMIT)).unwrap())
    });
    let mut notify_line = Vec::new();
    notify().encode(&mut notify_line);
    let notify_line = Bytes::from(notify_line);
    g.bench_function("notify/strata", |b| {
        b.iter(|| ServerMessage::parse(black_box(notify_line.clone())).unwrap())
    });
    g.bench_function("notify/serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&notify_line)).unwrap())
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    let n = notify();
    let mut buf = BytesMut::with_capacity(4096);
    g.bench_function("notify/strata", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&n).encode(&mut buf);
        })
    });
    let v: serde_json::Value = serde_json::from_slice(&{
        let mut v = Vec::new();
        n.encode(&mut v);
        v
    })
    .unwrap();
    let mut out = Vec::with_capacity(4096);
    g.bench_function("notify/serde_json_value", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&v)).unwrap();
        })
    });
    let id = Id::from(7u64);
    g.bench_function("share_response/strata", |b| {
        b.iter(|| {
            buf.clear();
            Response::bool(black_box(&id).clone(), true).encode(&mut buf);
        })
    });
    g.finish();
}

fn framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    let mut input = Vec::new();
    for _ in 0..100 {
        input.extend_from_slice(SUBMIT);
        input.extend_from_slice(b"\r\n");
    }
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("100_submit_lines", |b| {
        b.iter(|| {
            let mut src = BytesMut::from(&input[..]);
            let mut d = LineDecoder::default();
            let mut n = 0;
            while let Some(line) = d.decode(&mut src).unwrap() {
                n += line.len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, parse, encode, framing);
criterion_main!(benches);
