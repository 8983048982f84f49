//! Double SHA-256 (SHA-256d) of block headers and other messages, with run-time dispatch
//! between SIMD backends.
//!
//! Bitcoin hashes a block header twice with SHA-256. A pool checks every share by hashing the
//! 80-byte header it implies, so this is the hottest loop of share validation. Three things
//! make it fast:
//!
//! * **Midstate.** The first 64 bytes of a header (version, previous block hash, first 28
//!   bytes of the merkle root) are fixed per job and channel; [`Midstate`] caches the SHA-256
//!   state after them, so a share costs two compressions instead of three (a share that
//!   rolls version bits changes them: three). [`PrefixMidstate`] does the same for the whole
//!   64-byte blocks of a coinbase prefix ([`PrefixMidstate::sha256d_rest`],
//!   [`Hasher::sha256d_rest_many`]).
//! * **Fields in registers.** [`hash_header_fields`] and [`hash_tail_fields`] hash a share's
//!   header from its job's template with version, nTime and nonce inserted in registers: a
//!   header assembled in memory and loaded right away stalls on store-to-load forwarding.
//! * **Merkle nodes.** [`sha256d_64`] and [`Hasher::sha256d_64_many`] hash 64-byte messages
//!   with the constant padding block built once.
//! * **Batching.** [`hash_headers`], [`hash_tails`], [`hash_tail_pairs`], [`check_headers`]
//!   and [`sha256d_many`] hash many independent messages at once, one message per SIMD lane
//!   (AVX2: 8, AVX-512: 16) or several interleaved streams on the SHA extensions.
//! * **Run-time dispatch.** The backend is chosen once, from `is_x86_feature_detected!`, and
//!   kept in a static; the crate is never built with `-C target-cpu=native`.
//!
//! | [`Backend`] | how | msgs/step | midstate + tail, batch | full header, batch | single |
//! |---|---|---|---|---|---|
//! | `Portable` | scalar Rust (unrolled rounds) | 1 | 4.1 | 2.7 | |
//! | `ShaNi` | `sha256rnds2`/`msg1`/`msg2`, 4 messages interleaved | 4 | 26.3 | 18.0 | 17.1 / 11.3 |
//! | `Avx2` | 8 messages in the 32-bit lanes of `ymm` registers | 8 | 14.9 | 9.7 | |
//! | `Avx512` | 16 messages in `zmm` lanes, `vprold` + `vpternlogd` | 16 | **41.8** | 26.0 | |
//! | `sha2` 0.10 (reference) | `Sha256::digest` twice (uses SHA-NI) | 1 | | | 8.7 |
//! | `bitcoin::hashes` (reference) | `sha256d::Hash::hash` | 1 | | | 7.7 |
//!
//! Millions of 80-byte headers per second on one core of an AMD EPYC (CPU family 26, Zen 5,
//! in a VM): medians of five runs of the `perf` example, each itself the median of seven
//! 0.2 s runs, on 2026-11-24 with the machine otherwise nearly idle. Runs agreed within about
//! 5% except those that shared the core with another process; criterion gave the same figures
//! within 3%. "single" is [`Midstate::hash_tail`] / [`hash_header`], one message at a time.
//! Reproduce with `cargo run --release -p strata-work --example perf` or
//! `cargo bench -p strata-work --bench sha256d`.
//!
//! Dispatch: batches go to AVX-512, else SHA-NI, else AVX2, else portable; on a SIMD lane
//! backend a remainder of at most half the lanes goes to SHA-NI (a padded SIMD step costs as
//! much as a full one). Single messages go to SHA-NI, else portable. [`Hasher::with_backend`]
//! forces one backend (tests, benches); [`Backend::available`] lists what the CPU has.
//!
//! The AVX-512 backend needs Rust 1.89 (its intrinsics were stabilized then), newer than the
//! workspace `rust-version`.
//!
//! Outputs are in the byte order Bitcoin uses internally (the raw digest, what
//! `bitcoin::hashes::sha256d::Hash::to_byte_array` returns); block explorers display the
//! reverse. Targets are 256-bit little-endian numbers in the same convention.
//!
//! `unsafe` is confined to the backend files (`shani.rs`, `avx2.rs`, `avx512.rs`,
//! `lanes.rs`). Each backend hands out a zero-sized `Token` only after checking the CPU, and
//! its kernels take that token, so the dispatch (`backend.rs`, `hasher.rs`) and this file call
//! them without `unsafe`.
//!
//! Rooms: this file holds the constants, [`Midstate`], [`PrefixMidstate`] and the free
//! functions; `backend.rs` the [`Backend`]s and their engines; `hasher.rs` the [`Hasher`];
//! `tests.rs` the tests.
//!
//! ```
//! use strata_work::sha256d::{hash_header, Midstate};
//! let header = [7u8; 80];
//! let mid = Midstate::of_header(&header);
//! let tail: [u8; 16] = header[64..].try_into().expect("16 bytes");
//! assert_eq!(mid.hash_tail(&tail), hash_header(&header));
//! ```

