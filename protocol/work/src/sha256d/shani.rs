//! SHA-256 with the x86 SHA extensions (`sha256rnds2`, `sha256msg1`, `sha256msg2`).
//!
//! `sha256rnds2` has a latency of several cycles and every round depends on the previous one,
//! so a single message leaves most of the unit idle. The compression here is generic over the
//! number `N` of independent messages processed in lock-step: each instruction of the round
//! sequence is issued for all `N` messages before the next one, which lets the CPU overlap
//! them. `N = 1` is the single-stream path, `N = 4` the batch path.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use super::{IV, K};

/// Proof that the running CPU has SHA-NI (and the SSE levels the code uses).
#[derive(Clone, Copy, Debug)]
pub(super) struct Token(());

impl Token {
    pub(super) fn new() -> Option<Self> {
        let ok = std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1");
        ok.then_some(Token(()))
    }
}

/// Byte shuffle that turns four little-endian loaded words into big-endian ones.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn bswap_mask() -> __m128i {
    _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203)
}

/// `[u32; 8]` state to the (ABEF, CDGH) register pair `sha256rnds2` works on.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn to_abef(state: &[u32; 8]) -> (__m128i, __m128i) {
    let abcd = _mm_set_epi32(
        state[3] as i32,
        state[2] as i32,
        state[1] as i32,
        state[0] as i32,
    );
    let efgh = _mm_set_epi32(
        state[7] as i32,
        state[6] as i32,
        state[5] as i32,
        state[4] as i32,
    );
    let cdab = _mm_shuffle_epi32::<0xB1>(abcd);
    let hgfe = _mm_shuffle_epi32::<0x1B>(efgh);
    (
        _mm_alignr_epi8::<8>(cdab, hgfe),
        _mm_blend_epi16::<0xF0>(hgfe, cdab),
    )
}

/// (ABEF, CDGH) back to the words in order: (`[a, b, c, d]`, `[e, f, g, h]`), lane 0 first.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn from_abef(abef: __m128i, cdgh: __m128i) -> (__m128i, __m128i) {
    let feba = _mm_shuffle_epi32::<0x1B>(abef);
    let dchg = _mm_shuffle_epi32::<0xB1>(cdgh);
    (
        _mm_blend_epi16::<0xF0>(feba, dchg),
        _mm_alignr_epi8::<8>(dchg, feba),
    )
}

#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn k4(i: usize) -> __m128i {
    _mm_set_epi32(
        K[4 * i + 3] as i32,
        K[4 * i + 2] as i32,
        K[4 * i + 1] as i32,
        K[4 * i] as i32,
    )
}

/// `N` interleaved compressions. `$w` (`[[__m128i; 4]; N]`) holds message `n`'s 16 words,
/// four per register, lane 0 = lowest index, already big-endian decoded; `$abef`/`$cdgh` are
/// `&mut [__m128i; N]`. The feed-forward is included. A macro so that it is always inlined
/// (`#[inline(always)]` cannot be combined with `#[target_feature]`) and constant padding
/// words fold into the round constants.
macro_rules! compress {
    ($abef:expr, $cdgh:expr, $w:expr) => {{
        let abef: &mut [__m128i; N] = $abef;
        let cdgh: &mut [__m128i; N] = $cdgh;
        let mut w: [[__m128i; 4]; N] = $w;
        let abef0 = *abef;
        let cdgh0 = *cdgh;
        // Four rounds; fully unrolled by the macro so every index below is a constant.
        macro_rules! round4 {
            ($i:expr) => {{
                let i: usize = $i;
                let k = k4(i);
                let mut m = [_mm_setzero_si128(); N];
                for n in 0..N {
                    if i >= 4 {
                        // w[i] = msg2(msg1(w[i-4], w[i-3]) + alignr(w[i-1], w[i-2], 4), w[i-1])
                        let w0 = w[n][i & 3];
                        let w1 = w[n][(i + 1) & 3];
                        let w2 = w[n][(i + 2) & 3];
                        let w3 = w[n][(i + 3) & 3];
                        let t = _mm_add_epi32(
                            _mm_sha256msg1_epu32(w0, w1),
                            _mm_alignr_epi8::<4>(w3, w2),
                        );
                        w[n][i & 3] = _mm_sha256msg2_epu32(t, w3);
                    }
                    m[n] = _mm_add_epi32(w[n][i & 3], k);
                }
                for n in 0..N {
                    cdgh[n] = _mm_sha256rnds2_epu32(cdgh[n], abef[n], m[n]);
                }
                for n in 0..N {
                    m[n] = _mm_shuffle_epi32::<0x0E>(m[n]);
                }
                for n in 0..N {
                    abef[n] = _mm_sha256rnds2_epu32(abef[n], cdgh[n], m[n]);
                }
            }};
        }
        round4!(0);
        round4!(1);
        round4!(2);
        round4!(3);
        round4!(4);
        round4!(5);
        round4!(6);
        round4!(7);
        round4!(8);
        round4!(9);
        round4!(10);
        round4!(11);
        round4!(12);
        round4!(13);
        round4!(14);
        round4!(15);
        for n in 0..N {
            abef[n] = _mm_add_epi32(abef[n], abef0[n]);
            cdgh[n] = _mm_add_epi32(cdgh[n], cdgh0[n]);
        }
    }};
}

