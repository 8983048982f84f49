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
//! its kernels take that token, so this file calls them without `unsafe`.
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
mod portable;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod shani;

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

/// A SHA-256d implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Scalar Rust; works everywhere.
    Portable,
    /// x86 SHA extensions; four messages interleaved in batches.
    ShaNi,
    /// x86 AVX2, 8 messages at once.
    Avx2,
    /// x86 AVX-512F, 16 messages at once.
    Avx512,
}

impl Backend {
    /// Every backend, in no particular order.
    pub const ALL: [Backend; 4] = [
        Backend::Portable,
        Backend::ShaNi,
        Backend::Avx2,
        Backend::Avx512,
    ];

    /// The backends the running CPU supports (always includes [`Backend::Portable`]).
    pub fn available() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// Whether the running CPU supports this backend.
    pub fn is_available(self) -> bool {
        Engine::new(self).is_some()
    }

    /// Messages hashed together in one batch step.
    pub const fn lanes(self) -> usize {
        match self {
            Backend::Portable => 1,
            Backend::ShaNi => 4,
            Backend::Avx2 => 8,
            Backend::Avx512 => 16,
        }
    }

    /// Short lower-case name (`portable`, `sha-ni`, `avx2`, `avx512`).
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::ShaNi => "sha-ni",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend together with the proof that the CPU supports it.
#[derive(Clone, Copy, Debug)]
enum Engine {
    Portable,
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    ShaNi(shani::Token),
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    Avx2(avx2::Token),
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    Avx512(avx512::Token),
}

impl Engine {
    fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Portable => Some(Engine::Portable),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Backend::ShaNi => shani::Token::new().map(Engine::ShaNi),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Backend::Avx2 => avx2::Token::new().map(Engine::Avx2),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Backend::Avx512 => avx512::Token::new().map(Engine::Avx512),
            #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
            _ => None,
        }
    }

    fn backend(self) -> Backend {
        match self {
            Engine::Portable => Backend::Portable,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(_) => Backend::ShaNi,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx2(_) => Backend::Avx2,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx512(_) => Backend::Avx512,
        }
    }

    fn compress_block(self, state: &mut [u32; 8], block: &[u8; 64]) {
        match self {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(t) => {
                shani::compress_blocks::<1>(t, core::array::from_mut(state), [block])
            }
            _ => portable::compress_block(state, block),
        }
    }

    /// The second SHA-256 of SHA-256d for a first-hash state.
    fn finish_state(self, state: &[u32; 8]) -> [u8; 32] {
        match self {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(t) => shani::finish_states::<1>(t, [state])[0],
            _ => portable::finish(state),
        }
    }

    /// SHA-256d of `out.len()` 80-byte messages given as (midstate, tail) by `item`.
    /// `same_mid` promises that every item has the midstate of item 0.
    fn tails<'a>(
        self,
        item: impl Fn(usize) -> (&'a [u32; 8], &'a [u8; 16]),
        same_mid: bool,
        out: &mut [[u8; 32]],
    ) {
        match self {
            Engine::Portable => {
                for (i, o) in out.iter_mut().enumerate() {
                    let (m, t) = item(i);
                    *o = portable::hash_tail(m, t);
                }
            }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(tok) => shani_groups(
                out,
                |i| {
                    let items: [_; SHANI_WAYS] = core::array::from_fn(|k| item(i + k));
                    shani::tails(tok, items.map(|x| x.0), items.map(|x| x.1))
                },
                |i| {
                    let (m, t) = item(i);
                    shani::tails::<1>(tok, [m], [t])[0]
                },
            ),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx2(tok) => lanes_tails::<{ avx2::L }>(&item, same_mid, out, |m, t, o| {
                avx2::tails(tok, m, t, o)
            }),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx512(tok) => lanes_tails::<{ avx512::L }>(&item, same_mid, out, |m, t, o| {
                avx512::tails(tok, m, t, o)
            }),
        }
    }

    fn headers(self, headers: &[[u8; 80]], out: &mut [[u8; 32]]) {
        debug_assert_eq!(headers.len(), out.len());
        match self {
            Engine::Portable => {
                for (h, o) in headers.iter().zip(out) {
                    let mut s = IV;
                    let (first, tail) = h.split_at(64);
                    portable::compress_block(&mut s, first.try_into().expect("64 bytes"));
                    *o = portable::hash_tail(&s, tail.try_into().expect("16 bytes"));
                }
            }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(tok) => shani_groups(
                out,
                |i| shani::headers(tok, core::array::from_fn(|k| &headers[i + k])),
                |i| shani::headers::<1>(tok, [&headers[i]])[0],
            ),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx2(tok) => {
                lanes_headers::<{ avx2::L }>(headers, out, |b, t, o| avx2::headers(tok, b, t, o))
            }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx512(tok) => lanes_headers::<{ avx512::L }>(headers, out, |b, t, o| {
                avx512::headers(tok, b, t, o)
            }),
        }
    }

    /// SHA-256d of 64-byte messages (merkle nodes): the padding block is a constant.
    fn many64(self, msgs: &[[u8; 64]], out: &mut [[u8; 32]]) {
        debug_assert_eq!(msgs.len(), out.len());
        match self {
            Engine::Portable => {
                let pad = pad_block(&[0u8; 64], 1);
                for (m, o) in msgs.iter().zip(out) {
                    let mut s = IV;
                    portable::compress_block(&mut s, m);
                    portable::compress_block(&mut s, &pad);
                    *o = portable::finish(&s);
                }
            }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(tok) => shani_groups(
                out,
                |i| shani::sha256d_64(tok, core::array::from_fn(|k| &msgs[i + k])),
                |i| shani::sha256d_64::<1>(tok, [&msgs[i]])[0],
            ),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx2(tok) => lanes_64::<{ avx2::L }>(
                msgs,
                out,
                |s, b| avx2::compress_blocks(tok, s, b),
                |s, o| avx2::finish_states(tok, s, o),
            ),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx512(tok) => lanes_64::<{ avx512::L }>(
                msgs,
                out,
                |s, b| avx512::compress_blocks(tok, s, b),
                |s, o| avx512::finish_states(tok, s, o),
            ),
        }
    }

    /// SHA-256d of messages that all have length `len`: from the initial state, or, with
    /// `resume = Some((states, offset))`, message `i` being the end of a message whose first
    /// `offset` bytes (a multiple of 64) left the first SHA-256 in `states[i]`.
    fn many(
        self,
        inputs: &[&[u8]],
        resume: Option<(&[[u32; 8]], usize)>,
        len: usize,
        out: &mut [[u8; 32]],
    ) {
        debug_assert_eq!(inputs.len(), out.len());
        let blocks = block_count(len);
        let offset = resume.map_or(0, |r| r.1);
        let init = |i: usize| resume.map_or(IV, |(s, _)| s[i]);
        match self {
            Engine::Portable => {
                for (i, (m, o)) in inputs.iter().zip(out).enumerate() {
                    let mut s = init(i);
                    for b in 0..blocks {
                        portable::compress_block(&mut s, &pad_block_at(m, b, offset));
                    }
                    *o = portable::finish(&s);
                }
            }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(tok) => shani_groups(
                out,
                |i| {
                    let mut s: [[u32; 8]; SHANI_WAYS] = core::array::from_fn(|k| init(i + k));
                    for b in 0..blocks {
                        let padded: [[u8; 64]; SHANI_WAYS] =
                            core::array::from_fn(|k| pad_block_at(inputs[i + k], b, offset));
                        shani::compress_blocks(tok, &mut s, padded.each_ref());
                    }
                    shani::finish_states(tok, s.each_ref())
                },
                |i| {
                    let mut s = [init(i)];
                    for b in 0..blocks {
                        let block = pad_block_at(inputs[i], b, offset);
                        shani::compress_blocks::<1>(tok, &mut s, [&block]);
                    }
                    shani::finish_states::<1>(tok, [&s[0]])[0]
                },
            ),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx2(tok) => lanes_many::<{ avx2::L }>(
                inputs,
                resume,
                blocks,
                out,
                |s, b| avx2::compress_blocks(tok, s, b),
                |s, o| avx2::finish_states(tok, s, o),
            ),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::Avx512(tok) => lanes_many::<{ avx512::L }>(
                inputs,
                resume,
                blocks,
                out,
                |s, b| avx512::compress_blocks(tok, s, b),
                |s, o| avx512::finish_states(tok, s, o),
            ),
        }
    }
}

