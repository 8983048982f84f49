//! Regtest coins held by this process, and the transactions that spend them: what puts
//! transactions into a real node's mempool, so that its templates carry them
//! (`strata-miner tips --mempool-txs`, and the pool's real-node tests).
//!
//! A [`Key`] is a P2WPKH key from a fixed secret; [`Key::spend`] signs a version-2
//! transaction spending outputs that pay it. [`fan_out`] and [`fan_in`] are the two shapes a
//! mempool is filled with: one coin split into many outputs, then each output spent on its
//! own (one input, one output: about 110 vbytes, a typical payment's size).

use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Address, Amount, CompressedPublicKey, KnownHrp, OutPoint, ScriptBuf,
    Sequence, Transaction, TxIn, TxOut, Witness,
};

/// A regtest P2WPKH key this process holds.
#[derive(Debug, Clone)]
pub struct Key {
    secret: SecretKey,
    public: CompressedPublicKey,
    /// Its regtest P2WPKH address.
    pub address: Address,
}

impl Key {
    /// The key with secret `[byte; 32]` (`byte` not 0).
    pub fn new(byte: u8) -> Key {
        let secp = Secp256k1::signing_only();
        let secret = SecretKey::from_slice(&[byte; 32]).expect("a nonzero byte is a valid scalar");
        let public = CompressedPublicKey(PublicKey::from_secret_key(&secp, &secret));
        let address = Address::p2wpkh(&public, KnownHrp::Regtest);
        Key {
            secret,
            public,
            address,
        }
    }

    /// Its output script.
    pub fn script(&self) -> ScriptBuf {
        self.address.script_pubkey()
    }

    /// A version-2 transaction spending `inputs` (each paying this key, with its value) to
    /// `outputs`, signed (P2WPKH, SIGHASH_ALL).
    pub fn spend(&self, inputs: &[(OutPoint, Amount)], outputs: Vec<TxOut>) -> Transaction {
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(previous_output, _)| TxIn {
                    previous_output: *previous_output,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        let secp = Secp256k1::signing_only();
        let script = self.script();
        let mut witnesses = Vec::with_capacity(inputs.len());
        {
            let mut cache = SighashCache::new(&tx);
            for (i, (_, value)) in inputs.iter().enumerate() {
                let sighash = cache
                    .p2wpkh_signature_hash(i, &script, *value, EcdsaSighashType::All)
                    .expect("every input is in the transaction");
                let signature = bitcoin::ecdsa::Signature {
                    signature: secp.sign_ecdsa(&Message::from(sighash), &self.secret),
                    sighash_type: EcdsaSighashType::All,
                };
                witnesses.push(Witness::p2wpkh(&signature, &self.public.0));
            }
        }
        for (input, witness) in tx.input.iter_mut().zip(witnesses) {
            input.witness = witness;
        }
        tx
    }
}

/// `coin` (paying `key`) split into `outputs` equal outputs back to `key`, `fee` paid;
/// with the outpoints and values of the new outputs.
pub fn fan_out(
    key: &Key,
    coin: (OutPoint, Amount),
    outputs: usize,
    fee: Amount,
) -> (Transaction, Vec<(OutPoint, Amount)>) {
    let each = (coin.1 - fee) / outputs.max(1) as u64;
    let tx = key.spend(
        &[coin],
        (0..outputs)
            .map(|_| TxOut {
                value: each,
                script_pubkey: key.script(),
            })
            .collect(),
    );
    let txid = tx.compute_txid();
    let coins = (0..outputs)
        .map(|vout| {
            (
                OutPoint {
                    txid,
                    vout: vout as u32,
                },
                each,
            )
        })
        .collect();
    (tx, coins)
}

/// The output of `block`'s coinbase that pays `key`, from the node's `getblock HASH 2`
/// answer (its outpoint and value); `None` when the coinbase does not pay it.
pub fn coinbase_coin(block: &serde_json::Value, key: &Key) -> Option<(OutPoint, Amount)> {
    let coinbase = &block["tx"][0];
    let txid = coinbase["txid"].as_str()?.parse().ok()?;
    let script = hex::encode(key.script().as_bytes());
    let output = coinbase["vout"]
        .as_array()?
        .iter()
        .find(|o| o["scriptPubKey"]["hex"].as_str() == Some(script.as_str()))?;
    Some((
        OutPoint {
            txid,
            vout: u32::try_from(output["n"].as_u64()?).ok()?,
        },
        Amount::from_btc(output["value"].as_f64()?).ok()?,
    ))
}

/// `coin` (paying `key`) spent back to `key` alone, `fee` paid.
pub fn fan_in(key: &Key, coin: (OutPoint, Amount), fee: Amount) -> Transaction {
    key.spend(
        &[coin],
        vec![TxOut {
            value: coin.1 - fee,
            script_pubkey: key.script(),
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    #[test]
    fn fan_out_then_in_keeps_the_value_less_the_fees() {
        let key = Key::new(7);
        let coin = (
            OutPoint {
                txid: bitcoin::Txid::from_byte_array([1; 32]),
                vout: 0,
            },
            Amount::from_btc(50.0).expect("amount"),
        );
        let (parent, coins) = fan_out(&key, coin, 10, Amount::from_sat(10_000));
        assert_eq!(parent.output.len(), 10);
        assert_eq!(coins.len(), 10);
        assert!(coins.iter().all(|(o, _)| o.txid == parent.compute_txid()));
        let total: Amount = coins.iter().map(|c| c.1).sum();
        assert!(total <= Amount::from_btc(50.0).expect("amount") - Amount::from_sat(10_000));
        let child = fan_in(&key, coins[3], Amount::from_sat(1_000));
        assert_eq!(child.input[0].previous_output, coins[3].0);
        assert_eq!(child.output[0].value, coins[3].1 - Amount::from_sat(1_000));
        // signed: one P2WPKH witness (signature and key) per input
        assert_eq!(child.input[0].witness.len(), 2);
        assert_eq!(
            child.input[0].witness.nth(1),
            Some(&key.public.to_bytes()[..])
        );
        // a typical payment's size
        assert!((105..=115).contains(&child.vsize()), "{}", child.vsize());
    }

    #[test]
    fn the_coinbase_output_paying_the_key_is_found() {
        let key = Key::new(9);
        let other = Key::new(10);
        let block = serde_json::json!({"tx": [{
            "txid": "11".repeat(32),
            "vout": [
                {"n": 0, "value": 1.5, "scriptPubKey": {"hex": hex::encode(other.script().as_bytes())}},
                {"n": 1, "value": 48.5, "scriptPubKey": {"hex": hex::encode(key.script().as_bytes())}},
            ],
        }]});
        let (outpoint, value) = coinbase_coin(&block, &key).expect("pays the key");
        assert_eq!(outpoint.vout, 1);
        assert_eq!(outpoint.txid.to_string(), "11".repeat(32));
        assert_eq!(value, Amount::from_sat(4_850_000_000));
        assert_eq!(coinbase_coin(&block, &Key::new(11)), None);
    }
}
