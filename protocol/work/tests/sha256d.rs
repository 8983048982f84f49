//! SHA-256d: every backend the CPU has (and the portable one always) against
//! `bitcoin::hashes::sha256d`, on random and real mainnet headers, every batch shape and the
//! padding boundaries of equal-length batches.

use bitcoin::block::Header;
use bitcoin::hashes::{sha256d as reference, Hash};
use bitcoin::pow::Target;
use proptest::prelude::*;
use strata_work::sha256d::{self, Backend, Hasher, Midstate};

fn reference_hash(data: &[u8]) -> [u8; 32] {
    reference::Hash::hash(data).to_byte_array()
}

/// Every backend the CPU supports; prints a note for each one it lacks.
fn hashers() -> Vec<(String, Hasher)> {
    let mut v = Vec::new();
    for b in Backend::ALL {
        match Hasher::with_backend(b) {
            Some(h) => v.push((b.name().to_string(), h)),
            None => eprintln!("note: skipping backend {b}: not supported by this CPU"),
        }
    }
    assert!(v.iter().any(|(n, _)| n == "portable"));
    v.push(("default".to_string(), Hasher::new()));
    v
}

fn tail(h: &[u8; 80]) -> [u8; 16] {
    Midstate::tail_of(h)
}

/// Deterministic pseudo-random bytes.
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

fn random_headers(n: usize, seed: u64) -> Vec<[u8; 80]> {
    pseudo_random(80 * n, seed)
        .chunks_exact(80)
        .map(|c| c.try_into().expect("80 bytes"))
        .collect()
}

/// Display-order hex (as explorers show hashes) to internal byte order.
fn internal(display_hex: &str) -> Vec<u8> {
    let mut b = hex::decode(display_hex).expect("hex");
    b.reverse();
    b
}

/// A mainnet header serialized from its fields, with its expected block hash (display order).
struct Real {
    height: u32,
    hash: &'static str,
    prev: &'static str,
    merkle: &'static str,
    time: u32,
    bits: u32,
    nonce: u32,
}

const REAL: [Real; 4] = [
    Real {
        height: 0,
        hash: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        prev: "0000000000000000000000000000000000000000000000000000000000000000",
        merkle: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
        time: 1_231_006_505,
        bits: 0x1d00_ffff,
        nonce: 2_083_236_893,
    },
    Real {
        height: 1,
        hash: "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
        prev: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        merkle: "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098",
        time: 1_231_469_665,
        bits: 0x1d00_ffff,
        nonce: 2_573_394_689,
    },
    Real {
        height: 170,
        hash: "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee",
        prev: "000000002a22cfee1f2c846adbd12b3e183d4f97683f85dad08a79780a84bd55",
        merkle: "7dac2c5666815c17a3b36427de37bb9d2e2c5ccec3f8633eb91a4205cb4c10ff",
        time: 1_231_731_025,
        bits: 0x1d00_ffff,
        nonce: 1_889_418_792,
    },
    Real {
        height: 100_000,
        hash: "000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506",
        prev: "000000000002d01c1fccc21636b607dfd930d31d01c3a62104612a1719011250",
        merkle: "f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766",
        time: 1_293_623_863,
        bits: 0x1b04_864c,
        nonce: 274_148_111,
    },
];

impl Real {
    /// The 80 serialized bytes, built by hand and checked through `bitcoin`'s deserializer.
    fn header(&self) -> [u8; 80] {
        let mut h = Vec::with_capacity(80);
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&internal(self.prev));
        h.extend_from_slice(&internal(self.merkle));
        h.extend_from_slice(&self.time.to_le_bytes());
        h.extend_from_slice(&self.bits.to_le_bytes());
        h.extend_from_slice(&self.nonce.to_le_bytes());
        let parsed: Header = bitcoin::consensus::deserialize(&h).expect("a valid header");
        assert_eq!(
            parsed.block_hash().to_string(),
            self.hash,
            "block {}",
            self.height
        );
        assert_eq!(parsed.time, self.time);
        h.try_into().expect("80 bytes")
    }
}

