//! Coinbase transactions: BIP34 height, extranonce space, pool tag, outputs, BIP141 witness.
//!
//! The coinbase this module builds has one input whose scriptSig is
//!
//! ```text
//! script_sig_prefix (BIP34 height push: NewTemplate.coinbase_prefix)
//! ‖ push(pool_tag)                      (omitted when the tag is empty)
//! ‖ OP_PUSHBYTES_N ‖ extranonce (N bytes: extranonce_prefix of the channel ‖ miner's bytes)
//! ```
//!
//! so that the extranonce is the last thing in the scriptSig and the bytes around it split the
//! transaction into the `coinbase_tx_prefix` / `coinbase_tx_suffix` of `NewExtendedMiningJob`
//! ([spec 5.3.16](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#5316-newextendedminingjob-server---client)),
//! the same layout as SRI's job factory. The outputs are the pool's payouts followed by the
//! template's `coinbase_tx_outputs`, which must come last (spec 7.2).
//!
//! Two serializations (docs/spec-notes.md §5):
//! * **stripped** (no BIP141 marker, flag or witness): `prefix ‖ extranonce ‖ suffix`; its
//!   SHA-256d is the txid, which goes into the merkle root. This is what NewExtendedMiningJob
//!   carries.
//! * **full** (with the witness reserved value when the outputs carry a witness commitment):
//!   what goes into the block and into `SubmitSolution.coinbase_tx`.

use bitcoin::{
    absolute::LockTime, consensus, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Witness,
};
use strata_protocol::template_distribution::NewTemplate;

use crate::merkle::{is_witness_commitment, sha256d_parts};

/// Consensus bounds of a coinbase scriptSig length (`bad-cb-length`).
pub const SCRIPT_SIG_LEN: std::ops::RangeInclusive<usize> = 2..=100;

/// Largest extranonce this module places with a single `OP_PUSHBYTES_N`.
pub const MAX_EXTRANONCE_LEN: usize = 75;

/// Why a coinbase cannot be built or assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoinbaseError {
    /// The scriptSig would be outside the consensus bounds of 2 to 100 bytes.
    #[error("coinbase scriptSig of {len} bytes is outside 2..=100")]
    ScriptSigLength {
        /// The scriptSig length.
        len: usize,
    },
    /// The extranonce space is larger than [`MAX_EXTRANONCE_LEN`].
    #[error("extranonce of {len} bytes is longer than {max}")]
    ExtranonceTooLong {
        /// Requested extranonce length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The extranonce given has the wrong length for this coinbase.
    #[error("extranonce of {got} bytes, the coinbase has room for {expected}")]
    ExtranonceLength {
        /// Extranonce bytes the coinbase was built for.
        expected: usize,
        /// Extranonce bytes given.
        got: usize,
    },
    /// The pool tag is longer than 255 bytes.
    #[error("pool tag of {len} bytes is longer than 255")]
    PoolTagTooLong {
        /// The tag length.
        len: usize,
    },
    /// The coinbase would have no outputs.
    #[error("coinbase has no outputs")]
    NoOutputs,
    /// `coinbase_tx_outputs` does not decode as the announced number of outputs.
    #[error("template output {index} of {count} does not decode")]
    TemplateOutput {
        /// Index of the output that failed.
        index: u32,
        /// `coinbase_tx_outputs_count`.
        count: u32,
    },
    /// `coinbase_tx_outputs` has bytes after the announced outputs.
    #[error("{extra} bytes after the {count} template outputs")]
    TemplateOutputsTrailing {
        /// Bytes left over.
        extra: usize,
        /// `coinbase_tx_outputs_count`.
        count: u32,
    },
    /// The pool's outputs spend more than the template leaves for them.
    #[error("pool outputs spend {spent} sat, the template leaves {available} sat")]
    ValueExceeded {
        /// Sum of the pool outputs.
        spent: u64,
        /// `coinbase_tx_value_remaining`.
        available: u64,
    },
    /// A stripped coinbase is too short to hold a version and a lock time.
    #[error("stripped coinbase of {len} bytes is too short")]
    TooShort {
        /// The length given.
        len: usize,
    },
}

