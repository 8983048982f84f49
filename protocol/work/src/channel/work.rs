//! The coinbase parts of an extended job, shared between channels.

use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::mining::NewExtendedMiningJob;

use crate::coinbase::txid_from_parts;
use crate::sha256d::PrefixMidstate;

/// Coinbase parts of an extended job, shared between the members of a group.
#[derive(Debug, Clone)]
pub struct ExtendedWork {
    /// `coinbase_tx_prefix` (BIP141 fields stripped).
    pub coinbase_prefix: Bytes,
    /// `coinbase_tx_suffix` (BIP141 fields stripped).
    pub coinbase_suffix: Bytes,
    /// Merkle path, deepest first.
    pub merkle_path: Arc<[[u8; 32]]>,
    /// SHA-256 state after the whole 64-byte blocks of `coinbase_prefix`, computed once per
    /// job: a share hashes only the rest of its coinbase.
    pub(crate) prefix_mid: PrefixMidstate,
    /// The `coinbase_prefix` `prefix_mid` was computed from: the fields are public, and a
    /// prefix replaced after construction must not use a stale state. Holding these bytes
    /// keeps their address from being reused, so a prefix at the same address is the same
    /// (immutable) bytes.
    pub(crate) prefix_src: Bytes,
}

/// Equal when the coinbase parts and the merkle path are (the cached state follows from them).
impl PartialEq for ExtendedWork {
    fn eq(&self, other: &Self) -> bool {
        self.coinbase_prefix == other.coinbase_prefix
            && self.coinbase_suffix == other.coinbase_suffix
            && self.merkle_path == other.merkle_path
    }
}

impl ExtendedWork {
    pub(crate) fn from_job(job: &NewExtendedMiningJob) -> Arc<Self> {
        Self::new(
            job.coinbase_tx_prefix.bytes().clone(),
            job.coinbase_tx_suffix.bytes().clone(),
            job.merkle_path.iter().map(|h| h.0).collect(),
        )
    }

    /// Work from its parts, to share between channels that record the same job
    /// ([`super::Channel::on_new_extended_mining_job_shared`]): a proxy's miners all mine its
    /// upstream job, and a private copy of the merkle path per miner and job (~400 bytes on
    /// mainnet) would be most of an idle miner's memory.
    pub fn new(
        coinbase_prefix: Bytes,
        coinbase_suffix: Bytes,
        merkle_path: Arc<[[u8; 32]]>,
    ) -> Arc<Self> {
        Arc::new(ExtendedWork {
            prefix_mid: PrefixMidstate::new(&coinbase_prefix),
            prefix_src: coinbase_prefix.clone(),
            coinbase_prefix,
            coinbase_suffix,
            merkle_path,
        })
    }

    /// The coinbase txid for the full extranonce `extranonce_parts` (e.g. the job's
    /// extranonce prefix and a share's extranonce): SHA-256d of `coinbase_prefix ‖
    /// extranonce_parts... ‖ coinbase_suffix`, resumed from the prefix's cached state.
    pub fn txid(&self, extranonce_parts: &[&[u8]]) -> [u8; 32] {
        match self.prefix_rest() {
            Some(rest) if extranonce_parts.len() <= 4 => {
                let mut pieces: [&[u8]; 6] = [&[]; 6];
                pieces[0] = rest;
                pieces[1..1 + extranonce_parts.len()].copy_from_slice(extranonce_parts);
                pieces[1 + extranonce_parts.len()] = &self.coinbase_suffix;
                self.prefix_mid
                    .sha256d_rest(&pieces[..2 + extranonce_parts.len()])
            }
            _ => txid_from_parts(
                &self.coinbase_prefix,
                extranonce_parts,
                &self.coinbase_suffix,
            ),
        }
    }

    /// The cached prefix state and the prefix bytes it does not cover, unless the prefix was
    /// replaced since the state was computed.
    #[inline]
    pub(crate) fn prefix_state(&self) -> Option<(&PrefixMidstate, &[u8])> {
        self.prefix_rest().map(|rest| (&self.prefix_mid, rest))
    }

    #[inline]
    pub(crate) fn prefix_rest(&self) -> Option<&[u8]> {
        (self.coinbase_prefix.as_ptr() == self.prefix_src.as_ptr())
            .then(|| self.coinbase_prefix.get(self.prefix_mid.consumed()..))
            .flatten()
    }

    /// Whether `job` carries exactly this coinbase prefix, suffix and merkle path.
    pub fn matches(&self, job: &NewExtendedMiningJob) -> bool {
        job.coinbase_tx_prefix.as_slice() == &self.coinbase_prefix[..]
            && job.coinbase_tx_suffix.as_slice() == &self.coinbase_suffix[..]
            && job.merkle_path.len() == self.merkle_path.len()
            && job
                .merkle_path
                .iter()
                .zip(self.merkle_path.iter())
                .all(|(a, b)| &a.0 == b)
    }
}
