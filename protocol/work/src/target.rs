//! Targets, nBits, difficulty and hashrate.
//!
//! A [`Target`] is a 256-bit unsigned number stored as SV2 puts it on the wire: 32 bytes,
//! little-endian (the `U256` of
//! [spec 3.1](https://github.com/stratum-mining/sv2-spec/blob/main/03-Protocol-Overview.md)).
//! A share or a block is valid when its double-SHA256 header hash, read as the same kind of
//! little-endian number, is **at or below** the target ([`hash_meets`]; spec 5.3.21 and 7.7,
//! and Bitcoin Core's `CheckProofOfWork`).
//!
//! * nBits (the compact form in block headers): [`Target::from_compact`] /
//!   [`Target::to_compact`], with Bitcoin Core's `SetCompact` / `GetCompact` rules.
//! * Pool difficulty: difficulty 1 is [`Target::DIFF1`] (`0x00000000FFFF << 208`);
//!   `difficulty = DIFF1 / target` ([`Target::from_difficulty`], [`Target::difficulty`],
//!   power-of-two helpers for SV1 firmware).
//! * Hashrate: [`target_from_hashrate`] (the formula SRI uses; the spec text gives none),
//!   [`hashrate_from_target`], [`Target::work`] and [`hashrate_from_work`].

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use strata_protocol::U256;

/// Why an nBits (compact) value is not a valid target (Bitcoin Core's `SetCompact` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The sign bit (0x00800000) is set on a non-zero mantissa.
    #[error("negative compact target {bits:#010x}")]
    Negative {
        /// The nBits value.
        bits: u32,
    },
    /// The exponent shifts the mantissa past 256 bits.
    #[error("compact target {bits:#010x} overflows 256 bits")]
    Overflow {
        /// The nBits value.
        bits: u32,
    },
}

/// Why a difficulty cannot be turned into a target.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DifficultyError {
    /// The difficulty is zero, negative, NaN or infinite.
    #[error("difficulty must be finite and positive, got {difficulty}")]
    NotPositive {
        /// The rejected difficulty.
        difficulty: f64,
    },
}

/// Why a target cannot be derived from a hashrate.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HashrateError {
    /// The hashrate is negative, NaN or infinite.
    #[error("hashrate must be finite and non-negative, got {hashrate}")]
    InvalidHashrate {
        /// The rejected hashrate (h/s).
        hashrate: f64,
    },
    /// The share rate is zero, negative, NaN or infinite.
    #[error("shares per minute must be finite and positive, got {shares_per_minute}")]
    InvalidShareRate {
        /// The rejected share rate.
        shares_per_minute: f64,
    },
}

/// A 256-bit target, stored as 32 little-endian bytes (SV2's `U256`); ordered as a number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Target([u8; 32]);

impl Target {
    /// The zero target (only the all-zero hash meets it).
    pub const ZERO: Target = Target([0; 32]);
    /// The largest target, `2^256 - 1` (every hash meets it).
    pub const MAX: Target = Target([0xff; 32]);
    /// Pool difficulty 1: `0x00000000FFFF0000...0000` (big-endian), i.e. `0xFFFF << 208`.
    pub const DIFF1: Target = {
        let mut b = [0u8; 32];
        b[26] = 0xff;
        b[27] = 0xff;
        Target(b)
    };

    /// The target with these little-endian bytes (SV2 wire order).
    pub const fn from_le_bytes(bytes: [u8; 32]) -> Self {
        Target(bytes)
    }

    /// The target with these big-endian bytes (the order block explorers print).
    pub fn from_be_bytes(mut bytes: [u8; 32]) -> Self {
        bytes.reverse();
        Target(bytes)
    }

    /// The little-endian bytes (SV2 wire order).
    pub const fn to_le_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The little-endian bytes, borrowed.
    pub const fn as_le_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The big-endian bytes.
    pub fn to_be_bytes(self) -> [u8; 32] {
        let mut b = self.0;
        b.reverse();
        b
    }

