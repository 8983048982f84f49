//! # strata-template
//!
//! Template sources: where block templates come from and where solved blocks go. Shared by
//! the pool (which adds its embedded regtest node) and the proxy's Job Declarator Client
//! (templates from the farm's own node).
//!
//! Every source speaks in Template Distribution terms (spec 7): a [`Template`] is a
//! `NewTemplate` together with the `SetNewPrevHash` it builds on, and a [`Solution`] is what
//! `SubmitSolution` carries (the header and the full coinbase). The pool builds the coinbase
//! (its payout outputs first, then the template's required outputs such as the witness
//! commitment) and the merkle root from [`Template::merkle_path`]; a source that knows the
//! template's other transactions (embedded, rpc) assembles the block itself.
//!
//! Sources:
//! * `embedded` (in `strata-pool` only): a regtest chain in the pool process, validated by
//!   Bitcoin Core's consensus code through `bitcoinkernel`.
//! * [`rpc`]: bitcoind over JSON-RPC (`getblocktemplate`, `submitblock`).
//! * [`tdp`]: a Template Provider over SV2 Template Distribution.
//! * [`ipc`]: Bitcoin Core's Mining interface over Cap'n Proto on its IPC socket.
//!
//! A source is driven by one task (see [`TemplateSource`]): the pool `select!`s between
//! [`TemplateSource::next_template`] (cancel-safe) and the solutions it has to submit.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::future::Future;

use bitcoin::TxOut;
use strata_work::coinbase::bip34_height_push;

pub mod config;
pub mod ipc;
pub mod rpc;
pub mod tdp;

/// A block template on a given tip: `NewTemplate` + `SetNewPrevHash` in one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Unique and increasing within a source (`NewTemplate.template_id`).
    pub id: u64,
    /// Height of the block this template builds.
    pub height: u32,
    /// Hash of the tip, in header byte order (as it appears in the block header).
    pub prev_hash: [u8; 32],
    /// Block header nVersion.
    pub version: u32,
    /// Block header nBits.
    pub nbits: u32,
    /// Smallest valid nTime (median time past + 1, or later); jobs start at
    /// `max(min_ntime, now)`.
    pub min_ntime: u32,
    /// Coinbase transaction nVersion.
    pub coinbase_tx_version: u32,
    /// First bytes of the coinbase scriptSig: the BIP34 height push (at most 8 bytes).
    pub coinbase_prefix: Vec<u8>,
    /// nSequence of the coinbase input.
    pub coinbase_tx_input_sequence: u32,
    /// Satoshis the pool's outputs may pay out in total (subsidy + fees, minus what the
    /// template's own outputs pay).
    pub coinbase_tx_value_remaining: u64,
    /// Outputs the coinbase must carry after the pool's own (e.g. the BIP141 witness
    /// commitment). Empty when none is required.
    pub coinbase_tx_outputs: Vec<TxOut>,
    /// Coinbase nLockTime.
    pub coinbase_tx_locktime: u32,
    /// Merkle path of the coinbase through the template's other transactions, deepest first
    /// (empty for a coinbase-only block).
    pub merkle_path: Vec<[u8; 32]>,
    /// Number of transactions besides the coinbase.
    pub tx_count: u32,
}

/// A solved block, as `SubmitSolution` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// The template the block was built from.
    pub template_id: u64,
    /// The 80-byte block header.
    pub header: [u8; 80],
    /// The full coinbase serialization, with its witness when it has one.
    pub coinbase: Vec<u8>,
}

/// What the source's node said about a submitted block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Accepted (it extends the chain, or the node already had it).
    Accepted {
        /// Block hash, in display (RPC) byte order hex.
        hash: String,
    },
    /// Rejected, with the node's reason (e.g. bitcoind's `submitblock` result string).
    Rejected {
        /// Why.
        reason: String,
    },
}

/// Limits on what the pool adds to the coinbase (Template Distribution's
/// `CoinbaseOutputConstraints`, Bitcoin Core's `BlockCreateOptions`), told to sources that
/// need them. The pool computes them from its configuration with
/// its coinbase budget (`strata_pool::budget::CoinbaseBudget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinbaseConstraints {
    /// Serialized bytes of the pool's outputs (and scriptSig additions) at most.
    pub max_additional_size: u32,
    /// Sigop cost of the pool's outputs at most.
    pub max_additional_sigops: u16,
    /// Weight of the block header, the transaction count and the whole coinbase at most:
    /// what the node must reserve besides the template's transactions (Bitcoin Core's
    /// `-blockreservedweight`, `block_reserved_weight` over IPC).
    pub block_reserved_weight: u32,
}

impl Default for CoinbaseConstraints {
    fn default() -> Self {
        // room for ~100 P2TR/P2WSH payouts (43 bytes each) plus the scriptSig additions;
        // the weight is those 4,400 bytes at 4 WU, the rest of a segwit coinbase (about 106
        // bytes at 4 WU and its 36-byte witness) and the header and transaction count (332)
        CoinbaseConstraints {
            max_additional_size: 4_400,
            max_additional_sigops: 400,
            block_reserved_weight: 18_400,
        }
    }
}

/// Bitcoin Core's default `-blockreservedweight` (`DEFAULT_BLOCK_RESERVED_WEIGHT`).
pub const CORE_DEFAULT_BLOCK_RESERVED_WEIGHT: u32 = 8000;