/// Everything a coinbase is built from: a template's fields plus the pool's choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinbaseParams {
    /// Transaction nVersion (`NewTemplate.coinbase_tx_version`).
    pub version: u32,
    /// First bytes of the scriptSig: the BIP34 height push (`NewTemplate.coinbase_prefix`,
    /// or [`bip34_height_push`]).
    pub script_sig_prefix: Vec<u8>,
    /// Arbitrary bytes pushed after the height (pool tag); empty for none.
    pub pool_tag: Vec<u8>,
    /// Size of the full extended extranonce: channel `extranonce_prefix` + miner bytes.
    pub extranonce_len: usize,
    /// The input's nSequence (`NewTemplate.coinbase_tx_input_sequence`).
    pub sequence: u32,
    /// The pool's outputs (payouts), placed first.
    pub pool_outputs: Vec<TxOut>,
    /// The template's outputs (`NewTemplate.coinbase_tx_outputs`), placed last.
    pub template_outputs: Vec<TxOut>,
    /// nLockTime (`NewTemplate.coinbase_tx_locktime`).
    pub lock_time: u32,
    /// The single witness item of the input when the outputs carry a BIP141 commitment
    /// (all zeros, as Bitcoin Core commits to).
    pub witness_reserved_value: [u8; 32],
}

impl CoinbaseParams {
    /// Parameters from a template (spec 7.2): its version, scriptSig prefix, nSequence,
    /// outputs (decoded from the raw, count-less `coinbase_tx_outputs`, docs/spec-notes.md §4) and
    /// lock time, with the pool's payout outputs (checked against
    /// `coinbase_tx_value_remaining`), tag and extranonce size.
    pub fn from_template(
        template: &NewTemplate,
        pool_outputs: Vec<TxOut>,
        pool_tag: &[u8],
        extranonce_len: usize,
    ) -> Result<Self, CoinbaseError> {
        let spent = pool_outputs
            .iter()
            .map(|o| o.value.to_sat())
            .fold(0u64, u64::saturating_add);
        if spent > template.coinbase_tx_value_remaining {
            return Err(CoinbaseError::ValueExceeded {
                spent,
                available: template.coinbase_tx_value_remaining,
            });
        }
        Ok(CoinbaseParams {
            version: template.coinbase_tx_version,
            script_sig_prefix: template.coinbase_prefix.as_slice().to_vec(),
            pool_tag: pool_tag.to_vec(),
            extranonce_len,
            sequence: template.coinbase_tx_input_sequence,
            pool_outputs,
            template_outputs: decode_outputs(
                template.coinbase_tx_outputs.as_slice(),
                template.coinbase_tx_outputs_count,
            )?,
            lock_time: template.coinbase_tx_locktime,
            witness_reserved_value: [0; 32],
        })
    }
}

/// A built coinbase: the stripped bytes before and after the extranonce, and what is needed
/// to produce the full (witness) serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coinbase {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    extranonce_len: usize,
    witness_reserved_value: Option<[u8; 32]>,
    /// The transaction with a zero extranonce and no witness.
    tx: Transaction,
}

