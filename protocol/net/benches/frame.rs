//! The whole per-message transport path over an established Noise session, sender to
//! receiver, in memory (no sockets): ours beside SRI's (codec_sv2 7.0.0 / noise_sv2 2.0.0 /
//! parsers_sv2 0.6.0), same run.
//!
//! `frame_seal_open_decode/<Message>/{strata,sri}`, one iteration =
//!
//! - strata: message -> `Sv2Message::encode_frame` into a reused `BytesMut` -> `Sealer::seal_frame`
//!   (in place) -> bytes appended to the receiver's `BytesMut` (the "socket read") ->
//!   `Opener::decode` -> `Message::decode` -> black_box.
//! - sri: message (cloned: SRI's encoder consumes it) -> `AnyMessage::Mining` ->
//!   `MessageFrame::try_from` -> `NoiseEncoder::encode_transport` -> bytes copied into
//!   `NoiseDecoder::writable()` chunk by chunk -> `next_transport_frame` ->
//!   `AnyMessage::try_from((Header, payload))` -> black_box.
//!
//! Messages: SubmitSharesStandard (client -> server) and NewExtendedMiningJob with a 12-hash
//! merkle path, 41-byte coinbase prefix and 60-byte suffix (server -> client). Both sides put
//! the same plaintext frame on the wire (checked at start-up).
//!
//! After criterion's report, a summary prints medians of our own sampling and the SRI/strata
//! ratios.
//!
//! Run: `cargo bench -p strata-net --bench frame -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used)] // bench code: a failure is a bug in the setup, panic is fine

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use codec_sv2::{Decrypted, Handshake, NoiseDecoder, NoiseEncoder};
use criterion::Criterion;
use framing_sv2::framing::MessageFrame;
use parsers_sv2::{AnyMessage, Mining};
use strata_noise::{AuthorityKeypair, Certificate, Initiator, Responder, StaticKeypair};
use strata_protocol::mining::{NewExtendedMiningJob, SubmitSharesStandard};
use strata_protocol::{Message, Seq0_255, Sv2Message, B0_64K, U256};

/// Which way the frame travels.
#[derive(Clone, Copy)]
enum Dir {
    ClientToServer,
    ServerToClient,
}

fn hash(i: u8) -> [u8; 32] {
    let mut a = [0u8; 32];
    for (j, b) in a.iter_mut().enumerate() {
        *b = i.wrapping_mul(37).wrapping_add(j as u8);
    }
    a
}

fn share() -> SubmitSharesStandard {
    SubmitSharesStandard {
        channel_id: 7,
        sequence_number: 123_456,
        job_id: 42,
        nonce: 0xdead_beef,
        ntime: 1_700_000_000,
        version: 0x2000_0000,
    }
}

/// A realistic extended job: 12-hash merkle path (a ~3000-transaction block), a 41-byte
/// coinbase prefix and a 60-byte suffix (same as protocol/codec/benches/codec.rs).
fn job() -> NewExtendedMiningJob {
    NewExtendedMiningJob {
        channel_id: 3,
        job_id: 17,
        min_ntime: Some(1_700_000_000),
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: Seq0_255::new((0..12).map(|i| U256(hash(i))).collect()).unwrap(),
        coinbase_tx_prefix: B0_64K::new((0..41u8).collect::<Vec<u8>>()).unwrap(),
        coinbase_tx_suffix: B0_64K::new((100..160u8).collect::<Vec<u8>>()).unwrap(),
    }
}

/// The plaintext frame (header + payload) we put on the wire for `m`.
fn plain_frame<M: Sv2Message>(m: &M) -> Vec<u8> {
    let mut v = Vec::new();
    m.encode_frame(&mut v);
    v
}

