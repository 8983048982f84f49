//! The JDC's coinbases: the outputs a token requires scaled to the template's reward, the
//! coinbase of one template around an extranonce room, and the work and blocks made of it.

use std::sync::Arc;

use bitcoin::{Amount, ScriptBuf, TxOut};
use strata_template::Template;
use strata_work::coinbase::{Coinbase, CoinbaseParams};
use strata_work::header::Header;
use strata_work::merkle::merkle_root_from_path;

/// The outputs of a coinbase paying `reward` satoshis on a token requiring `required`
/// (`AllocateMiningJobToken.Success.coinbase_tx_outputs`), with what is left to `own`.
///
/// `required` sums to `P`, the reward of the pool's own template. With a reward of at least
/// `P` each required output is paid in full and the rest goes to `own` (to the first
/// required output when `own` is empty); with less, the reward is split among the required
/// outputs in proportion (the remainder of the rounding to the first), as the pool's JDS
/// checks it. A token with outputs of 0 sats in total (SRI's JDS: one output to the pool's
/// script) gets the whole reward in its first output. No required output: all to `own`.
pub fn pool_outputs(required: &[TxOut], reward: u64, own: &ScriptBuf) -> Vec<TxOut> {
    let sat = |o: &TxOut| o.value.to_sat();
    let p: u64 = required.iter().map(sat).fold(0, u64::saturating_add);
    let mut out: Vec<TxOut> = required.to_vec();
    if out.is_empty() {
        return vec![TxOut {
            value: Amount::from_sat(reward),
            script_pubkey: own.clone(),
        }];
    }
    if p == 0 {
        out[0].value = Amount::from_sat(reward);
        return out;
    }
    if reward >= p {
        let rest = reward - p;
        if rest > 0 {
            if own.is_empty() {
                out[0].value = Amount::from_sat(sat(&out[0]) + rest);
            } else {
                out.push(TxOut {
                    value: Amount::from_sat(rest),
                    script_pubkey: own.clone(),
                });
            }
        }
        return out;
    }
    let mut paid = 0u64;
    for o in &mut out {
        let v = (u128::from(sat(o)) * u128::from(reward) / u128::from(p)) as u64;
        o.value = Amount::from_sat(v);
        paid += v;
    }
    out[0].value = Amount::from_sat(sat(&out[0]) + (reward - paid));
    out
}

/// The coinbase of one template with `outputs` first (then the template's own, such as the
/// witness commitment), the tag after the height, and room for a full extranonce.
#[derive(Debug, Clone)]
pub struct JobCoinbase {
    /// The coinbase (stripped parts around the extranonce, full serialization).
    pub coinbase: Coinbase,
    /// The scriptSig before the extranonce (`SetCustomMiningJob.coinbase_prefix`).
    pub head: Vec<u8>,
    /// All outputs, in order (`SetCustomMiningJob.coinbase_tx_outputs`).
    pub outputs: Vec<TxOut>,
    /// The full serialization before the extranonce (`DeclareMiningJob.coinbase_tx_prefix`).
    pub declared_prefix: Vec<u8>,
    /// The full serialization after it (`DeclareMiningJob.coinbase_tx_suffix`).
    pub declared_suffix: Vec<u8>,
}