impl Coinbase {
    /// Builds the coinbase described by `params`. It carries a witness (the reserved value)
    /// exactly when one of its outputs is a BIP141 witness commitment.
    pub fn build(params: &CoinbaseParams) -> Result<Self, CoinbaseError> {
        let n = params.extranonce_len;
        if n > MAX_EXTRANONCE_LEN {
            return Err(CoinbaseError::ExtranonceTooLong {
                len: n,
                max: MAX_EXTRANONCE_LEN,
            });
        }
        let mut script_sig = params.script_sig_prefix.clone();
        push_data(&mut script_sig, &params.pool_tag)?;
        script_sig.push(n as u8); // OP_PUSHBYTES_N (OP_0 when n = 0)
        script_sig.resize(script_sig.len() + n, 0);
        if !SCRIPT_SIG_LEN.contains(&script_sig.len()) {
            return Err(CoinbaseError::ScriptSigLength {
                len: script_sig.len(),
            });
        }
        let script_sig_len = script_sig.len();

        let output: Vec<TxOut> = params
            .pool_outputs
            .iter()
            .chain(&params.template_outputs)
            .cloned()
            .collect();
        if output.is_empty() {
            return Err(CoinbaseError::NoOutputs);
        }
        let segwit = output
            .iter()
            .any(|o| is_witness_commitment(o.script_pubkey.as_bytes()));

        let tx = Transaction {
            version: Version(params.version as i32),
            lock_time: LockTime::from_consensus(params.lock_time),
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(script_sig),
                sequence: Sequence(params.sequence),
                witness: Witness::new(),
            }],
            output,
        };
        // no witness yet, so this is the stripped (txid) serialization
        let stripped = consensus::serialize(&tx);
        // version (4) + input count (1) + outpoint (36) + scriptSig length (1, since <= 100)
        let extranonce_end = 4 + 1 + 36 + 1 + script_sig_len;
        let extranonce_start = extranonce_end - n;
        Ok(Coinbase {
            prefix: stripped[..extranonce_start].to_vec(),
            suffix: stripped[extranonce_end..].to_vec(),
            extranonce_len: n,
            witness_reserved_value: segwit.then_some(params.witness_reserved_value),
            tx,
        })
    }

    /// The stripped bytes before the extranonce: `NewExtendedMiningJob.coinbase_tx_prefix`.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The stripped bytes after the extranonce: `NewExtendedMiningJob.coinbase_tx_suffix`.
    pub fn suffix(&self) -> &[u8] {
        &self.suffix
    }

    /// Size of the full extranonce (channel prefix + miner bytes).
    pub fn extranonce_len(&self) -> usize {
        self.extranonce_len
    }

    /// The witness reserved value, if this coinbase carries a witness.
    pub fn witness_reserved_value(&self) -> Option<[u8; 32]> {
        self.witness_reserved_value
    }

    /// The txid for this extranonce (given in parts, e.g. `[extranonce_prefix, extranonce]`),
    /// hashed in place.
    pub fn txid(&self, extranonce_parts: &[&[u8]]) -> Result<[u8; 32], CoinbaseError> {
        self.check_extranonce(extranonce_parts)?;
        Ok(txid_from_parts(
            &self.prefix,
            extranonce_parts,
            &self.suffix,
        ))
    }

    /// Appends the stripped serialization (whose SHA-256d is the txid) to `out`.
    pub fn write_stripped(
        &self,
        extranonce_parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), CoinbaseError> {
        self.check_extranonce(extranonce_parts)?;
        assemble_coinbase(&self.prefix, extranonce_parts, &self.suffix, out);
        Ok(())
    }

    /// Appends the full serialization (BIP141 marker, flag and witness when this coinbase has
    /// a witness) to `out`: the coinbase of the block and of `SubmitSolution`.
    pub fn write_full(
        &self,
        extranonce_parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), CoinbaseError> {
        self.check_extranonce(extranonce_parts)?;
        match self.witness_reserved_value {
            None => assemble_coinbase(&self.prefix, extranonce_parts, &self.suffix, out),
            Some(reserved) => assemble_coinbase_with_witness(
                &self.prefix,
                extranonce_parts,
                &self.suffix,
                &reserved,
                out,
            )?,
        }
        Ok(())
    }

    /// The full coinbase for this extranonce as a `bitcoin` transaction.
    pub fn to_transaction(&self, extranonce_parts: &[&[u8]]) -> Result<Transaction, CoinbaseError> {
        self.check_extranonce(extranonce_parts)?;
        let mut tx = self.tx.clone();
        let input = &mut tx.input[0];
        let mut script_sig = std::mem::take(&mut input.script_sig).into_bytes();
        script_sig.truncate(script_sig.len() - self.extranonce_len);
        for p in extranonce_parts {
            script_sig.extend_from_slice(p);
        }
        input.script_sig = ScriptBuf::from_bytes(script_sig);
        if let Some(reserved) = self.witness_reserved_value {
            input.witness = Witness::from_slice(&[reserved]);
        }
        Ok(tx)
    }

    fn check_extranonce(&self, parts: &[&[u8]]) -> Result<(), CoinbaseError> {
        let got: usize = parts.iter().map(|p| p.len()).sum();
        if got == self.extranonce_len {
            Ok(())
        } else {
            Err(CoinbaseError::ExtranonceLength {
                expected: self.extranonce_len,
                got,
            })
        }
    }
}

/// The txid of the coinbase `prefix ‖ extranonce_parts... ‖ suffix` (stripped bytes, spec
/// 5.3.16), hashed in pieces without allocating.
pub fn txid_from_parts(prefix: &[u8], extranonce_parts: &[&[u8]], suffix: &[u8]) -> [u8; 32] {
    // at most prefix + 2 or 3 extranonce parts + suffix; more parts are folded in a loop
    let mut pieces: [&[u8]; 6] = [&[]; 6];
    if extranonce_parts.len() <= 4 {
        pieces[0] = prefix;
        pieces[1..1 + extranonce_parts.len()].copy_from_slice(extranonce_parts);
        pieces[1 + extranonce_parts.len()] = suffix;
        return sha256d_parts(&pieces[..2 + extranonce_parts.len()]);
    }
    let mut v = Vec::with_capacity(extranonce_parts.len() + 2);
    v.push(prefix);
    v.extend_from_slice(extranonce_parts);
    v.push(suffix);
    sha256d_parts(&v)
}