/// Writes lane `lane` of the word-major final states `res` as digest bytes.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
fn lane_digest<const L: usize>(res: &[[u32; L]; 8], lane: usize, out: &mut [u8; 32]) {
    for (o, r) in out.chunks_exact_mut(4).zip(res) {
        o.copy_from_slice(&r[lane].to_be_bytes());
    }
}

/// SHA-NI's way of hashing many messages: [`SHANI_WAYS`] independent streams interleaved to
/// hide the instructions' latency, the last `out.len() % SHANI_WAYS` one at a time. `ways(i)`
/// hashes messages `i..i + SHANI_WAYS`, `one(i)` message `i`.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline(always)]
fn shani_groups(
    out: &mut [[u8; 32]],
    mut ways: impl FnMut(usize) -> [[u8; 32]; SHANI_WAYS],
    mut one: impl FnMut(usize) -> [u8; 32],
) {
    let done = out.len() - out.len() % SHANI_WAYS;
    let mut chunks = out.chunks_exact_mut(SHANI_WAYS);
    for (c, o) in (&mut chunks).enumerate() {
        o.copy_from_slice(&ways(c * SHANI_WAYS));
    }
    for (k, o) in chunks.into_remainder().iter_mut().enumerate() {
        *o = one(done + k);
    }
}

