//! Limits and helpers for what deployed firmware actually tolerates, and the version-rolling
//! mask arithmetic of BIP310 / BIP320.
//!
//! See `docs/spec-notes.md` §10, "Stratum V1 as ASIC firmware speaks it".

/// The largest `extranonce2_size` to hand out by default: cgminer-based firmware (Antminer S9
/// bmminer, WhatsMiner) misbehaves above 8 bytes.
pub const DEFAULT_MAX_EXTRANONCE2_SIZE: usize = 8;

/// The longest extranonce1 some devices accept (16 bytes); keep `mining.subscribe` results and
/// `mining.set_extranonce` at or below it.
pub const MAX_EXTRANONCE1_SIZE: usize = 16;

/// The most extranonce1 bytes this crate parses at all (anything longer is a typed error).
pub const MAX_EXTRANONCE1_PARSE: usize = 64;

/// The BIP320 general-purpose version bits (13..=28), the mask most firmware asks for
/// (`"1fffe000"`).
pub const VERSION_MASK_BIP320: u32 = 0x1fff_e000;

/// The wider mask some firmware and pools use (`"1fffffe0"`, bits 5..=28).
pub const VERSION_MASK_WIDE: u32 = 0x1fff_ffe0;

/// The mask assumed when a miner requests `version-rolling` without `version-rolling.mask`
/// (BIP310: "if not present, 0xffffffff").
pub const VERSION_MASK_UNSPECIFIED: u32 = 0xffff_ffff;

/// The BIP310 negotiation: the server answers with the intersection of the miner's requested
/// mask and the mask it allows, or fails the extension when fewer than `min_bit_count` bits are
/// left (`None`, answered `"version-rolling": false`).
///
/// ```
/// use strata_sv1::{negotiate_version_mask, VERSION_MASK_BIP320, VERSION_MASK_WIDE};
/// assert_eq!(negotiate_version_mask(VERSION_MASK_WIDE, VERSION_MASK_BIP320, 2), Some(0x1fffe000));
/// assert_eq!(negotiate_version_mask(0x0000_0001, VERSION_MASK_BIP320, 1), None);
/// ```
pub fn negotiate_version_mask(requested: u32, allowed: u32, min_bit_count: u32) -> Option<u32> {
    let mask = requested & allowed;
    (mask.count_ones() >= min_bit_count.max(1)).then_some(mask)
}

/// The block header version a miner hashed: the job's version with the rolled bits of a
/// `mining.submit`'s 6th parameter substituted under `mask`.
pub fn rolled_version(job_version: u32, version_bits: u32, mask: u32) -> u32 {
    (job_version & !mask) | (version_bits & mask)
}

/// Whether a submit's version bits stay inside the negotiated mask. Firmware sends either the
/// rolled bits alone or the whole rolled version; callers that want to accept both check
/// `version_bits ^ job_version` instead.
pub fn version_bits_within_mask(version_bits: u32, mask: u32) -> bool {
    version_bits & !mask == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(VERSION_MASK_BIP320.count_ones(), 16);
        assert_eq!(VERSION_MASK_WIDE.count_ones(), 24);
        assert_eq!(
            negotiate_version_mask(VERSION_MASK_UNSPECIFIED, VERSION_MASK_WIDE, 16),
            Some(VERSION_MASK_WIDE)
        );
        assert_eq!(
            negotiate_version_mask(0x0000_6000, VERSION_MASK_BIP320, 2),
            Some(0x6000)
        );
        assert_eq!(
            negotiate_version_mask(0x0000_6000, VERSION_MASK_BIP320, 3),
            None
        );
        assert_eq!(negotiate_version_mask(0, VERSION_MASK_BIP320, 0), None);
        assert_eq!(
            rolled_version(0x2000_0000, 0x0000_e000, VERSION_MASK_BIP320),
            0x2000_e000
        );
        assert_eq!(
            rolled_version(0x2000_0004, 0xffff_ffff, VERSION_MASK_BIP320),
            0x3fff_e004
        );
        assert!(version_bits_within_mask(0x1000_0000, VERSION_MASK_BIP320));
        assert!(!version_bits_within_mask(0x2000_0000, VERSION_MASK_BIP320));
    }
}