/// Appends `prefix ‖ extranonce_parts... ‖ suffix` to `out`: the coinbase of spec 5.3.12 /
/// 5.3.16 (stripped if the prefix and suffix are).
pub fn assemble_coinbase(
    prefix: &[u8],
    extranonce_parts: &[&[u8]],
    suffix: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(prefix);
    for p in extranonce_parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(suffix);
}

/// Appends the full (BIP141) serialization of a coinbase given as stripped `prefix ‖
/// extranonce ‖ suffix`: marker and flag after the version, one witness item (the 32-byte
/// reserved value) before the lock time.
pub fn assemble_coinbase_with_witness(
    prefix: &[u8],
    extranonce_parts: &[&[u8]],
    suffix: &[u8],
    witness_reserved_value: &[u8; 32],
    out: &mut Vec<u8>,
) -> Result<(), CoinbaseError> {
    if prefix.len() < 4 || suffix.len() < 4 {
        return Err(CoinbaseError::TooShort {
            len: prefix.len() + suffix.len(),
        });
    }
    out.extend_from_slice(&prefix[..4]);
    out.extend_from_slice(&[0x00, 0x01]); // marker, flag
    out.extend_from_slice(&prefix[4..]);
    for p in extranonce_parts {
        out.extend_from_slice(p);
    }
    let lock_time_at = suffix.len() - 4;
    out.extend_from_slice(&suffix[..lock_time_at]);
    out.extend_from_slice(&[0x01, 0x20]); // one witness item of 32 bytes
    out.extend_from_slice(witness_reserved_value);
    out.extend_from_slice(&suffix[lock_time_at..]);
    Ok(())
}

/// The BIP34 height push that starts a coinbase scriptSig: `CScript() << height` as Bitcoin
/// Core writes it (`OP_0` for 0, `OP_1`..`OP_16` for 1 to 16, else a minimal little-endian
/// number push).
pub fn bip34_height_push(height: u32) -> Vec<u8> {
    match height {
        0 => vec![0x00],
        1..=16 => vec![0x50 + height as u8],
        _ => {
            let mut num: Vec<u8> = height.to_le_bytes().to_vec();
            while num.last() == Some(&0) {
                num.pop();
            }
            if num.last().is_some_and(|b| b & 0x80 != 0) {
                num.push(0); // keep it positive
            }
            let mut out = Vec::with_capacity(num.len() + 1);
            out.push(num.len() as u8);
            out.extend_from_slice(&num);
            out
        }
    }
}

/// Decodes `count` consensus-serialized outputs concatenated without a count prefix
/// (`NewTemplate.coinbase_tx_outputs`, docs/spec-notes.md §4); every byte must be used.
pub fn decode_outputs(bytes: &[u8], count: u32) -> Result<Vec<TxOut>, CoinbaseError> {
    // an output is at least 9 bytes: do not trust `count` for the allocation
    let mut outs = Vec::with_capacity((count as usize).min(bytes.len() / 9));
    let mut rest = bytes;
    for index in 0..count {
        let (out, used) = consensus::deserialize_partial::<TxOut>(rest)
            .map_err(|_| CoinbaseError::TemplateOutput { index, count })?;
        outs.push(out);
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return Err(CoinbaseError::TemplateOutputsTrailing {
            extra: rest.len(),
            count,
        });
    }
    Ok(outs)
}

/// Consensus-serializes outputs back to back without a count (the inverse of
/// [`decode_outputs`]).
pub fn encode_outputs(outputs: &[TxOut]) -> Vec<u8> {
    let mut v = Vec::new();
    for o in outputs {
        v.extend_from_slice(&consensus::serialize(o));
    }
    v
}

/// A pay-to output of `value` satoshis to `script_pubkey`.
pub fn output(value: u64, script_pubkey: ScriptBuf) -> TxOut {
    TxOut {
        value: Amount::from_sat(value),
        script_pubkey,
    }
}

