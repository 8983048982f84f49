//! Variable difficulty: one [`Vardiff`] per channel (SV2) or per miner (SV1) picks the target
//! that makes the device submit about `shares_per_minute` shares, and estimates its hashrate.
//!
//! The spec leaves the target policy to the server (`nominal_hash_rate` in
//! [5.3.2](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#532-openstandardminingchannel-client---server)
//! "can be used for setting a reasonable target"); new targets go out as `SetTarget` (SV2,
//! [`NewTarget::target`]) or `mining.set_difficulty` (SV1, [`NewTarget::difficulty`]).
//!
//! Synchronous and deterministic: the caller passes `now` to [`Vardiff::on_share`] for each
//! accepted share and calls [`Vardiff::tick`] from its timer (any cadence; at
//! [`Vardiff::next_check`] is enough).
//!
//! ```text
//!            created ──── ramp_up (10 min) ────▶ steady
//!   checks:  every period / 4                    every period
//!   test:    ramp_up_significance (2 sd)         significance (3 sd)
//!   step:    ≤ ramp_up_max_step (16x)            ≤ max_step (4x); idle: halve
//! ```
//!
//! # Evidence
//!
//! * **Hashrate window.** A ring of `window_periods` buckets of one `period` each (default
//!   10 x 60 s: the last 9 full periods plus the current one, or everything since creation if
//!   younger) holds the accepted shares and the *exposure* `∫ dt / work(target)`: a device of
//!   hashrate `H` is expected to submit `H * exposure` shares. [`Vardiff::hashrate`] is
//!   `shares / exposure`, the maximum-likelihood estimate of a Poisson share process, valid
//!   across retargets (shares at other difficulties still count) and across stretches at a
//!   far too high difficulty (which add little exposure, instead of diluting the estimate);
//!   its relative standard error is `1 / sqrt(shares)`.
//! * **Epoch.** The shares since the last retarget, at one difficulty, against the
//!   `shares_per_minute * elapsed` expected.
//!
//! # Decision at a check
//!
//! * **Deadband.** A count `n` where `e` were expected (epoch, or window: `e = exposure *
//!   hashrate the current target is right for`) calls for a change only when it is
//!   significant, `|n - e| > significance * sqrt(e)` (3 standard deviations of a Poisson
//!   count; 2 during ramp-up), **and** `n / e` is outside `[1 / min_deviation,
//!   min_deviation]` (default 1.25; in power-of-two mode at least `2^0.75` ≈ 1.68, so that the
//!   difficulty does not flap between neighbouring powers). The window's verdict is taken when
//!   it agrees in direction with the epoch's counts (it reacts to a changed hashrate within a
//!   window; the epoch grows more precise the longer the difficulty holds). Once converged this
//!   means very few adjustments (simulated: about one per 3 hours at 6 shares/min).
//! * **Step.** Toward `n / e`, stopping half a standard error (`0.5 / sqrt(n)` in log space)
//!   short so that rough estimates approach from one side instead of overshooting, at most a
//!   factor `max_step` (4) per check, `ramp_up_max_step` (16) during ramp-up, when checks
//!   also run every `period / 4`. Then `[min_difficulty, max_difficulty]`, the device's
//!   maximum target ([`Vardiff::set_max_target`]) and, if asked, the nearest integer power of
//!   two (SV1 firmware).
//! * **Silence before the first share.** A device that has not submitted a single share
//!   since the vardiff was created (or since [`Vardiff::restart_silence`]) bounds its own
//!   hashrate: over an exposure `E` (see above) a device of hashrate `H` expects `H * E`
//!   shares, so with none `H < 1 / E` (for a constant difficulty `D` held `T` seconds,
//!   `H < D * 2^32 / T`). Once the silence is significant (a device right for the current
//!   difficulty would have submitted [`SILENCE_SIGNIFICANT`] = 3 shares by then: silent with
//!   probability `e^-3`, 5%, so a well-started device is rarely touched), the difficulty drops
//!   at once to the one at which a device of that bound submits [`SILENCE_SPEEDUP`] = 16
//!   shares per target interval (`60 / shares_per_minute` s; `D * interval / (16 * T)` for a
//!   constant `D`), and again at every check (16 per interval) while the silence lasts, by
//!   steps of at least `min_deviation` (1.25), never below the minimum. The device is below
//!   the bound, so it submits fewer than that; the bound falls about `e`-fold per sixteenth
//!   of an interval, so a CPU miner started at an ASIC's difficulty reaches one it can meet
//!   quickly: a 10 MH/s miner from 1024 at 10 shares a minute (right: 0.014) has its first
//!   share after about 25 s (simulated), where one share per interval at the bound took
//!   about 85 s and halving every 30 s took hours. The cost: a device that was silent because
//!   it was not hashing yet (an ASIC still starting) is met with a difficulty far too easy
//!   for it, and floods until its first shares raise it again (ramp-up steps of 16).
//!   Once a share came, the device has shown its hashrate: when it goes quiet later (paused,
//!   restarting) only the gradual idle rule below applies, so that it does not come back at
//!   a difficulty thousands of times too easy.
//! * **Idle.** (After the first share.) No share since the last retarget while at least 4 were expected (probability
//!   `e^-4` ≈ 2% at the right difficulty): the difficulty is halved; during ramp-up the step
//!   doubles each time (÷2, ÷4, ÷8, ÷16) to catch a far too high initial difficulty. Never
//!   below the minimum, and never a disconnect (idle timeouts are the caller's).
//!
//! Precision is statistical: after `n` shares the rate is known to about `1 / sqrt(n)`, so at
//! 6 shares a minute getting within ±30% of the desired rate takes 10 to 30 minutes from a
//! far-off start (faster from too easy than from too hard), at 20 a minute about 10.
//!
//! # Memory
//!
//! `size_of::<Vardiff>()` (about 300 bytes, half of it the copied [`VardiffConfig`]) plus 16
//! bytes per window bucket (160 bytes with the default 10), allocated once at creation: under
//! 0.5 KiB per channel or miner. Every operation is O(1) amortized.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use strata_work::vardiff::{Vardiff, VardiffConfig};
//!
//! let t0 = Instant::now();
//! // an SV2 channel opened with nominal_hash_rate = 100 TH/s
//! let mut v = Vardiff::from_hashrate(VardiffConfig::default(), 100e12, t0)?;
//! let target = v.target(); // OpenExtendedMiningChannel.Success.target
//! v.on_share(t0 + Duration::from_secs(7), &target);
//! if let Some(new) = v.tick(t0 + Duration::from_secs(60)) {
//!     // send SetTarget { maximum_target: new.target } or mining.set_difficulty(new.difficulty)
//! }
//! let _nominal_hash_rate = v.hashrate(t0 + Duration::from_secs(60)) as f32;
//! # Ok::<(), strata_work::vardiff::VardiffError>(())
//! ```

