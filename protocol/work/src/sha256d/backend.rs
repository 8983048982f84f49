//! The backends: [`Backend`] (what a caller names) and `Engine` (a backend with the proof
//! that the CPU has it), and how each engine spreads a batch over its lanes or streams.

use std::fmt;

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
use super::{avx2, avx512, be_u32, shani, SHANI_WAYS};
use super::{block_count, pad_block, pad_block_at, portable, IV};

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
pub(super) enum Engine {
    Portable,
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    ShaNi(shani::Token),
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    Avx2(avx2::Token),
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    Avx512(avx512::Token),
}

impl Engine {
    pub(super) fn new(backend: Backend) -> Option<Self> {
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

    pub(super) fn backend(self) -> Backend {
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

    pub(super) fn compress_block(self, state: &mut [u32; 8], block: &[u8; 64]) {
        match self {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(t) => {
                shani::compress_blocks::<1>(t, core::array::from_mut(state), [block])
            }
            _ => portable::compress_block(state, block),
        }
    }

    /// The second SHA-256 of SHA-256d for a first-hash state.
    pub(super) fn finish_state(self, state: &[u32; 8]) -> [u8; 32] {
        match self {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Engine::ShaNi(t) => shani::finish_states::<1>(t, [state])[0],
            _ => portable::finish(state),
        }
    }

    /// SHA-256d of `out.len()` 80-byte messages given as (midstate, tail) by `item`.
    /// `same_mid` promises that every item has the midstate of item 0.
    pub(super) fn tails<'a>(
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

    pub(super) fn headers(self, headers: &[[u8; 80]], out: &mut [[u8; 32]]) {
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
    pub(super) fn many64(self, msgs: &[[u8; 64]], out: &mut [[u8; 32]]) {
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
    pub(super) fn many(
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
