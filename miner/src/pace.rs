//! How much a miner may hash, and when to wake up next: sans-IO, time passed in.
//!
//! * [`Pacing::Hashrate`]: a token bucket filled at the given hashes per second (a simulated
//!   device of that speed); at most 100 ms of hashes accumulate while the task is busy.
//! * [`Pacing::ShareRate`]: the load generator's mode. A share is due every `1 / rate`
//!   seconds; when one is due the miner hashes (in steps of [`SHARE_RATE_STEP`] hashes) until
//!   it finds a share at the target the server gave, then waits for the next due time. Falling
//!   behind by more than a second drops the backlog instead of bursting.
//! * [`Pacing::ClosedLoop`]: the load generator's closed loop: one share in flight per
//!   connection, the next hashed for as soon as the last one is answered (the shell holds
//!   the hashing while a submit waits for its answer).

use std::time::{Duration, Instant};

/// Hashes per step while a share is due in [`Pacing::ShareRate`] mode.
pub const SHARE_RATE_STEP: u64 = 1 << 14;

/// Shortest sleep between hash batches in [`Pacing::Hashrate`] mode.
const MIN_PERIOD: Duration = Duration::from_millis(10);
/// Longest sleep between hash batches in [`Pacing::Hashrate`] mode.
const MAX_PERIOD: Duration = Duration::from_secs(1);
/// Seconds of hashes that may accumulate in the bucket.
const MAX_BURST_SECS: f64 = 0.1;
/// Hashes worth waking up for.
const MIN_BATCH: f64 = 256.0;

/// The pacing policy of one miner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Hash at most this many hashes per second.
    Hashrate(f64),
    /// Submit this many shares per second (hashing as much as each share needs).
    ShareRate(f64),
    /// Submit the next share as soon as the last one is answered (the shell waits for the
    /// answer; the pacer itself never holds the hashing back).
    ClosedLoop,
}

/// The state of a [`Pacing`] policy.
#[derive(Debug, Clone)]
pub struct Pacer {
    pacing: Pacing,
    /// Hashrate mode: hashes available. Share-rate mode: unused.
    tokens: f64,
    last: Instant,
    /// Share-rate mode: when the next share is due.
    due: Instant,
}

impl Pacer {
    /// A pacer starting at `now` with an empty bucket (hashrate) or a share due at once.
    pub fn new(pacing: Pacing, now: Instant) -> Self {
        Pacer {
            pacing,
            tokens: 0.0,
            last: now,
            due: now,
        }
    }

    /// The policy.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// Hashes the miner may do now.
    pub fn budget(&mut self, now: Instant) -> u64 {
        match self.pacing {
            Pacing::Hashrate(rate) => {
                let dt = now.saturating_duration_since(self.last).as_secs_f64();
                self.last = now;
                self.tokens = (self.tokens + dt * rate).min(rate * MAX_BURST_SECS + MIN_BATCH);
                self.tokens.max(0.0) as u64
            }
            Pacing::ShareRate(_) => {
                if now >= self.due {
                    SHARE_RATE_STEP
                } else {
                    0
                }
            }
            Pacing::ClosedLoop => SHARE_RATE_STEP,
        }
    }

    /// Records `hashes` done and whether they found a share.
    pub fn spent(&mut self, hashes: u64, found_share: bool, now: Instant) {
        match self.pacing {
            Pacing::Hashrate(_) => self.tokens -= hashes as f64,
            Pacing::ShareRate(rate) => {
                if found_share {
                    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
                    self.due += interval;
                    if self.due + Duration::from_secs(1) < now {
                        self.due = now;
                    }
                }
            }
            Pacing::ClosedLoop => {}
        }
    }

    /// When the miner should hash next.
    pub fn next_wake(&self, now: Instant) -> Instant {
        match self.pacing {
            Pacing::Hashrate(rate) => {
                let missing = MIN_BATCH.max(rate * MIN_PERIOD.as_secs_f64()) - self.tokens;
                if missing <= 0.0 || rate <= 0.0 {
                    return now + if rate <= 0.0 { MAX_PERIOD } else { MIN_PERIOD };
                }
                let wait = Duration::from_secs_f64(missing / rate).clamp(MIN_PERIOD, MAX_PERIOD);
                now + wait
            }
            Pacing::ShareRate(_) => self.due.max(now),
            Pacing::ClosedLoop => now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashrate_bucket_fills_at_the_rate_and_caps_bursts() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Pacing::Hashrate(10_000.0), t0);
        assert_eq!(p.budget(t0), 0);
        let b = p.budget(t0 + Duration::from_millis(50));
        assert_eq!(b, 500);
        p.spent(500, false, t0 + Duration::from_millis(50));
        // ten seconds idle: only the burst allowance accumulates
        let b = p.budget(t0 + Duration::from_secs(10));
        assert_eq!(b, 1000 + MIN_BATCH as u64);
        let wake = p.next_wake(t0 + Duration::from_secs(10));
        assert_eq!(wake, t0 + Duration::from_secs(10) + MIN_PERIOD);
        p.spent(b, false, t0 + Duration::from_secs(10));
        let wake = p.next_wake(t0 + Duration::from_secs(10));
        assert!(wake >= t0 + Duration::from_secs(10) + Duration::from_millis(25));
    }

    #[test]
    fn closed_loop_never_holds_the_hashing_back() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Pacing::ClosedLoop, t0);
        assert_eq!(p.budget(t0), SHARE_RATE_STEP);
        p.spent(1, true, t0);
        assert_eq!(p.budget(t0), SHARE_RATE_STEP);
        assert_eq!(p.next_wake(t0), t0);
    }

    #[test]
    fn share_rate_spaces_shares_and_drops_backlog() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Pacing::ShareRate(4.0), t0);
        assert_eq!(p.budget(t0), SHARE_RATE_STEP);
        p.spent(100, false, t0);
        assert_eq!(p.next_wake(t0), t0);
        p.spent(100, true, t0);
        assert_eq!(p.next_wake(t0), t0 + Duration::from_millis(250));
        assert_eq!(p.budget(t0 + Duration::from_millis(100)), 0);
        let late = t0 + Duration::from_secs(5);
        assert_eq!(p.budget(late), SHARE_RATE_STEP);
        p.spent(1, true, late);
        assert_eq!(p.next_wake(late), late);
    }
}