use std::time::{Duration, Instant};

use crate::target::{target_from_hashrate, Target};

/// Expected share count with no share seen that marks a channel idle (P = e^-4 ≈ 1.8%).
const IDLE_EXPECTED_SHARES: f64 = 4.0;

/// Standard errors a step stops short of the estimate.
const SHRINK: f64 = 0.5;

/// Shares a device right for the current difficulty would have submitted before the silence
/// rule acts (it stays that silent with probability `e^-3`, 5%).
pub const SILENCE_SIGNIFICANT: f64 = 3.0;
/// Before the first share (module docs), the difficulty is the one at which a device of the
/// hashrate bound would submit this many shares per target interval, and the rule is
/// checked this many times per interval. The device is below the bound (it was silent), so
/// it submits fewer; the bound itself then falls about `e`-fold every `1 / SILENCE_SPEEDUP`
/// of an interval instead of every interval: a 10 MH/s CPU miner started at the proxy's ASIC
/// difficulty gets its first share in about 25 s instead of 85 s.
pub const SILENCE_SPEEDUP: u32 = 16;

/// Why a vardiff configuration or a starting point is unusable.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VardiffError {
    /// A setting is out of range (non-finite, not positive, or a step / deviation below 1).
    #[error("invalid vardiff setting {field}: {value}")]
    InvalidSetting {
        /// The setting's name.
        field: &'static str,
        /// Its value (durations in seconds).
        value: f64,
    },
    /// `min_difficulty` is above `max_difficulty`.
    #[error("min difficulty {min} is above max difficulty {max}")]
    EmptyRange {
        /// `min_difficulty`.
        min: f64,
        /// `max_difficulty`.
        max: f64,
    },
    /// Power-of-two mode, but no integer power of two lies in `[min, max]`.
    #[error("no integer power-of-two difficulty between {min} and {max}")]
    NoPowerOfTwo {
        /// `min_difficulty`.
        min: f64,
        /// `max_difficulty`.
        max: f64,
    },
}

