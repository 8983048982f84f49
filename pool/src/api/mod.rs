//! HTTP API (loopback by default): JSON statistics, Prometheus metrics and the pool's web
//! pages. Beyond loopback the JSON API and `/metrics` need a bearer token (`api_token`; see
//! [`strata_net::http_auth`]); the pages and their assets hold no data and are served
//! without one (their scripts send the token the browser was given, see
//! [`strata_net::web`]).
//!
//! * `GET /api/v1/stats`: height, blocks_found, shares_accepted, difficulty_accepted,
//!   shares_rejected, rejected_by_reason, connections, hashrate. In a cluster
//!   (`[cluster] server_id`) these are the answering server's, with `server_id` and
//!   `cluster`: the pool-wide totals from the shared ledger (shares_accepted,
//!   difficulty_accepted, blocks_found, blocks_accepted, workers; hashrate and
//!   connections from every server's history samples of the last two sample periods).
//! * `GET /api/v1/workers`: per worker: shares, rejects by reason, hashrate, last share. In
//!   a cluster: every worker of the pool, shares and last share from the shared ledger,
//!   hashrate and rejects as this server saw them.
//! * Blocks (below) are read from the ledger: in a cluster, every server's.
//! * `GET /api/v1/blocks?limit=N`: found blocks, newest first, with their reward split.
//! * `GET /api/v1/blocks/{hash}`: one found block (`block`) and the payout rules its split
//!   follows (`payout`: network, the pool's output script, mode, fee, dust, output limit).
//! * `GET /api/v1/blocks/{hash}/window?after=ID&limit=N`: the shares of the block's PPLNS
//!   window (id, worker, identity, difficulty, time), in id order, at most
//!   [`WINDOW_PAGE_MAX`] per page; `next_after` is the `after` of the next page (null on the
//!   last). `strata verify-payout` recomputes the block's split from them.
//! * `GET /api/v1/history?range=1h|24h|7d`: the pool's history from the ledger
//!   (`[history]` samples, one a minute by default): `{"range", "bucket_ms", "points":
//!   [{"t", "hashrate", "accepted", "rejected", "connections"}]}`, oldest first, in buckets
//!   of `bucket_ms` (the range over [`HISTORY_POINTS_MAX`], so at most that many points):
//!   `t` the bucket's start (ms), `hashrate` the mean of its samples (h/s, from the accepted
//!   difficulty), `accepted` and `rejected` the shares in it, `connections` the most; in a
//!   cluster the servers' samples added up.
//! * `GET /api/v1/miners/{address}`: one payout address: `mode` (`pplns` or `solo`), its
//!   `workers` (the statistics' workers whose channel identity pays the address: hashrate,
//!   shares, rejects, last share) and their `hashrate`; `window` (PPLNS: the current window's
//!   `window_shares` setting, `shares`, `total_difficulty`, `first_id`, `last_id`, and the
//!   address's `miner_shares`, `miner_difficulty`, `miner_fraction`; null in solo mode);
//!   `next_block` (`height`, `reward_sats` of the work now, and `sats`, `fraction`: PPLNS,
//!   what the split of the current window pays the address, computed with the split the
//!   coinbase uses ([`strata_work::payout`]); solo, what the address gets if one of its
//!   workers finds the block); `blocks`: the latest [`MINER_BLOCKS_MAX`] blocks that paid it
//!   (`height`, `hash`, `time_ms`, `status`, `sats`). `400` for a string that is not an
//!   address of the pool's network.
//! * `GET /metrics`: Prometheus text format, with the certificate's expiry
//!   (`strata_pool_certificate_not_valid_after_seconds`) and `strata_pool_certificate_expiring`
//!   (1 when a certificate signed offline expires within a week or has expired), and the
//!   share ledger's commits (`strata_pool_ledger_transactions_total` and the histogram
//!   `strata_pool_ledger_commit_seconds`: from a connection queueing shares to their commit,
//!   what an acknowledgement waits for).
//!
//! Pages ([`pages`]): `GET /` (overview: hashrate chart, height, blocks and their split,
//! shares by reject reason, connections, workers) and `GET /miner/{address}` (the miner
//! view above), with their scripts under `/assets/pool/` and the shared assets under
//! `/assets/`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bitcoin::{Network, ScriptBuf};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use strata_net::cert::Signer;
use strata_net::http_auth::ApiAuth;
use strata_net::keys::ResponderWatch;

