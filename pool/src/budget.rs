//! The worst case of the coinbase the pool builds, from its configuration alone: serialized
//! size, weight and sigop cost, computed in one place ([`CoinbaseBudget::new`]) and used to
//! make sure every coinbase fits the room the node leaves for it.
//!
//! The pool's coinbase is one input whose scriptSig is the template's BIP34 height push, the
//! pushed pool tag and the pushed extranonce (see `strata_work::coinbase`), then the payout
//! outputs (at most `max_outputs` payees in PPLNS, the finder in solo, plus the pool's own
//! output), then the template's required outputs, and the BIP141 witness (the 32-byte
//! reserved value). A payee's address is not known in advance, so each payee output counts as
//! the largest standard output: [`MAX_PAYEE_SCRIPT_LEN`] bytes of script (P2WSH, P2TR) and
//! [`MAX_PAYEE_SIGOPS`] legacy sigop (P2PKH). The template side is bounded by what Bitcoin
//! Core puts there: a height push of at most [`MAX_HEIGHT_PUSH_LEN`] bytes and one witness
//! commitment output.
//!
//! Where the numbers go:
//! * `tdp`: [`CoinbaseBudget::constraints`] becomes the `CoinbaseOutputConstraints` the pool
//!   sends to the Template Provider.
//! * `rpc`: `getblocktemplate` fills the block up to 4,000,000 weight units less bitcoind's
//!   `-blockreservedweight` (default 8000), which has to hold the block header, the
//!   transaction count and the whole coinbase; and up to 80,000 sigop cost less 400 for the
//!   coinbase's outputs. [`CoinbaseBudget::check_reserve`] refuses a configuration whose
//!   worst-case coinbase does not fit (the pool then does not start) and names the
//!   `-blockreservedweight` bitcoind needs.
//! * A source that passes Bitcoin Core's `BlockCreateOptions` (IPC) takes
//!   [`CoinbaseConstraints::block_reserved_weight`] and
//!   [`CoinbaseConstraints::max_additional_sigops`].

use bitcoin::ScriptBuf;

use crate::config::{Config, PayoutKind};
use crate::server::session::PREFIX_LEN;
use crate::template::CoinbaseConstraints;

/// Bytes of the largest standard output script a payee address gives: P2WSH and P2TR
/// (P2PKH is 25, P2SH 23, P2WPKH 22).
pub const MAX_PAYEE_SCRIPT_LEN: usize = 34;

/// Most legacy sigops of a payee's output script: 1, for P2PKH's `OP_CHECKSIG`.
pub const MAX_PAYEE_SIGOPS: usize = 1;

/// Longest scriptSig prefix a template may bring (its BIP34 height push; see
/// [`Template::coinbase_prefix`](crate::template::Template::coinbase_prefix)).
pub const MAX_HEIGHT_PUSH_LEN: usize = 8;

/// Serialized bytes of a witness commitment output: value (8), script length (1), script
/// (`OP_RETURN OP_PUSHBYTES_36 aa21a9ed` + 32-byte commitment = 38).
pub const WITNESS_COMMITMENT_OUTPUT_LEN: usize = 8 + 1 + 38;

/// Weight of what a block holds besides its transactions: the 80-byte header and the
/// transaction count (at most a 3-byte compact size: a block has fewer than 65,536
/// transactions), all non-witness.
pub const BLOCK_OVERHEAD_WEIGHT: usize = 4 * (80 + 3);

/// Sigop cost Bitcoin Core reserves for the coinbase's outputs when it builds a template
/// (`DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS`; not settable for `getblocktemplate`).
pub const CORE_COINBASE_SIGOPS: u32 = 400;

pub use crate::template::CORE_DEFAULT_BLOCK_RESERVED_WEIGHT;

/// Consensus witness scale factor: a non-witness byte weighs 4, a witness byte 1; a sigop in
/// a legacy script costs 4.
const WITNESS_SCALE: usize = 4;

/// Witness bytes of the coinbase: marker and flag (2), one stack item count (1), the item's
/// length (1) and the 32-byte reserved value.
const WITNESS_LEN: usize = 2 + 1 + 1 + 32;

