//! The time a sans-IO role is given with each input: a monotonic instant (vardiff, timers)
//! and UNIX milliseconds (nTime checks, statistics, ledger), so that tests and fuzzers drive
//! the clock themselves.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic and wall-clock time of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub mono: Instant,
    /// UNIX time in milliseconds.
    pub unix_ms: u64,
}

impl Now {
    /// The system clocks.
    pub fn current() -> Self {
        Now {
            mono: Instant::now(),
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// This time plus `d` on both clocks (tests, simulations).
    pub fn after(self, d: Duration) -> Self {
        Now {
            mono: self.mono + d,
            unix_ms: self
                .unix_ms
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// UNIX time in seconds (saturating at `u32::MAX`, like a header's nTime).
    pub fn unix_secs(&self) -> u32 {
        u32::try_from(self.unix_ms / 1000).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_moves_both_clocks() {
        let t = Now {
            mono: Instant::now(),
            unix_ms: 1_700_000_000_123,
        };
        let u = t.after(Duration::from_millis(2_500));
        assert_eq!(u.mono - t.mono, Duration::from_millis(2_500));
        assert_eq!(u.unix_ms, 1_700_000_002_623);
        assert_eq!(u.unix_secs(), 1_700_000_002);
        assert!(Now::current().unix_ms > 1_600_000_000_000);
    }
}