    /// Whether `hash` (a SHA-256d output, little-endian as hashed) is at or below this target.
    #[inline]
    pub fn is_met_by(&self, hash: &[u8; 32]) -> bool {
        hash_meets(hash, self)
    }

    /// The target encoded by nBits, with Bitcoin Core's `SetCompact` rules: the exponent is
    /// the top byte, the mantissa the low 23 bits; a set sign bit (0x00800000) on a non-zero
    /// mantissa is [`CompactError::Negative`], a mantissa shifted past 256 bits is
    /// [`CompactError::Overflow`]. A zero mantissa gives [`Target::ZERO`] (as in Core, which
    /// only rejects it later, in `CheckProofOfWork`).
    pub fn from_compact(bits: u32) -> Result<Self, CompactError> {
        let size = bits >> 24;
        let word = bits & 0x007f_ffff;
        if word != 0 && bits & 0x0080_0000 != 0 {
            return Err(CompactError::Negative { bits });
        }
        if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
            return Err(CompactError::Overflow { bits });
        }
        let v = if size <= 3 {
            Uint::from_u64(u64::from(word >> (8 * (3 - size))))
        } else {
            Uint::from_u64(u64::from(word)).shl(8 * (size - 3))
        };
        Ok(Target(v.to_le_bytes()))
    }

    /// This target as nBits, with Bitcoin Core's `GetCompact` rules (bits below the 3-byte
    /// mantissa are dropped, so the result decodes to a target at or below this one).
    pub fn to_compact(self) -> u32 {
        let v = Uint::from_le_bytes(&self.0);
        let mut size = v.bits().div_ceil(8);
        let mut compact = if size <= 3 {
            (v.low_u64() << (8 * (3 - size))) as u32
        } else {
            v.shr(8 * (size - 3)).low_u64() as u32
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        compact | (size << 24)
    }

    /// The target of a pool difficulty: `DIFF1 / difficulty`, rounded down; difficulties
    /// below about `2.3e-10` (whose target would pass `2^256`) give [`Target::MAX`].
    ///
    /// The division is done in `f64`, so only the top 53 bits of the result are exact; use
    /// [`Target::from_integer_difficulty`] when the difficulty is an integer.
    pub fn from_difficulty(difficulty: f64) -> Result<Self, DifficultyError> {
        if !(difficulty.is_finite() && difficulty > 0.0) {
            return Err(DifficultyError::NotPositive { difficulty });
        }
        // DIFF1 = 65535 * 2^208 exactly; the quotient's exponent is applied on the integer
        // side so that tiny difficulties do not overflow f64.
        let t = 65535.0 / difficulty;
        if !t.is_finite() {
            return Ok(Target::MAX); // subnormal difficulty
        }
        Ok(Target(
            Uint::from_f64_scaled(t, 208)
                .unwrap_or(Uint::MAX)
                .to_le_bytes(),
        ))
    }

    /// The target of an integer pool difficulty, exactly: `floor(DIFF1 / difficulty)`.
    pub fn from_integer_difficulty(difficulty: u64) -> Result<Self, DifficultyError> {
        if difficulty == 0 {
            return Err(DifficultyError::NotPositive { difficulty: 0.0 });
        }
        let (q, _) = Uint::from_le_bytes(&Self::DIFF1.0).div_rem(&Uint::from_u64(difficulty));
        Ok(Target(q.to_le_bytes()))
    }

    /// The target of pool difficulty `2^exp`, exactly (`DIFF1 >> exp`).
    pub fn from_pow2_difficulty(exp: u32) -> Self {
        Target(Uint::from_le_bytes(&Self::DIFF1.0).shr(exp).to_le_bytes())
    }

    /// The pool difficulty of this target, `DIFF1 / target` (`+inf` for the zero target).
    pub fn difficulty(&self) -> f64 {
        Uint::from_le_bytes(&Self::DIFF1.0).to_f64() / Uint::from_le_bytes(&self.0).to_f64()
    }

    /// The largest power-of-two integer difficulty `2^k` (k ≤ 63) not above this target's
    /// difficulty, at least 1: its target is at or above this one (easier). For SV1 firmware
    /// that only takes power-of-two difficulties.
    pub fn pow2_difficulty_at_most(&self) -> u64 {
        let mut k = 0;
        while k < 63 && Self::from_pow2_difficulty(k + 1) >= *self {
            k += 1;
        }
        1 << k
    }

    /// The smallest power-of-two integer difficulty `2^k` (k ≤ 63) not below this target's
    /// difficulty: every share meeting its target also meets this one (capped at `2^63`).
    pub fn pow2_difficulty_at_least(&self) -> u64 {
        let mut k = 0;
        while k < 63 && Self::from_pow2_difficulty(k) > *self {
            k += 1;
        }
        1 << k
    }

    /// Expected number of hashes to find one at or below this target: `2^256 / (target + 1)`.
    pub fn work(&self) -> f64 {
        // 2^256 as f64 is exact; target + 1 may round, which is below f64 precision anyway.
        TWO_POW_256 / (Uint::from_le_bytes(&self.0).to_f64() + 1.0)
    }
}

