//! Who a found block pays: the pool's coinbase outputs, solo or PPLNS. Pure functions, no
//! I/O: the same inputs always give the same outputs, so anyone holding a block's recorded
//! PPLNS window (the pool's ledger keeps it and its API serves it) can recompute and check
//! its split. The pool builds its coinbases with these functions and `strata verify-payout`
//! checks a found block with the same ones.
//!
//! Payout addresses come from user identities, by the solo-pool convention
//! `ADDRESS.worker` ([`payout_script`]): the identity a channel was opened with, never the
//! worker name a proxy tags a share with (extension 0x0002; the pool's ledger keeps that
//! apart for statistics), so a proxy opened as a bare `ADDRESS` is paid whatever its miners
//! are called, dots included.
//! Every split pays out exactly the amount it is given:
//! whatever cannot or should not be paid to a miner (fee, rounding, dust, identities
//! without an address, payees past the output limit) goes to the pool's script.
//!
//! The outputs are ordered by amount (largest first), then by script bytes, and go first in
//! the coinbase, before the template's required outputs (the witness commitment).

use std::collections::BTreeMap;
use std::str::FromStr;

use bitcoin::{Address, Amount, Network, ScriptBuf, TxOut};
use serde::{Deserialize, Serialize};

mod declared;
mod window;

pub use declared::{block_subsidy, check_required_outputs, owed};
pub use window::{PplnsWindow, WindowBuilder, WorkerWeight};

/// [`Payout::owner`] of the pool's own output.
pub const POOL_OWNER: &str = "pool";

/// Parts per million: `fee_ppm` of this is 100 %.
const PPM: u128 = 1_000_000;

/// One output of a block's coinbase that the pool chose (its payout), as recorded with the
/// block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// Who is paid: a payout address, a worker identity, or `"pool"`.
    pub owner: String,
    /// The output script, hex.
    pub script_hex: String,
    /// Amount in satoshis.
    pub sats: u64,
}

/// How found blocks are paid (the `[payout]` table of the pool configuration):
///
/// ```toml
/// mode = "pplns"
/// window_shares = 100000
/// fee_ppm = 10000      # 1 %
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum PayoutMode {
    /// The finder's address takes the block (less the fee): [`solo_split`].
    Solo(SoloConfig),
    /// Paid over the last N shares: [`pplns_split`].
    Pplns(PplnsConfig),
}

/// Solo payout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoloConfig {
    /// Pool fee in parts per million of the reward.
    pub fee_ppm: u32,
}

/// PPLNS payout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PplnsConfig {
    /// N: how many of the latest shares a block pays.
    pub window_shares: u64,
    /// Pool fee in parts per million of the reward, taken first.
    pub fee_ppm: u32,
    /// Payees owed less than this get nothing (their part goes to the pool).
    pub dust_sats: u64,
    /// Most miner outputs in one coinbase (the pool's output comes on top); the smallest
    /// payees past the limit go to the pool.
    pub max_outputs: usize,
}

impl Default for PplnsConfig {
    fn default() -> Self {
        PplnsConfig {
            window_shares: 100_000,
            fee_ppm: 0,
            // P2PKH dust at the default relay fee, the largest of the standard scripts
            dust_sats: 546,
            // fits the default CoinbaseConstraints (4400 bytes) with P2TR/P2WSH outputs
            max_outputs: 96,
        }
    }
}

/// The pool's coinbase outputs for one block and what they are for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// The outputs, in coinbase order. Never empty; the values add up to the split total.
    pub outputs: Vec<TxOut>,
    /// `payouts[i]` describes `outputs[i]` (to record with the block).
    pub payouts: Vec<Payout>,
    /// Identities that earned a part but carry no valid address for the network; their
    /// part went to the pool. Sorted.
    pub unpayable: Vec<String>,
}

impl Split {
    /// Sum of the outputs.
    pub fn total(&self) -> u64 {
        self.payouts.iter().map(|p| p.sats).sum()
    }
}

/// The payout address of a user identity (the part before the first `.`), if it is a valid
/// address for `network`.
pub fn payout_address(identity: &str, network: Network) -> Option<Address> {
    let address = identity.split('.').next()?.trim();
    Address::from_str(address)
        .ok()?
        .require_network(network)
        .ok()
}

/// The output script paying a user identity (`ADDRESS.worker`), if its address is valid
/// for `network`.
pub fn payout_script(identity: &str, network: Network) -> Option<ScriptBuf> {
    payout_address(identity, network).map(|a| a.script_pubkey())
}

