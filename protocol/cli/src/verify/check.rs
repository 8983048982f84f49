//! The check itself, without I/O: a found block's coinbase against the split the pool's own
//! split function ([`strata_work::payout`]) computes from the block's window and the pool's
//! rules.

use std::fmt::Write as _;

use bitcoin::{Block, Network, ScriptBuf, TxOut};
use serde::Deserialize;
use strata_work::payout::{self, Payout, PayoutMode, PplnsWindow, Split};

/// A found block as the pool's API records it (`/api/v1/blocks/{hash}`, `block`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BlockInfo {
    pub(crate) height: u32,
    pub(crate) hash: String,
    /// The finder (`identity` or `identity/worker label`).
    pub(crate) worker: String,
    /// What the pool says its coinbase outputs paid in total.
    pub(crate) reward_sats: u64,
    /// The pool's outputs as it recorded them.
    pub(crate) outputs: Vec<Payout>,
    /// The window's share-id range (inclusive).
    pub(crate) window: Option<(i64, i64)>,
}

/// The payout rules (`/api/v1/blocks/{hash}`, `payout`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Rules {
    /// As Bitcoin Core names it: `main`, `test`, `testnet4`, `signet`, `regtest`.
    pub(crate) network: String,
    pub(crate) pool_script_hex: String,
    pub(crate) rules: PayoutMode,
}

impl Rules {
    pub(crate) fn network(&self) -> anyhow::Result<Network> {
        Network::from_core_arg(&self.network)
            .map_err(|_| anyhow::anyhow!("the pool names an unknown network {:?}", self.network))
    }

    pub(crate) fn pool_script(&self) -> anyhow::Result<ScriptBuf> {
        ScriptBuf::from_hex(&self.pool_script_hex)
            .map_err(|e| anyhow::anyhow!("the pool's script {:?}: {e}", self.pool_script_hex))
    }
}

/// The outcome: one line per finding, and how many of them are mismatches.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) lines: Vec<String>,
    pub(crate) mismatches: usize,
    /// Outputs of the split that the coinbase pays exactly.
    pub(crate) matched: usize,
}

impl Report {
    fn ok(&mut self, line: String) {
        self.lines.push(format!("ok        {line}"));
    }

    fn mismatch(&mut self, line: String) {
        self.mismatches += 1;
        self.lines.push(format!("MISMATCH  {line}"));
    }

