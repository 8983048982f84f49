//! `TdpCore`, the synchronous half of the source: Template Distribution messages in,
//! templates to return and `RequestTransactionData`s to send out (no I/O).

use std::collections::{BTreeMap, VecDeque};

use bitcoin::consensus::encode::deserialize_partial;
use bitcoin::hashes::Hash;
use bitcoin::Transaction;
use strata_protocol::template_distribution::{
    NewTemplate, RequestTransactionDataError, RequestTransactionDataSuccess, SetNewPrevHash,
    TemplateDistributionMessage,
};
use strata_work::coinbase::decode_outputs;
use strata_work::merkle::{
    is_witness_commitment, merkle_path_for_coinbase, witness_commitment, witness_merkle_root,
};
use tracing::{debug, info, warn};

use crate::{bip34_height, SourceError, Template};

/// Most future templates kept while waiting for the `SetNewPrevHash` that activates one; the
/// oldest is dropped beyond this.
const MAX_FUTURE_TEMPLATES: usize = 16;

/// Most templates built but not returned yet; the oldest is dropped beyond this (only reached
/// when the pool stops calling `next_template`, or the TP never answers
/// `RequestTransactionData`).
const MAX_QUEUED_TEMPLATES: usize = 64;

/// The chain tip a `SetNewPrevHash` announced: the header fields a template takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tip {
    prev_hash: [u8; 32],
    nbits: u32,
    min_ntime: u32,
}

impl Tip {
    fn of(m: &SetNewPrevHash) -> Self {
        Tip {
            prev_hash: m.prev_hash.0,
            nbits: m.n_bits,
            min_ntime: m.header_timestamp,
        }
    }
}

/// A `NewTemplate`, decoded and checked, waiting for (or with) its tip.
#[derive(Debug, Clone)]
struct Announced {
    id: u64,
    height: u32,
    version: u32,
    coinbase_tx_version: u32,
    coinbase_prefix: Vec<u8>,
    coinbase_tx_input_sequence: u32,
    coinbase_tx_value_remaining: u64,
    coinbase_tx_outputs: Vec<bitcoin::TxOut>,
    coinbase_tx_locktime: u32,
    merkle_path: Vec<[u8; 32]>,
}

impl Announced {
    fn decode(m: &NewTemplate) -> Result<Self, SourceError> {
        let id = m.template_id;
        let prefix = m.coinbase_prefix.as_slice();
        let height = bip34_height(prefix).map_err(|reason| {
            SourceError::Protocol(format!("NewTemplate {id}: coinbase_prefix {reason}"))
        })?;
        let outputs = decode_outputs(
            m.coinbase_tx_outputs.as_slice(),
            m.coinbase_tx_outputs_count,
        )
        .map_err(|e| {
            SourceError::Protocol(format!("NewTemplate {id}: coinbase_tx_outputs: {e}"))
        })?;
        Ok(Announced {
            id,
            height,
            version: m.version,
            coinbase_tx_version: m.coinbase_tx_version,
            coinbase_prefix: prefix.to_vec(),
            coinbase_tx_input_sequence: m.coinbase_tx_input_sequence,
            coinbase_tx_value_remaining: m.coinbase_tx_value_remaining,
            coinbase_tx_outputs: outputs,
            coinbase_tx_locktime: m.coinbase_tx_locktime,
            merkle_path: m.merkle_path.iter().map(|h| h.0).collect(),
        })
    }

    fn on(self, tip: &Tip) -> Template {
        let tx_count = tx_count_lower_bound(self.merkle_path.len());
        Template {
            id: self.id,
            height: self.height,
            prev_hash: tip.prev_hash,
            version: self.version,
            nbits: tip.nbits,
            min_ntime: tip.min_ntime,
            coinbase_tx_version: self.coinbase_tx_version,
            coinbase_prefix: self.coinbase_prefix,
            coinbase_tx_input_sequence: self.coinbase_tx_input_sequence,
            coinbase_tx_value_remaining: self.coinbase_tx_value_remaining,
            coinbase_tx_outputs: self.coinbase_tx_outputs,
            coinbase_tx_locktime: self.coinbase_tx_locktime,
            merkle_path: self.merkle_path,
            tx_count,
        }
    }
}

/// Fewest non-coinbase transactions a block can have with a merkle path of `path_len`
/// hashes: `2^(path_len - 1)` (0 for an empty path), saturating.
pub(super) fn tx_count_lower_bound(path_len: usize) -> u32 {
    match path_len {
        0 => 0,
        n if n > 32 => u32::MAX,
        n => 1u32 << (n - 1),
    }
}