fn fee(total: u64, fee_ppm: u32) -> u64 {
    let fee = u128::from(total) * u128::from(fee_ppm).min(PPM) / PPM;
    // fee <= total
    u64::try_from(fee).unwrap_or(total)
}

/// Solo: the finder's address gets `total` less the pool fee, the pool the fee. When the
/// finder's identity has no valid address, everything goes to the pool and
/// [`Split::unpayable`] names the finder.
pub fn solo_split(
    total: u64,
    finder_identity: &str,
    pool_script: &ScriptBuf,
    fee_ppm: u32,
    network: Network,
) -> Split {
    let fee = fee(total, fee_ppm);
    match payout_address(finder_identity, network) {
        Some(address) if address.script_pubkey() != *pool_script => {
            let script = address.script_pubkey();
            assemble(
                vec![(script, address.to_string(), total - fee)],
                total,
                pool_script,
                Vec::new(),
            )
        }
        // the finder is the pool itself
        Some(_) => assemble(Vec::new(), total, pool_script, Vec::new()),
        None => assemble(
            Vec::new(),
            total,
            pool_script,
            vec![finder_identity.to_owned()],
        ),
    }
}

/// PPLNS: `total` less the fee is shared in proportion to each payout address's difficulty
/// in the window (whose entries are channel identities; identities of one address merged,
/// identities without a valid address count for the pool). Integer arithmetic, each share rounded down; payees below
/// [`PplnsConfig::dust_sats`] and past [`PplnsConfig::max_outputs`] are dropped; the fee,
/// the rounding and everything dropped go to the pool. An empty window pays the pool.
pub fn pplns_split(
    total: u64,
    window: &PplnsWindow,
    pool_script: &ScriptBuf,
    cfg: &PplnsConfig,
    network: Network,
) -> Split {
    let distributable = total - fee(total, cfg.fee_ppm);

    // weights per payout script, added in the window's (sorted) worker order
    let mut weights: BTreeMap<ScriptBuf, (String, f64)> = BTreeMap::new();
    let mut pool_weight = 0.0f64;
    let mut unpayable = Vec::new();
    for w in &window.workers {
        let weight = if w.difficulty.is_finite() && w.difficulty > 0.0 {
            w.difficulty
        } else {
            0.0
        };
        match payout_address(&w.worker, network) {
            Some(address) if address.script_pubkey() != *pool_script => {
                let entry = weights
                    .entry(address.script_pubkey())
                    .or_insert_with(|| (address.to_string(), 0.0));
                entry.1 += weight;
            }
            Some(_) => pool_weight += weight,
            None => {
                pool_weight += weight;
                if weight > 0.0 {
                    unpayable.push(w.worker.clone());
                }
            }
        }
    }

    // fixed point: scale by the power of two that puts the largest weight in [2^52, 2^53):
    // exact (a power of two only moves the exponent), and amount * weight and the sum of
    // weights stay far inside u128
    let max = weights
        .values()
        .map(|(_, w)| *w)
        .fold(pool_weight, f64::max);
    if max <= 0.0 || weights.is_empty() {
        return assemble(Vec::new(), total, pool_script, unpayable);
    }
    let limit = (1u64 << 53) as f64;
    let mut scale = 1.0f64;
    while max * scale >= limit {
        scale /= 2.0;
    }
    // (bounded for absurdly small weights, which then round to nothing)
    while max * scale * 2.0 < limit && scale < limit * limit {
        scale *= 2.0;
    }
    let fixed = |w: f64| (w * scale).floor() as u128;
    let sum: u128 = weights.values().map(|(_, w)| fixed(*w)).sum::<u128>() + fixed(pool_weight);
    if sum == 0 {
        return assemble(Vec::new(), total, pool_script, unpayable);
    }

    let mut payees: Vec<(ScriptBuf, String, u64)> = weights
        .into_iter()
        .filter_map(|(script, (owner, w))| {
            let amount = u128::from(distributable) * fixed(w) / sum;
            // amount <= distributable
            let amount = u64::try_from(amount).ok()?;
            (amount > 0 && amount >= cfg.dust_sats).then_some((script, owner, amount))
        })
        .collect();
    sort_outputs(&mut payees);
    payees.truncate(cfg.max_outputs);
    assemble(payees, total, pool_script, unpayable)
}

