//! The JSON behind the pages: the pool's history (`/api/v1/history`) and one miner's view
//! (`/api/v1/miners/{address}`); see the [module docs](super) for their fields.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{unavailable, ApiState};
use crate::ledger::{BlockStatus, HistoryPoint, PplnsWindow};
use crate::payout::{payout_address, pplns_split, solo_split, PayoutMode, Split};
use crate::server::cluster;
use crate::server::stats::{unix_ms, WorkerStats};

/// Most points `/api/v1/history` returns for any range: its buckets are the range over this.
pub const HISTORY_POINTS_MAX: u64 = 360;

/// Most past blocks `/api/v1/miners/{address}` lists (the latest that paid the address).
pub const MINER_BLOCKS_MAX: usize = 100;

/// The ranges `/api/v1/history?range=` knows, with their length in milliseconds.
pub const HISTORY_RANGES: &[(&str, u64)] =
    &[("1h", 3_600_000), ("24h", 86_400_000), ("7d", 604_800_000)];

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    range: Option<String>,
}

/// One point of `/api/v1/history`.
#[derive(Debug, Serialize)]
struct HistoryOut {
    t: u64,
    hashrate: f64,
    accepted: u64,
    rejected: u64,
    connections: u64,
}

#[derive(Debug, Serialize)]
struct HistoryAnswer {
    range: String,
    bucket_ms: u64,
    points: Vec<HistoryOut>,
}

/// The bucket width of a range: the range over [`HISTORY_POINTS_MAX`], rounded up.
pub fn bucket_ms(range_ms: u64) -> u64 {
    range_ms.div_ceil(HISTORY_POINTS_MAX).max(1)
}

