//! Small value types shared by both directions.

use std::fmt;

/// A share difficulty (`mining.set_difficulty`, `mining.suggest_difficulty`,
/// `minimum-difficulty.value`): finite and greater than zero.
///
/// On the wire firmware and pools send it as an integer, a float or a numeric string; all parse.
/// It is written as an integer when integral (some firmware only accepts integers), else as the
/// shortest float text that reads back to the same value.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub struct Difficulty(f64);

impl Difficulty {
    /// Difficulty 1.
    pub const ONE: Difficulty = Difficulty(1.0);

    /// `None` unless `value` is finite and greater than zero.
    pub fn new(value: f64) -> Option<Self> {
        (value.is_finite() && value > 0.0).then_some(Self(value))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The largest power of two not above this difficulty (at least 1), for firmware that only
    /// works with power-of-two integer difficulties.
    pub fn floor_power_of_two(self) -> Self {
        let mut p = 1.0f64;
        while p * 2.0 <= self.0 && p < 9.0e18 {
            p *= 2.0;
        }
        Self(p)
    }
}

impl fmt::Debug for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Difficulty({})", self.0)
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The most extranonce2 bytes [`Extranonce2`] holds (the largest SV2 extended extranonce). The
/// session's negotiated `extranonce2_size` is normally far smaller; checking a submit against it
/// is the session's job.
pub const MAX_EXTRANONCE2_LEN: usize = 32;

/// The miner-chosen extranonce2 of a `mining.submit`, decoded from hex and stored inline (so a
/// submit parses without allocating).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extranonce2 {
    len: u8,
    bytes: [u8; MAX_EXTRANONCE2_LEN],
}

impl Extranonce2 {
    /// `None` when `bytes` is longer than [`MAX_EXTRANONCE2_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut e = Self {
            len: 0,
            bytes: [0; MAX_EXTRANONCE2_LEN],
        };
        e.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        e.len = bytes.len() as u8;
        Some(e)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn from_parts(bytes: [u8; MAX_EXTRANONCE2_LEN], len: usize) -> Self {
        Self {
            len: len.min(MAX_EXTRANONCE2_LEN) as u8,
            bytes,
        }
    }
}

impl fmt::Debug for Extranonce2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Extranonce2(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_rules() {
        assert!(Difficulty::new(0.0).is_none());
        assert!(Difficulty::new(-1.0).is_none());
        assert!(Difficulty::new(f64::NAN).is_none());
        assert!(Difficulty::new(f64::INFINITY).is_none());
        let d = Difficulty::new(3000.5).unwrap();
        assert_eq!(d.floor_power_of_two().get(), 2048.0);
        assert_eq!(
            Difficulty::new(0.01).unwrap().floor_power_of_two().get(),
            1.0
        );
    }

    #[test]
    fn extranonce2_bounds() {
        assert!(Extranonce2::from_slice(&[0; 33]).is_none());
        let e = Extranonce2::from_slice(&[1, 2, 3]).unwrap();
        assert_eq!(e.as_bytes(), &[1, 2, 3]);
        assert_eq!(format!("{e:?}"), "Extranonce2(010203)");
    }
}