/// Feeds lane kernels with word-major tails (and midstates), `L` messages at a time. Lanes
/// past the end of the input keep stale data; their results are dropped.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
fn lanes_tails<'a, const L: usize>(
    item: &impl Fn(usize) -> (&'a [u32; 8], &'a [u8; 16]),
    same_mid: bool,
    out: &mut [[u8; 32]],
    kernel: impl Fn(&[[u32; L]; 8], &[[u32; L]; 4], &mut [[u32; L]; 8]),
) {
    let mut mid = [[0u32; L]; 8];
    let mut tail = [[0u32; L]; 4];
    let mut res = [[0u32; L]; 8];
    if same_mid && !out.is_empty() {
        let m = item(0).0;
        for (row, w) in mid.iter_mut().zip(m) {
            *row = [*w; L];
        }
    }
    for (c, o) in out.chunks_mut(L).enumerate() {
        for lane in 0..o.len() {
            let (m, t) = item(c * L + lane);
            if !same_mid {
                for (row, w) in mid.iter_mut().zip(m) {
                    row[lane] = *w;
                }
            }
            for (row, b) in tail.iter_mut().zip(t.chunks_exact(4)) {
                row[lane] = be_u32(b);
            }
        }
        kernel(&mid, &tail, &mut res);
        for (lane, o) in o.iter_mut().enumerate() {
            lane_digest(&res, lane, o);
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
fn lanes_headers<const L: usize>(
    headers: &[[u8; 80]],
    out: &mut [[u8; 32]],
    kernel: impl Fn(&[[u32; L]; 16], &[[u32; L]; 4], &mut [[u32; L]; 8]),
) {
    let mut block = [[0u32; L]; 16];
    let mut tail = [[0u32; L]; 4];
    let mut res = [[0u32; L]; 8];
    for (h, o) in headers.chunks(L).zip(out.chunks_mut(L)) {
        for (lane, h) in h.iter().enumerate() {
            let (first, last) = h.split_at(64);
            for (row, b) in block.iter_mut().zip(first.chunks_exact(4)) {
                row[lane] = be_u32(b);
            }
            for (row, b) in tail.iter_mut().zip(last.chunks_exact(4)) {
                row[lane] = be_u32(b);
            }
        }
        kernel(&block, &tail, &mut res);
        for (lane, o) in o.iter_mut().enumerate() {
            lane_digest(&res, lane, o);
        }
    }
}

/// 64-byte messages in lanes: the message words transposed, then the constant padding
/// block.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
fn lanes_64<const L: usize>(
    msgs: &[[u8; 64]],
    out: &mut [[u8; 32]],
    compress: impl Fn(&mut [[u32; L]; 8], &[[u32; L]; 16]),
    finish: impl Fn(&[[u32; L]; 8], &mut [[u32; L]; 8]),
) {
    let mut pad = [[0u32; L]; 16];
    pad[0] = [0x8000_0000; L];
    pad[15] = [512; L];
    let mut block = [[0u32; L]; 16];
    let mut res = [[0u32; L]; 8];
    for (m, o) in msgs.chunks(L).zip(out.chunks_mut(L)) {
        let mut state = [[0u32; L]; 8];
        for (row, v) in state.iter_mut().zip(IV) {
            *row = [v; L];
        }
        for (lane, m) in m.iter().enumerate() {
            for (row, b) in block.iter_mut().zip(m.chunks_exact(4)) {
                row[lane] = be_u32(b);
            }
        }
        compress(&mut state, &block);
        compress(&mut state, &pad);
        finish(&state, &mut res);
        for (lane, o) in o.iter_mut().enumerate() {
            lane_digest(&res, lane, o);
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
fn lanes_many<const L: usize>(
    inputs: &[&[u8]],
    resume: Option<(&[[u32; 8]], usize)>,
    blocks: usize,
    out: &mut [[u8; 32]],
    compress: impl Fn(&mut [[u32; L]; 8], &[[u32; L]; 16]),
    finish: impl Fn(&[[u32; L]; 8], &mut [[u32; L]; 8]),
) {
    let offset = resume.map_or(0, |r| r.1);
    let mut block = [[0u32; L]; 16];
    let mut res = [[0u32; L]; 8];
    for (c, (m, o)) in inputs.chunks(L).zip(out.chunks_mut(L)).enumerate() {
        let mut state = [[0u32; L]; 8];
        match resume {
            None => {
                for (row, v) in state.iter_mut().zip(IV) {
                    *row = [v; L];
                }
            }
            Some((states, _)) => {
                for (lane, s) in states[c * L..c * L + m.len()].iter().enumerate() {
                    for (row, v) in state.iter_mut().zip(s) {
                        row[lane] = *v;
                    }
                }
            }
        }
        for b in 0..blocks {
            for (lane, m) in m.iter().enumerate() {
                let padded = pad_block_at(m, b, offset);
                for (row, b) in block.iter_mut().zip(padded.chunks_exact(4)) {
                    row[lane] = be_u32(b);
                }
            }
            compress(&mut state, &block);
        }
        finish(&state, &mut res);
        for (lane, o) in o.iter_mut().enumerate() {
            lane_digest(&res, lane, o);
        }
    }
}

/// SHA-256d on one chosen backend.
///
/// [`Hasher::new`] picks the fastest batch backend of the running CPU (and sends batch
/// remainders too small to fill the SIMD lanes to SHA-NI when present);
/// [`Hasher::with_backend`] forces one, for tests and benchmarks. The free functions of this
/// module use a shared, lazily built `Hasher`.
#[derive(Clone, Copy, Debug)]
pub struct Hasher {
    engine: Engine,
    /// Engine for batch remainders of at most `small_max` messages.
    small: Option<Engine>,
    small_max: usize,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    /// The fastest batch configuration for the running CPU (chosen once per process).
    pub fn new() -> Self {
        *batch()
    }

    /// Exactly `backend` for every message, or `None` if the CPU lacks it.
    pub fn with_backend(backend: Backend) -> Option<Self> {
        Engine::new(backend).map(|engine| Hasher {
            engine,
            small: None,
            small_max: 0,
        })
    }

    fn best_batch() -> Self {
        for b in BATCH_PREFERENCE {
            if let Some(mut h) = Hasher::with_backend(b) {
                if matches!(b, Backend::Avx2 | Backend::Avx512) {
                    // A padded SIMD step costs as much as a full one; SHA-NI is cheaper for
                    // remainders up to about half the lanes.
                    h.small = Engine::new(Backend::ShaNi);
                    h.small_max = b.lanes() / 2;
                }
                return h;
            }
        }
        Hasher {
            engine: Engine::Portable,
            small: None,
            small_max: 0,
        }
    }

    fn best_single() -> Self {
        let b = if Backend::ShaNi.is_available() {
            Backend::ShaNi
        } else {
            Backend::Portable
        };
        Hasher::with_backend(b).unwrap_or(Hasher {
            engine: Engine::Portable,
            small: None,
            small_max: 0,
        })
    }

    /// The backend that hashes full batches.
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// How many of `n` messages go to the main engine; the rest go to `small`.
    fn split(&self, n: usize) -> usize {
        let lanes = self.engine.backend().lanes();
        match self.small {
            Some(_) if n % lanes <= self.small_max => n - n % lanes,
            _ => n,
        }
    }

    /// SHA-256d of an 80-byte header.
    pub fn hash_header(&self, header: &[u8; 80]) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::headers::<1>(tok, [header])[0];
        }
        let mut out = [[0u8; 32]];
        self.hash_headers(core::slice::from_ref(header), &mut out);
        out[0]
    }

    /// SHA-256d of the header with midstate `mid` and last 16 bytes `tail`.
    pub fn hash_tail(&self, mid: &Midstate, tail: &[u8; 16]) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::tails::<1>(tok, [&mid.0], [tail])[0];
        }
        let mut out = [[0u8; 32]];
        self.hash_tails(mid, core::slice::from_ref(tail), &mut out);
        out[0]
    }

    /// SHA-256d of an 80-byte header and the [`Midstate`] of its first 64 bytes (for a
    /// cache: the next header with the same first 64 bytes hashes only its tail).
    pub fn hash_header_with_midstate(&self, header: &[u8; 80]) -> ([u8; 32], Midstate) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            let (h, m) = shani::header_and_mid(tok, header);
            return (h, Midstate(m));
        }
        let mid = Midstate::of_header(header);
        (self.hash_tail(&mid, &Midstate::tail_of(header)), mid)
    }

    /// SHA-256d of the header `template` with `version` (bytes 0..4), `ntime` (68..72) and
    /// `nonce` (76..80) put in, little-endian as in the header: a share's header from its
    /// job's template, without writing the fields into a copy first. With `want_midstate`,
    /// also the [`Midstate`] of the first 64 bytes.
    #[inline]
    pub fn hash_header_fields(
        &self,
        template: &[u8; 80],
        version: u32,
        ntime: u32,
        nonce: u32,
        want_midstate: bool,
    ) -> ([u8; 32], Option<Midstate>) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            let (h, m) = shani::header_fields(tok, template, version, ntime, nonce, want_midstate);
            return (h, want_midstate.then_some(Midstate(m)));
        }
        let header = with_fields(template, version, ntime, nonce);
        if want_midstate {
            let (h, m) = self.hash_header_with_midstate(&header);
            (h, Some(m))
        } else {
            (self.hash_header(&header), None)
        }
    }

    /// SHA-256d of the header whose first 64 bytes left `mid` and whose last 16 bytes are
    /// those of `template` with `ntime` and `nonce` put in (see
    /// [`hash_header_fields`](Self::hash_header_fields)).
    #[inline]
    pub fn hash_tail_fields(
        &self,
        mid: &Midstate,
        template: &[u8; 80],
        ntime: u32,
        nonce: u32,
    ) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::tail_fields(tok, &mid.0, template, ntime, nonce);
        }
        let header = with_fields(template, 0, ntime, nonce);
        self.hash_tail(mid, &Midstate::tail_of(&header))
    }

    /// SHA-256d of one 64-byte message (a merkle node: two hashes side by side).
    pub fn sha256d_64(&self, msg: &[u8; 64]) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::sha256d_64::<1>(tok, [msg])[0];
        }
        let mut s = IV;
        self.engine.compress_block(&mut s, msg);
        self.engine.compress_block(&mut s, &pad_block(msg, 1));
        self.engine.finish_state(&s)
    }

    /// SHA-256d of a message whose first `consumed` bytes (a multiple of 64) left the first
    /// SHA-256 in `state` and whose remaining bytes are the concatenation of `rest`.
    fn resume(&self, state: &[u32; 8], consumed: usize, rest: &[&[u8]]) -> [u8; 32] {
        debug_assert_eq!(consumed % 64, 0);
        let total = consumed + rest.iter().map(|r| r.len()).sum::<usize>();
        let mut s = *state;
        let mut buf = [[0u8; 64]; REST_BLOCKS];
        let mut fill = 0; // bytes in `buf`
        let flat_len = 64 * REST_BLOCKS;
        for part in rest {
            let mut part: &[u8] = part;
            while !part.is_empty() {
                let n = part.len().min(flat_len - fill);
                buf.as_flattened_mut()[fill..fill + n].copy_from_slice(&part[..n]);
                fill += n;
                part = &part[n..];
                if fill == flat_len {
                    for b in &buf {
                        self.engine.compress_block(&mut s, b);
                    }
                    fill = 0;
                }
            }
        }
        // padding: 0x80, zeros, the bit length in the last 8 bytes of the last block
        let pad_len = (fill + 9).div_ceil(64) * 64;
        let mut tail = [[0u8; 64]; 2];
        let flat = tail.as_flattened_mut();
        let whole = fill / 64;
        let part_len = fill % 64;
        flat[..part_len].copy_from_slice(&buf.as_flattened()[64 * whole..fill]);
        flat[part_len] = 0x80;
        let tail_blocks = (pad_len - 64 * whole) / 64;
        let bits = (total as u64).wrapping_mul(8);
        flat[64 * tail_blocks - 8..64 * tail_blocks].copy_from_slice(&bits.to_be_bytes());
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            for b in &buf[..whole] {
                self.engine.compress_block(&mut s, b);
            }
            return shani::resume(tok, &s, &tail[..tail_blocks]);
        }
        for b in buf[..whole].iter().chain(&tail[..tail_blocks]) {
            self.engine.compress_block(&mut s, b);
        }
        self.engine.finish_state(&s)
    }

    ///
    /// # Panics
    ///
    /// If `out.len() != headers.len()`.
    pub fn hash_headers(&self, headers: &[[u8; 80]], out: &mut [[u8; 32]]) {
        assert_eq!(headers.len(), out.len(), "one output per header");
        let k = self.split(headers.len());
        let (h0, h1) = headers.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.headers(h0, o0);
        if let Some(small) = self.small {
            small.headers(h1, o1);
        }
    }

    /// SHA-256d of the headers sharing midstate `mid` whose last 16 bytes are `tails`.
    ///
    /// # Panics
    ///
    /// If `out.len() != tails.len()`.
    pub fn hash_tails(&self, mid: &Midstate, tails: &[[u8; 16]], out: &mut [[u8; 32]]) {
        assert_eq!(tails.len(), out.len(), "one output per tail");
        let k = self.split(tails.len());
        let (t0, t1) = tails.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.tails(|i| (&mid.0, &t0[i]), true, o0);
        if let Some(small) = self.small {
            small.tails(|i| (&mid.0, &t1[i]), true, o1);
        }
    }

    /// SHA-256d of headers given as (midstate, last 16 bytes), each with its own midstate
    /// (shares of different channels, jobs or versions).
    ///
    /// # Panics
    ///
    /// If `out.len() != items.len()`.
    pub fn hash_tail_pairs(&self, items: &[(Midstate, [u8; 16])], out: &mut [[u8; 32]]) {
        assert_eq!(items.len(), out.len(), "one output per item");
        let k = self.split(items.len());
        let (i0, i1) = items.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.tails(|i| (&i0[i].0 .0, &i0[i].1), false, o0);
        if let Some(small) = self.small {
            small.tails(|i| (&i1[i].0 .0, &i1[i].1), false, o1);
        }
    }

    /// Pushes to `hits` the index of every header whose SHA-256d meets `target` (a 256-bit
    /// little-endian number; see [`meets_target`]). Does not clear `hits` and does not
    /// allocate unless `hits` must grow.
    pub fn check_headers(&self, headers: &[[u8; 80]], target: &[u8; 32], hits: &mut Vec<usize>) {
        const CHUNK: usize = 64;
        let mut buf = [[0u8; 32]; CHUNK];
        for (c, h) in headers.chunks(CHUNK).enumerate() {
            let out = &mut buf[..h.len()];
            self.hash_headers(h, out);
            for (i, hash) in out.iter().enumerate() {
                if meets_target(hash, target) {
                    hits.push(c * CHUNK + i);
                }
            }
        }
    }

    /// SHA-256d of each input into `out`; all inputs must have the same length (merkle nodes
    /// of 64 bytes, coinbases of one template across shares, ...).
    ///
    /// # Panics
    ///
    /// If `out.len() != inputs.len()` or the inputs differ in length.
    pub fn sha256d_many(&self, inputs: &[&[u8]], out: &mut [[u8; 32]]) {
        assert_eq!(inputs.len(), out.len(), "one output per input");
        let Some(first) = inputs.first() else {
            return;
        };
        let len = first.len();
        assert!(
            inputs.iter().all(|m| m.len() == len),
            "sha256d_many needs inputs of equal length"
        );
        let k = self.split(inputs.len());
        let (i0, i1) = inputs.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.many(i0, None, len, o0);
        if let Some(small) = self.small {
            small.many(i1, None, len, o1);
        }
    }

    /// SHA-256d of each 64-byte message into `out` (merkle nodes, many at once; the constant
    /// padding block is not rebuilt per message).
    ///
    /// # Panics
    ///
    /// If `out.len() != msgs.len()`.
    pub fn sha256d_64_many(&self, msgs: &[[u8; 64]], out: &mut [[u8; 32]]) {
        assert_eq!(msgs.len(), out.len(), "one output per message");
        let k = self.split(msgs.len());
        let (m0, m1) = msgs.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.many64(m0, o0);
        if let Some(small) = self.small {
            small.many64(m1, o1);
        }
    }

    /// SHA-256d of messages that share a start: message `i` is the start that left
    /// `mids[i]` followed by `rests[i]` (see [`PrefixMidstate::sha256d_rest`]), hashed in
    /// SIMD lanes. Every midstate must cover the same number of bytes and every rest have
    /// the same length (shares of one coinbase prefix).
    ///
    /// # Panics
    ///
    /// If the lengths of `mids`, `rests` and `out` differ, or the midstates or the rests
    /// differ in length.
    pub fn sha256d_rest_many(
        &self,
        mids: &[PrefixMidstate],
        rests: &[&[u8]],
        out: &mut [[u8; 32]],
    ) {
        assert_eq!(mids.len(), rests.len(), "one midstate per message");
        assert_eq!(rests.len(), out.len(), "one output per message");
        let (Some(m0), Some(r0)) = (mids.first(), rests.first()) else {
            return;
        };
        let (consumed, len) = (m0.consumed, r0.len());
        assert!(
            mids.iter().all(|m| m.consumed == consumed) && rests.iter().all(|r| r.len() == len),
            "sha256d_rest_many needs midstates and rests of equal lengths"
        );
        const CHUNK: usize = 64;
        let mut states = [[0u32; 8]; CHUNK];
        for ((m, r), o) in mids
            .chunks(CHUNK)
            .zip(rests.chunks(CHUNK))
            .zip(out.chunks_mut(CHUNK))
        {
            for (s, m) in states.iter_mut().zip(m) {
                *s = m.state.0;
            }
            let states = &states[..m.len()];
            let k = self.split(r.len());
            let (r0, r1) = r.split_at(k);
            let (s0, s1) = states.split_at(k);
            let (o0, o1) = o.split_at_mut(k);
            self.engine.many(r0, Some((s0, consumed)), len, o0);
            if let Some(small) = self.small {
                small.many(r1, Some((s1, consumed)), len, o1);
            }
        }
    }
}

