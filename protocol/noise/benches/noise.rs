//! Ours beside SRI's (noise_sv2 2.0.0 / codec_sv2 7.0.0), same run:
//!
//! - `frame80/*`: seal + open of one 80-byte SV2 frame (6-byte header + 74-byte payload,
//!   about a SubmitSharesExtended), one direction.
//! - `responder_handshake/*`: the server's per-connection handshake work, act 1 in, act 2 out
//!   (the initiator's work happens outside the timed section).
//! - `secp256k1_floor`: 2 keygens + 2 EllSwift ECDH + 1 EllSwift encode, one context: the curve
//!   work a responder cannot avoid.
//!
//! After criterion's report, a summary prints medians of our own sampling and the ratios.

#![allow(clippy::unwrap_used)] // bench code

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use codec_sv2::{Decrypted, Handshake, NoiseDecoder, NoiseEncoder};
use criterion::{BatchSize, Criterion};
use framing_sv2::framing::SerializedFrame;
use secp256k1::{
    ellswift::{ElligatorSwift, ElligatorSwiftParty},
    PublicKey, Secp256k1, SecretKey,
};
use strata_noise::{AuthorityKeypair, Certificate, Initiator, Responder, StaticKeypair};

const FRAME_LEN: usize = 80;

fn frame80() -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[2] = 0x1b; // SubmitSharesExtended
    f[3] = (FRAME_LEN - 6) as u8;
    for (i, b) in f[6..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

struct Ours {
    sealer: strata_noise::Sealer,
    opener: strata_noise::Opener,
    buf: BytesMut,
    frame: [u8; FRAME_LEN],
}

impl Ours {
    fn new() -> Self {
        let authority = AuthorityKeypair::generate();
        let keys = StaticKeypair::generate();
        let cert = Certificate::issue(&authority, &keys.public_key(), 0, u32::MAX);
        let responder = Responder::new(keys, cert);
        let (w, act1) = Initiator::new(authority.public_key());
        let (server, act2) = responder.respond(&act1).unwrap();
        let client = w.read_act2(&act2, 1_700_000_000).unwrap();
        let (sealer, _) = client.split();
        let (_, opener) = server.split();
        Self {
            sealer,
            opener,
            buf: BytesMut::with_capacity(256),
            frame: frame80(),
        }
    }

    #[inline]
    fn round(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&self.frame);
        self.sealer.seal_frame(&mut self.buf).unwrap();
        let f = self.opener.decode(&mut self.buf).unwrap().unwrap();
        black_box(&f);
    }
}

struct Sri {
    enc: codec_sv2::TransportEncryptState,
    dec: Option<codec_sv2::TransportDecryptState>,
    encoder: NoiseEncoder,
    decoder: NoiseDecoder,
    frame: [u8; FRAME_LEN],
}

impl Sri {
    fn new() -> Self {
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
        let (enc, _) = client.split();
        let (_, dec) = server.split();
        Self {
            enc,
            dec: Some(dec),
            encoder: NoiseEncoder::new(),
            decoder: NoiseDecoder::new(),
            frame: frame80(),
        }
    }

    #[inline]
    fn round(&mut self) {
        let mut plain = self.frame;
        let frame = SerializedFrame::from_bytes(&mut plain[..]).unwrap();
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
                Decrypted::Frame(f, st) => {
                    black_box(&f);
                    self.dec = Some(st);
                    return;
                }
                Decrypted::Incomplete(_, st) => state = st,
            }
        }
    }
}

/// The AEAD floor of one frame: seal header (6) + payload (74), open both, with `ring` keys
/// built once (what `frame80/ours` does, minus framing and state).
struct RingFloor {
    key: ring::aead::LessSafeKey,
    n: u64,
    h: [u8; 22],
    p: [u8; 90],
}

impl RingFloor {
    fn new() -> Self {
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7; 32]).unwrap(),
        );
        Self {
            key,
            n: 0,
            h: [1; 22],
            p: [2; 90],
        }
    }

    fn nonce(&mut self) -> ring::aead::Nonce {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&self.n.to_le_bytes());
        self.n += 1;
        ring::aead::Nonce::assume_unique_for_key(b)
    }

    #[inline]
    fn round(&mut self) {
        use ring::aead::Aad;
        let n0 = self.n;
        for (buf, len) in [(&mut self.h[..], 6usize), (&mut self.p[..], 74)] {
            let mut b = [0u8; 12];
            b[4..].copy_from_slice(&self.n.to_le_bytes());
            self.n += 1;
            let nonce = ring::aead::Nonce::assume_unique_for_key(b);
            let (d, t) = buf.split_at_mut(len);
            let tag = self
                .key
                .seal_in_place_separate_tag(nonce, Aad::empty(), d)
                .unwrap();
            t.copy_from_slice(tag.as_ref());
        }
        self.n = n0;
        let n = self.nonce();
        self.key
            .open_in_place(n, Aad::empty(), &mut self.h)
            .unwrap();
        let n = self.nonce();
        self.key
            .open_in_place(n, Aad::empty(), &mut self.p)
            .unwrap();
        black_box(&self.p);
    }
}

struct HandshakeFixture {
    authority: AuthorityKeypair,
    responder: Responder,
}