fn sort_outputs(outputs: &mut [(ScriptBuf, String, u64)]) {
    outputs.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
}

/// Adds the pool's output (what the payees leave of `total`) and orders everything.
/// The payees' scripts differ from each other and from the pool's, and add up to at most
/// `total`.
fn assemble(
    mut payees: Vec<(ScriptBuf, String, u64)>,
    total: u64,
    pool_script: &ScriptBuf,
    mut unpayable: Vec<String>,
) -> Split {
    let paid: u64 = payees.iter().map(|p| p.2).sum();
    let pool = total.saturating_sub(paid);
    // never an empty split: with nothing to pay, the pool output carries 0 sats
    if pool > 0 || payees.is_empty() {
        payees.push((pool_script.clone(), POOL_OWNER.to_owned(), pool));
    }
    sort_outputs(&mut payees);
    unpayable.sort();
    unpayable.dedup();
    let outputs = payees
        .iter()
        .map(|(script, _, sats)| TxOut {
            value: Amount::from_sat(*sats),
            script_pubkey: script.clone(),
        })
        .collect();
    let payouts = payees
        .into_iter()
        .map(|(script, owner, sats)| Payout {
            owner,
            script_hex: script.to_hex_string(),
            sats,
        })
        .collect();
    Split {
        outputs,
        payouts,
        unpayable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NET: Network = Network::Regtest;

    /// A distinct valid regtest address per `i`.
    fn address(i: u32) -> String {
        Address::p2wsh(&ScriptBuf::from(i.to_le_bytes().to_vec()), NET).to_string()
    }

    fn pool() -> ScriptBuf {
        Address::p2wsh(&ScriptBuf::from(b"pool".to_vec()), NET).script_pubkey()
    }

    fn window(workers: &[(&str, f64)]) -> PplnsWindow {
        let mut workers: Vec<WorkerWeight> = workers
            .iter()
            .map(|(w, d)| WorkerWeight {
                worker: (*w).to_owned(),
                shares: 1,
                difficulty: *d,
            })
            .collect();
        workers.sort_by(|a, b| a.worker.cmp(&b.worker));
        PplnsWindow {
            first_id: 1,
            last_id: workers.len() as i64,
            shares: workers.len() as u64,
            total_difficulty: workers.iter().map(|w| w.difficulty).sum(),
            workers,
        }
    }

    fn amount_of(split: &Split, owner: &str) -> Option<u64> {
        split
            .payouts
            .iter()
            .find(|p| p.owner == owner)
            .map(|p| p.sats)
    }

    fn cfg(fee_ppm: u32, dust_sats: u64, max_outputs: usize) -> PplnsConfig {
        PplnsConfig {
            window_shares: 1000,
            fee_ppm,
            dust_sats,
            max_outputs,
        }
    }

    #[test]
    fn payout_script_takes_the_address_before_the_first_dot() {
        let a = address(1);
        let expected = payout_script(&a, NET);
        assert!(expected.is_some());
        assert_eq!(payout_script(&format!("{a}.rig1"), NET), expected);
        assert_eq!(payout_script(&format!("{a}.rig.1"), NET), expected);
        assert_eq!(payout_script(&format!("{a}.rig1"), Network::Bitcoin), None);
        assert_eq!(payout_script("alice.rig1", NET), None);
        assert_eq!(payout_script("", NET), None);
    }

    #[test]
    fn solo_pays_the_finder_less_the_fee() {
        let finder = format!("{}.rig", address(7));
        let split = solo_split(5_000_000_000, &finder, &pool(), 10_000, NET);
        assert_eq!(amount_of(&split, &address(7)), Some(4_950_000_000));
        assert_eq!(amount_of(&split, POOL_OWNER), Some(50_000_000));
        assert_eq!(
            split.outputs[0].script_pubkey,
            payout_script(&finder, NET).expect("valid")
        );
        assert!(split.unpayable.is_empty());

        let no_fee = solo_split(5_000_000_000, &finder, &pool(), 0, NET);
        assert_eq!(no_fee.outputs.len(), 1);
        assert_eq!(no_fee.total(), 5_000_000_000);
    }

    #[test]
    fn solo_without_an_address_pays_the_pool_and_says_so() {
        let split = solo_split(5_000_000_000, "bob.rig", &pool(), 0, NET);
        assert_eq!(split.outputs.len(), 1);
        assert_eq!(split.outputs[0].script_pubkey, pool());
        assert_eq!(split.total(), 5_000_000_000);
        assert_eq!(split.unpayable, vec!["bob.rig".to_owned()]);
    }

    #[test]
    fn pplns_shares_by_difficulty_merging_workers_of_one_address() {
        let (a, b) = (address(1), address(2));
        let w = window(&[
            (&format!("{a}.r1"), 1.0),
            (&format!("{a}.r2"), 2.0),
            (&format!("{b}.r1"), 1.0),
            ("nobody.r1", 0.0),
        ]);
        let split = pplns_split(4_000_000, &w, &pool(), &cfg(0, 0, 10), NET);
        assert_eq!(amount_of(&split, &a), Some(3_000_000));
        assert_eq!(amount_of(&split, &b), Some(1_000_000));
        assert_eq!(amount_of(&split, POOL_OWNER), None);
        assert_eq!(split.payouts[0].owner, a, "largest first");
        assert!(split.unpayable.is_empty(), "zero weight earns nothing");
    }

    #[test]
    fn pplns_fee_first_and_invalid_identities_count_for_the_pool() {
        let a = address(1);
        let w = window(&[(&format!("{a}.r1"), 3.0), ("carol.r1", 1.0)]);
        // fee 10 % of 1000 = 100; 900 split 3:1 -> 675 to a, 225 to the pool as well
        let split = pplns_split(1000, &w, &pool(), &cfg(100_000, 0, 10), NET);
        assert_eq!(amount_of(&split, &a), Some(675));
        assert_eq!(amount_of(&split, POOL_OWNER), Some(325));
        assert_eq!(split.unpayable, vec!["carol.r1".to_owned()]);
    }

    #[test]
    fn pplns_dust_and_output_limit_go_to_the_pool() {
        let w = window(&[
            (&address(1), 50.0),
            (&address(2), 30.0),
            (&address(3), 19.0),
            (&address(4), 1.0),
        ]);
        // 100 sats: 50, 30, 19, 1 -> dust 2 drops address 4, max 2 outputs drops address 3
        let split = pplns_split(100, &w, &pool(), &cfg(0, 2, 2), NET);
        let owners: Vec<_> = split
            .payouts
            .iter()
            .map(|p| (p.owner.as_str(), p.sats))
            .collect();
        let (a1, a2) = (address(1), address(2));
        assert_eq!(
            owners,
            vec![(a1.as_str(), 50), (a2.as_str(), 30), (POOL_OWNER, 20)]
        );
    }

    #[test]
    fn pplns_empty_window_pays_the_pool() {
        let split = pplns_split(
            1234,
            &PplnsWindow::default(),
            &pool(),
            &PplnsConfig::default(),
            NET,
        );
        assert_eq!(split.payouts.len(), 1);
        assert_eq!(split.payouts[0].owner, POOL_OWNER);
        assert_eq!(split.total(), 1234);
        let zero = pplns_split(
            0,
            &PplnsWindow::default(),
            &pool(),
            &PplnsConfig::default(),
            NET,
        );
        assert_eq!(zero.outputs.len(), 1, "never an empty split");
    }

    #[test]
    fn pplns_tiny_and_huge_weights_keep_the_sum() {
        for (d1, d2) in [
            (5e-324, 1e-320),
            (1e-300, 0.0),
            (1e300, 1.0),
            (f64::MAX, f64::MAX),
        ] {
            let w = window(&[(&address(1), d1), (&address(2), d2)]);
            let split = pplns_split(50_000, &w, &pool(), &cfg(0, 0, 10), NET);
            assert_eq!(split.total(), 50_000, "weights {d1} {d2}");
        }
    }

    #[test]
    fn payout_mode_from_toml() {
        let pplns: PayoutMode = toml::from_str(
            "mode = \"pplns\"\nwindow_shares = 5000\nfee_ppm = 20000\nmax_outputs = 10\n",
        )
        .expect("pplns config");
        assert_eq!(
            pplns,
            PayoutMode::Pplns(PplnsConfig {
                window_shares: 5000,
                fee_ppm: 20_000,
                dust_sats: PplnsConfig::default().dust_sats,
                max_outputs: 10,
            })
        );
        let solo: PayoutMode = toml::from_str("mode = \"solo\"").expect("solo config");
        assert_eq!(solo, PayoutMode::Solo(SoloConfig { fee_ppm: 0 }));
        assert!(toml::from_str::<PayoutMode>("mode = \"pps\"").is_err());
        assert!(toml::from_str::<PayoutMode>("mode = \"solo\"\nfee = 1").is_err());
    }

    fn arb_window() -> impl Strategy<Value = PplnsWindow> {
        // worker names over a few addresses (merging), some without an address
        prop::collection::vec((0u32..12, 0u32..3, 0.0f64..1e9), 0..40).prop_map(|ws| {
            let names: Vec<(String, f64)> = ws
                .into_iter()
                .map(|(a, rig, d)| {
                    let who = if a >= 10 {
                        format!("noaddr{a}")
                    } else {
                        address(a)
                    };
                    (format!("{who}.rig{rig}"), d)
                })
                .collect();
            let shares = names
                .iter()
                .enumerate()
                .map(|(i, (n, d))| (i as i64 + 1, n.as_str(), *d));
            PplnsWindow::from_shares(shares)
        })
    }

    proptest! {
        #[test]
        fn pplns_outputs_always_sum_to_total(
            total in 0u64..=2_100_000_000_000_000,
            window in arb_window(),
            fee_ppm in 0u32..=1_100_000,
            dust in 0u64..100_000,
            max_outputs in 0usize..12,
        ) {
            let cfg = cfg(fee_ppm, dust, max_outputs);
            let split = pplns_split(total, &window, &pool(), &cfg, NET);
            let sum: u64 = split.outputs.iter().map(|o| o.value.to_sat()).sum();
            prop_assert_eq!(sum, total);
            prop_assert_eq!(split.total(), total);
            prop_assert!(!split.outputs.is_empty());
            prop_assert_eq!(split.outputs.len(), split.payouts.len());
            let miners: Vec<_> = split.payouts.iter().filter(|p| p.owner != POOL_OWNER).collect();
            prop_assert!(miners.len() <= max_outputs);
            prop_assert!(miners.iter().all(|p| p.sats >= dust && p.sats > 0));
            // amount desc, then script
            for pair in split.outputs.windows(2) {
                prop_assert!(
                    pair[0].value > pair[1].value
                        || (pair[0].value == pair[1].value
                            && pair[0].script_pubkey < pair[1].script_pubkey)
                );
            }
            // deterministic
            prop_assert_eq!(&pplns_split(total, &window, &pool(), &cfg, NET), &split);
            // the fee is at least what the pool gets when every weight is a miner's
            if fee_ppm <= 1_000_000 {
                let pool_sats = split.payouts.iter().find(|p| p.owner == POOL_OWNER).map_or(0, |p| p.sats);
                prop_assert!(u128::from(pool_sats) >= u128::from(total) * u128::from(fee_ppm) / 1_000_000);
            }
        }

        #[test]
        fn pplns_pays_more_weight_at_least_as_much(
            total in 1_000_000u64..=5_000_000_000,
            window in arb_window(),
        ) {
            let cfg = cfg(0, 0, usize::MAX);
            let split = pplns_split(total, &window, &pool(), &cfg, NET);
            let mut weight: BTreeMap<String, f64> = BTreeMap::new();
            for w in &window.workers {
                if let Some(a) = payout_address(&w.worker, NET) {
                    *weight.entry(a.to_string()).or_default() += w.difficulty;
                }
            }
            let paid: Vec<(f64, u64)> = split
                .payouts
                .iter()
                .filter(|p| p.owner != POOL_OWNER)
                .map(|p| (weight[&p.owner], p.sats))
                .collect();
            for x in &paid {
                for y in &paid {
                    if x.0 > y.0 {
                        prop_assert!(x.1 >= y.1);
                    }
                }
            }
            // with no fee, dust or limit, a miner misses at most 1 sat of its exact share
            let total_weight: f64 = window.workers.iter().map(|w| w.difficulty).sum();
            for (w, sats) in &paid {
                let exact = total as f64 * w / total_weight;
                prop_assert!((*sats as f64) <= exact + 1.0 && (*sats as f64) >= exact - 2.0);
            }
        }

        #[test]
        fn solo_outputs_always_sum_to_total(
            total in 0u64..=2_100_000_000_000_000,
            who in 0u32..20,
            fee_ppm in 0u32..=1_100_000,
        ) {
            let identity = if who < 10 { format!("{}.x", address(who)) } else { format!("anon{who}") };
            let split = solo_split(total, &identity, &pool(), fee_ppm, NET);
            prop_assert_eq!(split.total(), total);
            prop_assert_eq!(split.unpayable.is_empty(), who < 10);
        }
    }
}
