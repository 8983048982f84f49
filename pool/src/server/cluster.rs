//! What the API answers in a cluster (several pool processes on one PostgreSQL ledger): the
//! answering server's id beside its live figures, and the totals of the whole pool read from
//! the shared ledger (every server's committed shares, every server's blocks, and the
//! hashrate and connections of every server's latest history samples).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::stats::{PoolStats, StatsHandle, WorkerStats};
use crate::ledger::{Ledger, LedgerError, ServerId};

/// `/api/v1/stats`: this server's figures (connections, hashrate, rejects: its own miners),
/// and in a cluster the pool-wide totals.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    /// This server's live figures.
    #[serde(flatten)]
    pub server: PoolStats,
    /// The answering server's id in a cluster (absent for a pool alone on its ledger).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// Pool-wide totals from the shared ledger (a cluster only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterTotals>,
}

/// The whole pool's totals, from the shared ledger: every server's committed shares (each
/// server adds its shares to them about once a second) and blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterTotals {
    /// Accepted shares, all servers, all time.
    pub shares_accepted: u64,
    /// Sum of their difficulty.
    pub difficulty_accepted: f64,
    /// Blocks recorded by any server (any status).
    pub blocks_found: u64,
    /// Blocks the nodes accepted.
    pub blocks_accepted: u64,
    /// Workers with shares.
    pub workers: usize,
    /// The pool's hashrate (hashes per second): each server's mean over its history samples
    /// of the last two `[history] sample_secs`, added up (a stopped server drops out
    /// after two sample periods).
    pub hashrate: f64,
    /// Miners connected to all servers: each server's most in those samples, added up.
    pub connections: u64,
}

/// `/api/v1/stats` for a server (`server` is its cluster id, if any).
///
/// `sample` is the history's sample period (`[history] sample_secs`): the pool-wide hashrate
/// and connections are read from the samples of the last two periods, all servers'.
pub async fn stats(
    stats: &StatsHandle,
    ledger: &Ledger,
    server: Option<ServerId>,
    sample: Duration,
) -> Result<Option<StatsView>, LedgerError> {
    let Some(local) = stats.pool().await else {
        return Ok(None);
    };
    let cluster = match server {
        None => None,
        Some(_) => {
            let t = ledger.totals().await?;
            let now_ms = super::stats::unix_ms();
            let since_ms =
                now_ms.saturating_sub(2 * u64::try_from(sample.as_millis()).unwrap_or(0));
            // one bucket over the whole range: per server its mean hashrate and most
            // connections, added up over the servers
            let recent = ledger.history(since_ms, u64::MAX).await?;
            let (hashrate, connections) = recent
                .iter()
                .fold((0.0, 0), |(h, c), p| (h + p.hashrate, c + p.connections));
            Some(ClusterTotals {
                shares_accepted: t.shares_accepted,
                difficulty_accepted: t.difficulty,
                blocks_found: t.blocks_found,
                blocks_accepted: t.blocks_accepted,
                workers: t.workers.len(),
                hashrate,
                connections,
            })
        }
    };
    Ok(Some(StatsView {
        server: local,
        server_id: server,
        cluster,
    }))
}

/// `/api/v1/workers`: alone, this server's figures; in a cluster every worker of the pool,
/// with the shares, difficulty and last share of the shared ledger (all servers) and the
/// hashrate and rejects this server saw of it (0 and none for a worker mining elsewhere).
pub async fn workers(
    stats: &StatsHandle,
    ledger: &Ledger,
    server: Option<ServerId>,
) -> Result<Option<Vec<WorkerStats>>, LedgerError> {
    let Some(local) = stats.workers().await else {
        return Ok(None);
    };
    if server.is_none() {
        return Ok(Some(local));
    }
    let totals = ledger.totals().await?;
    let mut by_worker: BTreeMap<String, WorkerStats> =
        local.into_iter().map(|w| (w.worker.clone(), w)).collect();
    for t in totals.workers {
        let w = by_worker
            .entry(t.worker.clone())
            .or_insert_with(|| WorkerStats {
                worker: t.worker.clone(),
                ..WorkerStats::default()
            });
        w.shares_accepted = t.shares;
        w.difficulty_accepted = t.difficulty;
        w.last_share_ms = w.last_share_ms.max(t.last_share_ms);
    }
    Ok(Some(by_worker.into_values().collect()))
}
