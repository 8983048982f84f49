//! HTTP API (loopback by default): JSON statistics and Prometheus metrics.
//!
//! * `GET /api/v1/stats`: height, blocks_found, shares_accepted, shares_rejected,
//!   connections, hashrate, ...
//! * `GET /api/v1/workers`: per worker: shares, rejects by reason, hashrate, last share.
//! * `GET /api/v1/blocks?limit=N`: found blocks, newest first, with their reward split.
//! * `GET /metrics`: Prometheus text format, with the certificate's expiry
//!   (`strata_pool_certificate_not_valid_after_seconds`) and `strata_pool_certificate_expiring`
//!   (1 when a certificate signed offline expires within a week or has expired), and the
//!   share ledger's commits (`strata_pool_ledger_transactions_total` and the histogram
//!   `strata_pool_ledger_commit_seconds`: from a connection queueing shares to their commit,
//!   what an acknowledgement waits for).

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use strata_net::cert::{Decision, Signer};
use strata_net::keys::ResponderWatch;

use crate::ledger::{Ledger, COMMIT_LATENCY_BOUNDS_US};
use crate::server::stats::StatsHandle;

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
}

/// The API routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/workers", get(workers))
        .route("/api/v1/blocks", get(blocks))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "pool stopping").into_response()
}

async fn stats(State(s): State<ApiState>) -> Response {
    match s.stats.pool().await {
        Some(p) => Json(p).into_response(),
        None => unavailable(),
    }
}

async fn workers(State(s): State<ApiState>) -> Response {
    match s.stats.workers().await {
        Some(w) => Json(w).into_response(),
        None => unavailable(),
    }
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn blocks(State(s): State<ApiState>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(100).min(10_000);
    match s.ledger.blocks(limit).await {
        Ok(b) => Json(b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(s): State<ApiState>) -> Response {
    let (Some(p), Some(workers)) = (s.stats.pool().await, s.stats.workers().await) else {
        return unavailable();
    };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, v: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    gauge(
        "strata_pool_height",
        "Height of the block being mined.",
        "gauge",
        f64::from(p.height),
    );
    gauge(
        "strata_pool_blocks_found_total",
        "Blocks accepted by the template source.",
        "counter",
        p.blocks_found as f64,
    );
    gauge(
        "strata_pool_blocks_rejected_total",
        "Blocks rejected by the template source.",
        "counter",
        p.blocks_rejected as f64,
    );
    gauge(
        "strata_pool_shares_accepted_total",
        "Accepted shares.",
        "counter",
        p.shares_accepted as f64,
    );
    gauge(
        "strata_pool_connections",
        "Connected miners.",
        "gauge",
        p.connections as f64,
    );
    gauge(
        "strata_pool_hashrate",
        "Estimated pool hashrate (hashes per second).",
        "gauge",
        p.hashrate,
    );
    let _ = writeln!(
        out,
        "# HELP strata_pool_shares_rejected_total Rejected shares by reason.\n# TYPE strata_pool_shares_rejected_total counter"
    );
    for (reason, n) in &p.rejected_by_reason {
        let _ = writeln!(
            out,
            "strata_pool_shares_rejected_total{{reason=\"{}\"}} {n}",
            label(reason)
        );
    }
    let _ = writeln!(
        out,
        "# HELP strata_pool_worker_shares_accepted_total Accepted shares per worker.\n# TYPE strata_pool_worker_shares_accepted_total counter"
    );
    for w in &workers {
        let _ = writeln!(
            out,
            "strata_pool_worker_shares_accepted_total{{worker=\"{}\"}} {}",
            label(&w.worker),
            w.shares_accepted
        );
    }
    let _ = writeln!(
        out,
        "# HELP strata_pool_worker_hashrate Estimated hashrate per worker.\n# TYPE strata_pool_worker_hashrate gauge"
    );
    for w in &workers {
        let _ = writeln!(
            out,
            "strata_pool_worker_hashrate{{worker=\"{}\"}} {}",
            label(&w.worker),
            w.hashrate
        );
    }
    let l = s.ledger.stats();
    let _ = writeln!(
        out,
        "# HELP strata_pool_ledger_transactions_total Ledger write transactions committed.\n# TYPE strata_pool_ledger_transactions_total counter\nstrata_pool_ledger_transactions_total {}",
        l.transactions
    );
    let _ = writeln!(
        out,
        "# HELP strata_pool_ledger_commit_seconds Time from a connection queueing shares to their commit (what an acknowledgement waits for).\n# TYPE strata_pool_ledger_commit_seconds histogram"
    );
    for (i, n) in l.commit_latency.iter().enumerate() {
        let le = COMMIT_LATENCY_BOUNDS_US
            .get(i)
            .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
        let _ = writeln!(
            out,
            "strata_pool_ledger_commit_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "strata_pool_ledger_commit_seconds_sum {}\nstrata_pool_ledger_commit_seconds_count {}",
        l.commit_latency_sum_us as f64 / 1e6,
        l.commit_latency[l.commit_latency.len() - 1]
    );
    let cert = s.certificate.borrow().certificate();
    let expiring = match strata_net::cert::decide(&cert, s.signer, strata_net::keys::unix_now()) {
        Decision::ExpiringSoon { .. } | Decision::Expired { .. } => 1,
        Decision::Keep | Decision::Renew => 0,
    };
    let _ = writeln!(
        out,
        "# HELP strata_pool_certificate_not_valid_after_seconds End of the current certificate's validity (unix seconds).\n# TYPE strata_pool_certificate_not_valid_after_seconds gauge\nstrata_pool_certificate_not_valid_after_seconds {}",
        cert.not_valid_after()
    );
    let _ = writeln!(
        out,
        "# HELP strata_pool_certificate_expiring 1 when a certificate signed offline expires within a week (or has expired) and no new one replaced it.\n# TYPE strata_pool_certificate_expiring gauge\nstrata_pool_certificate_expiring {expiring}"
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