#[test]
fn real_mainnet_headers_every_backend() {
    let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Bitcoin).header;
    assert_eq!(
        bitcoin::consensus::serialize(&genesis),
        REAL[0].header().to_vec()
    );
    let headers: Vec<[u8; 80]> = REAL.iter().map(Real::header).collect();
    let want: Vec<Vec<u8>> = REAL.iter().map(|r| internal(r.hash)).collect();
    for (name, h) in hashers() {
        let mut out = vec![[0u8; 32]; headers.len()];
        h.hash_headers(&headers, &mut out);
        for (((r, o), hd), w) in REAL.iter().zip(&out).zip(&headers).zip(&want) {
            assert_eq!(o.to_vec(), *w, "{name} block {}", r.height);
            assert_eq!(h.hash_header(hd), *o, "{name} single block {}", r.height);
            let mid = Midstate::of_header(hd);
            assert_eq!(
                h.hash_tail(&mid, &tail(hd)),
                *o,
                "{name} tail block {}",
                r.height
            );
            // Every real block meets the target its own nBits encodes.
            let target = Target::from_compact(bitcoin::CompactTarget::from_consensus(r.bits));
            let mut hits = Vec::new();
            h.check_headers(core::slice::from_ref(hd), &target.to_le_bytes(), &mut hits);
            assert_eq!(hits, [0], "{name} pow block {}", r.height);
        }
    }
    assert_eq!(sha256d::hash_header(&headers[0]).to_vec(), want[0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_header_every_backend(bytes in proptest::collection::vec(any::<u8>(), 80)) {
        let header: [u8; 80] = bytes.try_into().expect("80 bytes");
        let want = reference_hash(&header);
        prop_assert_eq!(sha256d::hash_header(&header), want);
        prop_assert_eq!(sha256d::sha256d(&header), want);
        let mid = Midstate::of_header(&header);
        prop_assert_eq!(mid.hash_tail(&tail(&header)), want);
        for (name, h) in hashers() {
            prop_assert_eq!(h.hash_header(&header), want, "{}", name);
            prop_assert_eq!(h.hash_tail(&mid, &tail(&header)), want, "{}", name);
        }
    }

    #[test]
    fn random_batches_every_backend(seed in any::<u64>(), n in 0usize..40) {
        let headers = random_headers(n, seed);
        let want: Vec<[u8; 32]> = headers.iter().map(|h| reference_hash(h)).collect();
        for (name, h) in hashers() {
            let mut out = vec![[0u8; 32]; n];
            h.hash_headers(&headers, &mut out);
            prop_assert_eq!(&out, &want, "{}", name);
        }
    }
}

const BATCH_SIZES: [usize; 9] = [0, 1, 2, 7, 8, 15, 16, 17, 100];

#[test]
fn batch_sizes_every_backend() {
    for &n in &BATCH_SIZES {
        let mut headers = random_headers(n, n as u64 + 1);
        let want: Vec<[u8; 32]> = headers.iter().map(|h| reference_hash(h)).collect();
        let pairs: Vec<(Midstate, [u8; 16])> = headers
            .iter()
            .map(|h| (Midstate::of_header(h), tail(h)))
            .collect();
        for (name, h) in hashers() {
            let mut out = vec![[0xa5u8; 32]; n];
            h.hash_headers(&headers, &mut out);
            assert_eq!(out, want, "{name} hash_headers n={n}");
            out.fill([0x5a; 32]);
            h.hash_tail_pairs(&pairs, &mut out);
            assert_eq!(out, want, "{name} hash_tail_pairs n={n}");
        }
        let mut out = vec![[0u8; 32]; n];
        sha256d::hash_headers(&headers, &mut out);
        assert_eq!(out, want, "dispatch hash_headers n={n}");
        sha256d::hash_tail_pairs(&pairs, &mut out);
        assert_eq!(out, want, "dispatch hash_tail_pairs n={n}");

        // One midstate, many tails: vary only the last 16 bytes.
        if let Some(first) = headers.first().copied() {
            for h in &mut headers {
                h[..64].copy_from_slice(&first[..64]);
            }
        }
        let want: Vec<[u8; 32]> = headers.iter().map(|h| reference_hash(h)).collect();
        let tails: Vec<[u8; 16]> = headers.iter().map(tail).collect();
        let mid = headers
            .first()
            .map(Midstate::of_header)
            .unwrap_or(Midstate::new(&[0; 64]));
        for (name, h) in hashers() {
            let mut out = vec![[0u8; 32]; n];
            h.hash_tails(&mid, &tails, &mut out);
            assert_eq!(out, want, "{name} hash_tails n={n}");
        }
        sha256d::hash_tails(&mid, &tails, &mut out);
        assert_eq!(out, want, "dispatch hash_tails n={n}");
    }
}

#[test]
fn midstate_matches_sha256_state() {
    // The midstate of a block is the SHA-256 state after it; hashing a 64-byte block plus
    // 16 more bytes from it must agree with hashing the 80 bytes at once.
    let header: [u8; 80] = random_headers(1, 77)[0];
    let first: [u8; 64] = header[..64].try_into().expect("64 bytes");
    assert_eq!(Midstate::new(&first), Midstate::of_header(&header));
    assert_eq!(
        Midstate::new(&first).hash_tail(&tail(&header)),
        reference_hash(&header)
    );
    // Words round-trip.
    let m = Midstate::of_header(&header);
    assert_eq!(Midstate::from_words(m.words()), m);
}

#[test]
fn equal_length_batches_every_backend() {
    for len in [0usize, 1, 32, 55, 56, 63, 64, 65, 80, 119, 120, 200] {
        for n in [0usize, 1, 3, 8, 16, 17, 33] {
            let data = pseudo_random(len * n, (len * 1000 + n) as u64);
            let inputs: Vec<&[u8]> = if len == 0 {
                vec![&[][..]; n]
            } else {
                data.chunks_exact(len).collect()
            };
            let want: Vec<[u8; 32]> = inputs.iter().map(|m| reference_hash(m)).collect();
            for (name, h) in hashers() {
                let mut out = vec![[0u8; 32]; n];
                h.sha256d_many(&inputs, &mut out);
                assert_eq!(out, want, "{name} sha256d_many len={len} n={n}");
            }
            let mut out = vec![[0u8; 32]; n];
            sha256d::sha256d_many(&inputs, &mut out);
            assert_eq!(out, want, "dispatch sha256d_many len={len} n={n}");
            for (m, w) in inputs.iter().zip(&want) {
                assert_eq!(sha256d::sha256d(m), *w, "sha256d len={len}");
            }
        }
    }
}

#[test]
#[should_panic(expected = "equal length")]
fn unequal_lengths_panic() {
    let mut out = [[0u8; 32]; 2];
    sha256d::sha256d_many(&[&[1u8; 3], &[1u8; 4]], &mut out);
}

#[test]
fn check_headers_matches_reference_every_backend() {
    let headers = random_headers(100, 99);
    let hashes: Vec<[u8; 32]> = headers.iter().map(|h| reference_hash(h)).collect();
    // Roughly one hash in eight meets a target whose top byte is 0x1f; and the exact hash of
    // one header as target admits that header (equality counts) and everything smaller.
    let mut easy = [0xffu8; 32];
    easy[31] = 0x1f;
    let exact = hashes[42];
    let mut below = exact;
    // exact - 1 as a little-endian number (the chance of a zero low byte is negligible here).
    assert_ne!(below[0], 0);
    below[0] -= 1;
    for target in [easy, exact, below, [0u8; 32], [0xff; 32]] {
        let t = Target::from_le_bytes(target);
        let want: Vec<usize> = hashes
            .iter()
            .enumerate()
            .filter(|(_, h)| Target::from_le_bytes(**h) <= t)
            .map(|(i, _)| i)
            .collect();
        for (name, h) in hashers() {
            for n in [0usize, 1, 7, 16, 17, 100] {
                let mut hits = vec![usize::MAX];
                h.check_headers(&headers[..n], &target, &mut hits);
                let want_n: Vec<usize> = want.iter().copied().filter(|&i| i < n).collect();
                assert_eq!(hits[0], usize::MAX, "does not clear");
                assert_eq!(hits[1..], want_n[..], "{name} n={n}");
            }
        }
        let mut hits = Vec::new();
        sha256d::check_headers(&headers, &target, &mut hits);
        assert_eq!(hits, want);
        for (hash, i) in hashes.iter().zip(0..) {
            assert_eq!(sha256d::meets_target(hash, &target), want.contains(&i));
        }
    }
    let mut hits = Vec::new();
    sha256d::check_headers(&headers, &exact, &mut hits);
    assert!(hits.contains(&42));
    hits.clear();
    sha256d::check_headers(&headers, &below, &mut hits);
    assert!(!hits.contains(&42));
}

#[test]
fn backends_report_themselves() {
    let available = Backend::available();
    assert!(available.contains(&Backend::Portable));
    assert!(available.contains(&sha256d::batch_backend()));
    assert!(available.contains(&sha256d::single_backend()));
    for b in &available {
        let h = Hasher::with_backend(*b).expect("available");
        assert_eq!(h.backend(), *b);
        assert!(b.lanes() >= 1);
    }
    eprintln!(
        "available: {available:?}; batch: {}; single: {}",
        sha256d::batch_backend(),
        sha256d::single_backend()
    );
}