    fn info(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// Who a finder label pays in solo mode: the channel identity, before any `/label` a proxy
/// added.
fn finder_identity(worker: &str) -> &str {
    worker.split('/').next().unwrap_or(worker)
}

/// Checks `block` (already known to be the block `info.hash` names, with a valid merkle
/// root) against the split of `window` under `rules`.
pub(crate) fn check(
    block: &Block,
    info: &BlockInfo,
    rules: &Rules,
    window: &PplnsWindow,
) -> anyhow::Result<Report> {
    let network = rules.network()?;
    let pool_script = rules.pool_script()?;
    let mut report = Report::default();
    let Some(coinbase) = block.txdata.first().filter(|tx| tx.is_coinbase()) else {
        report.mismatch("the block has no coinbase transaction".into());
        return Ok(report);
    };
    // the reward: everything the coinbase pays (the template's own outputs, the witness
    // commitment, carry nothing; any value there is reported below)
    let reward: u64 = coinbase.output.iter().map(|o| o.value.to_sat()).sum();
    // A block of a job a miner declared (Job Declaration): the pool's split was of its own
    // template's reward P when the job's token was given, the sum of the recorded outputs,
    // and the declared coinbase pays D, its own fees. Every other block's split is of the
    // whole reward.
    let recorded: u64 = info.outputs.iter().map(|p| p.sats).sum();
    let declared = !info.outputs.is_empty() && recorded != reward;
    let split_of = if declared { recorded } else { reward };
    if declared {
        report.info(format!(
            "a declared job (Job Declaration): the split is of the pool's template reward \
             {recorded} sats; the miner's coinbase pays {reward}"
        ));
    }
    let split: Split = match &rules.rules {
        PayoutMode::Pplns(cfg) => {
            let mut head = format!(
                "block {} height {} pplns: reward {reward} sats, fee {} ppm, dust {} sats, \
                 at most {} payees; window ",
                info.hash, info.height, cfg.fee_ppm, cfg.dust_sats, cfg.max_outputs
            );
            match info.window {
                Some((first, last)) => {
                    let _ = write!(
                        head,
                        "{first}..={last}, {} shares of {} identities",
                        window.shares,
                        window.workers.len()
                    );
                }
                None => head.push_str("empty (the pool takes the block)"),
            }
            report.info(head);
            if window.shares > cfg.window_shares {
                report.mismatch(format!(
                    "the window holds {} shares, more than the pool's window of {}",
                    window.shares, cfg.window_shares
                ));
            }
            payout::pplns_split(split_of, window, &pool_script, cfg, network)
        }
        PayoutMode::Solo(cfg) => {
            report.info(format!(
                "block {} height {} solo: reward {reward} sats, fee {} ppm, finder {}",
                info.hash, info.height, cfg.fee_ppm, info.worker
            ));
            payout::solo_split(
                split_of,
                finder_identity(&info.worker),
                &pool_script,
                cfg.fee_ppm,
                network,
            )
        }
    };
    if !info
        .hash
        .eq_ignore_ascii_case(&block.block_hash().to_string())
    {
        report.mismatch(format!(
            "the pool's record is for block {}, not {}",
            info.hash,
            block.block_hash()
        ));
    }
    if info.reward_sats != reward {
        report.mismatch(format!(
            "the pool records a reward of {} sats; the coinbase pays {reward}",
            info.reward_sats
        ));
    }
    if declared {
        let subsidy = payout::block_subsidy(info.height, network);
        compare_declared(&split, &coinbase.output, subsidy, &mut report);
    } else {
        compare_outputs(&split, &coinbase.output, &mut report);
    }
    if info.outputs != split.payouts {
        report.mismatch(format!(
            "the pool's record of the outputs differs from the recomputed split: recorded {}",
            describe(&info.outputs)
        ));
    }
    if !split.unpayable.is_empty() {
        report.info(format!(
            "identities without a valid {network} address (their part went to the pool): {}",
            split.unpayable.join(", ")
        ));
    }
    Ok(report)
}

/// The split's outputs come first in the coinbase, in order; the template's outputs after
/// them carry nothing.
fn compare_outputs(split: &Split, outputs: &[TxOut], report: &mut Report) {
    for (i, (expected, payee)) in split.outputs.iter().zip(&split.payouts).enumerate() {
        let sats = expected.value.to_sat();
        match outputs.get(i) {
            Some(actual) if actual == expected => {
                report.matched += 1;
                report.ok(format!("{:<64} {sats:>16} sats  output {i}", payee.owner));
            }
            Some(actual) if actual.script_pubkey == expected.script_pubkey => {
                report.mismatch(format!(
                    "{:<64} expected {sats} sats, output {i} pays {} sats",
                    payee.owner,
                    actual.value.to_sat()
                ));
            }
            Some(actual) => report.mismatch(format!(
                "{:<64} expected {sats} sats to {}, output {i} pays {} sats to {}",
                payee.owner,
                expected.script_pubkey.to_hex_string(),
                actual.value.to_sat(),
                actual.script_pubkey.to_hex_string()
            )),
            None => report.mismatch(format!(
                "{:<64} expected {sats} sats in output {i}; the coinbase has {} outputs",
                payee.owner,
                outputs.len()
            )),
        }
    }
    for (i, extra) in outputs.iter().enumerate().skip(split.outputs.len()) {
        if extra.value.to_sat() > 0 {
            report.mismatch(format!(
                "output {i} pays {} sats to {}, outside the split",
                extra.value.to_sat(),
                extra.script_pubkey.to_hex_string()
            ));
        }
    }
}

/// A declared job's coinbase: each script of the split is owed its share of `min(P,
/// max(subsidy, D))` ([`payout::owed`], the rule the pool's JDS checked the declaration
/// with), wherever in the coinbase and in however many outputs; the rest of a larger reward
/// may pay outputs of the miner's own.
fn compare_declared(split: &Split, outputs: &[TxOut], subsidy: u64, report: &mut Report) {
    for (script, owed, paid) in payout::owed(outputs, &split.outputs, subsidy) {
        let owner = split
            .outputs
            .iter()
            .zip(&split.payouts)
            .find(|(o, _)| &o.script_pubkey == script)
            .map_or("?", |(_, p)| p.owner.as_str());
        if paid >= owed {
            report.matched += 1;
            report.ok(format!(
                "{owner:<64} {paid:>16} sats  (owed {owed} of the declared reward)"
            ));
        } else {
            report.mismatch(format!(
                "{owner:<64} owed {owed} sats of the declared reward, the coinbase pays {paid}"
            ));
        }
    }
    for o in outputs {
        let own = !split
            .outputs
            .iter()
            .any(|s| s.script_pubkey == o.script_pubkey);
        if own && o.value.to_sat() > 0 {
            report.info(format!(
                "the miner's own output: {} sats to {}",
                o.value.to_sat(),
                o.script_pubkey.to_hex_string()
            ));
        }
    }
}

fn describe(payouts: &[Payout]) -> String {
    payouts
        .iter()
        .map(|p| format!("{} {} sats", p.owner, p.sats))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use bitcoin::absolute::LockTime;
    use bitcoin::block::{Header, Version};
    use bitcoin::hashes::Hash;
    use bitcoin::{
        Amount, BlockHash, CompactTarget, OutPoint, Sequence, Transaction, TxIn, TxMerkleNode,
        Witness,
    };
    use strata_work::payout::PplnsConfig;

    use super::*;

    const HEIGHT: u32 = 120;
    /// Regtest subsidy at HEIGHT (50 BTC) plus fees of the pool's template.
    const P: u64 = 5_000_010_000;

    fn address(n: u8) -> String {
        let key = bitcoin::key::Secp256k1::new();
        let sk = bitcoin::secp256k1::SecretKey::from_slice(&[n; 32]).expect("key");
        let pk = bitcoin::CompressedPublicKey(sk.public_key(&key));
        bitcoin::Address::p2wpkh(&pk, Network::Regtest).to_string()
    }

    fn rules() -> Rules {
        Rules {
            network: "regtest".into(),
            pool_script_hex: payout::payout_script(&address(9), Network::Regtest)
                .expect("script")
                .to_hex_string(),
            rules: PayoutMode::Pplns(PplnsConfig {
                fee_ppm: 10_000,
                ..PplnsConfig::default()
            }),
        }
    }

    fn window() -> PplnsWindow {
        PplnsWindow::from_shares([
            (1, address(1), 1000.0),
            (2, address(2), 3000.0),
            (3, address(1), 1000.0),
        ])
    }

    /// The pool's split of P, as its JDS required it.
    fn split() -> Split {
        let r = rules();
        let PayoutMode::Pplns(cfg) = r.rules else {
            unreachable!()
        };
        payout::pplns_split(
            P,
            &window(),
            &r.pool_script().expect("script"),
            &cfg,
            Network::Regtest,
        )
    }

    fn block(outputs: Vec<TxOut>) -> Block {
        let coinbase = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(vec![1, 120]),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: outputs,
        };
        Block {
            header: Header {
                version: Version::TWO,
                prev_blockhash: BlockHash::all_zeros(),
                merkle_root: TxMerkleNode::all_zeros(),
                time: 0,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: 0,
            },
            txdata: vec![coinbase],
        }
    }

    fn info(block: &Block, split: &Split) -> BlockInfo {
        BlockInfo {
            height: HEIGHT,
            hash: block.block_hash().to_string(),
            worker: address(1),
            reward_sats: block.txdata[0]
                .output
                .iter()
                .map(|o| o.value.to_sat())
                .sum(),
            outputs: split.payouts.clone(),
            window: Some((1, 3)),
        }
    }

    fn own(sats: u64) -> TxOut {
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: payout::payout_script(&address(7), Network::Regtest).expect("script"),
        }
    }

