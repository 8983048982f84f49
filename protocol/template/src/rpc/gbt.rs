//! A `getblocktemplate` result: what of it decides that a template changed, and how it
//! becomes a [`Template`] (see the module docs of [`super`]).

use bitcoin::consensus;
use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Transaction, TxOut};
use serde::Deserialize;
use serde_json::Value;
use strata_work::coinbase::{bip34_height_push, output};
use strata_work::merkle::merkle_path_for_coinbase;

use crate::{SourceError, Template};

/// Coinbase nVersion of the templates this source builds.
const COINBASE_TX_VERSION: u32 = 2;
/// Coinbase input nSequence (final).
const COINBASE_SEQUENCE: u32 = 0xffff_ffff;
/// Coinbase nLockTime.
const COINBASE_LOCKTIME: u32 = 0;

/// What decides whether a newer template differs from the last one returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint {
    pub(super) previousblockhash: String,
    pub(super) longpollid: Option<String>,
    /// Txids in internal byte order, block order.
    pub(super) txids: Vec<[u8; 32]>,
}

/// A parsed `getblocktemplate` result (id not yet assigned).
#[derive(Debug)]
pub(super) struct Fetched {
    pub(super) template: Template,
    pub(super) fingerprint: Fingerprint,
    pub(super) raw_txs: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct GbtResult {
    version: u32,
    previousblockhash: String,
    transactions: Vec<GbtTransaction>,
    coinbasevalue: u64,
    bits: String,
    height: u32,
    curtime: u32,
    mintime: u32,
    #[serde(default)]
    default_witness_commitment: Option<String>,
    #[serde(default)]
    longpollid: Option<String>,
}

#[derive(Deserialize)]
struct GbtTransaction {
    data: String,
    txid: String,
    /// The wtxid (absent from pre-segwit nodes).
    #[serde(default)]
    hash: Option<String>,
}

/// A 32-byte hash given as RPC (display order) hex, in internal byte order.
fn rpc_hash(field: &str, hex_str: &str) -> Result<[u8; 32], SourceError> {
    let mut bytes: [u8; 32] = hex::decode(hex_str)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SourceError::Protocol(format!("{field} is not 32 bytes of hex")))?;
    bytes.reverse();
    Ok(bytes)
}

impl Fetched {
    /// Parses a `getblocktemplate` result. Each transaction is decoded and its txid (and
    /// wtxid, when given) checked against the node's, since the merkle path is built from
    /// them.
    ///
    /// `min_ntime` is `max(mintime, curtime)`: `mintime` is median time past + 1, and
    /// starting at the node's current time keeps jobs from going back in time.
    pub(super) fn parse(result: Value) -> Result<Self, SourceError> {
        let gbt: GbtResult = serde_json::from_value(result)
            .map_err(|e| SourceError::Protocol(format!("getblocktemplate result: {e}")))?;
        let prev_hash = rpc_hash("previousblockhash", &gbt.previousblockhash)?;
        let nbits = u32::from_str_radix(&gbt.bits, 16)
            .map_err(|_| SourceError::Protocol(format!("bits {:?} is not hex", gbt.bits)))?;

        let mut txids = Vec::with_capacity(gbt.transactions.len());
        let mut raw_txs = Vec::with_capacity(gbt.transactions.len());
        for (i, tx) in gbt.transactions.iter().enumerate() {
            let raw = hex::decode(&tx.data)
                .map_err(|_| SourceError::Protocol(format!("transaction {i}: data is not hex")))?;
            let decoded: Transaction = consensus::deserialize(&raw).map_err(|e| {
                SourceError::Protocol(format!("transaction {i} does not decode: {e}"))
            })?;
            let txid = rpc_hash("txid", &tx.txid)?;
            if decoded.compute_txid().to_byte_array() != txid {
                return Err(SourceError::Protocol(format!(
                    "transaction {i}: txid {} does not match its data",
                    tx.txid
                )));
            }
            if let Some(wtxid) = &tx.hash {
                if decoded.compute_wtxid().to_byte_array() != rpc_hash("hash", wtxid)? {
                    return Err(SourceError::Protocol(format!(
                        "transaction {i}: hash {wtxid} does not match its data"
                    )));
                }
            }
            txids.push(txid);
            raw_txs.push(raw);
        }

        let coinbase_tx_outputs = match &gbt.default_witness_commitment {
            Some(script) => {
                let script = hex::decode(script).map_err(|_| {
                    SourceError::Protocol("default_witness_commitment is not hex".into())
                })?;
                vec![output(0, ScriptBuf::from_bytes(script))]
            }
            None => Vec::<TxOut>::new(),
        };
        let tx_count = u32::try_from(txids.len())
            .map_err(|_| SourceError::Protocol("too many transactions".into()))?;
        let template = Template {
            id: 0,
            height: gbt.height,
            prev_hash,
            version: gbt.version,
            nbits,
            min_ntime: gbt.mintime.max(gbt.curtime),
            coinbase_tx_version: COINBASE_TX_VERSION,
            coinbase_prefix: bip34_height_push(gbt.height),
            coinbase_tx_input_sequence: COINBASE_SEQUENCE,
            coinbase_tx_value_remaining: gbt.coinbasevalue,
            coinbase_tx_outputs,
            coinbase_tx_locktime: COINBASE_LOCKTIME,
            merkle_path: merkle_path_for_coinbase(&txids),
            tx_count,
        };
        Ok(Fetched {
            template,
            fingerprint: Fingerprint {
                previousblockhash: gbt.previousblockhash,
                longpollid: gbt.longpollid,
                txids,
            },
            raw_txs,
        })
    }
}