/// Vardiff settings; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VardiffConfig {
    /// Desired shares per minute (default 6, as SRI).
    pub shares_per_minute: f64,
    /// Lowest difficulty (default `1e-6`, low enough for CPU miners on regtest).
    pub min_difficulty: f64,
    /// Highest difficulty (default `1e15`).
    pub max_difficulty: f64,
    /// Adjustment period: at most one retarget per period after ramp-up, and the length of
    /// one hashrate-window bucket (default 60 s).
    pub period: Duration,
    /// Hashrate window, in periods (default 10; at least 2).
    pub window_periods: u32,
    /// How long after creation the quick ramp-up lasts (default 10 minutes).
    pub ramp_up: Duration,
    /// Largest change factor per retarget after ramp-up (default 4).
    pub max_step: f64,
    /// Largest change factor per retarget during ramp-up (default 16).
    pub ramp_up_max_step: f64,
    /// Standard deviations of a Poisson share count a deviation must exceed to be acted upon
    /// (default 3).
    pub significance: f64,
    /// The same during ramp-up (default 2: quicker, and a wrong step is soon corrected).
    pub ramp_up_significance: f64,
    /// Smallest deviation factor acted upon (default 1.25).
    pub min_deviation: f64,
    /// Only integer power-of-two difficulties (SV1 firmware that wants them).
    pub power_of_two: bool,
}

impl Default for VardiffConfig {
    fn default() -> Self {
        VardiffConfig {
            shares_per_minute: 6.0,
            min_difficulty: 1e-6,
            max_difficulty: 1e15,
            period: Duration::from_secs(60),
            window_periods: 10,
            ramp_up: Duration::from_secs(600),
            max_step: 4.0,
            ramp_up_max_step: 16.0,
            significance: 3.0,
            ramp_up_significance: 2.0,
            min_deviation: 1.25,
            power_of_two: false,
        }
    }
}

impl VardiffConfig {
    fn validate(&self) -> Result<(), VardiffError> {
        let bad = |field, value: f64| Err(VardiffError::InvalidSetting { field, value });
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.shares_per_minute) {
            return bad("shares_per_minute", self.shares_per_minute);
        }
        if !positive(self.min_difficulty) {
            return bad("min_difficulty", self.min_difficulty);
        }
        if !positive(self.max_difficulty) {
            return bad("max_difficulty", self.max_difficulty);
        }
        if self.period.is_zero() {
            return bad("period", 0.0);
        }
        if self.window_periods < 2 {
            return bad("window_periods", f64::from(self.window_periods));
        }
        for (field, v) in [
            ("max_step", self.max_step),
            ("ramp_up_max_step", self.ramp_up_max_step),
            ("min_deviation", self.min_deviation),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                return bad(field, v);
            }
        }
        for (field, v) in [
            ("significance", self.significance),
            ("ramp_up_significance", self.ramp_up_significance),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, v);
            }
        }
        if self.min_difficulty > self.max_difficulty {
            return Err(VardiffError::EmptyRange {
                min: self.min_difficulty,
                max: self.max_difficulty,
            });
        }
        if self.power_of_two && pow2_range(self.min_difficulty, self.max_difficulty).is_none() {
            return Err(VardiffError::NoPowerOfTwo {
                min: self.min_difficulty,
                max: self.max_difficulty,
            });
        }
        Ok(())
    }
}