/// Checks a template against the transactions the TP listed for it and returns them, each
/// as its consensus serialization (without the optional data the TP may append).
fn check_transactions(
    t: &Template,
    list: &[strata_protocol::B0_16M],
) -> Result<Vec<Vec<u8>>, String> {
    let mut txs = Vec::with_capacity(list.len());
    let mut raw_txs = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let (tx, used) = deserialize_partial::<Transaction>(raw.as_slice())
            .map_err(|e| format!("transaction {i} does not decode: {e}"))?;
        txs.push(tx);
        raw_txs.push(raw.as_slice()[..used].to_vec());
    }
    let txids: Vec<[u8; 32]> = txs
        .iter()
        .map(|tx| tx.compute_txid().to_byte_array())
        .collect();
    if merkle_path_for_coinbase(&txids) != t.merkle_path {
        return Err(format!(
            "merkle_path ({} hashes) is not the one of the {} transactions listed",
            t.merkle_path.len(),
            txs.len()
        ));
    }
    // BIP141: the commitment is the last output carrying the commitment header.
    let commitment = t
        .coinbase_tx_outputs
        .iter()
        .rev()
        .find(|o| is_witness_commitment(o.script_pubkey.as_bytes()));
    match commitment {
        Some(out) => {
            let wtxids: Vec<[u8; 32]> = txs
                .iter()
                .map(|tx| tx.compute_wtxid().to_byte_array())
                .collect();
            let expected = witness_commitment(&witness_merkle_root(&wtxids), &[0u8; 32]);
            if out.script_pubkey.as_bytes()[6..38] != expected {
                return Err("witness commitment is not the one of the transactions listed".into());
            }
        }
        None => {
            if txs
                .iter()
                .any(|tx| tx.input.iter().any(|i| !i.witness.is_empty()))
            {
                return Err(
                    "transactions carry witnesses but the coinbase has no witness commitment"
                        .into(),
                );
            }
        }
    }
    u32::try_from(txs.len()).map_err(|_| "too many transactions".to_string())?;
    Ok(raw_txs)
}

/// A template made ready, waiting to be returned.
#[derive(Debug)]
struct Queued {
    template: Template,
    /// Still waiting for `RequestTransactionData.Success`.
    awaiting_data: bool,
    /// The transactions the TP listed for it (checked), once it did.
    transactions: Option<Vec<Vec<u8>>>,
}

/// The sans-IO Template Distribution client: messages in, templates and transaction-data
/// requests out.
#[derive(Debug)]
pub(super) struct TdpCore {
    verify: bool,
    /// The current tip (the last `SetNewPrevHash`).
    tip: Option<Tip>,
    /// The tip before it (solutions on it may still be submitted).
    previous_tip: Option<[u8; 32]>,
    /// Future templates by id, waiting for their `SetNewPrevHash`.
    future: BTreeMap<u64, Announced>,
    /// Ready templates, in order.
    queue: VecDeque<Queued>,
    /// Template ids to send `RequestTransactionData` for.
    requests: Vec<u64>,
    /// Templates returned, with their prev_hash (pruned to the last two tips).
    issued: Vec<(u64, [u8; 32])>,
    /// The last `NewTemplate.template_id` (they must increase).
    last_id: Option<u64>,
    /// The transactions of the template returned last (verified templates only).
    returned_transactions: Option<(u64, Vec<Vec<u8>>)>,
}

impl TdpCore {
    pub(super) fn new(verify: bool) -> Self {
        TdpCore {
            verify,
            tip: None,
            previous_tip: None,
            future: BTreeMap::new(),
            queue: VecDeque::new(),
            requests: Vec::new(),
            issued: Vec::new(),
            last_id: None,
            returned_transactions: None,
        }
    }