use crate::ledger::{BlockRecord, Ledger, ServerId};
use crate::payout::PayoutMode;
use crate::server::cluster;
use crate::server::session::Work;
use crate::server::stats::StatsHandle;

mod metrics;
pub mod pages;
mod views;

pub use views::{bucket_ms, HISTORY_POINTS_MAX, HISTORY_RANGES, MINER_BLOCKS_MAX};

/// Shares in a page of `/api/v1/blocks/{hash}/window` when the request names no `limit`.
pub const WINDOW_PAGE_DEFAULT: u64 = 1_000;
/// Most shares in a page of `/api/v1/blocks/{hash}/window` (a larger `limit` is cut to it).
pub const WINDOW_PAGE_MAX: u64 = 10_000;
/// Most blocks `/api/v1/blocks?limit=N` lists.
pub const BLOCKS_MAX: usize = 10_000;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Live counters.
    pub stats: StatsHandle,
    /// The ledger (blocks).
    pub ledger: Ledger,
    /// The responder new connections get (its certificate's expiry is a metric).
    pub certificate: ResponderWatch,
    /// Whether the pool signs its certificates itself.
    pub signer: Signer,
    /// The rules found blocks are paid by.
    pub payout: PayoutRules,
    /// Who may ask.
    pub auth: ApiAuth,
    /// The work the pool mines on now (the next block's height and reward).
    pub work: watch::Receiver<Arc<Work>>,
    /// Network of the payout addresses.
    pub network: Network,
    /// The pool's output script (fees, remainders), for the miner view's split.
    pub pool_script: ScriptBuf,
    /// The server's id in a cluster.
    pub server: Option<ServerId>,
    /// The history's sample period (`[history] sample_secs`): a cluster's pool-wide
    /// hashrate and connections come from the samples of the last two.
    pub history_sample: std::time::Duration,
}

/// The rules a found block's split follows, as `/api/v1/blocks/{hash}` shows them: with the
/// block's reward and window they determine its outputs
/// ([`pplns_split`](crate::payout::pplns_split), [`solo_split`](crate::payout::solo_split)).
/// Recorded with each block when it is found (ledger schema version 4); for a block recorded
/// before that, `/api/v1/blocks/{hash}` shows the pool's settings now (`payout_recorded`:
/// false), and such a block found under other settings does not verify.
#[derive(Debug, Clone, Serialize)]
pub struct PayoutRules {
    /// Network of the payout addresses, as Bitcoin Core names it (`main`, `test`,
    /// `testnet4`, `signet`, `regtest`).
    pub network: String,
    /// The pool's output script (fee, remainders), hex.
    pub pool_script_hex: String,
    /// Mode and its parameters: `{"mode": "pplns", "window_shares", "fee_ppm", "dust_sats",
    /// "max_outputs"}` or `{"mode": "solo", "fee_ppm"}`.
    pub rules: PayoutMode,
}

impl PayoutRules {
    /// The rules of a pool paying by `mode` on `network`, its own output `pool_script`.
    pub fn new(mode: PayoutMode, pool_script: &ScriptBuf, network: Network) -> PayoutRules {
        PayoutRules {
            network: network.to_core_arg().to_owned(),
            pool_script_hex: pool_script.to_hex_string(),
            rules: mode,
        }
    }
}

/// The API routes, behind the bearer token when one is configured, and the pages and
/// assets, without it.
pub fn router(state: ApiState) -> Router {
    let auth = state.auth.clone();
    let routes = Router::new()
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/workers", get(workers))
        .route("/api/v1/blocks", get(blocks))
        .route("/api/v1/blocks/{hash}", get(block))
        .route("/api/v1/blocks/{hash}/window", get(block_window))
        .route("/api/v1/history", get(views::history))
        .route("/api/v1/miners/{address}", get(views::miner))
        .route("/metrics", get(metrics::metrics))
        .with_state(state);
    auth.protect(routes).merge(pages::router())
}

pub(super) fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "pool stopping").into_response()
}