/// Message words of the block that hashes a 32-byte digest (`[a..d]`, `[e..h]` in order).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn digest_block(abcd: __m128i, efgh: __m128i) -> [__m128i; 4] {
    [
        abcd,
        efgh,
        _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32),
        _mm_set_epi32(256, 0, 0, 0),
    ]
}

/// Second SHA-256 of the digests in `abef`/`cdgh`; returns the final digest bytes.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn finish<const N: usize>(abef: [__m128i; N], cdgh: [__m128i; N]) -> [[u8; 32]; N] {
    let (iv_abef, iv_cdgh) = to_abef(&IV);
    let mut w = [[_mm_setzero_si128(); 4]; N];
    for n in 0..N {
        let (abcd, efgh) = from_abef(abef[n], cdgh[n]);
        w[n] = digest_block(abcd, efgh);
    }
    let mut s0 = [iv_abef; N];
    let mut s1 = [iv_cdgh; N];
    compress!(&mut s0, &mut s1, w);
    let mask = bswap_mask();
    let mut out = [[0u8; 32]; N];
    for n in 0..N {
        let (abcd, efgh) = from_abef(s0[n], s1[n]);
        let lo = _mm_shuffle_epi8(abcd, mask);
        let hi = _mm_shuffle_epi8(efgh, mask);
        // SAFETY: `out[n]` is 32 writable bytes; both stores are unaligned 16-byte stores
        // into its two halves.
        unsafe {
            _mm_storeu_si128(out[n].as_mut_ptr().cast(), lo);
            _mm_storeu_si128(out[n].as_mut_ptr().add(16).cast(), hi);
        }
    }
    out
}

/// Loads 16 bytes as four big-endian words.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn load16(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: `bytes` is 16 readable bytes and `_mm_loadu_si128` has no alignment requirement.
    let v = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
    _mm_shuffle_epi8(v, bswap_mask())
}

/// Block of an 80-byte message that starts with its last 16 bytes, padded.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn tail_block(tail: &[u8; 16]) -> [__m128i; 4] {
    [
        load16(tail),
        _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32),
        _mm_setzero_si128(),
        _mm_set_epi32(640, 0, 0, 0),
    ]
}

#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn block_words(block: &[u8; 64]) -> [__m128i; 4] {
    let mut w = [_mm_setzero_si128(); 4];
    for (j, w) in w.iter_mut().enumerate() {
        let mut b = [0u8; 16];
        b.copy_from_slice(&block[16 * j..16 * j + 16]);
        *w = load16(&b);
    }
    w
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn tails_impl<const N: usize>(mids: [&[u32; 8]; N], tails: [&[u8; 16]; N]) -> [[u8; 32]; N] {
    let mut abef = [_mm_setzero_si128(); N];
    let mut cdgh = [_mm_setzero_si128(); N];
    let mut w = [[_mm_setzero_si128(); 4]; N];
    for n in 0..N {
        (abef[n], cdgh[n]) = to_abef(mids[n]);
        w[n] = tail_block(tails[n]);
    }
    compress!(&mut abef, &mut cdgh, w);
    finish(abef, cdgh)
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn headers_impl<const N: usize>(headers: [&[u8; 80]; N]) -> [[u8; 32]; N] {
    let (iv_abef, iv_cdgh) = to_abef(&IV);
    let mut abef = [iv_abef; N];
    let mut cdgh = [iv_cdgh; N];
    let mut w = [[_mm_setzero_si128(); 4]; N];
    for n in 0..N {
        let (first, _) = headers[n].split_at(64);
        w[n] = block_words(first.try_into().expect("64 bytes"));
    }
    compress!(&mut abef, &mut cdgh, w);
    for n in 0..N {
        let (_, tail) = headers[n].split_at(64);
        w[n] = tail_block(tail.try_into().expect("16 bytes"));
    }
    compress!(&mut abef, &mut cdgh, w);
    finish(abef, cdgh)
}

/// Padding block of a 64-byte message (`0x80`, zeros, bit length 512).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn pad64_block() -> [__m128i; 4] {
    [
        _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32),
        _mm_setzero_si128(),
        _mm_setzero_si128(),
        _mm_set_epi32(512, 0, 0, 0),
    ]
}