/// Batch backends from fastest to slowest, as measured on AMD EPYC (see the module docs).
const BATCH_PREFERENCE: [Backend; 4] = [
    Backend::Avx512,
    Backend::ShaNi,
    Backend::Avx2,
    Backend::Portable,
];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn bytes<const N: usize>(seed: &mut u64) -> [u8; N] {
        let mut b = [0u8; N];
        for x in &mut b {
            *x = rng(seed) as u8;
        }
        b
    }

    #[test]
    fn portable_matches_sha2_across_padding_boundaries() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                portable::sha256d(&data[..len]),
                sha256d(&data[..len]),
                "len {len}"
            );
        }
    }

    #[test]
    fn every_backend_matches_portable() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let headers: Vec<[u8; 80]> = (0..37).map(|_| bytes(&mut seed)).collect();
        let want: Vec<[u8; 32]> = headers.iter().map(|h| portable::sha256d(h)).collect();
        for b in Backend::available() {
            let h = Hasher::with_backend(b).expect("available");
            let mut out = vec![[0u8; 32]; headers.len()];
            h.hash_headers(&headers, &mut out);
            assert_eq!(out, want, "{b} headers");
            let pairs: Vec<(Midstate, [u8; 16])> = headers
                .iter()
                .map(|h| (Midstate::of_header(h), Midstate::tail_of(h)))
                .collect();
            h.hash_tail_pairs(&pairs, &mut out);
            assert_eq!(out, want, "{b} pairs");
            for (p, w) in pairs.iter().zip(&want) {
                assert_eq!(&h.hash_tail(&p.0, &p.1), w, "{b} single tail");
            }
            let inputs: Vec<&[u8]> = headers.iter().map(|h| &h[..]).collect();
            h.sha256d_many(&inputs, &mut out);
            assert_eq!(out, want, "{b} many");
        }
    }

    #[test]
    fn header_with_midstate_and_64_byte_messages_match_portable() {
        let mut seed = 0x1234_5678_9abc_def1;
        for _ in 0..50 {
            let h: [u8; 80] = bytes(&mut seed);
            let m: [u8; 64] = bytes(&mut seed);
            for b in Backend::available() {
                let hs = Hasher::with_backend(b).expect("available");
                let (hash, mid) = hs.hash_header_with_midstate(&h);
                assert_eq!(hash, portable::sha256d(&h), "{b}");
                assert_eq!(mid, Midstate::of_header(&h), "{b}");
                assert_eq!(hs.hash_tail(&mid, &Midstate::tail_of(&h)), hash, "{b}");
                assert_eq!(hs.sha256d_64(&m), portable::sha256d(&m), "{b}");
            }
            assert_eq!(hash_header_with_midstate(&h).0, hash_header(&h));
            assert_eq!(sha256d_64(&m), sha256d(&m));
        }
    }

    #[test]
    fn resumed_hash_matches_portable_for_every_split() {
        let data: Vec<u8> = (0..1300u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in (0..300).chain([511, 512, 513, 575, 576, 577, 1024, 1299]) {
            let msg = &data[..len];
            let want = portable::sha256d(msg);
            for prefix_len in [0, 1, 63, 64, 65, 127, 128, 200, 299] {
                let prefix_len = prefix_len.min(len);
                let pm = PrefixMidstate::new(&msg[..prefix_len]);
                assert_eq!(pm.consumed(), prefix_len / 64 * 64);
                let rest = &msg[pm.consumed()..];
                // the rest in one piece, and cut in three
                assert_eq!(
                    pm.sha256d_rest(&[rest]),
                    want,
                    "len {len} prefix {prefix_len}"
                );
                let (a, bc) = rest.split_at(rest.len() / 3);
                let (b, c) = bc.split_at(bc.len() / 2);
                assert_eq!(pm.sha256d_rest(&[a, b, c]), want, "len {len} cut");
                for bk in Backend::available() {
                    let h = Hasher::with_backend(bk).expect("available");
                    let s = pm.midstate().words();
                    assert_eq!(h.resume(&s, pm.consumed(), &[rest]), want, "{bk} len {len}");
                }
            }
        }
    }

    #[test]
    fn header_fields_match_the_assembled_header() {
        let mut seed = 99;
        for _ in 0..50 {
            let template: [u8; 80] = bytes(&mut seed);
            let (v, t, n) = (
                rng(&mut seed) as u32,
                rng(&mut seed) as u32,
                rng(&mut seed) as u32,
            );
            let header = with_fields(&template, v, t, n);
            let want = portable::sha256d(&header);
            for b in Backend::available() {
                let h = Hasher::with_backend(b).expect("available");
                let (hash, mid) = h.hash_header_fields(&template, v, t, n, true);
                assert_eq!(hash, want, "{b}");
                let mid = mid.expect("asked for");
                assert_eq!(mid, Midstate::of_header(&header), "{b}");
                assert_eq!(
                    h.hash_header_fields(&template, v, t, n, false),
                    (want, None)
                );
                // the tail path reads only bytes 64.. of the template
                let mut other = template;
                other[..64].fill(0);
                assert_eq!(h.hash_tail_fields(&mid, &other, t, n), want, "{b} tail");
            }
            assert_eq!(hash_header_fields(&template, v, t, n, false).0, want);
            let mid = Midstate::of_header(&header);
            assert_eq!(hash_tail_fields(&mid, &template, t, n), want);
        }
    }

    #[test]
    fn batches_of_64_byte_messages_match_portable() {
        let mut seed = 77;
        for n in [0usize, 1, 3, 4, 5, 16, 17, 37, 100] {
            let msgs: Vec<[u8; 64]> = (0..n).map(|_| bytes(&mut seed)).collect();
            let want: Vec<[u8; 32]> = msgs.iter().map(|m| portable::sha256d(m)).collect();
            let mut out = vec![[0u8; 32]; n];
            Hasher::new().sha256d_64_many(&msgs, &mut out);
            assert_eq!(out, want, "best, {n}");
            for b in Backend::available() {
                let h = Hasher::with_backend(b).expect("available");
                let mut out = vec![[0u8; 32]; n];
                h.sha256d_64_many(&msgs, &mut out);
                assert_eq!(out, want, "{b}, {n}");
            }
        }
    }

    #[test]
    fn resumed_batches_match_portable_on_every_backend() {
        let mut seed = 0xfeed_beef_u64;
        for prefix_len in [0usize, 10, 64, 100, 130] {
            for rest_len in [0usize, 1, 20, 55, 56, 64, 119, 200] {
                // 37 messages: full SIMD steps and a remainder
                let msgs: Vec<Vec<u8>> = (0..37)
                    .map(|i| {
                        // two different prefixes, so the lanes carry different midstates
                        let mut m = vec![(i % 2) as u8; prefix_len];
                        m.extend((0..rest_len).map(|_| rng(&mut seed) as u8));
                        m
                    })
                    .collect();
                let want: Vec<[u8; 32]> = msgs.iter().map(|m| portable::sha256d(m)).collect();
                let mids: Vec<PrefixMidstate> = msgs
                    .iter()
                    .map(|m| PrefixMidstate::new(&m[..prefix_len]))
                    .collect();
                let rests: Vec<&[u8]> = msgs
                    .iter()
                    .zip(&mids)
                    .map(|(m, p)| &m[p.consumed()..])
                    .collect();
                let mut best = vec![[0u8; 32]; msgs.len()];
                Hasher::new().sha256d_rest_many(&mids, &rests, &mut best);
                assert_eq!(best, want, "best prefix {prefix_len} rest {rest_len}");
                for b in Backend::available() {
                    let h = Hasher::with_backend(b).expect("available");
                    let mut out = vec![[0u8; 32]; msgs.len()];
                    h.sha256d_rest_many(&mids, &rests, &mut out);
                    assert_eq!(out, want, "{b} prefix {prefix_len} rest {rest_len}");
                }
            }
        }
    }

    #[test]
    fn midstate_matches_portable() {
        let mut seed = 42;
        let block: [u8; 64] = bytes(&mut seed);
        let mut s = IV;
        portable::compress_block(&mut s, &block);
        assert_eq!(Midstate::new(&block).words(), s);
    }

    #[test]
    fn target_comparison_is_little_endian() {
        let mut t = [0u8; 32];
        t[31] = 1;
        let mut h = [0xffu8; 32];
        h[31] = 0;
        assert!(meets_target(&h, &t));
        h[31] = 1;
        assert!(!meets_target(&h, &t));
        assert!(meets_target(&t, &t));
    }
}
