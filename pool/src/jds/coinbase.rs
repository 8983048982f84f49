//! The coinbase of a declared job: `DeclareMiningJob.coinbase_tx_prefix ‖ extranonce ‖
//! coinbase_tx_suffix`, the extranonce being the end of the scriptSig (its length follows
//! from the scriptSig length in the prefix), and the checks the pool makes on it.

use std::sync::Arc;

use bitcoin::block::{Header, Version};
use bitcoin::consensus::{deserialize, Decodable};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, CompactTarget, Transaction, TxMerkleNode};
use strata_protocol::job_declaration::{
    ERROR_INVALID_COINBASE_TX, ERROR_INVALID_COINBASE_TX_INPUT,
};

/// Longest extranonce a declared coinbase may leave room for (`PushSolution.extranonce` is a
/// B0_32).
pub const MAX_EXTRANONCE_LEN: usize = 32;

/// A declared coinbase, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredCoinbase {
    /// `coinbase_tx_prefix` as declared.
    pub prefix: Vec<u8>,
    /// `coinbase_tx_suffix` as declared.
    pub suffix: Vec<u8>,
    /// Bytes of extranonce between them.
    pub extranonce_len: usize,
    /// The transaction with an all-zero extranonce.
    pub tx: Transaction,
}

/// A refusal: the `DeclareMiningJob.Error` code and details.
pub(crate) type Refusal = (&'static str, String);

fn read_compact_size(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut slice = bytes.get(*at..)?;
    let before = slice.len();
    let v = bitcoin::VarInt::consensus_decode(&mut slice).ok()?;
    *at += before - slice.len();
    Some(v.0)
}

impl DeclaredCoinbase {
    /// Parses a declared prefix and suffix. Errors carry SRI's codes
    /// (`invalid-coinbase-tx`, `invalid-coinbase-tx-input`).
    pub fn parse(prefix: &[u8], suffix: &[u8]) -> Result<Self, Refusal> {
        let bad = |d: &str| (ERROR_INVALID_COINBASE_TX, d.to_string());
        let bad_input = |d: &str| (ERROR_INVALID_COINBASE_TX_INPUT, d.to_string());
        // version, optional segwit marker and flag, input count, the null prevout
        let mut at = 4;
        if prefix.get(4..6) == Some(&[0x00, 0x01]) {
            at = 6;
        }
        let inputs = read_compact_size(prefix, &mut at).ok_or_else(|| bad("prefix too short"))?;
        if inputs != 1 {
            return Err(bad_input("a coinbase has exactly one input"));
        }
        at += 36;
        let script_len = read_compact_size(prefix, &mut at)
            .ok_or_else(|| bad("prefix ends before scriptSig"))?;
        let head = prefix.len().saturating_sub(at);
        let script_len = usize::try_from(script_len).unwrap_or(usize::MAX);
        if prefix.len() < at || script_len < head || script_len - head > MAX_EXTRANONCE_LEN {
            return Err(bad(
                "the prefix must end inside the scriptSig, at most 32 bytes before its end",
            ));
        }
        let extranonce_len = script_len - head;
        let mut bytes = Vec::with_capacity(prefix.len() + extranonce_len + suffix.len());
        bytes.extend_from_slice(prefix);
        bytes.resize(prefix.len() + extranonce_len, 0);
        bytes.extend_from_slice(suffix);
        let tx: Transaction =
            deserialize(&bytes).map_err(|e| bad(&format!("not a transaction: {e}")))?;
        if tx.input.len() != 1 || !tx.input[0].previous_output.is_null() {
            return Err(bad_input("the input must spend the null outpoint"));
        }
        Ok(DeclaredCoinbase {
            prefix: prefix.to_vec(),
            suffix: suffix.to_vec(),
            extranonce_len,
            tx,
        })
    }

    /// What the declared coinbase pays in total (the declared block's reward).
    pub fn reward(&self) -> u64 {
        self.tx.output.iter().map(|o| o.value.to_sat()).sum()
    }

    /// The height in the scriptSig's BIP34 push.
    pub fn height(&self) -> Result<u32, String> {
        crate::template::bip34_height(self.tx.input[0].script_sig.as_bytes())
    }

    /// The coinbase with this extranonce (of [`extranonce_len`](Self::extranonce_len) bytes).
    pub fn with_extranonce(&self, extranonce: &[u8]) -> Result<Transaction, String> {
        if extranonce.len() != self.extranonce_len {
            return Err(format!(
                "extranonce of {} bytes, the declared coinbase has room for {}",
                extranonce.len(),
                self.extranonce_len
            ));
        }
        let mut bytes = self.prefix.clone();
        bytes.extend_from_slice(extranonce);
        bytes.extend_from_slice(&self.suffix);
        deserialize(&bytes).map_err(|e| e.to_string())
    }
}

pub use strata_work::payout::{block_subsidy, check_required_outputs};

/// Header fields of a block to assemble.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderFields {
    pub version: u32,
    pub prev_hash: [u8; 32],
    pub time: u32,
    pub nbits: u32,
    pub nonce: u32,
}

/// The block of `coinbase` and `transactions` under a header of `h`, its merkle root
/// computed.
pub(crate) fn assemble_block(
    h: HeaderFields,
    coinbase: Transaction,
    transactions: &[Arc<Transaction>],
) -> Block {
    let mut txdata = Vec::with_capacity(transactions.len() + 1);
    txdata.push(coinbase);
    txdata.extend(transactions.iter().map(|t| Transaction::clone(t)));
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(h.version as i32),
            prev_blockhash: BlockHash::from_byte_array(h.prev_hash),
            merkle_root: TxMerkleNode::all_zeros(),
            time: h.time,
            bits: CompactTarget::from_consensus(h.nbits),
            nonce: h.nonce,
        },
        txdata,
    };
    if let Some(root) = block.compute_merkle_root() {
        block.header.merkle_root = root;
    }
    block
}
