//! What a block of a declared job (Stratum V2 Job Declaration) owes the pool's split, and the
//! block subsidy that rule needs. The pool's JDS checks declarations with it and `strata
//! verify-payout` checks such blocks with it.
//!
//! The required outputs sum to `P`, the reward of the pool's template when the token was
//! allocated; the declared coinbase pays `D` in total (its own transactions, its own fees).
//! The required amounts are scaled to `T = min(P, max(subsidy, D))`: a coinbase paying at
//! least `P` pays each required script its amount in full (what is left of a larger reward
//! may go to outputs of the JDC's own); one paying less gives the required outputs all of it,
//! proportionally, and never less than their part of the block subsidy (burning the reward
//! does not shrink what the pool's payees get below the subsidy).

use bitcoin::{Network, ScriptBuf, TxOut};

/// The block subsidy at `height` on `network` (regtest halves every 150 blocks, the other
/// networks every 210,000), in satoshis.
pub fn block_subsidy(height: u32, network: Network) -> u64 {
    let interval = if network == Network::Regtest {
        150
    } else {
        210_000
    };
    let halvings = height / interval;
    if halvings >= 64 {
        0
    } else {
        (50 * 100_000_000u64) >> halvings
    }
}

/// What a declared coinbase paying `outputs` owes each script of `required` (in total, a
/// script that appears more than once summed, in `required`'s order), and what it pays it.
pub fn owed<'a>(
    outputs: &[TxOut],
    required: &'a [TxOut],
    subsidy: u64,
) -> Vec<(&'a ScriptBuf, u64, u64)> {
    let total = |v: &[TxOut]| -> u128 { v.iter().map(|o| u128::from(o.value.to_sat())).sum() };
    let (p, d) = (total(required), total(outputs));
    let t = p.min(d.max(u128::from(subsidy)));
    let mut owed: Vec<(&ScriptBuf, u128)> = Vec::new();
    for r in required {
        let share = u128::from(r.value.to_sat()) * t / p.max(1);
        match owed.iter_mut().find(|(s, _)| *s == &r.script_pubkey) {
            Some((_, sats)) => *sats += share,
            None => owed.push((&r.script_pubkey, share)),
        }
    }
    owed.into_iter()
        .map(|(script, sats)| {
            let paid: u64 = outputs
                .iter()
                .filter(|o| &o.script_pubkey == script)
                .map(|o| o.value.to_sat())
                .sum();
            // at most P, which is a sum of u64 amounts the caller made
            (script, u64::try_from(sats).unwrap_or(u64::MAX), paid)
        })
        .collect()
}

/// Whether `outputs` pay every script of `required` what it is owed ([`owed`]). The error
/// names the first shortfall.
pub fn check_required_outputs(
    outputs: &[TxOut],
    required: &[TxOut],
    subsidy: u64,
) -> Result<(), String> {
    for (script, sats, got) in owed(outputs, required, subsidy) {
        if got < sats {
            return Err(format!(
                "the coinbase pays {got} sats to required output {} (at least {sats} required)",
                script.to_hex_string()
            ));
        }
    }
    Ok(())
}