    #[test]
    fn a_declared_block_paying_the_split_and_its_own_output_matches() {
        let split = split();
        // the miner's block earned 30,000 sats more in fees: its own output, listed first
        let mut outputs = vec![own(30_000)];
        outputs.extend(split.outputs.iter().rev().cloned());
        let b = block(outputs);
        let report = check(&b, &info(&b, &split), &rules(), &window()).expect("check");
        assert_eq!(report.mismatches, 0, "{:#?}", report.lines);
        assert_eq!(report.matched, split.outputs.len());
        assert!(report.lines.iter().any(|l| l.contains("declared job")));
        assert!(report
            .lines
            .iter()
            .any(|l| l.contains("the miner's own output: 30000")));
    }

    #[test]
    fn a_declared_block_short_of_a_payees_part_is_a_mismatch() {
        let split = split();
        // less reward than the pool's template (fewer fees): every part scaled, but this
        // coinbase takes 1,000 sats from the first payee for the miner's own output
        let mut outputs = split.outputs.clone();
        outputs[0].value -= Amount::from_sat(6_000);
        outputs.push(own(1_000));
        let b = block(outputs);
        let report = check(&b, &info(&b, &split), &rules(), &window()).expect("check");
        assert_eq!(report.mismatches, 1, "{:#?}", report.lines);
        assert!(report
            .lines
            .iter()
            .any(|l| l.starts_with("MISMATCH") && l.contains("owed")));
    }

    #[test]
    fn a_pool_block_is_still_checked_output_by_output() {
        let r = rules();
        let PayoutMode::Pplns(cfg) = r.rules else {
            unreachable!()
        };
        let split = payout::pplns_split(
            P,
            &window(),
            &r.pool_script().expect("script"),
            &cfg,
            Network::Regtest,
        );
        let mut outputs = split.outputs.clone();
        outputs.swap(0, 1);
        let b = block(outputs);
        let report = check(&b, &info(&b, &split), &rules(), &window()).expect("check");
        assert!(report.mismatches >= 2, "{:#?}", report.lines);
        assert!(!report.lines.iter().any(|l| l.contains("declared job")));
    }
}