use std::fmt;
use std::sync::OnceLock;

#[macro_use]
mod lanes;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod avx2;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod avx512;
mod backend;
mod hasher;
mod portable;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod shani;
#[cfg(test)]
mod tests;

pub use backend::Backend;
use backend::Engine;
pub use hasher::Hasher;

/// Messages the SHA-NI backend interleaves in batches (4 measured faster than 2 and 3 on
/// AMD EPYC: `sha256rnds2` latency, not throughput, limits one stream).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
const SHANI_WAYS: usize = 4;

/// SHA-256 round constants.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 initial state.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Number of 64-byte blocks of a padded message of `len` bytes.
const fn block_count(len: usize) -> usize {
    (len + 9).div_ceil(64)
}

/// Block `b` of the SHA-256 padding of `data` (`b < block_count(data.len())`).
fn pad_block(data: &[u8], b: usize) -> [u8; 64] {
    pad_block_at(data, b, 0)
}

/// Block `b` of the padding of `data` as the end of a message whose first `offset` bytes (a
/// multiple of 64) were compressed already.
fn pad_block_at(data: &[u8], b: usize, offset: usize) -> [u8; 64] {
    let mut block = [0u8; 64];
    let start = 64 * b;
    if start < data.len() {
        let end = data.len().min(start + 64);
        block[..end - start].copy_from_slice(&data[start..end]);
    }
    if (start..start + 64).contains(&data.len()) {
        block[data.len() - start] = 0x80;
    }
    if b + 1 == block_count(data.len()) {
        let bits = ((offset + data.len()) as u64).wrapping_mul(8);
        block[56..].copy_from_slice(&bits.to_be_bytes());
    }
    block
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// SHA-256d of arbitrary data (through the `sha2` crate, which uses SHA-NI where present).
///
/// For many messages of one length use [`sha256d_many`]; for headers, [`hash_header`].
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(Sha256::digest(data)).into()
}

/// Whether `hash` meets `target`: both read as 256-bit little-endian numbers, `hash <= target`.
#[inline]
pub fn meets_target(hash: &[u8; 32], target: &[u8; 32]) -> bool {
    for i in (0..32).rev() {
        if hash[i] != target[i] {
            return hash[i] < target[i];
        }
    }
    true
}

/// The SHA-256 state after the first 64 bytes of an 80-byte header.
///
/// Those bytes (version, previous block hash, the first 28 bytes of the merkle root) are the
/// same for every share of a job on a channel, so the state is computed once and each share
/// costs only the last two compressions ([`Midstate::hash_tail`], [`hash_tails`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Midstate([u32; 8]);

impl fmt::Debug for Midstate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Midstate(")?;
        for w in self.0 {
            write!(f, "{w:08x}")?;
        }
        write!(f, ")")
    }
}

impl Midstate {
    /// State after compressing the 64-byte block `first` from the SHA-256 initial state.
    pub fn new(first: &[u8; 64]) -> Self {
        let mut s = IV;
        single().engine.compress_block(&mut s, first);
        Midstate(s)
    }

    /// Midstate of the first 64 bytes of `header`.
    pub fn of_header(header: &[u8; 80]) -> Self {
        let (first, _) = header.split_at(64);
        Self::new(
            first
                .try_into()
                .expect("an 80-byte header has 64 leading bytes"),
        )
    }

    /// The last 16 bytes of an 80-byte header: the merkle root's last 4 bytes, ntime, nbits and
    /// nonce.
    pub fn tail_of(header: &[u8; 80]) -> [u8; 16] {
        let (_, tail) = header.split_at(64);
        tail.try_into()
            .expect("an 80-byte header has 16 trailing bytes")
    }

    /// Builds a midstate from the eight SHA-256 state words.
    pub const fn from_words(words: [u32; 8]) -> Self {
        Midstate(words)
    }

    /// The eight SHA-256 state words.
    pub const fn words(&self) -> [u32; 8] {
        self.0
    }

    /// SHA-256d of the header whose first 64 bytes gave this midstate and whose last 16 bytes
    /// are `tail`, on the fastest single-stream backend.
    pub fn hash_tail(&self, tail: &[u8; 16]) -> [u8; 32] {
        single().hash_tail(self, tail)
    }
}

/// The SHA-256 state after the whole 64-byte blocks of a message's fixed start (a coinbase
/// prefix), so that messages sharing that start hash only the rest
/// ([`sha256d_rest`](Self::sha256d_rest)): per share, the tail of the coinbase prefix, the
/// extranonce and the suffix instead of the whole coinbase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefixMidstate {
    state: Midstate,
    consumed: usize,
}

/// Padded blocks [`PrefixMidstate::sha256d_rest`] assembles on the stack before compressing.
const REST_BLOCKS: usize = 8;

impl PrefixMidstate {
    /// The initial state: no bytes consumed.
    pub const EMPTY: PrefixMidstate = PrefixMidstate {
        state: Midstate(IV),
        consumed: 0,
    };