/// Exponents `k` (0..=63) with `min <= 2^k <= max`, if any.
fn pow2_range(min: f64, max: f64) -> Option<(i32, i32)> {
    let lo = min.log2().ceil().max(0.0);
    let hi = max.log2().floor().min(63.0);
    (lo <= hi).then_some((lo as i32, hi as i32))
}

/// A target to send: `SetTarget.maximum_target` (SV2) or `mining.set_difficulty` (SV1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewTarget {
    /// The target.
    pub target: Target,
    /// Its pool difficulty; an exact integer power of two in power-of-two mode.
    pub difficulty: f64,
}

/// One period of the hashrate window.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Accepted shares.
    shares: u32,
    /// `∫ dt / work(target)` over the period (seconds per hash): a device of hashrate `H`
    /// is expected to submit `H * exposure` shares.
    exposure: f64,
}

/// Difficulty adjustment and hashrate estimate for one channel or SV1 miner (see the module
/// docs for the algorithm).
#[derive(Debug, Clone)]
pub struct Vardiff {
    config: VardiffConfig,
    max_target: Option<Target>,
    difficulty: f64,
    target: Target,
    /// `1 / target.work()`.
    inv_work: f64,
    created: Instant,
    last_check: Instant,
    /// Exposure is accounted up to here.
    accounted: Instant,
    epoch_start: Instant,
    epoch_shares: u64,
    idle_streak: u32,
    adjustments: u64,
    /// No share seen since creation or [`Vardiff::restart_silence`].
    silent: bool,
    /// Exposure since creation or [`Vardiff::restart_silence`] while `silent`.
    silent_exposure: f64,
    /// The silence was significant once (the starting difficulty was wrong).
    silence_significant: bool,
    /// The last silence check.
    silence_checked: Instant,
    buckets: Box<[Bucket]>,
    /// Absolute index (periods since `created`) of the newest bucket in use.
    newest: u64,
}

impl Vardiff {
    /// Start at `initial_difficulty` (clamped and, in power-of-two mode, rounded).
    pub fn new(
        config: VardiffConfig,
        initial_difficulty: f64,
        now: Instant,
    ) -> Result<Self, VardiffError> {
        config.validate()?;
        if !(initial_difficulty.is_finite() && initial_difficulty > 0.0) {
            return Err(VardiffError::InvalidSetting {
                field: "initial difficulty",
                value: initial_difficulty,
            });
        }
        let mut v = Self::blank(config, now);
        let (d, t) = v.quantize(initial_difficulty);
        v.set(d, t);
        Ok(v)
    }

    /// Start at the target for the channel's `nominal_hash_rate` (h/s) and the configured
    /// share rate ([`target_from_hashrate`]); a zero hashrate (a proxy with no devices yet)
    /// starts at the minimum difficulty.
    pub fn from_hashrate(
        config: VardiffConfig,
        nominal_hash_rate: f64,
        now: Instant,
    ) -> Result<Self, VardiffError> {
        let target =
            target_from_hashrate(nominal_hash_rate, config.shares_per_minute).map_err(|_| {
                VardiffError::InvalidSetting {
                    field: "nominal hash rate",
                    value: nominal_hash_rate,
                }
            })?;
        Self::from_target(config, target, now)
    }

    /// Start at `target`: kept exactly when allowed, else clamped and, in power-of-two mode,
    /// rounded.
    pub fn from_target(
        config: VardiffConfig,
        target: Target,
        now: Instant,
    ) -> Result<Self, VardiffError> {
        config.validate()?;
        let mut v = Self::blank(config, now);
        let d = target.difficulty();
        let (qd, qt) = v.quantize(if d.is_finite() { d } else { f64::MAX });
        let exact = !config.power_of_two
            && d >= config.min_difficulty
            && d <= config.max_difficulty
            && target != Target::ZERO;
        if exact {
            v.set(d, target);
        } else {
            v.set(qd, qt);
        }
        Ok(v)
    }

