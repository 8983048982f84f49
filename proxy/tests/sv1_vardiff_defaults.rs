//! The proxy's SV1 vardiff at its real defaults (`Sv1Settings::default()`, turned into the
//! sessions' configuration as the proxy does, `Sv1Config::from_settings`): a slow CPU miner
//! (10 MH/s) that starts at the ASIC difficulty gets its first share within the 30 s a miner
//! waits for one, and then converges. `strata-work`'s `tests/vardiff.rs` simulates the same
//! with the defaults written down (it cannot depend on the proxy); this one follows them when
//! they change. Shares arrive as a Poisson process from a seeded PRNG, the vardiff is ticked
//! every second of simulated time.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use strata_proxy::config::Sv1Settings;
use strata_proxy::downstream::sv1::Sv1Config;
use strata_work::target::target_from_hashrate;
use strata_work::vardiff::Vardiff;

/// xorshift64*, as `strata-work`'s vardiff simulation.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// Runs a miner of `hashrate` against `v` from `from` for `secs` of simulated time (from
/// `t0`); returns when its first share came (seconds), if one did.
fn run(
    v: &mut Vardiff,
    rng: &mut Rng,
    t0: Instant,
    hashrate: f64,
    from: f64,
    secs: f64,
) -> Option<f64> {
    let at = |t: f64| t0 + Duration::from_secs_f64(t);
    let draw = |v: &Vardiff, rng: &mut Rng, now: f64| {
        now - rng.uniform().ln() / (hashrate / v.target().work())
    };
    let (mut now, mut first) = (from, None);
    let mut next = draw(v, rng, now);
    while now < from + secs {
        let tick = (now + 1.0).min(from + secs);
        while next <= tick {
            now = next;
            let t = v.target();
            v.on_share(at(now), &t);
            first.get_or_insert(now);
            next = draw(v, rng, now);
        }
        now = tick;
        if v.tick(at(now)).is_some() {
            // memoryless: redraw at the new rate
            next = draw(v, rng, now);
        }
    }
    first
}

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
        let t0 = Instant::now();
        let mut rng = Rng::new(seed);
        let mut v = Vardiff::new(cfg.vardiff, cfg.initial_difficulty, t0).unwrap();
        let first = run(&mut v, &mut rng, t0, hashrate, 0.0, 300.0)
            .unwrap_or_else(|| panic!("seed {seed}: no share in 5 minutes"));
        times.push(first);
        // and then it converges as usual
        run(&mut v, &mut rng, t0, hashrate, 300.0, 1200.0);
        let r = v.difficulty() / ideal;
        assert!((0.6..=1.6).contains(&r), "seed {seed}: ratio {r}");
    }
    times.sort_by(f64::total_cmp);
    eprintln!("first shares after {times:?} s");
    assert!(times[times.len() - 1] < 30.0, "{times:?}");
}