    /// Template ids to request transaction data for (drained).
    pub(super) fn take_requests(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.requests)
    }

    /// The next template ready to be returned, if any.
    pub(super) fn pop_ready(&mut self) -> Option<Template> {
        if self.queue.front().is_some_and(|q| !q.awaiting_data) {
            let Queued {
                template,
                transactions,
                ..
            } = self.queue.pop_front()?;
            self.returned_transactions = transactions.map(|txs| (template.id, txs));
            self.issued.push((template.id, template.prev_hash));
            debug!(
                template_id = template.id,
                height = template.height,
                "template ready"
            );
            Some(template)
        } else {
            None
        }
    }

    /// The transactions (besides the coinbase, in block order) of the template returned
    /// last, when it was verified against them.
    pub(super) fn transactions(&self, template_id: u64) -> Option<&[Vec<u8>]> {
        self.returned_transactions
            .as_ref()
            .filter(|(id, _)| *id == template_id)
            .map(|(_, txs)| &txs[..])
    }

    /// Whether a solution on `template_id` can be submitted: the template was returned and
    /// builds on the current tip or the one before.
    pub(super) fn is_submittable(&self, template_id: u64) -> bool {
        self.issued.iter().any(|(id, _)| *id == template_id)
    }

    fn enqueue(&mut self, template: Template) {
        if self.queue.len() >= MAX_QUEUED_TEMPLATES {
            if let Some(old) = self.queue.pop_front() {
                warn!(
                    template_id = old.template.id,
                    "dropping an unreturned template: too many queued"
                );
            }
        }
        if self.verify {
            self.requests.push(template.id);
        }
        self.queue.push_back(Queued {
            template,
            awaiting_data: self.verify,
            transactions: None,
        });
    }

    pub(super) fn handle(&mut self, msg: TemplateDistributionMessage) -> Result<(), SourceError> {
        match msg {
            TemplateDistributionMessage::NewTemplate(m) => self.on_new_template(&m),
            TemplateDistributionMessage::SetNewPrevHash(m) => self.on_set_new_prev_hash(&m),
            TemplateDistributionMessage::RequestTransactionDataSuccess(m) => {
                self.on_transaction_data(&m)
            }
            TemplateDistributionMessage::RequestTransactionDataError(m) => {
                self.on_transaction_data_error(&m);
                Ok(())
            }
            other => {
                warn!(
                    message = other.name(),
                    "ignoring a client message sent by the template provider"
                );
                Ok(())
            }
        }
    }

    fn on_new_template(&mut self, m: &NewTemplate) -> Result<(), SourceError> {
        let id = m.template_id;
        if let Some(last) = self.last_id.filter(|&last| id <= last) {
            return Err(SourceError::Protocol(format!(
                "NewTemplate {id} after NewTemplate {last}: template ids must increase"
            )));
        }
        self.last_id = Some(id);
        let announced = Announced::decode(m)?;
        debug!(
            template_id = id,
            future = m.future_template,
            height = announced.height,
            "NewTemplate"
        );
        if m.future_template {
            if self.future.len() >= MAX_FUTURE_TEMPLATES {
                self.future.pop_first();
            }
            self.future.insert(id, announced);
            return Ok(());
        }
        let Some(tip) = self.tip else {
            return Err(SourceError::Protocol(format!(
                "NewTemplate {id} is not a future template but no SetNewPrevHash came before it"
            )));
        };
        self.enqueue(announced.on(&tip));
        Ok(())
    }

    fn on_set_new_prev_hash(&mut self, m: &SetNewPrevHash) -> Result<(), SourceError> {
        let Some(announced) = self.future.remove(&m.template_id) else {
            return Err(SourceError::Protocol(format!(
                "SetNewPrevHash names template {}, which was not announced as a future template",
                m.template_id
            )));
        };
        let tip = Tip::of(m);
        info!(
            template_id = m.template_id,
            height = announced.height,
            "new tip from the template provider"
        );
        // the other future templates were for other tips (spec 7.3)
        self.future.clear();
        if self.tip.map(|t| t.prev_hash) != Some(tip.prev_hash) {
            self.previous_tip = self.tip.map(|t| t.prev_hash);
            let (current, previous) = (tip.prev_hash, self.previous_tip);
            self.issued
                .retain(|(_, h)| *h == current || Some(*h) == previous);
            // templates on older tips that were not returned yet are stale
            self.queue.retain(|q| {
                let keep = q.template.prev_hash == current;
                if !keep {
                    debug!(template_id = q.template.id, "dropping a stale template");
                }
                keep
            });
        }
        self.tip = Some(tip);
        self.enqueue(announced.on(&tip));
        Ok(())
    }

    fn on_transaction_data(
        &mut self,
        m: &RequestTransactionDataSuccess,
    ) -> Result<(), SourceError> {
        let Some(q) = self
            .queue
            .iter_mut()
            .find(|q| q.awaiting_data && q.template.id == m.template_id)
        else {
            debug!(
                template_id = m.template_id,
                "transaction data for a template not waiting for it"
            );
            return Ok(());
        };
        let txs =
            check_transactions(&q.template, m.transaction_list.as_slice()).map_err(|reason| {
                SourceError::Protocol(format!("template {}: {reason}", m.template_id))
            })?;
        // checked to fit a u32 by check_transactions
        q.template.tx_count = txs.len() as u32;
        q.transactions = Some(txs);
        q.awaiting_data = false;
        Ok(())
    }

    fn on_transaction_data_error(&mut self, m: &RequestTransactionDataError) {
        let before = self.queue.len();
        self.queue
            .retain(|q| !(q.awaiting_data && q.template.id == m.template_id));
        debug!(
            template_id = m.template_id,
            error_code = %m.error_code,
            dropped = before != self.queue.len(),
            "RequestTransactionData.Error: template not verifiable, not returned"
        );
    }
}