/// What the coinbase's size depends on in the pool's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinbaseShape {
    /// Most payee outputs besides the pool's own: `payout.max_outputs` in PPLNS, 1 in solo.
    pub payees: usize,
    /// Bytes of the pool's output script (fees, remainders).
    pub pool_script_len: usize,
    /// Legacy sigops of the pool's output script.
    pub pool_script_sigops: usize,
    /// Bytes of the pool tag pushed in the scriptSig.
    pub pool_tag_len: usize,
    /// Full extranonce bytes (channel prefix + miner bytes).
    pub extranonce_len: usize,
}

impl CoinbaseShape {
    /// The shape of coinbases paying `pool_script` under `cfg`.
    pub fn from_config(cfg: &Config, pool_script: &ScriptBuf) -> CoinbaseShape {
        CoinbaseShape {
            payees: match cfg.payout.mode {
                PayoutKind::Pplns => cfg.payout.max_outputs,
                PayoutKind::Solo => 1,
            },
            pool_script_len: pool_script.len(),
            pool_script_sigops: pool_script.count_sigops_legacy(),
            pool_tag_len: cfg.pool_tag.len(),
            // what every session allocates (see `Session::new`)
            extranonce_len: cfg.extranonce_size.clamp(PREFIX_LEN, 32),
        }
    }
}

/// Upper bounds of the coinbase the pool builds for one configuration
/// ([`CoinbaseBudget::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinbaseBudget {
    /// What the bounds were computed for.
    pub shape: CoinbaseShape,
    /// Bytes the pool adds to a template's coinbase: its outputs, the output count's growth
    /// and its scriptSig pushes (tag and extranonce). What `CoinbaseOutputConstraints`
    /// calls `coinbase_output_max_additional_size`.
    pub additional_size: usize,
    /// Bytes of the scriptSig at most (consensus allows 2 to 100).
    pub script_sig_len: usize,
    /// Serialized bytes of the whole coinbase with its witness, at most.
    pub size: usize,
    /// Weight of the whole coinbase, at most.
    pub weight: usize,
    /// Weight of the block header, transaction count and coinbase at most: the
    /// `-blockreservedweight` bitcoind needs.
    pub reserved_weight: usize,
    /// Sigop cost of the coinbase's outputs and scriptSig, at most.
    pub sigops: usize,
}

/// A configuration whose coinbase cannot fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// The scriptSig (height push, pool tag, extranonce) is longer than consensus allows.
    #[error(
        "the coinbase scriptSig can reach {len} bytes (height push, pool_tag, extranonce_size), \
         more than the 100 consensus allows: shorten pool_tag or lower extranonce_size"
    )]
    ScriptSig {
        /// Its length at most.
        len: usize,
    },
    /// The worst-case coinbase outweighs what the node reserves for it.
    #[error(
        "a coinbase with {payees} payees weighs up to {weight} WU, and with the block header \
         needs {needed} WU, but bitcoind reserves {reserved} WU: start bitcoind with \
         -blockreservedweight={needed} (or more) and set [rpc] block_reserved_weight = \
         {needed}, or lower [payout] max_outputs to {fits}"
    )]
    Weight {
        /// Payee outputs counted.
        payees: usize,
        /// The coinbase's weight at most.
        weight: usize,
        /// The reserve it needs (header and transaction count included).
        needed: usize,
        /// The reserve configured.
        reserved: u32,
        /// Most payees that fit the configured reserve.
        fits: usize,
    },
    /// The worst-case coinbase has more sigops than the node reserves for it.
    #[error(
        "a coinbase with {payees} payees may cost {sigops} sigops (P2PKH payees, and the \
         pool's own output), but bitcoind reserves {reserved}: lower [payout] max_outputs to \
         {fits}, or pay the pool to a segwit pool_address"
    )]
    Sigops {
        /// Payee outputs counted.
        payees: usize,
        /// The sigop cost at most.
        sigops: usize,
        /// The sigop cost reserved.
        reserved: u32,
        /// Most payees that fit.
        fits: usize,
    },
}

fn compact_size_len(n: usize) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

fn push_len(data_len: usize) -> usize {
    match data_len {
        0 => 0,
        1..=75 => 1 + data_len,
        _ => 2 + data_len,
    }
}

fn output_len(script_len: usize) -> usize {
    8 + compact_size_len(script_len) + script_len
}