/// SRI's message (`T`, a `mining_sv2` type, wrapped by `wrap`) for the same bytes, decoded by
/// SRI from our payload. The bytes are leaked so the borrowed message lives for the whole run.
fn sri_message<T: binary_sv2::Decodable<'static>>(
    frame: &[u8],
    wrap: fn(T) -> Mining<'static>,
) -> AnyMessage<'static> {
    let payload: &'static mut [u8] = Box::leak(frame[6..].to_vec().into_boxed_slice());
    let m = AnyMessage::Mining(wrap(binary_sv2::from_bytes(payload).unwrap()));
    // SRI frames it back to exactly our bytes (header included).
    let f: MessageFrame<AnyMessage<'static>> = m.clone().try_into().unwrap();
    let out = codec_sv2::Encoder::new().encode(f).unwrap();
    assert_eq!(out.as_slice(), frame, "SRI and strata frames differ");
    m
}

struct Strata<M> {
    sealer: strata_noise::Sealer,
    opener: strata_noise::Opener,
    tx: BytesMut,
    rx: BytesMut,
    msg: M,
}

impl<M: Sv2Message> Strata<M> {
    fn new(msg: M, dir: Dir) -> Self {
        let authority = AuthorityKeypair::generate();
        let keys = StaticKeypair::generate();
        let cert = Certificate::issue(&authority, &keys.public_key(), 0, u32::MAX);
        let responder = Responder::new(keys, cert);
        let (w, act1) = Initiator::new(authority.public_key());
        let (server, act2) = responder.respond(&act1).unwrap();
        let client = w.read_act2(&act2, 1_700_000_000).unwrap();
        let (c_sealer, c_opener) = client.split();
        let (s_sealer, s_opener) = server.split();
        let (sealer, opener) = match dir {
            Dir::ClientToServer => (c_sealer, s_opener),
            Dir::ServerToClient => (s_sealer, c_opener),
        };
        let mut s = Self {
            sealer,
            opener,
            tx: BytesMut::with_capacity(1024),
            rx: BytesMut::with_capacity(8 * 1024),
            msg,
        };
        // Sanity: the receiver gets our message back.
        let m = s.round();
        let mut expect = Vec::new();
        s.msg.encode(&mut expect);
        let mut got = Vec::new();
        m.encode(&mut got);
        assert_eq!(got, expect);
        s
    }

    #[inline]
    fn round(&mut self) -> Message {
        self.tx.clear();
        black_box(&self.msg).encode_frame(&mut self.tx);
        self.sealer.seal_frame(&mut self.tx).unwrap();
        self.rx.extend_from_slice(&self.tx);
        let f = self.opener.decode(&mut self.rx).unwrap().unwrap();
        Message::decode(&f.header, &f.payload).unwrap()
    }
}

struct Sri {
    enc: codec_sv2::TransportEncryptState,
    dec: Option<codec_sv2::TransportDecryptState>,
    encoder: NoiseEncoder,
    decoder: NoiseDecoder,
    msg: AnyMessage<'static>,
}

impl Sri {
    fn new(msg: AnyMessage<'static>, dir: Dir) -> Self {
        let authority = AuthorityKeypair::generate();
        let pk = authority.public_key().to_bytes();
        let sk = authority.secret_key().to_bytes();
        let responder =
            noise_sv2::Responder::from_authority_kp(&pk, &sk, Duration::from_secs(3600)).unwrap();
        let initiator = noise_sv2::Initiator::from_raw_k(pk).unwrap();
        let (act1, waiting) = Handshake::initiator(initiator).step_0().unwrap();
        let (act2, server) = Handshake::responder(responder)
            .step_1(act1.payload().try_into().unwrap())
            .unwrap();
        let client = waiting.step_2(act2.payload().try_into().unwrap()).unwrap();
        let (c_enc, c_dec) = client.split();
        let (s_enc, s_dec) = server.split();
        let (enc, dec) = match dir {
            Dir::ClientToServer => (c_enc, s_dec),
            Dir::ServerToClient => (s_enc, c_dec),
        };
        let mut s = Self {
            enc,
            dec: Some(dec),
            encoder: NoiseEncoder::new(),
            decoder: NoiseDecoder::new(),
            msg,
        };
        // Sanity: the receiver gets a message of the same type back.
        let mut got = None;
        s.round(|m| got = Some(parsers_sv2::IsSv2Message::message_type(m)));
        assert_eq!(
            got,
            Some(parsers_sv2::IsSv2Message::message_type(&s.msg)),
            "SRI round trip"
        );
        s
    }

