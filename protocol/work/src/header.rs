//! Block headers and blocks from jobs and shares.
//!
//! An 80-byte header is `version ‖ prev_hash ‖ merkle_root ‖ ntime ‖ nbits ‖ nonce`, integers
//! little-endian, hashes as SV2 carries them in a `U256` (the byte order of the header itself).
//!
//! Version rolling: in SV2 a share carries the **full** nVersion (spec 5.3.11); the bits the
//! miner may change are BIP323's general purpose bits 5..=28 ([`BIP323_VERSION_MASK`]) when
//! the job allows rolling, none otherwise. [`check_version`] verifies that every other bit is
//! the job's. SV1 firmware negotiates a mask with `mining.configure` (BIP310; `1fffe000` and
//! `1fffffe0` are the ones seen, docs/spec-notes.md §6) and [`rolled_version`] applies it.

use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};

use crate::coinbase::txid_from_parts;
use crate::merkle::merkle_root_from_path;
use crate::sha256d::sha256d;
use crate::target::{hash_meets, Target};

/// Length of a serialized block header.
pub const HEADER_LEN: usize = 80;

/// BIP320's general purpose version bits 13..=28.
pub const BIP320_VERSION_MASK: u32 = 0x1fff_e000;

/// BIP323's general purpose version bits 5..=28, which SV2 jobs let miners roll
/// ([spec 5.1](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#51-job)).
pub const BIP323_VERSION_MASK: u32 = 0x1fff_ffe0;

/// A share's version changes bits the job does not let it roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "version {share_version:#010x} changes bits {changed:#010x} outside mask {mask:#010x} of job version {job_version:#010x}"
)]
pub struct VersionError {
    /// The job's version.
    pub job_version: u32,
    /// The share's version.
    pub share_version: u32,
    /// The allowed mask.
    pub mask: u32,
    /// The bits changed outside the mask.
    pub changed: u32,
}

/// The version a share hashes with: the job's bits outside `mask`, the share's inside
/// (`(job & !mask) | (share & mask)`), as an SV1 server rebuilds it from `mining.submit`.
#[inline]
pub fn rolled_version(job_version: u32, share_version: u32, mask: u32) -> u32 {
    (job_version & !mask) | (share_version & mask)
}

/// Checks that the full version of an SV2 share keeps every bit of `job_version` outside
/// `mask` (spec 5.3.11 / 5.3.16: only the BIP323 bits may change, and only when rolling is
/// allowed).
#[inline]
pub fn check_version(job_version: u32, share_version: u32, mask: u32) -> Result<(), VersionError> {
    let changed = (job_version ^ share_version) & !mask;
    if changed == 0 {
        Ok(())
    } else {
        Err(VersionError {
            job_version,
            share_version,
            mask,
            changed,
        })
    }
}

/// The version-rolling mask of an SV2 extended job: [`BIP323_VERSION_MASK`] if
/// `version_rolling_allowed`, else 0.
pub fn job_version_mask(version_rolling_allowed: bool) -> u32 {
    if version_rolling_allowed {
        BIP323_VERSION_MASK
    } else {
        0
    }
}

/// A block header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// nVersion (after rolling).
    pub version: u32,
    /// Previous block hash, as in the header (and in SV2's `U256`).
    pub prev_hash: [u8; 32],
    /// Merkle root, as in the header.
    pub merkle_root: [u8; 32],
    /// nTime.
    pub ntime: u32,
    /// nBits (compact target).
    pub nbits: u32,
    /// Nonce.
    pub nonce: u32,
}

impl Header {
    /// The 80 serialized bytes.
    #[inline]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(&self.prev_hash);
        b[36..68].copy_from_slice(&self.merkle_root);
        b[68..72].copy_from_slice(&self.ntime.to_le_bytes());
        b[72..76].copy_from_slice(&self.nbits.to_le_bytes());
        b[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// The header of these 80 bytes.
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&b[4..36]);
        let mut merkle_root = [0u8; 32];
        merkle_root.copy_from_slice(&b[36..68]);
        Header {
            version: u32_at(0),
            prev_hash,
            merkle_root,
            ntime: u32_at(68),
            nbits: u32_at(72),
            nonce: u32_at(76),
        }
    }

    /// SHA-256d of the header: the block hash, in header byte order (compare with
    /// [`hash_meets`]).
    #[inline]
    pub fn hash(&self) -> [u8; 32] {
        sha256d(&self.to_bytes())
    }

    /// Whether the header hash is at or below `target`.
    #[inline]
    pub fn meets(&self, target: &Target) -> bool {
        hash_meets(&self.hash(), target)
    }

    /// The header of a share on a standard channel (spec 5.3.11, 5.3.15): job's merkle
    /// root, prevhash and nbits from the active `SetNewPrevHash`, the share's full version,
    /// ntime and nonce. Checks the version against `version_mask` first: standard jobs let
    /// the BIP323 bits roll ([`BIP323_VERSION_MASK`]) unless the server set
    /// REQUIRES_FIXED_VERSION (then 0).
    pub fn from_standard_share(
        job: &NewMiningJob,
        prev: &SetNewPrevHash,
        share: &SubmitSharesStandard,
        version_mask: u32,
    ) -> Result<Self, VersionError> {
        check_version(job.version, share.version, version_mask)?;
        Ok(Header {
            version: share.version,
            prev_hash: prev.prev_hash.0,
            merkle_root: job.merkle_root.0,
            ntime: share.ntime,
            nbits: prev.nbits,
            nonce: share.nonce,
        })
    }

    /// The header of a share on an extended channel (spec 5.3.12, 5.3.16): the merkle root
    /// of `coinbase_tx_prefix ‖ extranonce_prefix ‖ share.extranonce ‖ coinbase_tx_suffix`
    /// up the job's path (no allocation), the share's full version (checked against the
    /// job's rolling permission), ntime and nonce. The extranonce length is the caller's to
    /// check against the channel's.
    pub fn from_extended_share(
        job: &NewExtendedMiningJob,
        prev: &SetNewPrevHash,
        extranonce_prefix: &[u8],
        share: &SubmitSharesExtended,
    ) -> Result<Self, VersionError> {
        check_version(
            job.version,
            share.version,
            job_version_mask(job.version_rolling_allowed),
        )?;
        let txid = txid_from_parts(
            job.coinbase_tx_prefix.as_slice(),
            &[extranonce_prefix, share.extranonce.as_slice()],
            job.coinbase_tx_suffix.as_slice(),
        );
        let merkle_root = merkle_root_from_path(txid, job.merkle_path.iter().map(|h| &h.0));
        Ok(Header {
            version: share.version,
            prev_hash: prev.prev_hash.0,
            merkle_root,
            ntime: share.ntime,
            nbits: prev.nbits,
            nonce: share.nonce,
        })
    }
}