impl CoinbaseBudget {
    /// The bounds for coinbases of `shape`.
    pub fn new(shape: CoinbaseShape) -> CoinbaseBudget {
        let payees = shape.payees;
        let pool_output = output_len(shape.pool_script_len);
        let payee_outputs = payees.saturating_mul(output_len(MAX_PAYEE_SCRIPT_LEN));
        // payees, the pool's output and the witness commitment
        let outputs = payees.saturating_add(2);
        let script_additions = push_len(shape.pool_tag_len) + 1 + shape.extranonce_len;
        let script_sig_len = MAX_HEIGHT_PUSH_LEN + script_additions;
        let stripped = (4 // version
            + 1 // input count
            + 36 // previous output (null)
            + compact_size_len(script_sig_len)
            + script_sig_len
            + 4 // sequence
            + compact_size_len(outputs)
            + WITNESS_COMMITMENT_OUTPUT_LEN
            + 4) // lock time
        .saturating_add(payee_outputs)
        .saturating_add(pool_output);
        let size = stripped.saturating_add(WITNESS_LEN);
        let weight = stripped
            .saturating_mul(WITNESS_SCALE)
            .saturating_add(WITNESS_LEN);
        // a template without pool outputs has a one-byte output count (its commitment)
        let additional_size = payee_outputs
            .saturating_add(pool_output)
            .saturating_add(compact_size_len(outputs) - 1)
            .saturating_add(script_additions);
        let sigops = payees
            .saturating_mul(MAX_PAYEE_SIGOPS)
            .saturating_add(shape.pool_script_sigops)
            .saturating_mul(WITNESS_SCALE);
        CoinbaseBudget {
            shape,
            additional_size,
            script_sig_len,
            size,
            weight,
            reserved_weight: weight.saturating_add(BLOCK_OVERHEAD_WEIGHT),
            sigops,
        }
    }

    /// The bounds for the coinbases of the pool configured by `cfg`, paying `pool_script`.
    pub fn for_config(cfg: &Config, pool_script: &ScriptBuf) -> CoinbaseBudget {
        CoinbaseBudget::new(CoinbaseShape::from_config(cfg, pool_script))
    }

    /// The limits told to a template source: `CoinbaseOutputConstraints` for a Template
    /// Provider, `BlockCreateOptions` for Bitcoin Core over IPC. Saturates at the fields'
    /// maxima.
    pub fn constraints(&self) -> CoinbaseConstraints {
        CoinbaseConstraints {
            max_additional_size: u32::try_from(self.additional_size).unwrap_or(u32::MAX),
            max_additional_sigops: u16::try_from(self.sigops).unwrap_or(u16::MAX),
            block_reserved_weight: u32::try_from(self.reserved_weight).unwrap_or(u32::MAX),
        }
    }

    /// Checks that every coinbase of this budget fits a node that reserves
    /// `reserved_weight` weight units (`-blockreservedweight`) and `reserved_sigops` sigop
    /// cost for it, and that its scriptSig is valid; the error says what to change.
    pub fn check_reserve(
        &self,
        reserved_weight: u32,
        reserved_sigops: u32,
    ) -> Result<(), FitError> {
        if self.script_sig_len > 100 {
            return Err(FitError::ScriptSig {
                len: self.script_sig_len,
            });
        }
        let reserved = usize::try_from(reserved_weight).unwrap_or(usize::MAX);
        if self.reserved_weight > reserved {
            return Err(FitError::Weight {
                payees: self.shape.payees,
                weight: self.weight,
                needed: self.reserved_weight,
                reserved: reserved_weight,
                fits: self.max_payees(|b| b.reserved_weight <= reserved),
            });
        }
        let reserved = usize::try_from(reserved_sigops).unwrap_or(usize::MAX);
        if self.sigops > reserved {
            return Err(FitError::Sigops {
                payees: self.shape.payees,
                sigops: self.sigops,
                reserved: reserved_sigops,
                fits: self.max_payees(|b| b.sigops <= reserved),
            });
        }
        Ok(())
    }