impl HandshakeFixture {
    fn new() -> Self {
        let authority = AuthorityKeypair::generate();
        let keys = StaticKeypair::generate();
        let cert = Certificate::issue(&authority, &keys.public_key(), 0, u32::MAX);
        Self {
            authority,
            responder: Responder::new(keys, cert),
        }
    }

    fn act1(&self) -> [u8; 64] {
        Initiator::new(self.authority.public_key()).1
    }

    fn sri_act1(&self) -> [u8; 64] {
        let init =
            noise_sv2::Initiator::from_raw_k(self.authority.public_key().to_bytes()).unwrap();
        let (act1, _) = Handshake::initiator(init).step_0().unwrap();
        act1.payload().try_into().unwrap()
    }

    fn sri_responder(&self) -> Box<noise_sv2::Responder> {
        noise_sv2::Responder::from_authority_kp(
            &self.authority.public_key().to_bytes(),
            &self.authority.secret_key().to_bytes(),
            Duration::from_secs(3600),
        )
        .unwrap()
    }
}

struct Floor {
    ctx: Secp256k1<secp256k1::All>,
    remote: ElligatorSwift,
}

impl Floor {
    fn new() -> Self {
        let ctx = Secp256k1::new();
        let sk = SecretKey::new(&mut rand::thread_rng());
        let remote = ElligatorSwift::from_pubkey(PublicKey::from_secret_key(&ctx, &sk));
        Self { ctx, remote }
    }

    #[inline]
    fn round(&self) {
        let mut rng = rand::thread_rng();
        let e = SecretKey::new(&mut rng);
        let e_pub = PublicKey::from_secret_key(&self.ctx, &e);
        let s = SecretKey::new(&mut rng);
        let s_pub = PublicKey::from_secret_key(&self.ctx, &s);
        let e_ell = ElligatorSwift::from_pubkey(e_pub);
        let a = ElligatorSwift::shared_secret(self.remote, e_ell, e, ElligatorSwiftParty::B, None);
        let b = ElligatorSwift::shared_secret(self.remote, e_ell, s, ElligatorSwiftParty::B, None);
        black_box((a, b, s_pub));
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame80_seal_open");
    let mut ours = Ours::new();
    g.bench_function("ours", |b| b.iter(|| ours.round()));
    let mut sri = Sri::new();
    g.bench_function("sri", |b| b.iter(|| sri.round()));
    let mut ring_floor = RingFloor::new();
    g.bench_function("ring_aead_floor", |b| b.iter(|| ring_floor.round()));
    g.finish();

    let fx = HandshakeFixture::new();
    let mut g = c.benchmark_group("responder_handshake");
    g.bench_function("ours", |b| {
        b.iter_batched(
            || fx.act1(),
            |a| fx.responder.respond(&a).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sri_new_responder_and_step_1", |b| {
        b.iter_batched(
            || fx.sri_act1(),
            |a| {
                let r = fx.sri_responder();
                Handshake::responder(r).step_1(a).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sri_step_1_only", |b| {
        b.iter_batched(
            || (fx.sri_act1(), fx.sri_responder()),
            |(a, r)| Handshake::responder(r).step_1(a).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let floor = Floor::new();
    c.bench_function("secp256k1_floor", |b| b.iter(|| floor.round()));
}

/// Median per-iteration time of `samples` runs of `iters` calls each (setup excluded when the
/// closure times itself).
fn median_ns(samples: usize, mut sample: impl FnMut() -> Duration, iters: u32) -> f64 {
    let mut v: Vec<f64> = (0..samples)
        .map(|_| sample().as_nanos() as f64 / f64::from(iters))
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn summary() {
    let mut ours = Ours::new();
    let mut sri = Sri::new();
    let n = 2000;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed()
    };
    let o = median_ns(51, || time(&mut || ours.round()), n);
    let s = median_ns(51, || time(&mut || sri.round()), n);
    let mut rf = RingFloor::new();
    let r = median_ns(51, || time(&mut || rf.round()), n);

    let fx = HandshakeFixture::new();
    let oh = median_ns(
        51,
        || {
            let a = fx.act1();
            let t = Instant::now();
            black_box(fx.responder.respond(&a).unwrap());
            t.elapsed()
        },
        1,
    );
    let sh = median_ns(
        51,
        || {
            let a = fx.sri_act1();
            let t = Instant::now();
            black_box(Handshake::responder(fx.sri_responder()).step_1(a).unwrap());
            t.elapsed()
        },
        1,
    );
    let floor = Floor::new();
    let fl = median_ns(
        51,
        || {
            let t = Instant::now();
            for _ in 0..20 {
                floor.round();
            }
            t.elapsed()
        },
        20,
    );
    println!("\nsummary (medians of own sampling)");
    println!(
        "  frame80 seal+open      ours {:>9.0} ns   sri {:>9.0} ns   sri/ours {:>5.2}x",
        o,
        s,
        s / o
    );
    println!(
        "  frame80 ring AEAD floor {r:>8.0} ns   ours/floor {:>5.2}",
        o / r
    );
    println!(
        "  responder handshake    ours {:>9.0} ns   sri {:>9.0} ns   sri/ours {:>5.2}x",
        oh,
        sh,
        sh / oh
    );
    println!(
        "  secp256k1 floor        {:>9.0} ns   ours/floor {:>5.2}",
        fl,
        oh / fl
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    summary();
}
