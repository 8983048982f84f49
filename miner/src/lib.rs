//! # strata-miner
//!
//! Simulated Stratum miners that really hash (double SHA-256 from the header midstate, in
//! SIMD batches, [`strata_work::sha256d`]) at the difficulty the server gives: SV2 standard
//! and extended channels (including group channels) against a pool, SV1 against a proxy, and
//! a load generator. PLACEHOLDER: the full crate documentation is at the end of this file.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod identity;
pub mod load;
pub mod pace;
pub mod report;
pub mod search;
pub mod shell;
pub mod sv1;
pub mod sv2;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use error::{MinerError, EXIT_CONNECTION, EXIT_PROTOCOL};
pub use report::{Event, MinerStats, Reporter, Sink, Summary};

/// The time, as the cores take it: a monotonic instant (latencies, pacing) and UNIX seconds
/// (nTime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// UNIX time in seconds.
    pub unix_secs: u32,
}

impl Now {
    /// The system clocks.
    pub fn system() -> Self {
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        Now {
            instant: Instant::now(),
            unix_secs,
        }
    }

    /// A fixed UNIX time with the current monotonic instant (tests, replays).
    pub fn at_unix(unix_secs: u32) -> Self {
        Now {
            instant: Instant::now(),
            unix_secs,
        }
    }
}

/// What one hashing step of a core (`mine(budget, now)`) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mined {
    /// Hashes computed.
    pub hashes: u64,
    /// Whether a share was found (and queued for sending).
    pub share: bool,
}