    /// Most payees (up to this budget's) whose budget satisfies `fits` (0 when none does).
    fn max_payees(&self, fits: impl Fn(&CoinbaseBudget) -> bool) -> usize {
        // the bounds grow with the payees: binary search the last count that fits
        let (mut lo, mut hi) = (0usize, self.shape.payees);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let budget = CoinbaseBudget::new(CoinbaseShape {
                payees: mid,
                ..self.shape
            });
            if fits(&budget) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{PplnsWindow, WorkerWeight};
    use crate::payout::{pplns_split, PplnsConfig};
    use bitcoin::key::Secp256k1;
    use bitcoin::secp256k1::{Keypair, SecretKey};
    use bitcoin::{Address, Network, TxOut};
    use strata_work::coinbase::{bip34_height_push, output, Coinbase, CoinbaseParams};
    use strata_work::merkle::witness_commitment_script;

    const NET: Network = Network::Regtest;

    fn p2tr(i: u32) -> Address {
        let secp = Secp256k1::new();
        let mut secret = [0u8; 32];
        secret[..4].copy_from_slice(&(i + 1).to_be_bytes());
        secret[31] = 1;
        let key = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&secret).expect("key"));
        Address::p2tr(&secp, key.x_only_public_key().0, None, NET)
    }

    fn shape(payees: usize, pool_script: &ScriptBuf) -> CoinbaseShape {
        CoinbaseShape {
            payees,
            pool_script_len: pool_script.len(),
            pool_script_sigops: pool_script.count_sigops_legacy(),
            pool_tag_len: b"/strata/".len(),
            extranonce_len: 16,
        }
    }

    /// The coinbase the pool builds for `payees` P2TR payees (its own PPLNS split and
    /// coinbase code) on a mainnet-height template with a witness commitment.
    fn real_coinbase(payees: u32, pool_script: &ScriptBuf) -> (bitcoin::Transaction, usize) {
        let workers: Vec<WorkerWeight> = (0..payees)
            .map(|i| WorkerWeight {
                worker: format!("{}.rig", p2tr(i)),
                shares: 1,
                difficulty: 1.0 + f64::from(i),
            })
            .collect();
        let window = PplnsWindow::from_shares(
            workers
                .iter()
                .enumerate()
                .map(|(i, w)| (i as i64 + 1, w.worker.as_str(), w.difficulty)),
        );
        let cfg = PplnsConfig {
            max_outputs: payees as usize,
            dust_sats: 0,
            fee_ppm: 10_000,
            ..PplnsConfig::default()
        };
        let split = pplns_split(312_500_000, &window, pool_script, &cfg, NET);
        assert_eq!(split.outputs.len(), payees as usize + 1, "every payee paid");
        let commitment: TxOut = output(
            0,
            ScriptBuf::from_bytes(witness_commitment_script(&[9; 32]).to_vec()),
        );
        let coinbase = Coinbase::build(&CoinbaseParams {
            version: 2,
            script_sig_prefix: bip34_height_push(930_000),
            pool_tag: b"/strata/".to_vec(),
            extranonce_len: 16,
            sequence: 0xffff_ffff,
            pool_outputs: split.outputs.clone(),
            template_outputs: vec![commitment],
            lock_time: 0,
            witness_reserved_value: [0; 32],
        })
        .expect("coinbase");
        let tx = coinbase
            .to_transaction(&[&[0xab; 16]])
            .expect("transaction");
        let mut full = Vec::new();
        coinbase
            .write_full(&[&[0xab; 16]], &mut full)
            .expect("serialize");
        (tx, full.len())
    }

    #[test]
    fn the_bound_covers_the_real_coinbase_of_100_p2tr_payees_closely() {
        let pool = p2tr(1_000_000).script_pubkey();
        let (tx, size) = real_coinbase(100, &pool);
        let budget = CoinbaseBudget::new(shape(100, &pool));
        let weight = tx.weight().to_wu() as usize;
        assert!(budget.size >= size, "{} < {size}", budget.size);
        assert!(budget.weight >= weight, "{} < {weight}", budget.weight);
        // only the height push is bounded loosely (8 bytes for a 4-byte push)
        assert!(budget.size - size <= 8, "{} vs {size}", budget.size);
        assert!(
            budget.weight - weight <= 4 * 8,
            "{} vs {weight}",
            budget.weight
        );
        assert_eq!(budget.reserved_weight, budget.weight + 4 * 83);
        let sigops: usize = tx
            .output
            .iter()
            .map(|o| o.script_pubkey.count_sigops_legacy())
            .sum::<usize>()
            + tx.input[0].script_sig.count_sigops_legacy();
        assert!(budget.sigops >= 4 * sigops);
        // P2TR outputs have none; the bound counts each payee as a P2PKH
        assert_eq!(budget.sigops, 400);
    }

    #[test]
    fn the_bound_covers_every_payee_count() {
        let pool = p2tr(1_000_000).script_pubkey();
        for payees in [1u32, 2, 30, 250, 260] {
            let (tx, size) = real_coinbase(payees, &pool);
            let budget = CoinbaseBudget::new(shape(payees as usize, &pool));
            assert!(budget.size >= size, "{payees}");
            assert!(budget.weight >= tx.weight().to_wu() as usize, "{payees}");
            assert!(
                budget.additional_size >= size - tx_size_without_pool(&tx, payees as usize, &pool),
                "{payees}"
            );
        }
    }

    /// The coinbase's size without the pool's additions (outputs, tag and extranonce).
    fn tx_size_without_pool(tx: &bitcoin::Transaction, payees: usize, pool: &ScriptBuf) -> usize {
        let mut bare = tx.clone();
        bare.output.drain(..=payees.min(bare.output.len() - 1));
        assert!(bare.output.iter().all(|o| o.script_pubkey != *pool));
        bare.input[0].script_sig = ScriptBuf::from_bytes(bip34_height_push(930_000));
        bitcoin::consensus::serialize(&bare).len()
    }

    #[test]
    fn core_needs_a_larger_reserve_for_100_payees() {
        let pool = p2tr(1_000_000).script_pubkey();
        let s = shape(100, &pool);
        let budget = CoinbaseBudget::new(s);
        let err = budget
            .check_reserve(CORE_DEFAULT_BLOCK_RESERVED_WEIGHT, CORE_COINBASE_SIGOPS)
            .expect_err("100 payees do not fit 8000 WU");
        let FitError::Weight { needed, fits, .. } = err.clone() else {
            panic!("{err:?}");
        };
        assert_eq!(needed, budget.reserved_weight);
        let message = err.to_string();
        assert!(
            message.contains(&format!("-blockreservedweight={needed}")),
            "{message}"
        );
        // what the message offers does fit, one more payee does not
        let fitting = shape(fits, &pool);
        assert!(CoinbaseBudget::new(fitting)
            .check_reserve(8000, 400)
            .is_ok());
        let over = shape(fits + 1, &pool);
        assert!(CoinbaseBudget::new(over).reserved_weight > 8000);
        // and the reserve it names is enough
        let needed = u32::try_from(needed).expect("small");
        assert_eq!(budget.check_reserve(needed, 400), Ok(()));
        assert!(budget.check_reserve(needed - 1, 400).is_err());
    }

    #[test]
    fn a_p2pkh_pool_output_with_100_payees_exceeds_cores_sigops() {
        let pool = Address::p2pkh(
            bitcoin::PubkeyHash::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
            NET,
        )
        .script_pubkey();
        let s = shape(100, &pool);
        let budget = CoinbaseBudget::new(s);
        assert_eq!(budget.sigops, 404);
        let err = budget
            .check_reserve(100_000, CORE_COINBASE_SIGOPS)
            .expect_err("404 > 400");
        assert!(matches!(err, FitError::Sigops { fits: 99, .. }), "{err:?}");
    }

    #[test]
    fn an_overlong_script_sig_is_refused() {
        let pool = p2tr(1).script_pubkey();
        let s = CoinbaseShape {
            pool_tag_len: 80,
            ..shape(1, &pool)
        };
        let budget = CoinbaseBudget::new(s);
        assert!(matches!(
            budget.check_reserve(100_000, 400),
            Err(FitError::ScriptSig { .. })
        ));
    }

    #[test]
    fn constraints_carry_the_numbers() {
        let pool = p2tr(1).script_pubkey();
        let budget = CoinbaseBudget::new(shape(100, &pool));
        let c = budget.constraints();
        assert_eq!(c.max_additional_size as usize, budget.additional_size);
        assert_eq!(c.max_additional_sigops as usize, budget.sigops);
        assert_eq!(c.block_reserved_weight as usize, budget.reserved_weight);
        // 101 outputs of 43 bytes (102 outputs: still a 1-byte count), the tag and
        // extranonce pushes
        assert_eq!(budget.additional_size, 101 * 43 + 9 + 17);
    }
}