    #[inline]
    fn round(&mut self, mut sink: impl FnMut(&AnyMessage<'_>)) {
        let frame: MessageFrame<AnyMessage<'static>> =
            black_box(&self.msg).clone().try_into().unwrap();
        let wire = self.encoder.encode_transport(frame, &mut self.enc).unwrap();
        let wire: &[u8] = wire.as_ref();
        let mut state = self.dec.take().unwrap();
        let mut offset = 0;
        loop {
            let w = self.decoder.writable();
            let n = w.len().min(wire.len() - offset);
            w[..n].copy_from_slice(&wire[offset..offset + n]);
            offset += n;
            match self.decoder.next_transport_frame(state).unwrap() {
                Decrypted::Frame(mut f, st) => {
                    self.dec = Some(st);
                    let header = f.header();
                    let m: AnyMessage<'_> = (header, f.payload()).try_into().unwrap();
                    sink(&m);
                    return;
                }
                Decrypted::Incomplete(_, st) => state = st,
            }
        }
    }
}

struct Pair<M> {
    name: &'static str,
    strata: Strata<M>,
    sri: Sri,
}

fn pair<M: Sv2Message>(
    msg: M,
    sri_msg: impl FnOnce(&[u8]) -> AnyMessage<'static>,
    dir: Dir,
) -> Pair<M> {
    let frame = plain_frame(&msg);
    let sri = Sri::new(sri_msg(&frame), dir);
    Pair {
        name: M::NAME,
        strata: Strata::new(msg, dir),
        sri,
    }
}

fn bench_pair<M: Sv2Message>(c: &mut Criterion, p: &mut Pair<M>) {
    let mut g = c.benchmark_group(format!("frame_seal_open_decode/{}", p.name));
    g.bench_function("strata", |b| b.iter(|| black_box(p.strata.round())));
    g.bench_function("sri", |b| {
        b.iter(|| {
            p.sri.round(|m| {
                black_box(m);
            })
        })
    });
    g.finish();
}

/// Median per-iteration time of `samples` runs of `iters` calls each.
fn median_ns(samples: usize, iters: u32, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn summary_line<M: Sv2Message>(p: &mut Pair<M>) {
    let n = 2000;
    let o = median_ns(51, n, || {
        black_box(p.strata.round());
    });
    let s = median_ns(51, n, || {
        p.sri.round(|m| {
            black_box(m);
        })
    });
    let frame_len = plain_frame(&p.strata.msg).len();
    println!(
        "  {:<22} {:>4} B  strata {:>7.0} ns   sri {:>7.0} ns   sri/strata {:>5.2}x",
        p.name,
        frame_len,
        o,
        s,
        s / o
    );
}

fn main() {
    let mut shares = pair(
        share(),
        |f| sri_message::<mining_sv2::SubmitSharesStandard>(f, Mining::SubmitSharesStandard),
        Dir::ClientToServer,
    );
    let mut jobs = pair(
        job(),
        |f| {
            sri_message::<mining_sv2::NewExtendedMiningJob<'static>>(
                f,
                Mining::NewExtendedMiningJob,
            )
        },
        Dir::ServerToClient,
    );

    let mut c = Criterion::default().configure_from_args();
    bench_pair(&mut c, &mut shares);
    bench_pair(&mut c, &mut jobs);
    c.final_summary();

    println!("\nsummary: frame_seal_open_decode, medians of own sampling (51 x 2000 iterations)");
    println!("  (plaintext frame size = header + payload)");
    summary_line(&mut shares);
    summary_line(&mut jobs);
}
