//! `GET /metrics`: the pool's counters in Prometheus' text format.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use strata_net::cert::Decision;

use super::{unavailable, ApiState};
use crate::ledger::COMMIT_LATENCY_BOUNDS_US;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) async fn metrics(State(s): State<ApiState>) -> Response {
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