/// `2^256` as an `f64` (exact).
const TWO_POW_256: f64 = 1.157_920_892_373_162e77;

impl Ord for Target {
    fn cmp(&self, other: &Self) -> Ordering {
        // most significant byte last in little-endian order
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for Target {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// Big-endian hex, 64 digits (as block explorers print targets).
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().rev() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl From<U256> for Target {
    fn from(v: U256) -> Self {
        Target(v.0)
    }
}

impl From<Target> for U256 {
    fn from(t: Target) -> Self {
        U256(t.0)
    }
}

impl From<Target> for bitcoin::Target {
    fn from(t: Target) -> Self {
        bitcoin::Target::from_le_bytes(t.0)
    }
}

impl From<bitcoin::Target> for Target {
    fn from(t: bitcoin::Target) -> Self {
        Target(t.to_le_bytes())
    }
}

/// Whether a SHA-256d hash (32 bytes as hashed, i.e. a little-endian number) is at or below
/// `target` (spec 5.3.21: shares "leading to hashes higher than the specified target will be
/// rejected"; Core's `CheckProofOfWork`). Branch-light and allocation-free.
#[inline]
pub fn hash_meets(hash: &[u8; 32], target: &Target) -> bool {
    for i in (0..4).rev() {
        let h = limb(hash, i);
        let t = limb(&target.0, i);
        if h != t {
            return h < t;
        }
    }
    true
}

#[inline(always)]
fn limb(b: &[u8; 32], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[8 * i..8 * i + 8]);
    u64::from_le_bytes(w)
}

/// The channel target for a device of `hashrate` h/s that should find `shares_per_minute`
/// shares a minute on average.
///
/// The spec (`05-Mining-Protocol.md`, `nominal_hash_rate`) leaves the target policy to the
/// server and gives no formula; this is the one of the reference implementation
/// (`channels_sv2::target::hash_rate_to_target`): with `w = floor(hashrate * 60 /
/// shares_per_minute)` the expected hashes per share,
///
/// ```text
/// target = floor((2^256 - w) / (w + 1))
/// ```
///
/// (the expected number of draws before the first hash `<= t` is `(2^256 - t) / (t + 1)`).
/// SRI's numerator is `2^256 - 1 - w`, so the two can differ by one unit in the last place
/// (only when `w + 1` divides `2^256 - w`); SRI also saturates `w` at `2^128 - 1`, where this
/// computes it exactly. `hashrate = 0` (a proxy with no devices yet, spec 5.3.2) or `w = 0`
/// gives [`Target::MAX`]; `w >= 2^256` gives [`Target::ZERO`].
pub fn target_from_hashrate(
    hashrate: f64,
    shares_per_minute: f64,
) -> Result<Target, HashrateError> {
    if !(hashrate.is_finite() && hashrate >= 0.0) {
        return Err(HashrateError::InvalidHashrate { hashrate });
    }
    if !(shares_per_minute.is_finite() && shares_per_minute > 0.0) {
        return Err(HashrateError::InvalidShareRate { shares_per_minute });
    }
    let w = hashrate * 60.0 / shares_per_minute;
    if !w.is_finite() {
        return Ok(Target::ZERO);
    }
    let Some(w) = Uint::from_f64_scaled(w, 0) else {
        return Ok(Target::ZERO);
    };
    if w.is_zero() {
        return Ok(Target::MAX);
    }
    // 2^256 - w = MAX - (w - 1), representable since w >= 1
    let numerator = Uint::MAX.sub(&w.sub(&Uint::ONE));
    let Some(denominator) = w.checked_add(&Uint::ONE) else {
        return Ok(Target::ZERO);
    };
    let (q, _) = numerator.div_rem(&denominator);
    Ok(Target(q.to_le_bytes()))
}

/// The hashrate (h/s) at which a device finds `shares_per_minute` shares a minute at
/// `target`: the inverse of [`target_from_hashrate`], `work(target) * shares_per_minute / 60`.
///
/// SRI's `hash_rate_from_target` computes `(2^256 - t) / (s * (t + 1))` in integers (result
/// truncated, `s` rounded to hundredths of a second); the two agree to within that rounding.
pub fn hashrate_from_target(target: &Target, shares_per_minute: f64) -> Result<f64, HashrateError> {
    if !(shares_per_minute.is_finite() && shares_per_minute > 0.0) {
        return Err(HashrateError::InvalidShareRate { shares_per_minute });
    }
    Ok(target.work() * shares_per_minute / 60.0)
}

/// Hashrate estimate (h/s) from accepted work: the sum of [`Target::work`] of the targets of
/// accepted shares, over the time it took. `None` if `elapsed` is zero.
pub fn hashrate_from_work(work: f64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (secs > 0.0).then(|| work / secs)
}

/// A 256-bit unsigned integer as four little-endian `u64` limbs: just the arithmetic the
/// conversions above need (none of it is on a per-share path).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Uint([u64; 4]);

impl Uint {
    const ONE: Uint = Uint([1, 0, 0, 0]);
    const MAX: Uint = Uint([u64::MAX; 4]);

    fn from_u64(v: u64) -> Self {
        Uint([v, 0, 0, 0])
    }

    fn from_le_bytes(b: &[u8; 32]) -> Self {
        Uint([limb(b, 0), limb(b, 1), limb(b, 2), limb(b, 3)])
    }

    fn to_le_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, l) in self.0.iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
        }
        out
    }

    fn is_zero(&self) -> bool {
        self.0 == [0; 4]
    }

    fn low_u64(&self) -> u64 {
        self.0[0]
    }

    /// Number of significant bits.
    fn bits(&self) -> u32 {
        for i in (0..4).rev() {
            if self.0[i] != 0 {
                return 64 * i as u32 + (64 - self.0[i].leading_zeros());
            }
        }
        0
    }

    fn shl(&self, n: u32) -> Self {
        if n >= 256 {
            return Uint([0; 4]);
        }
        let (limbs, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 4];
        for i in (limbs..4).rev() {
            let src = i - limbs;
            out[i] = self.0[src] << bits;
            if bits != 0 && src > 0 {
                out[i] |= self.0[src - 1] >> (64 - bits);
            }
        }
        Uint(out)
    }

    fn shr(&self, n: u32) -> Self {
        if n >= 256 {
            return Uint([0; 4]);
        }
        let (limbs, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 4];
        for (i, o) in out.iter_mut().enumerate().take(4 - limbs) {
            let src = i + limbs;
            *o = self.0[src] >> bits;
            if bits != 0 && src + 1 < 4 {
                *o |= self.0[src + 1] << (64 - bits);
            }
        }
        Uint(out)
    }

    fn checked_add(&self, o: &Self) -> Option<Self> {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, out) in out.iter_mut().enumerate() {
            let (s1, c1) = self.0[i].overflowing_add(o.0[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *out = s2;
            carry = c1 || c2;
        }
        (!carry).then_some(Uint(out))
    }

    /// `self - o`, wrapping (callers ensure `self >= o`).
    fn sub(&self, o: &Self) -> Self {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, out) in out.iter_mut().enumerate() {
            let (d1, b1) = self.0[i].overflowing_sub(o.0[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *out = d2;
            borrow = b1 || b2;
        }
        Uint(out)
    }

    fn cmp(&self, o: &Self) -> Ordering {
        self.0.iter().rev().cmp(o.0.iter().rev())
    }

    /// Quotient and remainder by shift-and-subtract; `d` must not be zero.
    fn div_rem(&self, d: &Self) -> (Self, Self) {
        debug_assert!(!d.is_zero());
        let mut q = Uint([0; 4]);
        let mut r = Uint([0; 4]);
        for i in (0..self.bits()).rev() {
            r = r.shl(1);
            r.0[0] |= (self.0[(i / 64) as usize] >> (i % 64)) & 1;
            if r.cmp(d) != Ordering::Less {
                r = r.sub(d);
                q.0[(i / 64) as usize] |= 1 << (i % 64);
            }
        }
        (q, r)
    }

    /// The value as `f64` (rounded to 53 significant bits).
    fn to_f64(self) -> f64 {
        const TWO_64: f64 = 18_446_744_073_709_551_616.0;
        self.0
            .iter()
            .rev()
            .fold(0.0, |acc, &l| acc * TWO_64 + l as f64)
    }

    /// `floor(x * 2^scale)` for a finite `x >= 0`; `None` if it is `2^256` or more.
    fn from_f64_scaled(x: f64, scale: i32) -> Option<Self> {
        debug_assert!(x.is_finite() && x >= 0.0);
        if x == 0.0 {
            return Some(Uint([0; 4]));
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let (mantissa, exp) = if biased == 0 {
            (bits & ((1 << 52) - 1), -1074) // subnormal
        } else {
            ((bits & ((1 << 52) - 1)) | (1 << 52), biased - 1075)
        };
        let e = exp + scale;
        let m = Uint::from_u64(mantissa);
        if e >= 0 {
            // mantissa has at most 53 significant bits
            if e as u32 + m.bits() > 256 {
                return None;
            }
            Some(m.shl(e as u32))
        } else {
            Some(m.shr(e.unsigned_abs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn be(hex: &str) -> Target {
        let mut b = [0u8; 32];
        let v = hex::decode(hex).expect("hex");
        b[32 - v.len()..].copy_from_slice(&v);
        Target::from_be_bytes(b)
    }

    #[test]
    fn diff1_is_the_pool_difficulty_one_target() {
        assert_eq!(
            Target::DIFF1,
            be("00000000FFFF0000000000000000000000000000000000000000000000000000")
        );
        assert_eq!(Target::DIFF1.difficulty(), 1.0);
        assert_eq!(Target::from_difficulty(1.0), Ok(Target::DIFF1));
        assert_eq!(Target::from_integer_difficulty(1), Ok(Target::DIFF1));
        assert_eq!(Target::from_compact(0x1d00ffff), Ok(Target::DIFF1));
        assert_eq!(Target::DIFF1.to_compact(), 0x1d00ffff);
    }

    #[test]
    fn real_nbits_round_trip() {
        // genesis, regtest, mainnet blocks (e.g. 0x1703a30c at height ~840000's era)
        for bits in [
            0x1d00ffffu32,
            0x207fffff,
            0x1703a30c,
            0x17034219,
            0x1b0404cb,
            0x1a05db8b,
        ] {
            let t = Target::from_compact(bits).expect("valid");
            assert_eq!(t.to_compact(), bits, "{bits:#x}");
            let bt = bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(bits));
            assert_eq!(bitcoin::Target::from(t), bt);
        }
        assert_eq!(
            Target::from_compact(0x207fffff).expect("regtest"),
            be("7fffff0000000000000000000000000000000000000000000000000000000000")
        );
        assert_eq!(
            Target::from_compact(0x1703a30c).expect("mainnet"),
            be("00000000000000000003a30c0000000000000000000000000000000000000000")
        );
    }

    #[test]
    fn invalid_compact_rejected() {
        assert_eq!(
            Target::from_compact(0x04923456),
            Err(CompactError::Negative { bits: 0x04923456 })
        );
        assert_eq!(
            Target::from_compact(0x01fedcba),
            Err(CompactError::Negative { bits: 0x01fedcba })
        );
        for bits in [0xff123456u32, 0x23000100, 0x22010000, 0x217fffff] {
            assert_eq!(
                Target::from_compact(bits),
                Err(CompactError::Overflow { bits })
            );
        }
        // Core's edge cases that are valid: zero mantissa with sign bit / huge exponent
        assert_eq!(Target::from_compact(0x00800000), Ok(Target::ZERO));
        assert_eq!(Target::from_compact(0xff000000), Ok(Target::ZERO));
        assert_eq!(Target::from_compact(0x01003456), Ok(Target::ZERO));
        assert!(Target::from_compact(0x2100ffff).is_ok());
        assert!(Target::from_compact(0x220000ff).is_ok());
    }

    #[test]
    fn core_set_compact_vectors() {
        // from Bitcoin Core's arith_uint256_tests (SetCompact / GetCompact)
        let small = |bits: u32, v: u64, back: u32| {
            let t = Target::from_compact(bits).expect("valid");
            let mut want = [0u8; 32];
            want[..8].copy_from_slice(&v.to_le_bytes());
            assert_eq!(t, Target::from_le_bytes(want), "{bits:#x}");
            assert_eq!(t.to_compact(), back, "{bits:#x}");
        };
        small(0x01123456, 0x12, 0x01120000);
        small(0x02123456, 0x1234, 0x02123400);
        small(0x03123456, 0x123456, 0x03123456);
        small(0x04123456, 0x12345600, 0x04123456);
        small(0x05009234, 0x92340000, 0x05009234);
        small(0x01003456, 0, 0);
        small(0x02000056, 0, 0);
        small(0x00123456, 0, 0);
        assert_eq!(
            Target::from_compact(0x20123456).expect("ok").to_compact(),
            0x20123456
        );
        assert_eq!(
            Target::from_le_bytes([
                0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0
            ])
            .to_compact(),
            0x02008000
        );
    }

    #[test]
    fn ordering_is_numeric() {
        let mut lo = [0u8; 32];
        lo[0] = 0xff; // 255
        let mut hi = [0u8; 32];
        hi[31] = 1; // 2^248
        assert!(Target::from_le_bytes(lo) < Target::from_le_bytes(hi));
        assert!(Target::ZERO < Target::DIFF1 && Target::DIFF1 < Target::MAX);
    }

    #[test]
    fn hash_meets_boundaries() {
        let t = Target::DIFF1;
        assert!(hash_meets(&t.to_le_bytes(), &t), "equal meets");
        let mut above = t.to_le_bytes();
        above[0] = 1;
        assert!(!hash_meets(&above, &t));
        let mut below = t.to_le_bytes();
        below[26] = 0xfe;
        assert!(hash_meets(&below, &t));
        assert!(hash_meets(&[0xff; 32], &Target::MAX));
        assert!(hash_meets(&[0; 32], &Target::ZERO));
        assert!(!hash_meets(&[1; 32], &Target::ZERO));
    }

    #[test]
    fn difficulty_values() {
        assert_eq!(
            Target::from_integer_difficulty(1024),
            Ok(Target::from_pow2_difficulty(10))
        );
        assert_eq!(
            Target::from_difficulty(1024.0),
            Ok(Target::from_pow2_difficulty(10))
        );
        assert_eq!(Target::from_pow2_difficulty(3).difficulty(), 8.0);
        assert!(Target::from_difficulty(0.0).is_err());
        assert!(Target::from_difficulty(-1.0).is_err());
        assert!(Target::from_difficulty(f64::NAN).is_err());
        assert!(Target::from_difficulty(f64::INFINITY).is_err());
        assert!(Target::from_integer_difficulty(0).is_err());
        assert_eq!(Target::from_difficulty(1e-300), Ok(Target::MAX));
        assert_eq!(Target::from_difficulty(5e-324), Ok(Target::MAX));
        assert_eq!(Target::ZERO.difficulty(), f64::INFINITY);
        // regtest powLimit: difficulty ~ 4.66e-10
        let regtest = Target::from_compact(0x207fffff).expect("regtest");
        assert!((regtest.difficulty() - 4.656542373906925e-10).abs() < 1e-20);
        // difficulty 0.5 doubles the target
        assert_eq!(
            Target::from_difficulty(0.5),
            Ok(be(
                "00000001FFFE0000000000000000000000000000000000000000000000000000"
            ))
        );
    }

    #[test]
    fn pow2_helpers() {
        let t = Target::from_difficulty(1000.0).expect("ok");
        assert_eq!(t.pow2_difficulty_at_most(), 512);
        assert_eq!(t.pow2_difficulty_at_least(), 1024);
        let t = Target::from_pow2_difficulty(12);
        assert_eq!(t.pow2_difficulty_at_most(), 4096);
        assert_eq!(t.pow2_difficulty_at_least(), 4096);
        assert_eq!(Target::MAX.pow2_difficulty_at_most(), 1);
        assert_eq!(Target::MAX.pow2_difficulty_at_least(), 1);
        assert_eq!(Target::ZERO.pow2_difficulty_at_least(), 1 << 63);
    }

    #[test]
    fn hashrate_edges() {
        assert_eq!(target_from_hashrate(0.0, 6.0), Ok(Target::MAX));
        assert_eq!(target_from_hashrate(0.01, 6.0), Ok(Target::MAX)); // w = 0
        assert_eq!(target_from_hashrate(f64::MAX, 1.0), Ok(Target::ZERO));
        assert_eq!(target_from_hashrate(1e300, 1e-300), Ok(Target::ZERO)); // w = inf
        assert!(target_from_hashrate(-1.0, 6.0).is_err());
        assert!(target_from_hashrate(f64::NAN, 6.0).is_err());
        assert!(target_from_hashrate(f64::INFINITY, 6.0).is_err());
        assert!(target_from_hashrate(1.0, 0.0).is_err());
        assert!(target_from_hashrate(1.0, -1.0).is_err());
        assert!(target_from_hashrate(1.0, f64::NAN).is_err());
        // w = 1: (2^256 - 1) / 2
        assert_eq!(
            target_from_hashrate(1.0, 60.0),
            Ok(be(
                "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
            ))
        );
        // w = 2^32 - 1 gives ~ 2^224: difficulty ~1 (diff 1 is 2^32 hashes / share).
        let t = target_from_hashrate(4294967295.0, 60.0).expect("ok");
        assert!((t.difficulty() - 1.0).abs() < 1e-4, "{}", t.difficulty());
        assert!(hashrate_from_target(&Target::MAX, 0.0).is_err());
        assert_eq!(hashrate_from_work(10.0, Duration::ZERO), None);
        assert_eq!(hashrate_from_work(10.0, Duration::from_secs(5)), Some(2.0));
    }

    #[test]
    fn hashrate_round_trip_example() {
        // 100 TH/s, 6 shares/min: w = 1e15, target ~ 2^256 / 1e15
        let t = target_from_hashrate(100e12, 6.0).expect("ok");
        let h = hashrate_from_target(&t, 6.0).expect("ok");
        assert!((h / 100e12 - 1.0).abs() < 1e-12, "{h}");
        assert!((t.work() / 1e15 - 1.0).abs() < 1e-12);
    }

    fn any_target() -> impl Strategy<Value = Target> {
        any::<[u8; 32]>().prop_map(Target::from_le_bytes)
    }

    proptest! {
        #[test]
        fn prop_compact_canonical(bits in any::<u32>()) {
            if let Ok(t) = Target::from_compact(bits) {
                let c = t.to_compact();
                prop_assert_eq!(Target::from_compact(c), Ok(t));
                prop_assert_eq!(c.to_le_bytes()[2] & 0x80, 0, "never negative");
                // agrees with rust-bitcoin on every valid compact value
                let bt = bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(bits));
                prop_assert_eq!(bitcoin::Target::from(t), bt);
                prop_assert_eq!(c, bt.to_compact_lossy().to_consensus());
            }
        }

        #[test]
        fn prop_to_compact_rounds_down(t in any_target()) {
            let back = Target::from_compact(t.to_compact()).expect("to_compact is valid");
            prop_assert!(back <= t);
            prop_assert_eq!(back.to_compact(), t.to_compact());
        }

        #[test]
        fn prop_ord_matches_bitcoin(a in any_target(), b in any_target()) {
            prop_assert_eq!(a.cmp(&b), bitcoin::Target::from(a).cmp(&bitcoin::Target::from(b)));
            prop_assert_eq!(hash_meets(a.as_le_bytes(), &b), a <= b);
        }

        #[test]
        fn prop_difficulty_round_trip(d in 1e-9f64..1e15) {
            let t = Target::from_difficulty(d).expect("positive");
            let back = t.difficulty();
            prop_assert!((back / d - 1.0).abs() < 1e-12, "{} -> {}", d, back);
        }

        #[test]
        fn prop_integer_difficulty_exact(d in 1u64..) {
            let t = Target::from_integer_difficulty(d).expect("positive");
            // DIFF1 / t == d to f64 precision, and rust-bitcoin agrees
            prop_assert!((t.difficulty() / d as f64 - 1.0).abs() < 1e-12);
            let bt = bitcoin::Target::from(t);
            prop_assert!((bt.difficulty_float() / d as f64 - 1.0).abs() < 1e-9);
        }

        #[test]
        fn prop_hashrate_monotonic(h1 in 0f64..1e21, h2 in 0f64..1e21, spm in 0.1f64..120.0) {
            let (lo, hi) = if h1 <= h2 { (h1, h2) } else { (h2, h1) };
            let t_lo = target_from_hashrate(lo, spm).expect("valid");
            let t_hi = target_from_hashrate(hi, spm).expect("valid");
            prop_assert!(t_hi <= t_lo, "more hashrate, harder target");
            // w = hashes per share; flooring it costs at most 1/w of relative accuracy
            if hi * 60.0 / spm >= 1e6 {
                let back = hashrate_from_target(&t_hi, spm).expect("valid");
                prop_assert!((back / hi - 1.0).abs() < 1e-6, "{} -> {}", hi, back);
            }
        }

        #[test]
        fn prop_share_rate_monotonic(h in 1f64..1e21, s1 in 0.01f64..600.0, s2 in 0.01f64..600.0) {
            let (lo, hi) = if s1 <= s2 { (s1, s2) } else { (s2, s1) };
            prop_assert!(target_from_hashrate(h, lo).expect("ok") <= target_from_hashrate(h, hi).expect("ok"));
        }

        #[test]
        fn prop_uint_div(a in any::<[u8; 32]>(), d in any::<[u8; 32]>(), shift in 0u32..256) {
            // divisors of every size, so that quotients are of every size too
            let (a, d) = (Uint::from_le_bytes(&a), Uint::from_le_bytes(&d).shr(shift));
            prop_assume!(!d.is_zero());
            let (q, r) = a.div_rem(&d);
            prop_assert_eq!(r.cmp(&d), Ordering::Less);
            // q * d + r == a
            let mut acc = r;
            for i in 0..256u32 {
                if (q.0[(i / 64) as usize] >> (i % 64)) & 1 == 1 {
                    acc = acc.checked_add(&d.shl(i)).expect("no overflow");
                }
            }
            prop_assert_eq!(acc, a);
        }

        #[test]
        fn prop_uint_shifts(a in any::<[u8; 32]>(), n in 0u32..300) {
            let a = Uint::from_le_bytes(&a);
            let back = a.shl(n).shr(n);
            // shl drops the top n bits; shr(n) then restores the rest
            let mask = if n >= 256 { Uint([0; 4]) } else { Uint::MAX.shr(n) };
            let want = Uint([a.0[0] & mask.0[0], a.0[1] & mask.0[1], a.0[2] & mask.0[2], a.0[3] & mask.0[3]]);
            prop_assert_eq!(back, want);
        }
    }
}
