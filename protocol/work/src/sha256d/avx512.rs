//! 16-lane multi-buffer SHA-256 with AVX-512F (`vprord` rotates, `vpternlogd` for the
//! three-input boolean functions). See `lanes.rs` for the shared round code.
#![allow(unsafe_code)]
// The AVX-512 intrinsics and `target_feature(enable = "avx512f")` are stable since Rust 1.89,
// the workspace's `rust-version`.

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use super::{IV, K};

type V = __m512i;
/// Lanes per vector.
pub(super) const L: usize = 16;

/// Proof that the running CPU has AVX-512F.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token(());

impl Token {
    pub(super) fn new() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx512f").then_some(Token(()))
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add(a: V, b: V) -> V {
    _mm512_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn splat(x: u32) -> V {
    _mm512_set1_epi32(x as i32)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn bsig0(x: V) -> V {
    _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<2>(x),
        _mm512_ror_epi32::<13>(x),
        _mm512_ror_epi32::<22>(x),
    )
}

#[inline]
#[target_feature(enable = "avx512f")]
fn bsig1(x: V) -> V {
    _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<6>(x),
        _mm512_ror_epi32::<11>(x),
        _mm512_ror_epi32::<25>(x),
    )
}

#[inline]
#[target_feature(enable = "avx512f")]
fn ssig0(x: V) -> V {
    _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<7>(x),
        _mm512_ror_epi32::<18>(x),
        _mm512_srli_epi32::<3>(x),
    )
}

#[inline]
#[target_feature(enable = "avx512f")]
fn ssig1(x: V) -> V {
    _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<17>(x),
        _mm512_ror_epi32::<19>(x),
        _mm512_srli_epi32::<10>(x),
    )
}

/// `(e & f) ^ (!e & g)`, i.e. `e ? f : g`.
#[inline]
#[target_feature(enable = "avx512f")]
fn ch(e: V, f: V, g: V) -> V {
    _mm512_ternarylogic_epi32::<0xCA>(e, f, g)
}

/// Majority of three.
#[inline]
#[target_feature(enable = "avx512f")]
fn maj(a: V, b: V, c: V) -> V {
    _mm512_ternarylogic_epi32::<0xE8>(a, b, c)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load(x: &[u32; L]) -> V {
    // SAFETY: `x` is 64 readable bytes; the load has no alignment requirement.
    unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store(x: &mut [u32; L], v: V) {
    // SAFETY: `x` is 64 writable bytes; the store has no alignment requirement.
    unsafe { _mm512_storeu_si512(x.as_mut_ptr().cast(), v) }
}

lane_kernels!("avx512f");
