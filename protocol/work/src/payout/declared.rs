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

#[cfg(test)]
mod tests {
    use bitcoin::Amount;

    use super::*;

    fn script(n: u8) -> ScriptBuf {
        let mut b = vec![0x00, 0x14];
        b.extend_from_slice(&[n; 20]);
        ScriptBuf::from_bytes(b)
    }

    #[test]
    fn required_outputs_sum_per_script() {
        let out = |n: u8, sats: u64| TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: script(n),
        };
        let required = [out(1, 5), out(1, 5), out(2, 1)];
        // a subsidy of 11 alone covers the 11 required: every output in full
        let full = |o: &[TxOut]| check_required_outputs(o, &required, 11);
        assert!(full(&[out(1, 10), out(2, 1)]).is_ok());
        assert!(full(&[out(1, 9), out(2, 1)]).is_err());
        assert!(full(&[out(1, 6), out(1, 4), out(2, 1)]).is_ok());
        assert!(full(&[out(1, 10)]).is_err());
        // a larger reward: the required outputs in full, the rest anywhere
        assert!(full(&[out(1, 10), out(2, 1), out(3, 50)]).is_ok());
        assert!(full(&[out(1, 9), out(2, 1), out(3, 50)]).is_err());
        assert!(check_required_outputs(&[], &[], 0).is_ok());
    }

    #[test]
    fn a_smaller_reward_goes_to_the_required_outputs_proportionally_down_to_the_subsidy() {
        let out = |n: u8, sats: u64| TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: script(n),
        };
        // the pool's template paid 1,000 (subsidy 600 and 400 of fees), split 750 / 250
        let required = [out(1, 750), out(2, 250)];
        let check = |o: &[TxOut]| check_required_outputs(o, &required, 600);
        // the JDC's block has 200 of fees: 800 in total, all to the required outputs, 600 / 200
        assert!(check(&[out(1, 600), out(2, 200)]).is_ok());
        // ... but not 599 / 200 + 1 to itself
        assert!(check(&[out(1, 599), out(2, 200), out(3, 1)]).is_err());
        // burning does not help: below the subsidy the required outputs still get its parts
        assert!(check(&[out(1, 450), out(2, 150)]).is_ok());
        assert!(check(&[out(1, 449), out(2, 150)]).is_err());
        assert!(check(&[out(1, 10), out(2, 1)]).is_err());
        assert_eq!(block_subsidy(0, Network::Regtest), 5_000_000_000);
        assert_eq!(block_subsidy(150, Network::Regtest), 2_500_000_000);
        assert_eq!(block_subsidy(840_000, Network::Bitcoin), 312_500_000);
        assert_eq!(block_subsidy(u32::MAX, Network::Regtest), 0);
    }

    #[test]
    fn owed_lists_each_script_once_with_what_it_is_paid() {
        let out = |n: u8, sats: u64| TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: script(n),
        };
        let required = [out(1, 5), out(2, 1), out(1, 5)];
        let owed: Vec<(ScriptBuf, u64, u64)> =
            owed(&[out(2, 3), out(1, 4), out(1, 6)], &required, 11)
                .into_iter()
                .map(|(s, o, p)| (s.clone(), o, p))
                .collect();
        assert_eq!(owed, [(script(1), 10, 10), (script(2), 1, 3)]);
    }
}
