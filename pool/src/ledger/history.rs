//! The pool's history in the ledger (schema version 6): one row per sample (once a minute by
//! default) of the pool's hashrate, accepted and rejected shares and connections, written by
//! the ledger thread like everything else (a [`Write`](super::Write) in the queue, committed
//! with the shares around it) and pruned as it is written, so the table stays bounded by the
//! retention the pool is configured with. Each row is one server's (`server_id`, 0 for a pool
//! alone), so that a cluster's servers each record what they accepted. Read back in time
//! buckets with the servers added up ([`Ledger::history`]), so that a week is a few hundred
//! points however often it was sampled.

use serde::Serialize;

use super::{Ledger, LedgerError, Read, Request, Write};

/// One sample of the pool, or one bucket of samples ([`Ledger::history`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// When it was taken, milliseconds since the Unix epoch (a bucket: its start).
    pub time_ms: u64,
    /// Pool hashrate (hashes per second) from the difficulty accepted since the previous
    /// sample (a bucket: the mean of its samples).
    pub hashrate: f64,
    /// Shares accepted since the previous sample (a bucket: their sum).
    pub accepted: u64,
    /// Shares rejected since the previous sample (a bucket: their sum).
    pub rejected: u64,
    /// Miners connected at the sample (a bucket: the most).
    pub connections: u64,
}

impl Ledger {
    /// Records a sample (replacing one taken at the same millisecond) and deletes the samples
    /// taken before `prune_before_ms`, in one transaction of the ledger thread.
    pub async fn record_history(
        &self,
        point: HistoryPoint,
        prune_before_ms: u64,
    ) -> Result<(), LedgerError> {
        self.ask(|reply| {
            Request::Write(Write::History {
                point,
                prune_before_ms,
                reply,
            })
        })
        .await
    }

    /// The samples taken at or after `since_ms`, in buckets of `bucket_ms` (at least 1)
    /// aligned to multiples of it, oldest first; empty buckets are left out. A bucket holds
    /// each server's mean hashrate, summed counts and most connections, added over the
    /// servers.
    pub async fn history(
        &self,
        since_ms: u64,
        bucket_ms: u64,
    ) -> Result<Vec<HistoryPoint>, LedgerError> {
        self.ask(|reply| {
            Request::Read(Read::History {
                since_ms,
                bucket_ms: bucket_ms.max(1),
                reply,
            })
        })
        .await
    }

    /// The latest `limit` blocks (newest first) with an output to `owner` (a payout address
    /// as the splits write it).
    pub async fn blocks_paying(
        &self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<super::BlockRecord>, LedgerError> {
        let owner = owner.to_owned();
        self.ask(|reply| {
            Request::Read(Read::BlocksPaying {
                owner,
                limit,
                reply,
            })
        })
        .await
    }
}
