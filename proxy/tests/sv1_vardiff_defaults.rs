//! The proxy's SV1 vardiff at its real defaults (`Sv1Settings::default()`, turned into the
//! sessions' configuration as the proxy does, `Sv1Config::from_settings`): a slow CPU miner
//! (10 MH/s) that starts at the ASIC difficulty gets its first share within the 30 s a miner
//! waits for one, and then converges. `strata-work`'s `tests/vardiff.rs` simulates the same
//! with the defaults written down (it cannot depend on the proxy); this one follows them when
//! they change. Both run the same simulated miner (`strata_testkit::vardiff_sim`): shares
//! arrive as a Poisson process from a seeded PRNG, the vardiff is ticked every second.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strata_proxy::config::Sv1Settings;
use strata_proxy::downstream::sv1::Sv1Config;
use strata_testkit::vardiff_sim::Sim;
use strata_work::target::target_from_hashrate;
use strata_work::vardiff::Vardiff;

#[test]
fn a_slow_cpu_miner_gets_its_first_share_at_the_default_settings() {
    let settings = Sv1Settings::default();
    let cfg = Sv1Config::from_settings(&settings, Duration::from_secs(10));
    // what the settings say is what the sessions run with
    assert_eq!(cfg.vardiff.shares_per_minute, settings.shares_per_minute);
    assert_eq!(cfg.initial_difficulty, settings.initial_difficulty);
    let hashrate = 10e6;
    // an ASIC start: about a day or more per share for this miner there
    let per_share = cfg.initial_difficulty * 2f64.powi(32) / hashrate;
    assert!(
        per_share > 86_400.0 / 2.0,
        "{per_share} s per share at the start"
    );
    let ideal = target_from_hashrate(hashrate, cfg.vardiff.shares_per_minute)
        .unwrap()
        .difficulty();
    let mut times = Vec::new();
    for seed in [1, 2, 3, 42, 1234, 0xdead_beef] {
        let mut sim = Sim::new(seed, hashrate);
        let mut v = Vardiff::new(cfg.vardiff, cfg.initial_difficulty, sim.t0).unwrap();
        sim.run(&mut v, 300.0);
        let first = sim
            .first_share
            .unwrap_or_else(|| panic!("seed {seed}: no share in 5 minutes"));
        times.push(first);
        // and then it converges as usual
        sim.run(&mut v, 1200.0);
        let r = v.difficulty() / ideal;
        assert!((0.6..=1.6).contains(&r), "seed {seed}: ratio {r}");
    }
    times.sort_by(f64::total_cmp);
    eprintln!("first shares after {times:?} s");
    assert!(times[times.len() - 1] < 30.0, "{times:?}");
}