    fn blank(config: VardiffConfig, now: Instant) -> Self {
        Vardiff {
            config,
            max_target: None,
            difficulty: 0.0,
            target: Target::MAX,
            inv_work: 0.0,
            created: now,
            last_check: now,
            accounted: now,
            epoch_start: now,
            epoch_shares: 0,
            idle_streak: 0,
            adjustments: 0,
            silent: true,
            silent_exposure: 0.0,
            silence_significant: false,
            silence_checked: now,
            buckets: vec![Bucket::default(); config.window_periods as usize].into_boxed_slice(),
            newest: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VardiffConfig {
        &self.config
    }

    /// The current target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The current difficulty.
    pub fn difficulty(&self) -> f64 {
        self.difficulty
    }

    /// The current target and difficulty together.
    pub fn current(&self) -> NewTarget {
        NewTarget {
            target: self.target,
            difficulty: self.difficulty,
        }
    }

    /// How many retargets [`Self::tick`] has made.
    pub fn adjustments(&self) -> u64 {
        self.adjustments
    }

    /// Record an accepted share that met `target` (the target it was validated against, which
    /// may be an older one than [`Self::target`] just after a retarget). Every share counts
    /// toward the hashrate window; toward the share rate since the last retarget only if
    /// `target` is at least as hard as the current one. O(1) amortized.
    pub fn on_share(&mut self, now: Instant, target: &Target) {
        self.advance(now);
        self.silent = false;
        if *target <= self.target {
            self.epoch_shares += 1;
        }
        let k = self.bucket_index(self.accounted);
        self.rotate(k);
        let len = self.buckets.len() as u64;
        let b = &mut self.buckets[(k % len) as usize];
        b.shares = b.shares.saturating_add(1);
    }

    /// Estimated hashrate (h/s): shares in the window divided by the window's exposure
    /// (`∫ dt / work(target)`, the maximum-likelihood estimate for a Poisson share process,
    /// unbiased across retargets and idle stretches); relative standard error
    /// `1 / sqrt(shares)`. 0 with no shares. For `UpdateChannel.nominal_hash_rate` and
    /// statistics.
    pub fn hashrate(&self, now: Instant) -> f64 {
        let (shares, exposure) = self.window(now);
        if exposure > 0.0 {
            shares as f64 / exposure
        } else {
            0.0
        }
    }

    /// Number of shares in the hashrate window.
    pub fn shares_in_window(&self, now: Instant) -> u64 {
        self.window(now).0
    }

    /// When [`Self::tick`] will next consider a retarget (calling it earlier is harmless).
    pub fn next_check(&self) -> Instant {
        let quick = self.last_check + self.config.period / 4;
        let regular = if self.in_ramp_up(self.last_check) {
            quick
        } else {
            self.last_check + self.config.period
        };
        if self.silent {
            regular.min(self.silence_checked + self.share_interval() / SILENCE_SPEEDUP)
        } else {
            regular
        }
    }

    /// The target time between shares, `60 / shares_per_minute` seconds.
    fn share_interval(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.config.shares_per_minute)
    }

    /// Starts the silence of [`Self::tick`]'s first-share rule (module docs) over at `now`:
    /// for a caller that creates the vardiff before the device has work (an SV1 miner is
    /// connected before it subscribes), so that the wait for work is not taken for silence.
    pub fn restart_silence(&mut self, now: Instant) {
        self.advance(now);
        self.silent_exposure = 0.0;
        self.silence_significant = false;
        self.silence_checked = now;
    }

    /// The first-share rule (module docs): with no share yet over an exposure `E`, the
    /// hashrate is below `1 / E`; once the silence is significant the difficulty drops to the
    /// one at which that bound submits one share per target interval, when that is easier by
    /// `min_deviation` or more.
    fn silence_check(&mut self, now: Instant) -> Option<NewTarget> {
        let interval = self.share_interval();
        if !self.silent
            || now.saturating_duration_since(self.silence_checked) < interval / SILENCE_SPEEDUP
        {
            return None;
        }
        self.silence_checked = now;
        self.advance(now);
        if self.silent_exposure <= 0.0 {
            return None;
        }
        // shares a device right for the current difficulty would have submitted by now
        let due = self.silent_exposure * self.target.work() / interval.as_secs_f64();
        self.silence_significant |= due >= SILENCE_SIGNIFICANT;
        if !self.silence_significant {
            return None;
        }
        let bound = 1.0 / self.silent_exposure; // h/s
                                                // hashes per share at which that bound submits SILENCE_SPEEDUP shares per interval
        let work = bound * interval.as_secs_f64() / f64::from(SILENCE_SPEEDUP);
        let difficulty = work / Target::DIFF1.work();
        // NaN (no finite bound) or not enough of a step: nothing to do
        if difficulty.is_nan() || difficulty * self.config.min_deviation > self.difficulty {
            return None;
        }
        let (difficulty, target) = self.quantize(difficulty);
        if target <= self.target {
            return None; // at the minimum, or rounded back
        }
        self.set(difficulty, target);
        self.last_check = now;
        self.epoch_start = now;
        self.epoch_shares = 0;
        self.adjustments += 1;
        Some(self.current())
    }

    /// Consider a retarget: at most once per `period` (per `period / 4` during ramp-up; the
    /// first-share rule every quarter target interval until the first share); returns the new
    /// target and difficulty when it changed.
    pub fn tick(&mut self, now: Instant) -> Option<NewTarget> {
        if self.silent {
            // before the first share the silence rule stands in for the idle rule
            return self.silence_check(now);
        }
        let ramp = self.in_ramp_up(now);
        let interval = if ramp {
            self.config.period / 4
        } else {
            self.config.period
        };
        if now.saturating_duration_since(self.last_check) < interval {
            return None;
        }
        self.last_check = now;
        self.advance(now);
        let cap = if ramp {
            self.config.ramp_up_max_step
        } else {
            self.config.max_step
        };
        let spm = self.config.shares_per_minute;
        let expected = spm
            * now
                .saturating_duration_since(self.epoch_start)
                .as_secs_f64()
            / 60.0;
        let seen = self.epoch_shares as f64;

        let (factor, idle) = if self.epoch_shares == 0 {
            if expected < IDLE_EXPECTED_SHARES {
                return None;
            }
            let step = if ramp {
                2f64.powi(self.idle_streak.saturating_add(1).min(62) as i32)
            } else {
                2.0
            };
            (1.0 / step.min(cap), true)
        } else {
            // shares since the last retarget, at one difficulty
            let k = if ramp {
                self.config.ramp_up_significance
            } else {
                self.config.significance
            };
            let mut ratio = self.deviation(seen, expected, k);
            // the window, across retargets: takes over when it agrees in direction
            let (shares, exposure) = self.window(now);
            let current = self.target.work() * spm / 60.0; // h/s the target is right for
            let window_expected = current * exposure;
            if let Some(r) = self.deviation(shares as f64, window_expected, k) {
                if (r > 1.0) == (seen > expected) {
                    ratio = Some(r);
                }
            }
            (ratio?.clamp(1.0 / cap, cap), false)
        };

        let (difficulty, target) = self.quantize(self.difficulty * factor);
        if target == self.target {
            return None; // clamped or rounded back: nothing to send
        }
        self.set(difficulty, target);
        self.epoch_start = now;
        self.epoch_shares = 0;
        self.idle_streak = if idle { self.idle_streak + 1 } else { 0 };
        self.adjustments += 1;
        Some(self.current())
    }

    /// `seen / expected` if `seen` shares where `expected` were due is significant (more than
    /// `significance` standard deviations of a Poisson count) and outside the deadband.
    fn deviation(&self, seen: f64, expected: f64, significance: f64) -> Option<f64> {
        if seen <= 0.0 || expected <= 0.0 {
            return None;
        }
        let mut band = self.config.min_deviation.ln();
        if self.config.power_of_two {
            band = band.max(0.75 * std::f64::consts::LN_2);
        }
        let r = seen / expected;
        let significant = (seen - expected).abs() > significance * expected.sqrt();
        if !(significant && r.ln().abs() > band) {
            return None;
        }
        // step one standard error short of the estimate: with few shares the estimate is
        // rough, and stopping short converges from one side instead of overshooting
        let ln_r = r.ln();
        let shrunk = ln_r.signum() * (ln_r.abs() - SHRINK / seen.sqrt()).max(0.0);
        Some(shrunk.exp())
    }

    /// Force a difficulty (e.g. SV1 `mining.suggest_difficulty`), clamped and rounded like any
    /// other; restarts the share count. Ignores non-positive or non-finite values.
    pub fn set_difficulty(&mut self, difficulty: f64, now: Instant) -> NewTarget {
        self.advance(now);
        if difficulty.is_finite() && difficulty > 0.0 {
            let (d, t) = self.quantize(difficulty);
            self.set(d, t);
        }
        self.epoch_start = now;
        self.epoch_shares = 0;
        self.idle_streak = 0;
        self.current()
    }

    /// Cap the target at what the device accepts (`max_target` of Open*MiningChannel,
    /// `maximum_target` of UpdateChannel). Returns the new target if the current one was
    /// above it (spec 5.3.7: the server MUST then send `SetTarget`).
    pub fn set_max_target(&mut self, max_target: Target, now: Instant) -> Option<NewTarget> {
        self.max_target = Some(max_target);
        let (difficulty, target) = self.quantize(self.difficulty);
        if target == self.target {
            return None;
        }
        self.advance(now);
        self.set(difficulty, target);
        self.epoch_start = now;
        self.epoch_shares = 0;
        Some(self.current())
    }

    fn set(&mut self, difficulty: f64, target: Target) {
        self.difficulty = difficulty;
        self.target = target;
        self.inv_work = 1.0 / target.work();
    }

    fn in_ramp_up(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) < self.config.ramp_up
    }