    /// The state after the first `64 * (prefix.len() / 64)` bytes of `prefix`.
    pub fn new(prefix: &[u8]) -> Self {
        let engine = single().engine;
        let mut s = IV;
        let mut blocks = prefix.chunks_exact(64);
        for b in &mut blocks {
            engine.compress_block(&mut s, b.try_into().expect("64-byte chunk"));
        }
        PrefixMidstate {
            state: Midstate(s),
            consumed: prefix.len() - blocks.remainder().len(),
        }
    }

    /// Bytes of the prefix the state covers (a multiple of 64).
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The SHA-256 state after those bytes.
    pub fn midstate(&self) -> Midstate {
        self.state
    }

    /// SHA-256d of `prefix ‖ rest...`, where `rest[0]` starts at byte
    /// [`consumed`](Self::consumed) of the prefix this state was made from (typically
    /// `&prefix[consumed..]`, then the other pieces of the message).
    pub fn sha256d_rest(&self, rest: &[&[u8]]) -> [u8; 32] {
        single().resume(&self.state.0, self.consumed, rest)
    }
}

fn batch() -> &'static Hasher {
    static BATCH: OnceLock<Hasher> = OnceLock::new();
    BATCH.get_or_init(Hasher::best_batch)
}

fn single() -> &'static Hasher {
    static SINGLE: OnceLock<Hasher> = OnceLock::new();
    SINGLE.get_or_init(Hasher::best_single)
}

/// The backend [`hash_headers`] and the other batch functions use on this CPU.
pub fn batch_backend() -> Backend {
    batch().backend()
}

/// The backend [`hash_header`] and [`Midstate::hash_tail`] use on this CPU.
pub fn single_backend() -> Backend {
    single().backend()
}

/// SHA-256d of one 80-byte header on the fastest single-stream backend.
pub fn hash_header(header: &[u8; 80]) -> [u8; 32] {
    single().hash_header(header)
}

/// SHA-256d of one header and the midstate of its first 64 bytes, on the fastest
/// single-stream backend (see [`Hasher::hash_header_with_midstate`]).
pub fn hash_header_with_midstate(header: &[u8; 80]) -> ([u8; 32], Midstate) {
    single().hash_header_with_midstate(header)
}

/// `template` with `version`, `ntime` and `nonce` written in (little-endian).
fn with_fields(template: &[u8; 80], version: u32, ntime: u32, nonce: u32) -> [u8; 80] {
    let mut h = *template;
    h[0..4].copy_from_slice(&version.to_le_bytes());
    h[68..72].copy_from_slice(&ntime.to_le_bytes());
    h[76..80].copy_from_slice(&nonce.to_le_bytes());
    h
}

/// [`Hasher::hash_header_fields`] on the fastest single-stream backend.
#[inline]
pub fn hash_header_fields(
    template: &[u8; 80],
    version: u32,
    ntime: u32,
    nonce: u32,
    want_midstate: bool,
) -> ([u8; 32], Option<Midstate>) {
    single().hash_header_fields(template, version, ntime, nonce, want_midstate)
}

/// [`Hasher::hash_tail_fields`] on the fastest single-stream backend.
#[inline]
pub fn hash_tail_fields(mid: &Midstate, template: &[u8; 80], ntime: u32, nonce: u32) -> [u8; 32] {
    single().hash_tail_fields(mid, template, ntime, nonce)
}

/// SHA-256d of one 64-byte message (a merkle node) on the fastest single-stream backend.
pub fn sha256d_64(msg: &[u8; 64]) -> [u8; 32] {
    single().sha256d_64(msg)
}

/// SHA-256d of each header into `out` (see [`Hasher::hash_headers`]).
pub fn hash_headers(headers: &[[u8; 80]], out: &mut [[u8; 32]]) {
    batch().hash_headers(headers, out)
}

/// SHA-256d of headers sharing one midstate (see [`Hasher::hash_tails`]).
pub fn hash_tails(mid: &Midstate, tails: &[[u8; 16]], out: &mut [[u8; 32]]) {
    batch().hash_tails(mid, tails, out)
}

/// SHA-256d of headers with one midstate each (see [`Hasher::hash_tail_pairs`]).
pub fn hash_tail_pairs(items: &[(Midstate, [u8; 16])], out: &mut [[u8; 32]]) {
    batch().hash_tail_pairs(items, out)
}

/// Indices of the headers whose SHA-256d meets `target` (see [`Hasher::check_headers`]).
pub fn check_headers(headers: &[[u8; 80]], target: &[u8; 32], hits: &mut Vec<usize>) {
    batch().check_headers(headers, target, hits)
}

/// SHA-256d of many equal-length messages (see [`Hasher::sha256d_many`]).
pub fn sha256d_many(inputs: &[&[u8]], out: &mut [[u8; 32]]) {
    batch().sha256d_many(inputs, out)
}