pub(super) async fn history(State(s): State<ApiState>, Query(q): Query<HistoryQuery>) -> Response {
    let range = q.range.unwrap_or_else(|| "1h".to_owned());
    let Some((_, range_ms)) = HISTORY_RANGES.iter().find(|(name, _)| *name == range) else {
        return error(StatusCode::BAD_REQUEST, "range is one of 1h, 24h, 7d");
    };
    let bucket = bucket_ms(*range_ms);
    // whole buckets: the first one starts at or before the range's start
    let since = unix_ms().saturating_sub(*range_ms) / bucket * bucket;
    match s.ledger.history(since, bucket).await {
        Ok(mut points) => {
            // the first bucket may start before the range: the newest HISTORY_POINTS_MAX
            let extra = points.len().saturating_sub(HISTORY_POINTS_MAX as usize);
            points.drain(..extra);
            Json(HistoryAnswer {
                range,
                bucket_ms: bucket,
                points: points
                    .into_iter()
                    .map(|p: HistoryPoint| HistoryOut {
                        t: p.time_ms,
                        hashrate: p.hashrate,
                        accepted: p.accepted,
                        rejected: p.rejected,
                        connections: p.connections,
                    })
                    .collect(),
            })
            .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A worker of the miner view.
#[derive(Debug, Serialize)]
struct MinerWorker {
    worker: String,
    hashrate: f64,
    shares_accepted: u64,
    shares_rejected: u64,
    last_share_ms: u64,
}

#[derive(Debug, Serialize)]
struct MinerWindow {
    /// The `window_shares` setting.
    window_shares: u64,
    shares: u64,
    total_difficulty: f64,
    first_id: i64,
    last_id: i64,
    miner_shares: u64,
    miner_difficulty: f64,
    miner_fraction: f64,
}

#[derive(Debug, Serialize)]
struct NextBlock {
    height: u32,
    reward_sats: u64,
    sats: u64,
    fraction: f64,
}

#[derive(Debug, Serialize)]
struct MinerBlock {
    height: u32,
    hash: String,
    time_ms: u64,
    status: BlockStatus,
    sats: u64,
}

#[derive(Debug, Serialize)]
struct MinerAnswer {
    address: String,
    mode: &'static str,
    hashrate: f64,
    workers: Vec<MinerWorker>,
    window: Option<MinerWindow>,
    next_block: NextBlock,
    blocks: Vec<MinerBlock>,
}

/// The payout address (as the splits write it) a channel identity or a statistics worker
/// (`identity/label` behind a proxy) pays, if it has one.
fn owner_of(worker: &str, network: bitcoin::Network) -> Option<String> {
    let identity = worker.split('/').next().unwrap_or(worker);
    payout_address(identity, network).map(|a| a.to_string())
}

fn paid(split: &Split, owner: &str) -> u64 {
    split
        .payouts
        .iter()
        .filter(|p| p.owner == owner)
        .map(|p| p.sats)
        .sum()
}

fn fraction(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

/// The address's part of `window`: shares and difficulty of the identities paying it.
fn window_part(window: &PplnsWindow, owner: &str, network: bitcoin::Network) -> (u64, f64) {
    window
        .workers
        .iter()
        .filter(|w| owner_of(&w.worker, network).as_deref() == Some(owner))
        .fold((0, 0.0), |(n, d), w| (n + w.shares, d + w.difficulty))
}

pub(super) async fn miner(State(s): State<ApiState>, Path(address): Path<String>) -> Response {
    let Some(owner) = payout_address(address.trim(), s.network).map(|a| a.to_string()) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("not a {} payout address", s.network.to_core_arg()),
        );
    };
    // in a cluster: every server's workers, with the shared ledger's counts
    let all = match cluster::workers(&s.stats, &s.ledger, s.server).await {
        Ok(Some(all)) => all,
        Ok(None) => return unavailable(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let workers: Vec<MinerWorker> = all
        .into_iter()
        .filter(|w| owner_of(&w.worker, s.network).as_deref() == Some(owner.as_str()))
        .map(|w: WorkerStats| MinerWorker {
            shares_rejected: w.rejected.values().sum(),
            worker: w.worker,
            hashrate: w.hashrate,
            shares_accepted: w.shares_accepted,
            last_share_ms: w.last_share_ms,
        })
        .collect();
    let (height, reward) = {
        let work = s.work.borrow();
        (
            work.template.height,
            work.template.coinbase_tx_value_remaining,
        )
    };
    let (mode, window, split) = match &s.payout.rules {
        PayoutMode::Pplns(cfg) => {
            let window = match s.ledger.pplns_window(cfg.window_shares).await {
                Ok(w) => w,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            };
            let (miner_shares, miner_difficulty) = window_part(&window, &owner, s.network);
            let split = pplns_split(reward, &window, &s.pool_script, cfg, s.network);
            let view = MinerWindow {
                window_shares: cfg.window_shares,
                shares: window.shares,
                total_difficulty: window.total_difficulty,
                first_id: window.first_id,
                last_id: window.last_id,
                miner_shares,
                miner_difficulty,
                miner_fraction: fraction(miner_difficulty, window.total_difficulty),
            };
            ("pplns", Some(view), split)
        }
        PayoutMode::Solo(cfg) => (
            "solo",
            None,
            solo_split(reward, &owner, &s.pool_script, cfg.fee_ppm, s.network),
        ),
    };
    let sats = paid(&split, &owner);
    let blocks = match s.ledger.blocks_paying(&owner, MINER_BLOCKS_MAX).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    Json(MinerAnswer {
        hashrate: workers.iter().map(|w| w.hashrate).sum(),
        address: owner.clone(),
        mode,
        workers,
        window,
        next_block: NextBlock {
            height,
            reward_sats: reward,
            sats,
            fraction: fraction(sats as f64, reward as f64),
        },
        blocks: blocks
            .into_iter()
            .map(|b| MinerBlock {
                sats: b
                    .outputs
                    .iter()
                    .filter(|o| o.owner == owner)
                    .map(|o| o.sats)
                    .sum(),
                height: b.height,
                hash: b.hash,
                time_ms: b.time_ms,
                status: b.status,
            })
            .collect(),
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_at_most_the_point_limit() {
        for (name, range) in HISTORY_RANGES {
            assert!(
                range.div_ceil(bucket_ms(*range)) <= HISTORY_POINTS_MAX,
                "{name}"
            );
        }
        assert_eq!(bucket_ms(3_600_000), 10_000);
        assert_eq!(bucket_ms(604_800_000), 1_680_000);
    }

    #[test]
    fn workers_and_identities_map_to_their_address() {
        let net = bitcoin::Network::Regtest;
        let a = bitcoin::Address::p2wsh(&bitcoin::ScriptBuf::from(vec![0x51]), net).to_string();
        assert_eq!(owner_of(&format!("{a}.rig1"), net), Some(a.clone()));
        assert_eq!(owner_of(&format!("{a}/rig.7"), net), Some(a.clone()));
        assert_eq!(owner_of(&a.to_uppercase(), net), Some(a.clone()));
        assert_eq!(owner_of("anonymous.rig", net), None);
        let window = PplnsWindow::from_shares(vec![
            (1, format!("{a}.x"), 2.0),
            (2, "other".to_owned(), 1.0),
            (3, format!("{a}.y"), 3.0),
        ]);
        assert_eq!(window_part(&window, &a, net), (2, 5.0));
        assert_eq!(fraction(1.0, 0.0), 0.0);
    }
}
