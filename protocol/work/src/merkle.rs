//! Merkle roots and paths.
//!
//! Hashes are 32 bytes in the order SHA-256d produces them (the order of block headers and of
//! SV2's `U256`, i.e. **not** the reversed hex of block explorers).
//!
//! * [`merkle_root_from_path`]: fold a coinbase txid up an SV2 `merkle_path` (spec 5.3.16,
//!   `NewExtendedMiningJob`; 7.2, `NewTemplate`). Allocation-free: the per-share path of
//!   extended channels.
//! * [`coinbase_merkle_root`]: the same, starting from `coinbase_tx_prefix ‖ extranonce parts ‖
//!   coinbase_tx_suffix`, hashed in pieces without assembling the coinbase.
//! * [`merkle_path_for_coinbase`]: the `merkle_path` of a template, from its transactions'
//!   txids.
//! * [`merkle_root`]: Bitcoin's full merkle root (last hash of an odd level paired with
//!   itself).
//! * [`witness_merkle_root`], [`witness_commitment`], [`witness_commitment_script`]: BIP141.

use crate::sha256d::sha256d_64;
use sha2::{Digest, Sha256};

/// Double SHA-256 of the concatenation of `parts`, without concatenating them.
pub(crate) fn sha256d_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Sha256::digest(h.finalize()).into()
}

/// The parent of two merkle nodes: `SHA256d(left ‖ right)`.
#[inline]
pub fn merkle_node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    sha256d_64(&buf)
}

/// The merkle root of a block whose coinbase has `coinbase_txid`, given the SV2 `merkle_path`
/// (siblings of the coinbase from the deepest level up; the coinbase is always leftmost), as
/// in [spec 5.3.16](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#5316-newextendedminingjob-server---client).
///
/// ```
/// # use strata_protocol::U256;
/// # use strata_work::merkle::merkle_root_from_path;
/// let path = [U256([1; 32]), U256([2; 32])];
/// let root = merkle_root_from_path([0; 32], path.iter().map(U256::as_bytes));
/// # let _ = root;
/// ```
pub fn merkle_root_from_path<'a, I>(coinbase_txid: [u8; 32], path: I) -> [u8; 32]
where
    I: IntoIterator<Item = &'a [u8; 32]>,
{
    path.into_iter()
        .fold(coinbase_txid, |acc, sibling| merkle_node(&acc, sibling))
}

/// The merkle root of a job for one extranonce: the txid of `coinbase_tx_prefix ‖
/// extranonce_parts... ‖ coinbase_tx_suffix` (e.g. `[extranonce_prefix, extranonce]`, spec
/// 5.3.12) folded up `path`. Hashes the pieces in place, without allocating.
pub fn coinbase_merkle_root<'a, I>(
    coinbase_tx_prefix: &[u8],
    extranonce_parts: &[&[u8]],
    coinbase_tx_suffix: &[u8],
    path: I,
) -> [u8; 32]
where
    I: IntoIterator<Item = &'a [u8; 32]>,
{
    let txid =
        crate::coinbase::txid_from_parts(coinbase_tx_prefix, extranonce_parts, coinbase_tx_suffix);
    merkle_root_from_path(txid, path)
}

/// The SV2 `merkle_path` of a block with these non-coinbase transactions (txids in block
/// order): the siblings of the coinbase, deepest first. Empty for a coinbase-only block.
pub fn merkle_path_for_coinbase(txids: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut path = Vec::new();
    // `level` holds the nodes of the current level to the right of the coinbase's node.
    let mut level: Vec<[u8; 32]> = txids.to_vec();
    while let Some(&sibling) = level.first() {
        path.push(sibling);
        // the coinbase's node and `sibling` make one parent; the rest pair up among themselves,
        // the last one with itself when the whole level (coinbase's node included) is odd
        let rest = &level[1..];
        let next = rest
            .chunks(2)
            .map(|pair| merkle_node(&pair[0], pair.get(1).unwrap_or(&pair[0])))
            .collect();
        level = next;
    }
    path
}

/// Bitcoin's merkle root of `hashes` (txids, or wtxids for the witness tree): each level pairs
/// neighbours, an odd last hash is paired with itself. `None` for an empty list.
///
/// This does not detect the CVE-2012-2459 mutation (two identical last hashes on a level);
/// block validity is the full node's job.
pub fn merkle_root(hashes: &[[u8; 32]]) -> Option<[u8; 32]> {
    let mut level = hashes.to_vec();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        let mut write = 0;
        for read in (0..level.len()).step_by(2) {
            let right = level.get(read + 1).copied().unwrap_or(level[read]);
            level[write] = merkle_node(&level[read], &right);
            write += 1;
        }
        level.truncate(write);
    }
    Some(level[0])
}