/// Why a source failed. A failing source is retried by the pool with backoff; templates
/// already handed out stay valid until the next one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The node could not be reached or the connection broke.
    #[error("connection to the template source failed: {0}")]
    Connection(String),
    /// The node answered something we cannot use.
    #[error("template source protocol error: {0}")]
    Protocol(String),
    /// The node refused our credentials.
    #[error("template source refused authentication: {0}")]
    Auth(String),
    /// The solution names a template the source no longer knows.
    #[error("unknown template {0}")]
    UnknownTemplate(u64),
    /// The embedded chain failed.
    #[error("embedded node: {0}")]
    Node(String),
    /// A local i/o error (data directory, cookie file).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The node runs another chain than the pool's configured `network`: templates from it
    /// would pay addresses of the wrong network. Retrying cannot help.
    #[error(
        "the node is on chain \"{node}\" but the pool's network is \"{configured}\" (bitcoind \
         -chain={configured}): point the pool at a node of its network or fix `network`"
    )]
    WrongChain {
        /// The node's chain, as `getblockchaininfo` names it (`main`, `test`, `testnet4`,
        /// `signet`, `regtest`).
        node: String,
        /// The configured network, in the same naming.
        configured: String,
    },
}

impl SourceError {
    /// Whether retrying the source cannot help (a configuration mismatch): the pool then
    /// refuses to start instead of retrying.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SourceError::WrongChain { .. })
    }
}

/// A template source. One task owns it and drives it; nothing here is shared.
pub trait TemplateSource: Send {
    /// A short name for logs and the API (`embedded`, `rpc`, `tdp`, `ipc`).
    fn name(&self) -> &'static str;

    /// Waits for the next template: the first call returns the current one at once; later
    /// calls return when the tip changes (a new `prev_hash`) or the source has a better
    /// template on the same tip (new transactions, refreshed time). Must be cancel-safe: a
    /// call dropped before it completes loses nothing, and the next call still returns every
    /// change.
    fn next_template(&mut self) -> impl Future<Output = Result<Template, SourceError>> + Send;

    /// The raw transactions (besides the coinbase, in block order) of a template this
    /// source returned lately, for a Job Declarator Client that declares them in full
    /// (Full-Template mode). `None` when the source does not know them (the default) or
    /// forgot the template; the `rpc` source keeps them.
    fn transactions(&self, template_id: u64) -> Option<&[Vec<u8>]> {
        let _ = template_id;
        None
    }

    /// Submits a solved block built from one of the templates this source returned. After an
    /// accepted block, the following [`next_template`](Self::next_template) returns the
    /// template on the new tip without waiting.
    fn submit(
        &mut self,
        solution: Solution,
    ) -> impl Future<Output = Result<SubmitOutcome, SourceError>> + Send;

    /// Submits a whole serialized block whose transactions the source may not know (a
    /// custom job's, declared through the pool's Job Declarator Server). The `rpc` source
    /// does (`submitblock`); the others answer [`SourceError::Protocol`].
    fn submit_full_block(
        &mut self,
        block: Vec<u8>,
    ) -> impl Future<Output = Result<SubmitOutcome, SourceError>> + Send {
        let name = self.name();
        let len = block.len();
        async move {
            Err(SourceError::Protocol(format!(
                "the {name} source cannot submit a whole block ({len} bytes)"
            )))
        }
    }
}

/// The height in the BIP34 push that starts a coinbase scriptSig, which must be encoded as
/// Bitcoin Core writes it (`CScript() << height`, see [`bip34_height_push`]).
pub fn bip34_height(script_sig: &[u8]) -> Result<u32, String> {
    let Some(&op) = script_sig.first() else {
        return Err("is empty: no BIP34 height".into());
    };
    let height = match op {
        0x00 => 0,
        0x51..=0x60 => u32::from(op - 0x50),
        0x01..=0x05 => {
            let n = usize::from(op);
            let Some(num) = script_sig.get(1..1 + n) else {
                return Err(format!("ends inside its {n}-byte BIP34 height push"));
            };
            if num.last().is_some_and(|b| b & 0x80 != 0) {
                return Err("starts with a negative BIP34 height".into());
            }
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(num);
            u32::try_from(u64::from_le_bytes(le))
                .map_err(|_| "starts with a BIP34 height above u32".to_string())?
        }
        _ => {
            return Err(format!(
                "starts with opcode {op:#04x}, not a BIP34 height push"
            ))
        }
    };
    let push = bip34_height_push(height);
    if !script_sig.starts_with(&push) {
        return Err(format!("encodes height {height} non-minimally"));
    }
    Ok(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip34_heights_round_trip() {
        for h in [
            0,
            1,
            16,
            17,
            127,
            128,
            255,
            256,
            32_767,
            32_768,
            840_000,
            8_388_608,
            u32::MAX,
        ] {
            let mut script = bip34_height_push(h);
            assert_eq!(bip34_height(&script), Ok(h), "height {h}");
            script.extend_from_slice(&[0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
            assert_eq!(
                bip34_height(&script),
                Ok(h),
                "height {h} with trailing bytes"
            );
        }
    }

    #[test]
    fn bip34_rejects_missing_or_odd_heights() {
        assert!(bip34_height(&[]).is_err());
        assert!(bip34_height(&[0x03, 0x40, 0xd1]).is_err(), "truncated push");
        assert!(bip34_height(&[0x6a]).is_err(), "OP_RETURN");
        assert!(bip34_height(&[0x01, 0x80]).is_err(), "negative");
        assert!(bip34_height(&[0x02, 0x05, 0x00]).is_err(), "non-minimal 5");
        assert!(bip34_height(&[0x01, 0x05]).is_err(), "5 must be OP_5");
    }
}