impl From<Header> for bitcoin::block::Header {
    fn from(h: Header) -> Self {
        use bitcoin::hashes::Hash;
        bitcoin::block::Header {
            version: bitcoin::block::Version::from_consensus(h.version as i32),
            prev_blockhash: bitcoin::BlockHash::from_byte_array(h.prev_hash),
            merkle_root: bitcoin::TxMerkleNode::from_byte_array(h.merkle_root),
            time: h.ntime,
            bits: bitcoin::CompactTarget::from_consensus(h.nbits),
            nonce: h.nonce,
        }
    }
}

/// Appends a serialized block to `out`: the header, the transaction count (CompactSize), the
/// full coinbase (with its witness) and the other transactions as given (serialized with
/// their witnesses, in template order) — what `submitblock` and SubmitSolution's receiver
/// need.
pub fn assemble_block<T: AsRef<[u8]>>(
    header: &[u8; HEADER_LEN],
    coinbase_full: &[u8],
    transactions: &[T],
    out: &mut Vec<u8>,
) {
    let body: usize = transactions.iter().map(|t| t.as_ref().len()).sum();
    out.reserve(HEADER_LEN + 9 + coinbase_full.len() + body);
    out.extend_from_slice(header);
    write_compact_size(out, transactions.len() as u64 + 1);
    out.extend_from_slice(coinbase_full);
    for t in transactions {
        out.extend_from_slice(t.as_ref());
    }
}

/// Appends Bitcoin's CompactSize encoding of `n`.
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::consensus;
    use bitcoin::hashes::Hash;
    use proptest::prelude::*;

    /// Bitcoin's genesis block header.
    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    #[test]
    fn genesis_header() {
        let bytes: [u8; 80] = hex::decode(GENESIS).expect("hex").try_into().expect("80");
        let h = Header::from_bytes(&bytes);
        assert_eq!(h.to_bytes(), bytes);
        assert_eq!(h.nbits, 0x1d00ffff);
        assert_eq!(h.nonce, 2083236893);
        let mut hash = h.hash();
        hash.reverse();
        assert_eq!(
            hex::encode(hash),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert!(h.meets(&Target::from_compact(h.nbits).expect("valid")));
        let bh: bitcoin::block::Header = h.into();
        assert_eq!(consensus::serialize(&bh), bytes);
    }

    #[test]
    fn version_rules() {
        let job = 0x2000_0000;
        assert_eq!(check_version(job, job, 0), Ok(()));
        assert_eq!(check_version(job, 0x3fff_ffe0, BIP323_VERSION_MASK), Ok(()));
        assert_eq!(check_version(job, 0x2000_2000, BIP320_VERSION_MASK), Ok(()));
        let e = check_version(job, 0x2000_0010, BIP323_VERSION_MASK).expect_err("bit 4");
        assert_eq!(e.changed, 0x10);
        assert!(check_version(job, 0x2000_2000, 0).is_err());
        assert!(check_version(job, 0x6000_0000, BIP323_VERSION_MASK).is_err());
        assert_eq!(
            rolled_version(job, 0xffff_ffff, BIP320_VERSION_MASK),
            0x3fff_e000
        );
        assert_eq!(job_version_mask(false), 0);
    }

    #[test]
    fn compact_size() {
        for n in [
            0u64,
            1,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
        ] {
            let mut ours = vec![];
            write_compact_size(&mut ours, n);
            assert_eq!(ours, consensus::serialize(&bitcoin::VarInt(n)), "{n}");
        }
    }

    proptest! {
        #[test]
        fn prop_header_matches_bitcoin(
            version in any::<u32>(), prev in any::<[u8; 32]>(), root in any::<[u8; 32]>(),
            ntime in any::<u32>(), nbits in any::<u32>(), nonce in any::<u32>(),
        ) {
            let h = Header { version, prev_hash: prev, merkle_root: root, ntime, nbits, nonce };
            let bh: bitcoin::block::Header = h.into();
            prop_assert_eq!(consensus::serialize(&bh), h.to_bytes().to_vec());
            prop_assert_eq!(h.hash(), bh.block_hash().to_byte_array());
            prop_assert_eq!(Header::from_bytes(&h.to_bytes()), h);
        }

        #[test]
        fn prop_rolled_version_passes_check(job in any::<u32>(), share in any::<u32>(), mask in any::<u32>()) {
            let v = rolled_version(job, share, mask);
            prop_assert!(check_version(job, v, mask).is_ok());
            prop_assert_eq!(check_version(job, share, mask).is_ok(), v == share);
        }
    }
}