/// The BIP141 witness merkle root of a block whose non-coinbase transactions have these
/// wtxids (in block order); the coinbase's wtxid counts as all zeros.
pub fn witness_merkle_root(wtxids: &[[u8; 32]]) -> [u8; 32] {
    let mut all = Vec::with_capacity(wtxids.len() + 1);
    all.push([0u8; 32]);
    all.extend_from_slice(wtxids);
    merkle_root(&all).unwrap_or([0; 32])
}

/// The BIP141 witness commitment: `SHA256d(witness_root ‖ witness_reserved_value)` (the
/// reserved value is the coinbase input's single witness item, all zeros today).
pub fn witness_commitment(witness_root: &[u8; 32], witness_reserved_value: &[u8; 32]) -> [u8; 32] {
    merkle_node(witness_root, witness_reserved_value)
}

/// The scriptPubKey of the BIP141 commitment output: `OP_RETURN OP_PUSHBYTES_36 aa21a9ed ‖
/// commitment`.
pub fn witness_commitment_script(commitment: &[u8; 32]) -> [u8; 38] {
    let mut s = [0u8; 38];
    s[..6].copy_from_slice(&WITNESS_COMMITMENT_HEADER);
    s[6..].copy_from_slice(commitment);
    s
}

/// The first six bytes of a BIP141 commitment scriptPubKey.
pub const WITNESS_COMMITMENT_HEADER: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];

/// Whether `script_pubkey` is a BIP141 witness commitment (at least 38 bytes, starting with
/// [`WITNESS_COMMITMENT_HEADER`]).
pub fn is_witness_commitment(script_pubkey: &[u8]) -> bool {
    script_pubkey.len() >= 38 && script_pubkey[..6] == WITNESS_COMMITMENT_HEADER
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256d::sha256d;
    use bitcoin::hashes::Hash;
    use proptest::prelude::*;

    fn bitcoin_root(hashes: &[[u8; 32]]) -> Option<[u8; 32]> {
        bitcoin::merkle_tree::calculate_root(
            hashes.iter().map(|h| bitcoin::Txid::from_byte_array(*h)),
        )
        .map(|r| r.to_byte_array())
    }

    #[test]
    fn sha256d_matches_bitcoin_hashes() {
        for data in [&b""[..], b"abc", &[7u8; 200]] {
            assert_eq!(
                sha256d(data),
                bitcoin::hashes::sha256d::Hash::hash(data).to_byte_array()
            );
        }
        assert_eq!(sha256d_parts(&[b"ab", b"", b"c"]), sha256d(b"abc"));
    }

    #[test]
    fn small_trees() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let c = [3u8; 32];
        assert_eq!(merkle_root(&[]), None);
        assert_eq!(merkle_root(&[a]), Some(a));
        assert_eq!(merkle_root(&[a, b]), Some(merkle_node(&a, &b)));
        assert_eq!(
            merkle_root(&[a, b, c]),
            Some(merkle_node(&merkle_node(&a, &b), &merkle_node(&c, &c)))
        );
        assert!(merkle_path_for_coinbase(&[]).is_empty());
        assert_eq!(merkle_path_for_coinbase(&[b]), vec![b]);
        assert_eq!(
            merkle_path_for_coinbase(&[b, c]),
            vec![b, merkle_node(&c, &c)]
        );
    }

    #[test]
    fn witness_commitment_script_shape() {
        let s = witness_commitment_script(&[9; 32]);
        assert!(is_witness_commitment(&s));
        assert!(!is_witness_commitment(&s[..37]));
        assert_eq!(&s[..6], &hex::decode("6a24aa21a9ed").expect("hex")[..]);
    }

    proptest! {
        #[test]
        fn prop_root_matches_bitcoin(hashes in proptest::collection::vec(any::<[u8; 32]>(), 0..70)) {
            prop_assert_eq!(merkle_root(&hashes), bitcoin_root(&hashes));
        }

        #[test]
        fn prop_path_folds_to_root(coinbase in any::<[u8; 32]>(), txids in proptest::collection::vec(any::<[u8; 32]>(), 0..70)) {
            let path = merkle_path_for_coinbase(&txids);
            let mut all = vec![coinbase];
            all.extend_from_slice(&txids);
            prop_assert_eq!(Some(merkle_root_from_path(coinbase, &path)), merkle_root(&all));
            // depth is ceil(log2(n))
            let n = all.len();
            let depth = if n <= 1 { 0 } else { usize::BITS - (n - 1).leading_zeros() };
            prop_assert_eq!(path.len() as u32, depth);
        }
    }
}
