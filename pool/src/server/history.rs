//! The pool's history: a task samples the statistics every `[history] sample_secs` and
//! records the sample in the ledger (through the ledger thread, like every write), deleting
//! the samples older than `[history] retention_days` in the same transaction. In a cluster
//! each server samples what it accepted itself (under its `server_id`); the history read
//! back adds the servers up.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::stats::{unix_ms, PoolStats, StatsHandle};
use crate::ledger::{HistoryPoint, Ledger};

/// Hashes per difficulty-1 share.
const HASHES_PER_DIFFICULTY: f64 = 4_294_967_296.0;

/// The sample at `now_ms` of the statistics `now`, after the previous sample `prev` taken
/// at `prev_ms`: the hashrate from the difficulty accepted in between, the shares accepted
/// and rejected in between, the connections now.
pub fn sample(prev: &PoolStats, prev_ms: u64, now: &PoolStats, now_ms: u64) -> HistoryPoint {
    let secs = now_ms.saturating_sub(prev_ms) as f64 / 1000.0;
    let difficulty = (now.difficulty_accepted - prev.difficulty_accepted).max(0.0);
    let hashrate = if secs > 0.0 && difficulty.is_finite() {
        difficulty * HASHES_PER_DIFFICULTY / secs
    } else {
        0.0
    };
    HistoryPoint {
        time_ms: now_ms,
        hashrate,
        accepted: now.shares_accepted.saturating_sub(prev.shares_accepted),
        rejected: now.shares_rejected.saturating_sub(prev.shares_rejected),
        connections: now.connections,
    }
}

/// Samples every `every` until `shutdown`, keeping `retention` of samples.
pub async fn run(
    stats: StatsHandle,
    ledger: Ledger,
    every: Duration,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    let mut prev: Option<(PoolStats, u64)> = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let Some(now) = stats.pool().await else {
            return;
        };
        let now_ms = unix_ms();
        if let Some((before, before_ms)) = &prev {
            let point = sample(before, *before_ms, &now, now_ms);
            if let Err(e) = ledger
                .record_history(point, now_ms.saturating_sub(retention_ms))
                .await
            {
                tracing::warn!(error = %e, "history sample not recorded");
            }
        }
        prev = Some((now, now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_what_happened_since_the_previous_one() {
        let prev = PoolStats {
            shares_accepted: 100,
            difficulty_accepted: 50.0,
            shares_rejected: 3,
            connections: 4,
            ..PoolStats::default()
        };
        let now = PoolStats {
            shares_accepted: 160,
            difficulty_accepted: 80.0,
            shares_rejected: 5,
            connections: 6,
            ..PoolStats::default()
        };
        let p = sample(&prev, 1_000_000, &now, 1_060_000);
        assert_eq!(p.time_ms, 1_060_000);
        assert_eq!((p.accepted, p.rejected, p.connections), (60, 2, 6));
        // 30 difficulty-1 shares' work in 60 s
        assert_eq!(p.hashrate, 30.0 * HASHES_PER_DIFFICULTY / 60.0);
        // no time, or counters that went back (never expected): nothing negative
        let same = sample(&now, 5, &prev, 5);
        assert_eq!((same.hashrate, same.accepted, same.rejected), (0.0, 0, 0));
    }
}
