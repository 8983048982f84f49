//! Portable (scalar) SHA-256 compression and the SHA-256d pipelines built on it.
//!
//! This is the reference every SIMD backend is tested against, and the fallback on CPUs
//! without SHA-NI, AVX2 or AVX-512.

use super::{IV, K};

type V = u32;

#[inline(always)]
fn add(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}

#[inline(always)]
fn splat(x: u32) -> u32 {
    x
}

#[inline(always)]
fn bsig0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}

#[inline(always)]
fn bsig1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

#[inline(always)]
fn ssig0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

#[inline(always)]
fn ssig1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

#[inline(always)]
fn ch(e: u32, f: u32, g: u32) -> u32 {
    g ^ (e & (f ^ g))
}

#[inline(always)]
fn maj(a: u32, b: u32, c: u32) -> u32 {
    (a & b) | (c & (a | b))
}

/// One SHA-256 compression of the 16 big-endian message words `w` into `state`; the rounds
/// are the same macro the SIMD lane backends use, with `u32` as the "vector".
#[inline]
pub(super) fn compress_words(state: &mut [u32; 8], w: &[u32; 16]) {
    lane_compress!(state, *w);
}

/// One SHA-256 compression of a 64-byte block into `state`.
#[inline]
pub(super) fn compress_block(state: &mut [u32; 8], block: &[u8; 64]) {
    compress_words(state, &be_words(block));
}

/// The 16 big-endian words of a 64-byte block.
#[inline]
pub(super) fn be_words(block: &[u8; 64]) -> [u32; 16] {
    let mut w = [0u32; 16];
    for (w, c) in w.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

/// Digest bytes (big-endian words) of a final SHA-256 state.
#[inline]
pub(super) fn digest_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&s.to_be_bytes());
    }
    out
}

/// The second SHA-256 of SHA-256d: the hash of the 32-byte digest held in `state`.
#[inline]
pub(super) fn finish(state: &[u32; 8]) -> [u8; 32] {
    let mut w = [0u32; 16];
    w[..8].copy_from_slice(state);
    w[8] = 0x8000_0000;
    w[15] = 256;
    let mut s = IV;
    compress_words(&mut s, &w);
    digest_bytes(&s)
}

/// SHA-256d of an 80-byte message whose first 64 bytes left `mid`; `tail` is bytes 64..80.
#[inline]
pub(super) fn hash_tail(mid: &[u32; 8], tail: &[u8; 16]) -> [u8; 32] {
    let mut w = [0u32; 16];
    for (w, c) in w.iter_mut().zip(tail.chunks_exact(4)) {
        *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    w[4] = 0x8000_0000;
    w[15] = 640;
    let mut s = *mid;
    compress_words(&mut s, &w);
    finish(&s)
}

/// SHA-256d of any message, block by block (used to test the padding helper).
#[cfg(test)]
pub(super) fn sha256d(data: &[u8]) -> [u8; 32] {
    let mut s = IV;
    let blocks = super::block_count(data.len());
    for b in 0..blocks {
        compress_block(&mut s, &super::pad_block(data, b));
    }
    finish(&s)
}