fn push_data(script: &mut Vec<u8>, data: &[u8]) -> Result<(), CoinbaseError> {
    match data.len() {
        0 => {}
        len @ 1..=75 => script.push(len as u8),
        len @ 76..=255 => script.extend_from_slice(&[0x4c, len as u8]), // OP_PUSHDATA1
        len => return Err(CoinbaseError::PoolTagTooLong { len }),
    }
    script.extend_from_slice(data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::witness_commitment_script;
    use bitcoin::hashes::Hash;
    use proptest::prelude::*;

    fn params(height: u32, n: usize, segwit: bool) -> CoinbaseParams {
        let mut template_outputs = vec![];
        if segwit {
            template_outputs.push(output(
                0,
                ScriptBuf::from_bytes(witness_commitment_script(&[7; 32]).to_vec()),
            ));
        }
        CoinbaseParams {
            version: 2,
            script_sig_prefix: bip34_height_push(height),
            pool_tag: b"/strata/".to_vec(),
            extranonce_len: n,
            sequence: 0xffff_fffe,
            pool_outputs: vec![output(
                50_0000_0000,
                ScriptBuf::from_bytes(vec![0x51]), // OP_TRUE
            )],
            template_outputs,
            lock_time: height - 1,
            witness_reserved_value: [0; 32],
        }
    }

    #[test]
    fn bip34_pushes_match_core() {
        // CScript() << n
        assert_eq!(bip34_height_push(0), [0x00]);
        assert_eq!(bip34_height_push(1), [0x51]);
        assert_eq!(bip34_height_push(16), [0x60]);
        assert_eq!(bip34_height_push(17), [0x01, 0x11]);
        assert_eq!(bip34_height_push(101), [0x01, 0x65]);
        assert_eq!(bip34_height_push(128), [0x02, 0x80, 0x00]);
        assert_eq!(bip34_height_push(840_000), [0x03, 0x40, 0xd1, 0x0c]);
        assert_eq!(
            bip34_height_push(u32::MAX),
            [0x05, 0xff, 0xff, 0xff, 0xff, 0x00]
        );
        for h in [
            17u32,
            101,
            127,
            128,
            255,
            256,
            32767,
            32768,
            840_000,
            u32::MAX,
        ] {
            let ours = bip34_height_push(h);
            let theirs = bitcoin::script::Builder::new()
                .push_int(i64::from(h))
                .into_script();
            assert_eq!(ours, theirs.as_bytes(), "{h}");
        }
    }

    #[test]
    fn prefix_suffix_split_around_extranonce() {
        for segwit in [false, true] {
            let cb = Coinbase::build(&params(101, 12, segwit)).expect("valid");
            let ext = [0xabu8; 12];
            let tx = cb.to_transaction(&[&ext[..4], &ext[4..]]).expect("decodes");
            assert!(tx.is_coinbase());
            assert!(tx.input[0].script_sig.as_bytes().ends_with(&ext));
            assert_eq!(
                cb.txid(&[&ext]).expect("len"),
                tx.compute_txid().to_byte_array()
            );
            let mut stripped = vec![];
            cb.write_stripped(&[&ext], &mut stripped).expect("len");
            let mut full = vec![];
            cb.write_full(&[&ext], &mut full).expect("len");
            assert_eq!(full, consensus::serialize(&tx));
            assert_eq!(segwit, full != stripped);
            assert_eq!(segwit, tx.input[0].witness.len() == 1);
            assert_eq!(
                tx.compute_wtxid().to_byte_array() == tx.compute_txid().to_byte_array(),
                !segwit
            );
        }
    }

    #[test]
    fn bad_inputs_rejected() {
        let mut p = params(101, 12, true);
        p.extranonce_len = 76;
        assert!(matches!(
            Coinbase::build(&p),
            Err(CoinbaseError::ExtranonceTooLong { len: 76, max: 75 })
        ));
        // height push (2) + tag push (1 + 20) + extranonce push (1 + 75) = 99: fits
        p.extranonce_len = 75;
        p.pool_tag = vec![b'x'; 20];
        assert!(Coinbase::build(&p).is_ok());
        p.pool_tag = vec![b'x'; 22];
        assert_eq!(
            Coinbase::build(&p),
            Err(CoinbaseError::ScriptSigLength { len: 101 })
        );
        p.pool_tag = vec![b'x'; 256];
        assert_eq!(
            Coinbase::build(&p),
            Err(CoinbaseError::PoolTagTooLong { len: 256 })
        );
        // height 1 is one byte; with no tag and no extranonce the scriptSig is 2 bytes
        let mut p = params(1, 0, false);
        p.pool_tag.clear();
        assert!(Coinbase::build(&p).is_ok());
        p.script_sig_prefix.clear();
        assert_eq!(
            Coinbase::build(&p),
            Err(CoinbaseError::ScriptSigLength { len: 1 })
        );
        let mut p = params(101, 8, false);
        p.pool_outputs.clear();
        assert_eq!(Coinbase::build(&p), Err(CoinbaseError::NoOutputs));
        let cb = Coinbase::build(&params(101, 8, false)).expect("valid");
        assert_eq!(
            cb.txid(&[&[0; 7]]),
            Err(CoinbaseError::ExtranonceLength {
                expected: 8,
                got: 7
            })
        );
        assert!(
            assemble_coinbase_with_witness(&[0; 3], &[], &[0; 4], &[0; 32], &mut vec![]).is_err()
        );
    }

    #[test]
    fn template_outputs_decode() {
        let outs = vec![
            output(1, ScriptBuf::from_bytes(vec![0x51])),
            output(
                0,
                ScriptBuf::from_bytes(witness_commitment_script(&[1; 32]).to_vec()),
            ),
        ];
        let raw = encode_outputs(&outs);
        assert_eq!(decode_outputs(&raw, 2), Ok(outs.clone()));
        assert_eq!(decode_outputs(&[], 0), Ok(vec![]));
        assert_eq!(
            decode_outputs(&raw, 3),
            Err(CoinbaseError::TemplateOutput { index: 2, count: 3 })
        );
        assert_eq!(
            decode_outputs(&raw, 1),
            Err(CoinbaseError::TemplateOutputsTrailing {
                extra: raw.len() - 10,
                count: 1
            })
        );
        // a count far larger than the bytes does not reserve memory for it
        assert!(decode_outputs(&raw, u32::MAX).is_err());
    }

    #[test]
    fn from_template_checks_value() {
        let outs = vec![output(
            0,
            ScriptBuf::from_bytes(witness_commitment_script(&[1; 32]).to_vec()),
        )];
        let raw = encode_outputs(&outs);
        let template = NewTemplate {
            template_id: 1,
            future_template: false,
            version: 0x2000_0000,
            coinbase_tx_version: 2,
            coinbase_prefix: strata_protocol::B0_255::new(bip34_height_push(101)).expect("short"),
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: 50_0000_0000,
            coinbase_tx_outputs_count: 1,
            coinbase_tx_outputs: strata_protocol::B0_64K::new(raw).expect("short"),
            coinbase_tx_locktime: 100,
            merkle_path: strata_protocol::Seq0_255::new(vec![]).expect("empty"),
        };
        let pay = |v| vec![output(v, ScriptBuf::from_bytes(vec![0x51]))];
        let p =
            CoinbaseParams::from_template(&template, pay(50_0000_0000), b"tag", 8).expect("fits");
        assert_eq!(p.template_outputs, outs);
        assert_eq!(p.lock_time, 100);
        let cb = Coinbase::build(&p).expect("valid");
        assert!(cb.witness_reserved_value().is_some());
        assert_eq!(
            CoinbaseParams::from_template(&template, pay(50_0000_0001), b"tag", 8),
            Err(CoinbaseError::ValueExceeded {
                spent: 50_0000_0001,
                available: 50_0000_0000
            })
        );
    }

    proptest! {
        #[test]
        fn prop_split_matches_bitcoin(
            height in 0u32..10_000_000,
            n in 0usize..=32,
            tag in proptest::collection::vec(any::<u8>(), 0..40),
            segwit in any::<bool>(),
            ext in proptest::collection::vec(any::<u8>(), 32),
            split in 0usize..=32,
        ) {
            let mut p = params(height.max(1), n, segwit);
            p.pool_tag = tag;
            let Ok(cb) = Coinbase::build(&p) else { return Ok(()); };
            let ext = &ext[..n];
            let (a, b) = ext.split_at(split.min(n));
            let tx = cb.to_transaction(&[a, b]).expect("decodes");
            prop_assert!(tx.input[0].script_sig.as_bytes().ends_with(ext));
            prop_assert!(tx.input[0].script_sig.as_bytes().starts_with(&bip34_height_push(height.max(1))));
            prop_assert_eq!(cb.txid(&[a, b]).expect("len"), tx.compute_txid().to_byte_array());
            let mut stripped = vec![];
            cb.write_stripped(&[ext], &mut stripped).expect("len");
            prop_assert_eq!(stripped, consensus::serialize(&{
                let mut t = tx.clone();
                t.input[0].witness = Witness::new();
                t
            }));
        }
    }
}
