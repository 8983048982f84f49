//! The nonce loop: SHA-256d of one 80-byte header template over the 2^32 nonces, from the
//! midstate of its first 64 bytes (the part no nonce changes), in SIMD batches
//! ([`strata_work::sha256d::Hasher::hash_tails`]).
//!
//! A [`HeaderSearch`] hashes a bounded number of nonces per [`step`](HeaderSearch::step) and
//! stops at the first hash that meets its target; the caller (a miner core) decides what to do
//! with the share and how to roll the header (version bits, extranonce, nTime) once the nonce
//! space is [exhausted](HeaderSearch::is_exhausted).

use strata_work::header::HEADER_LEN;
use strata_work::sha256d::{Hasher, Midstate};
use strata_work::target::Target;

/// Nonces hashed per SIMD call.
const BATCH: usize = 64;

/// Number of nonces of one header.
const NONCE_SPACE: u64 = 1 << 32;

/// What one [`HeaderSearch::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchStep {
    /// Hashes computed.
    pub hashes: u64,
    /// The first nonce whose hash met the target, with that hash (header byte order).
    pub found: Option<(u32, [u8; 32])>,
}

/// The search over the nonces of one header template.
#[derive(Debug, Clone)]
pub struct HeaderSearch {
    header: [u8; HEADER_LEN],
    mid: Midstate,
    tail: [u8; 16],
    next: u64,
    target: Target,
    hasher: Hasher,
}

impl HeaderSearch {
    /// A search over `header` (its nonce field is ignored) for hashes at or below `target`,
    /// from nonce 0.
    pub fn new(header: [u8; HEADER_LEN], target: Target) -> Self {
        HeaderSearch {
            header,
            mid: Midstate::of_header(&header),
            tail: Midstate::tail_of(&header),
            next: 0,
            target,
            hasher: Hasher::new(),
        }
    }

    /// The header template (nonce field as given).
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// The target shares must meet.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Changes the target (later nonces are checked against it).
    pub fn set_target(&mut self, target: Target) {
        self.target = target;
    }

    /// Whether all 2^32 nonces were hashed.
    pub fn is_exhausted(&self) -> bool {
        self.next >= NONCE_SPACE
    }

    /// The next nonce to hash.
    pub fn next_nonce(&self) -> u64 {
        self.next
    }

    /// Hashes at most `budget` nonces, stopping after the first hash that meets the target (the
    /// next step continues with the nonce after it).
    pub fn step(&mut self, budget: u64) -> SearchStep {
        let mut tails = [self.tail; BATCH];
        let mut out = [[0u8; 32]; BATCH];
        let mut hashes = 0u64;
        while hashes < budget && self.next < NONCE_SPACE {
            let n = (budget - hashes)
                .min(NONCE_SPACE - self.next)
                .min(BATCH as u64) as usize;
            for (i, t) in tails[..n].iter_mut().enumerate() {
                // `self.next + i < 2^32` by the bound on `n`
                t[12..16].copy_from_slice(&((self.next + i as u64) as u32).to_le_bytes());
            }
            self.hasher
                .hash_tails(&self.mid, &tails[..n], &mut out[..n]);
            if let Some(i) = out[..n].iter().position(|h| self.target.is_met_by(h)) {
                let nonce = (self.next + i as u64) as u32;
                self.next += i as u64 + 1;
                return SearchStep {
                    hashes: hashes + i as u64 + 1,
                    found: Some((nonce, out[i])),
                };
            }
            self.next += n as u64;
            hashes += n as u64;
        }
        SearchStep {
            hashes,
            found: None,
        }
    }
}

/// Spreads the low bits of `counter` over the set bits of `mask` (lowest first): the rolled
/// part of a version, e.g. `spread_bits(1, 0x1fffe000) == 0x2000`. Bits of `counter` beyond
/// `mask.count_ones()` are dropped.
pub fn spread_bits(counter: u64, mask: u32) -> u32 {
    let mut out = 0u32;
    let mut c = counter;
    for bit in 0..32 {
        if mask & (1 << bit) != 0 {
            if c & 1 == 1 {
                out |= 1 << bit;
            }
            c >>= 1;
        }
    }
    out
}

/// The block hash in display order (reversed, as explorers print it), lower-case hex.
pub fn display_hash(hash: &[u8; 32]) -> String {
    let mut h = *hash;
    h.reverse();
    hex::encode(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_work::sha256d::sha256d;
    use strata_work::target::hash_meets;

    #[test]
    fn finds_exactly_the_nonces_a_plain_hash_accepts() {
        let mut header = [0u8; HEADER_LEN];
        header[0] = 0x20;
        header[40] = 7;
        let target = Target::from_difficulty(1.0 / 16_777_216.0).expect("difficulty");
        let mut s = HeaderSearch::new(header, target);
        let mut found = vec![];
        let mut hashed = 0;
        while hashed < 5000 {
            let step = s.step(5000 - hashed);
            hashed += step.hashes;
            if let Some((n, h)) = step.found {
                found.push((n, h));
            }
        }
        let expected: Vec<u32> = (0u32..5000)
            .filter(|&n| {
                header[76..80].copy_from_slice(&n.to_le_bytes());
                hash_meets(&sha256d(&header), &target)
            })
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), expected);
        for (n, h) in found {
            header[76..80].copy_from_slice(&n.to_le_bytes());
            assert_eq!(sha256d(&header), h);
        }
        assert_eq!(s.next_nonce(), 5000);
    }

    #[test]
    fn budget_is_respected_and_space_ends() {
        let mut s = HeaderSearch::new([0u8; HEADER_LEN], Target::ZERO);
        assert_eq!(s.step(100).hashes, 100);
        s.next = NONCE_SPACE - 10;
        assert_eq!(s.step(100).hashes, 10);
        assert!(s.is_exhausted());
        assert_eq!(s.step(100).hashes, 0);
    }

    #[test]
    fn spreads_counter_bits_into_the_mask() {
        assert_eq!(spread_bits(0, 0x1fffe000), 0);
        assert_eq!(spread_bits(1, 0x1fffe000), 0x2000);
        assert_eq!(spread_bits(3, 0x1fffe000), 0x6000);
        assert_eq!(spread_bits(0xffff, 0x1fffe000), 0x1fffe000);
        assert_eq!(spread_bits(0x1_0000, 0x1fffe000), 0);
        assert_eq!(spread_bits(5, 0b1010_0001), 0b1000_0001);
    }
}