impl JobCoinbase {
    /// Builds it; fails when the scriptSig or the outputs do not fit a coinbase or pay more
    /// than the template's reward.
    pub fn build(
        t: &Template,
        outputs: Vec<TxOut>,
        tag: &[u8],
        room: usize,
    ) -> Result<Self, String> {
        let paid: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
        if paid > t.coinbase_tx_value_remaining {
            return Err(format!(
                "outputs pay {paid} sats, the template's reward is {}",
                t.coinbase_tx_value_remaining
            ));
        }
        let params = CoinbaseParams {
            version: t.coinbase_tx_version,
            script_sig_prefix: t.coinbase_prefix.clone(),
            pool_tag: tag.to_vec(),
            extranonce_len: room,
            sequence: t.coinbase_tx_input_sequence,
            pool_outputs: outputs,
            template_outputs: t.coinbase_tx_outputs.clone(),
            lock_time: t.coinbase_tx_locktime,
            witness_reserved_value: [0; 32],
        };
        let coinbase = Coinbase::build(&params).map_err(|e| e.to_string())?;
        let zeros = vec![0u8; room];
        let mut full = Vec::new();
        coinbase
            .write_full(&[&zeros], &mut full)
            .map_err(|e| e.to_string())?;
        // the full serialization has the BIP141 marker and flag before the input
        let start = coinbase.prefix().len()
            + if coinbase.witness_reserved_value().is_some() {
                2
            } else {
                0
            };
        // version (4) + input count (1) + outpoint (36) + scriptSig length (1)
        let head = coinbase.prefix()[4 + 1 + 36 + 1..].to_vec();
        let outputs: Vec<TxOut> = params
            .pool_outputs
            .iter()
            .chain(&params.template_outputs)
            .cloned()
            .collect();
        Ok(JobCoinbase {
            head,
            outputs,
            declared_prefix: full[..start].to_vec(),
            declared_suffix: full[start + room..].to_vec(),
            coinbase,
        })
    }

    /// The full coinbase (with its witness) for this extranonce, in parts.
    pub fn full(&self, extranonce: &[&[u8]]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.coinbase
            .write_full(extranonce, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The header of a share on this coinbase: merkle root of the coinbase with this
    /// extranonce up `merkle_path`.
    pub fn header(
        &self,
        extranonce: &[&[u8]],
        merkle_path: &[[u8; 32]],
        fields: HeaderFields,
    ) -> Result<Header, String> {
        let txid = self.coinbase.txid(extranonce).map_err(|e| e.to_string())?;
        Ok(Header {
            version: fields.version,
            prev_hash: fields.prev_hash,
            merkle_root: merkle_root_from_path(txid, merkle_path.iter()),
            ntime: fields.ntime,
            nbits: fields.nbits,
            nonce: fields.nonce,
        })
    }
}

/// A share's header fields besides the merkle root.
#[derive(Debug, Clone, Copy)]
pub struct HeaderFields {
    /// nVersion (rolled).
    pub version: u32,
    /// The tip.
    pub prev_hash: [u8; 32],
    /// nTime.
    pub ntime: u32,
    /// nBits.
    pub nbits: u32,
    /// Nonce.
    pub nonce: u32,
}

/// Shared, immutable coinbase of a published job.
pub(crate) type SharedCoinbase = Arc<JobCoinbase>;

#[cfg(test)]
mod tests {
    use super::*;

    fn out(sats: u64, b: u8) -> TxOut {
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51, b]),
        }
    }

    #[test]
    fn outputs_follow_the_jds_rule() {
        let own = ScriptBuf::from_bytes(vec![0x52]);
        // more reward than the pool's template: required in full, the rest to us
        let o = pool_outputs(&[out(600, 1), out(400, 2)], 1_500, &own);
        assert_eq!(
            o.iter().map(|o| o.value.to_sat()).collect::<Vec<_>>(),
            [600, 400, 500]
        );
        assert_eq!(o[2].script_pubkey, own);
        // less: proportional, rounding to the first
        let o = pool_outputs(&[out(600, 1), out(400, 2)], 999, &own);
        assert_eq!(
            o.iter().map(|o| o.value.to_sat()).collect::<Vec<_>>(),
            [600, 399]
        );
        // SRI's one 0-sat output: the whole reward in it
        let o = pool_outputs(&[out(0, 1)], 5_000, &own);
        assert_eq!(o[0].value.to_sat(), 5_000);
        assert_eq!(o.len(), 1);
        // none required: all ours
        let o = pool_outputs(&[], 5_000, &own);
        assert_eq!((o[0].value.to_sat(), &o[0].script_pubkey), (5_000, &own));
    }
}