    /// Clamp `d` to the configured range, round to a power of two if asked, and respect the
    /// device's maximum target.
    fn quantize(&self, d: f64) -> (f64, Target) {
        let c = &self.config;
        let d = if d.is_nan() { c.min_difficulty } else { d };
        let d = d.clamp(c.min_difficulty, c.max_difficulty);
        let (mut d, mut target) = match pow2_range(c.min_difficulty, c.max_difficulty) {
            Some((lo, hi)) if c.power_of_two => {
                let k = (d.log2().round() as i32).clamp(lo, hi);
                (2f64.powi(k), Target::from_pow2_difficulty(k as u32))
            }
            _ => (d, Target::from_difficulty(d).unwrap_or(Target::MAX)),
        };
        if let Some(max) = self.max_target {
            if target > max {
                if c.power_of_two {
                    let p = max.pow2_difficulty_at_least();
                    d = p as f64;
                    target = Target::from_pow2_difficulty(p.trailing_zeros());
                } else {
                    d = max.difficulty();
                    target = max;
                }
            }
        }
        (d, target)
    }

    fn bucket_index(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.created).as_nanos();
        (since / self.config.period.as_nanos().max(1)) as u64
    }

    fn bucket_start(&self, k: u64) -> Instant {
        let offset = self.config.period.as_nanos().saturating_mul(u128::from(k));
        self.created + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// Make bucket `k` the newest, clearing the ones skipped.
    fn rotate(&mut self, k: u64) {
        let len = self.buckets.len() as u64;
        if k > self.newest {
            for j in (self.newest + 1)..=k.min(self.newest + len) {
                self.buckets[(j % len) as usize] = Bucket::default();
            }
            self.newest = k;
        }
    }

    /// Account exposure at the current target up to `now` (a `now` in the past is ignored).
    fn advance(&mut self, now: Instant) {
        if now <= self.accounted {
            return;
        }
        if self.silent {
            self.silent_exposure += (now - self.accounted).as_secs_f64() * self.inv_work;
        }
        let len = self.buckets.len() as u64;
        let first = (self.bucket_index(now) + 1).saturating_sub(len);
        let mut t = self.accounted.max(self.bucket_start(first));
        while t < now {
            let j = self.bucket_index(t);
            self.rotate(j);
            let end = now.min(self.bucket_start(j + 1));
            self.buckets[(j % len) as usize].exposure += (end - t).as_secs_f64() * self.inv_work;
            t = end;
        }
        self.accounted = now;
    }

    /// Shares and exposure in the window ending at `now`.
    fn window(&self, now: Instant) -> (u64, f64) {
        let len = self.buckets.len() as u64;
        let first = (self.bucket_index(now).max(self.newest) + 1).saturating_sub(len);
        let (mut shares, mut exposure) = (0u64, 0.0);
        for j in first.max((self.newest + 1).saturating_sub(len))..=self.newest {
            let b = &self.buckets[(j % len) as usize];
            shares += u64::from(b.shares);
            exposure += b.exposure;
        }
        // not yet accounted: from `accounted` (or the window start) to `now`
        let from = self.accounted.max(self.bucket_start(first));
        exposure += now.saturating_duration_since(from).as_secs_f64() * self.inv_work;
        (shares, exposure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_ranges() {
        assert_eq!(pow2_range(1.0, 1.0), Some((0, 0)));
        assert_eq!(pow2_range(0.001, 3.0), Some((0, 1)));
        assert_eq!(pow2_range(3.0, 3.9), None);
        assert_eq!(pow2_range(0.1, 0.9), None);
        assert_eq!(pow2_range(1.0, 1e30), Some((0, 63)));
    }

    #[test]
    fn config_validation() {
        let ok = VardiffConfig::default();
        assert!(ok.validate().is_ok());
        let bad = [
            VardiffConfig {
                shares_per_minute: 0.0,
                ..ok
            },
            VardiffConfig {
                max_step: 0.5,
                ..ok
            },
            VardiffConfig {
                window_periods: 1,
                ..ok
            },
            VardiffConfig {
                period: Duration::ZERO,
                ..ok
            },
            VardiffConfig {
                min_difficulty: 10.0,
                max_difficulty: 1.0,
                ..ok
            },
            VardiffConfig {
                min_difficulty: 3.0,
                max_difficulty: 3.5,
                power_of_two: true,
                ..ok
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn window_buckets_expire() {
        let t0 = Instant::now();
        let cfg = VardiffConfig {
            window_periods: 3,
            ..VardiffConfig::default()
        };
        let mut v = Vardiff::new(cfg, 1.0, t0).expect("valid");
        let t = v.target();
        let s = |x: u64| t0 + Duration::from_secs(x);
        v.on_share(s(10), &t);
        v.on_share(s(70), &t);
        // 2 shares in 150 s at one target: H = 2 * work / 150
        let h = v.hashrate(s(150));
        assert_eq!(v.shares_in_window(s(150)), 2);
        assert!((h / (2.0 * t.work() / 150.0) - 1.0).abs() < 1e-9, "{h}");
        // bucket 0 leaves the window once bucket 3 starts: 1 share in 130 s
        assert_eq!(v.shares_in_window(s(190)), 1);
        let h = v.hashrate(s(190));
        assert!((h / (t.work() / 130.0) - 1.0).abs() < 1e-9, "{h}");
        // a share far later clears everything in between
        v.on_share(s(1000), &t);
        assert_eq!(v.shares_in_window(s(1000)), 1);
        let h = v.hashrate(s(1010));
        assert!((h / (t.work() / 170.0) - 1.0).abs() < 1e-9, "{h}");
    }

    #[test]
    fn memory_per_vardiff() {
        let size = std::mem::size_of::<Vardiff>();
        assert!(size <= 320, "{size}");
        assert_eq!(std::mem::size_of::<Bucket>(), 16);
    }

    #[test]
    fn exposure_follows_the_target() {
        // 60 s at difficulty 1 then 60 s at difficulty 2, one share each: exposure is
        // 60/w + 60/(2w), so H = 2 / (90 / w)
        let t0 = Instant::now();
        let mut v = Vardiff::new(VardiffConfig::default(), 1.0, t0).expect("valid");
        let w = v.target().work();
        let t1 = v.target();
        v.on_share(t0 + Duration::from_secs(30), &t1);
        v.set_difficulty(2.0, t0 + Duration::from_secs(60));
        let t2 = v.target();
        v.on_share(t0 + Duration::from_secs(90), &t2);
        let h = v.hashrate(t0 + Duration::from_secs(120));
        assert!((h / (2.0 * w / 90.0) - 1.0).abs() < 1e-4, "{h}");
    }
}