async fn stats(State(s): State<ApiState>) -> Response {
    match cluster::stats(&s.stats, &s.ledger, s.server, s.history_sample).await {
        Ok(Some(p)) => Json(p).into_response(),
        Ok(None) => unavailable(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn workers(State(s): State<ApiState>) -> Response {
    match cluster::workers(&s.stats, &s.ledger, s.server).await {
        Ok(Some(w)) => Json(w).into_response(),
        Ok(None) => unavailable(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn blocks(State(s): State<ApiState>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(100).min(BLOCKS_MAX);
    match s.ledger.blocks(limit).await {
        Ok(b) => Json(b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The recorded block with this display hash, or the response to send instead.
async fn find_block(s: &ApiState, hash: &str) -> Result<BlockRecord, Response> {
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err((StatusCode::BAD_REQUEST, "a block hash is 64 hex digits").into_response());
    }
    match s.ledger.block(&hash.to_ascii_lowercase()).await {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err((StatusCode::NOT_FOUND, "no such block").into_response()),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()),
    }
}

/// `/api/v1/blocks/{hash}`.
#[derive(Debug, Serialize)]
struct BlockAnswer {
    block: BlockRecord,
    /// The rules recorded with the block, or the pool's rules now for an older block.
    payout: serde_json::Value,
    /// Whether `payout` was recorded with the block.
    payout_recorded: bool,
}

async fn block(State(s): State<ApiState>, Path(hash): Path<String>) -> Response {
    match find_block(&s, &hash).await {
        Ok(block) => {
            let recorded = block
                .payout_rules
                .as_deref()
                .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok());
            let payout_recorded = recorded.is_some();
            let payout = match recorded {
                Some(rules) => rules,
                None => match serde_json::to_value(&s.payout) {
                    Ok(v) => v,
                    Err(_) => return unavailable(),
                },
            };
            Json(BlockAnswer {
                block,
                payout,
                payout_recorded,
            })
            .into_response()
        }
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct WindowPage {
    /// Shares with ids above this (default: from the window's start).
    after: Option<i64>,
    limit: Option<u64>,
}

/// One share of a block's window.
#[derive(Debug, Serialize)]
struct WindowShare {
    id: i64,
    /// Whom the statistics credit (`identity/label` for a proxy's worker).
    worker: String,
    /// The channel's user identity: whom the share pays.
    identity: String,
    difficulty: f64,
    time_ms: u64,
}

/// A page of `/api/v1/blocks/{hash}/window`.
#[derive(Debug, Serialize)]
struct WindowAnswer {
    /// The window's share-id range (inclusive); null for a block without one.
    first_id: Option<i64>,
    last_id: Option<i64>,
    shares: Vec<WindowShare>,
    /// `after` for the next page; null on the last.
    next_after: Option<i64>,
}

async fn block_window(
    State(s): State<ApiState>,
    Path(hash): Path<String>,
    Query(q): Query<WindowPage>,
) -> Response {
    let block = match find_block(&s, &hash).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some((first, last)) = block.window else {
        return Json(WindowAnswer {
            first_id: None,
            last_id: None,
            shares: Vec::new(),
            next_after: None,
        })
        .into_response();
    };
    let limit = q
        .limit
        .unwrap_or(WINDOW_PAGE_DEFAULT)
        .clamp(1, WINDOW_PAGE_MAX);
    // ids are never reused, so the page's id range holds at most `limit` shares
    let from = q.after.map_or(first, |a| a.saturating_add(1).max(first));
    let to = from
        .saturating_add(i64::try_from(limit).unwrap_or(i64::MAX) - 1)
        .min(last);
    let shares = if from > to {
        Vec::new()
    } else {
        match s.ledger.shares_in(from, to).await {
            Ok(shares) => shares,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    };
    Json(WindowAnswer {
        first_id: Some(first),
        last_id: Some(last),
        shares: shares
            .into_iter()
            .map(|(id, r)| WindowShare {
                id,
                worker: r.worker,
                identity: r.channel_identity,
                difficulty: r.difficulty,
                time_ms: r.time_ms,
            })
            .collect(),
        next_after: (to < last).then_some(to),
    })
    .into_response()
}
