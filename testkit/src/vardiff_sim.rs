//! A miner of fixed hashrate against a [`Vardiff`] in simulated time: shares arrive as a
//! Poisson process whose rate is `hashrate / work(current target)`, drawn from a seeded
//! xorshift PRNG, and the vardiff is ticked every second of simulated time. Used by
//! `strata-work`'s vardiff tests and by the proxy's test of its SV1 defaults.

use std::time::{Duration, Instant};

use strata_work::vardiff::{NewTarget, Vardiff};

/// xorshift64*: small, seeded, good enough for exponential inter-arrival times.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// An exponential draw of `rate` per second.
    pub fn exponential(&mut self, rate: f64) -> f64 {
        -self.uniform().ln() / rate
    }
}

/// A miner of fixed hashrate in simulated time (seconds since `t0`).
#[derive(Debug)]
pub struct Sim {
    /// The instant simulated second 0 stands for.
    pub t0: Instant,
    /// Seconds simulated so far.
    pub now: f64,
    rng: Rng,
    /// Hashes per second (0: a miner that stopped; set `next_share` to infinity with it).
    pub hashrate: f64,
    /// When the next share comes (NaN: drawn at the next run).
    pub next_share: f64,
    /// Every retarget: (seconds, new target).
    pub retargets: Vec<(f64, NewTarget)>,
    /// Shares found.
    pub shares: u64,
    /// When the first share was found.
    pub first_share: Option<f64>,
}

impl Sim {
    /// A miner of `hashrate` whose shares come from `seed`, starting now.
    pub fn new(seed: u64, hashrate: f64) -> Self {
        Sim {
            t0: Instant::now(),
            now: 0.0,
            rng: Rng::new(seed),
            hashrate,
            next_share: f64::NAN,
            retargets: Vec::new(),
            shares: 0,
            first_share: None,
        }
    }

    /// The instant of simulated second `secs`.
    pub fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    /// Draws when the next share comes, at the vardiff's current target (after the
    /// hashrate changed, say).
    pub fn draw(&mut self, v: &Vardiff) {
        self.next_share = if self.hashrate > 0.0 {
            self.now + self.rng.exponential(self.hashrate / v.target().work())
        } else {
            f64::INFINITY
        };
    }

    /// Runs for `secs`, ticking every second; each retarget must be the vardiff's current
    /// target.
    pub fn run(&mut self, v: &mut Vardiff, secs: f64) {
        if self.next_share.is_nan() {
            self.draw(v);
        }
        let end = self.now + secs;
        while self.now < end {
            let tick_at = (self.now + 1.0).min(end);
            while self.next_share <= tick_at {
                self.now = self.next_share;
                let t = v.target();
                v.on_share(self.at(self.now), &t);
                self.shares += 1;
                self.first_share.get_or_insert(self.now);
                self.draw(v);
            }
            self.now = tick_at;
            if let Some(nt) = v.tick(self.at(self.now)) {
                assert_eq!(nt, v.current());
                self.retargets.push((self.now, nt));
                self.draw(v); // memoryless: redraw at the new rate
            }
        }
    }
}
