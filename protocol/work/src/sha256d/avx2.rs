//! 8-lane multi-buffer SHA-256 with AVX2. See `lanes.rs` for the shared round code.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use super::{IV, K};

type V = __m256i;
/// Lanes per vector.
pub(super) const L: usize = 8;

/// Proof that the running CPU has AVX2.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token(());

impl Token {
    pub(super) fn new() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx2").then_some(Token(()))
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn add(a: V, b: V) -> V {
    _mm256_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor(a: V, b: V) -> V {
    _mm256_xor_si256(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn splat(x: u32) -> V {
    _mm256_set1_epi32(x as i32)
}

/// Rotate right by `R`; `S` must be `32 - R`.
#[inline]
#[target_feature(enable = "avx2")]
fn ror<const R: i32, const S: i32>(x: V) -> V {
    _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<S>(x))
}

#[inline]
#[target_feature(enable = "avx2")]
fn bsig0(x: V) -> V {
    xor(xor(ror::<2, 30>(x), ror::<13, 19>(x)), ror::<22, 10>(x))
}

#[inline]
#[target_feature(enable = "avx2")]
fn bsig1(x: V) -> V {
    xor(xor(ror::<6, 26>(x), ror::<11, 21>(x)), ror::<25, 7>(x))
}

#[inline]
#[target_feature(enable = "avx2")]
fn ssig0(x: V) -> V {
    xor(
        xor(ror::<7, 25>(x), ror::<18, 14>(x)),
        _mm256_srli_epi32::<3>(x),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn ssig1(x: V) -> V {
    xor(
        xor(ror::<17, 15>(x), ror::<19, 13>(x)),
        _mm256_srli_epi32::<10>(x),
    )
}

/// `(e & f) ^ (!e & g)` as `g ^ (e & (f ^ g))`.
#[inline]
#[target_feature(enable = "avx2")]
fn ch(e: V, f: V, g: V) -> V {
    xor(g, _mm256_and_si256(e, xor(f, g)))
}

/// Majority of three as `b ^ ((a ^ b) & (b ^ c))`.
#[inline]
#[target_feature(enable = "avx2")]
fn maj(a: V, b: V, c: V) -> V {
    xor(b, _mm256_and_si256(xor(a, b), xor(b, c)))
}

#[inline]
#[target_feature(enable = "avx2")]
fn load(x: &[u32; L]) -> V {
    // SAFETY: `x` is 32 readable bytes; the load has no alignment requirement.
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store(x: &mut [u32; L], v: V) {
    // SAFETY: `x` is 32 writable bytes; the store has no alignment requirement.
    unsafe { _mm256_storeu_si256(x.as_mut_ptr().cast(), v) }
}

lane_kernels!("avx2");
