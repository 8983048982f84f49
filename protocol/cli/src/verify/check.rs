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
            payout::pplns_split(reward, window, &pool_script, cfg, network)
        }
        PayoutMode::Solo(cfg) => {
            report.info(format!(
                "block {} height {} solo: reward {reward} sats, fee {} ppm, finder {}",
                info.hash, info.height, cfg.fee_ppm, info.worker
            ));
            payout::solo_split(
                reward,
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
    compare_outputs(&split, &coinbase.output, &mut report);
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

fn describe(payouts: &[Payout]) -> String {
    payouts
        .iter()
        .map(|p| format!("{} {} sats", p.owner, p.sats))
        .collect::<Vec<_>>()
        .join(", ")
}