/// The state words (`[a..h]`) of (ABEF, CDGH).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn state_words(abef: __m128i, cdgh: __m128i) -> [u32; 8] {
    let (abcd, efgh) = from_abef(abef, cdgh);
    let mut words = [0u32; 8];
    // SAFETY: `words` is 32 writable bytes; two unaligned 16-byte stores fill it.
    unsafe {
        _mm_storeu_si128(words.as_mut_ptr().cast(), abcd);
        _mm_storeu_si128(words.as_mut_ptr().add(4).cast(), efgh);
    }
    words
}

/// The two blocks of the header `template` with `version`, `ntime` and `nonce` put in, in
/// registers: the template is loaded as it is (no store of the fields to memory that a
/// 16-byte load would then straddle, which stalls store-to-load forwarding).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn header_blocks(
    template: &[u8; 80],
    version: u32,
    ntime: u32,
    nonce: u32,
) -> ([__m128i; 4], [__m128i; 4]) {
    let (first, tail) = template.split_at(64);
    let mut w = block_words(first.try_into().expect("64 bytes"));
    // words are big-endian decoded; the fields are little-endian in the header
    w[0] = _mm_insert_epi32::<0>(w[0], version.swap_bytes() as i32);
    let mut t = tail_block(tail.try_into().expect("16 bytes"));
    t[0] = _mm_insert_epi32::<1>(t[0], ntime.swap_bytes() as i32);
    t[0] = _mm_insert_epi32::<3>(t[0], nonce.swap_bytes() as i32);
    (w, t)
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn fields_impl(
    template: &[u8; 80],
    version: u32,
    ntime: u32,
    nonce: u32,
    want_mid: bool,
) -> ([u8; 32], [u32; 8]) {
    const N: usize = 1;
    let (iv_abef, iv_cdgh) = to_abef(&IV);
    let mut abef = [iv_abef];
    let mut cdgh = [iv_cdgh];
    let (w, t) = header_blocks(template, version, ntime, nonce);
    compress!(&mut abef, &mut cdgh, [w]);
    let mid = if want_mid {
        state_words(abef[0], cdgh[0])
    } else {
        [0; 8]
    };
    compress!(&mut abef, &mut cdgh, [t]);
    (finish(abef, cdgh)[0], mid)
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn tail_fields_impl(mid: &[u32; 8], template: &[u8; 80], ntime: u32, nonce: u32) -> [u8; 32] {
    const N: usize = 1;
    let (a, c) = to_abef(mid);
    let mut abef = [a];
    let mut cdgh = [c];
    let (_, tail) = template.split_at(64);
    let mut t = tail_block(tail.try_into().expect("16 bytes"));
    t[0] = _mm_insert_epi32::<1>(t[0], ntime.swap_bytes() as i32);
    t[0] = _mm_insert_epi32::<3>(t[0], nonce.swap_bytes() as i32);
    compress!(&mut abef, &mut cdgh, [t]);
    finish(abef, cdgh)[0]
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn header_and_mid_impl(header: &[u8; 80]) -> ([u8; 32], [u32; 8]) {
    let (iv_abef, iv_cdgh) = to_abef(&IV);
    let mut abef = [iv_abef];
    let mut cdgh = [iv_cdgh];
    let (first, tail) = header.split_at(64);
    const N: usize = 1;
    compress!(
        &mut abef,
        &mut cdgh,
        [block_words(first.try_into().expect("64 bytes"))]
    );
    let mid = state_words(abef[0], cdgh[0]);
    compress!(
        &mut abef,
        &mut cdgh,
        [tail_block(tail.try_into().expect("16 bytes"))]
    );
    (finish(abef, cdgh)[0], mid)
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn sha256d_64_impl<const N: usize>(msgs: [&[u8; 64]; N]) -> [[u8; 32]; N] {
    let (iv_abef, iv_cdgh) = to_abef(&IV);
    let mut abef = [iv_abef; N];
    let mut cdgh = [iv_cdgh; N];
    let mut w = [[_mm_setzero_si128(); 4]; N];
    for n in 0..N {
        w[n] = block_words(msgs[n]);
    }
    compress!(&mut abef, &mut cdgh, w);
    compress!(&mut abef, &mut cdgh, [pad64_block(); N]);
    finish(abef, cdgh)
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn resume_impl(state: &[u32; 8], blocks: &[[u8; 64]]) -> [u8; 32] {
    const N: usize = 1;
    let (a, c) = to_abef(state);
    let mut abef = [a];
    let mut cdgh = [c];
    for b in blocks {
        compress!(&mut abef, &mut cdgh, [block_words(b)]);
    }
    finish(abef, cdgh)[0]
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn compress_blocks_impl<const N: usize>(states: &mut [[u32; 8]; N], blocks: [&[u8; 64]; N]) {
    let mut abef = [_mm_setzero_si128(); N];
    let mut cdgh = [_mm_setzero_si128(); N];
    let mut w = [[_mm_setzero_si128(); 4]; N];
    for n in 0..N {
        (abef[n], cdgh[n]) = to_abef(&states[n]);
        w[n] = block_words(blocks[n]);
    }
    compress!(&mut abef, &mut cdgh, w);
    for n in 0..N {
        let (abcd, efgh) = from_abef(abef[n], cdgh[n]);
        let mut words = [0u32; 8];
        // SAFETY: `words` is 32 writable bytes; two unaligned 16-byte stores fill it.
        unsafe {
            _mm_storeu_si128(words.as_mut_ptr().cast(), abcd);
            _mm_storeu_si128(words.as_mut_ptr().add(4).cast(), efgh);
        }
        states[n] = words;
    }
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn finish_impl<const N: usize>(states: [&[u32; 8]; N]) -> [[u8; 32]; N] {
    let mut abef = [_mm_setzero_si128(); N];
    let mut cdgh = [_mm_setzero_si128(); N];
    for n in 0..N {
        (abef[n], cdgh[n]) = to_abef(states[n]);
    }
    finish(abef, cdgh)
}

/// SHA-256d of `N` 80-byte messages given the midstate of their first 64 bytes and their
/// last 16 bytes.
#[inline]
pub(super) fn tails<const N: usize>(
    _: Token,
    mids: [&[u32; 8]; N],
    tails: [&[u8; 16]; N],
) -> [[u8; 32]; N] {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { tails_impl(mids, tails) }
}

/// SHA-256d of `N` 80-byte headers.
#[inline]
pub(super) fn headers<const N: usize>(_: Token, headers: [&[u8; 80]; N]) -> [[u8; 32]; N] {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { headers_impl(headers) }
}

/// One compression of each of `N` blocks into its own state.
#[inline]
pub(super) fn compress_blocks<const N: usize>(
    _: Token,
    states: &mut [[u32; 8]; N],
    blocks: [&[u8; 64]; N],
) {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { compress_blocks_impl(states, blocks) }
}

/// The second SHA-256 of SHA-256d for `N` first-hash states.
#[inline]
pub(super) fn finish_states<const N: usize>(_: Token, states: [&[u32; 8]; N]) -> [[u8; 32]; N] {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { finish_impl(states) }
}

/// SHA-256d of an 80-byte header and the SHA-256 state after its first 64 bytes.
#[inline]
pub(super) fn header_and_mid(_: Token, header: &[u8; 80]) -> ([u8; 32], [u32; 8]) {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { header_and_mid_impl(header) }
}

/// SHA-256d of `N` 64-byte messages (merkle nodes).
#[inline]
pub(super) fn sha256d_64<const N: usize>(_: Token, msgs: [&[u8; 64]; N]) -> [[u8; 32]; N] {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { sha256d_64_impl(msgs) }
}

/// SHA-256d of a message whose first SHA-256 reached `state` and goes on with `blocks`
/// (already padded): the blocks are compressed in turn, the state kept in registers.
#[inline]
pub(super) fn resume(_: Token, state: &[u32; 8], blocks: &[[u8; 64]]) -> [u8; 32] {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { resume_impl(state, blocks) }
}

/// SHA-256d of the header `template` with `version`, `ntime` and `nonce` put in; with
/// `want_mid`, also the state after its first 64 bytes (else zeros).
#[inline]
pub(super) fn header_fields(
    _: Token,
    template: &[u8; 80],
    version: u32,
    ntime: u32,
    nonce: u32,
    want_mid: bool,
) -> ([u8; 32], [u32; 8]) {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { fields_impl(template, version, ntime, nonce, want_mid) }
}

/// SHA-256d of the header whose first 64 bytes left `mid` and whose last 16 are those of
/// `template` with `ntime` and `nonce` put in.
#[inline]
pub(super) fn tail_fields(
    _: Token,
    mid: &[u32; 8],
    template: &[u8; 80],
    ntime: u32,
    nonce: u32,
) -> [u8; 32] {
    // SAFETY: the token proves the CPU supports the enabled features.
    unsafe { tail_fields_impl(mid, template, ntime, nonce) }
}
