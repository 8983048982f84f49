//! HTTP API of the proxy (loopback by default; beyond loopback it needs a bearer token,
//! `api_token`, see [`strata_net::http_auth`]).
//!
//! * `GET /api/v1/miners`: per miner: its upstream channel index and id, worker, address,
//!   user agent, difficulty, hashrate, accepted / rejected by reason / stale, last share,
//!   connected since, upstream counts.
//! * `GET /api/v1/upstreams`: each pool: state, shares forwarded and accepted; the active one
//!   also lists its channels (`channel_ids`, and `channels`: index, state open / opening /
//!   refused, upstream id, error, miners, announced hashrate).
//! * `GET /api/v1/stats`: proxy-wide figures, with `upstream_ack_latency_ms` (samples, p50,
//!   p90, p99, max: from a miner's submit reaching the proxy to the pool's answer).
//! * `GET /metrics`: Prometheus text; per-miner series for at most `max_miner_series` miners.
//!   With an SV2 downstream: `strata_proxy_certificate_not_valid_after_seconds` and
//!   `strata_proxy_certificate_expiring` (1 when a certificate signed offline expires within
//!   a week or has expired).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

use strata_net::cert::{Decision, Signer};
use strata_net::http_auth::ApiAuth;
use strata_net::keys::ResponderWatch;

use crate::hub::{HubQuery, ACK_BUCKETS_S};

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Questions to the hub.
    pub hub: mpsc::Sender<HubQuery>,
    /// Bound on per-miner metric series.
    pub max_miner_series: usize,
    /// The SV2 downstream's current responder (for its certificate's expiry) and whether the
    /// proxy signs its certificates itself; `None` without an SV2 listener.
    pub certificate: Option<(ResponderWatch, Signer)>,
    /// Who may ask.
    pub auth: ApiAuth,
}

/// The routes, behind the bearer token when one is configured.
pub fn router(state: ApiState) -> Router {
    let auth = state.auth.clone();
    let routes = Router::new()
        .route("/api/v1/miners", get(miners))
        .route("/api/v1/upstreams", get(upstreams))
        .route("/api/v1/stats", get(stats))
        .route("/metrics", get(metrics))
        .with_state(state);
    auth.protect(routes)
}

async fn ask<T>(s: &ApiState, q: impl FnOnce(oneshot::Sender<T>) -> HubQuery) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    s.hub.send(q(tx)).await.ok()?;
    rx.await.ok()
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "proxy stopping").into_response()
}

async fn miners(State(s): State<ApiState>) -> Response {
    match ask(&s, HubQuery::Miners).await {
        Some(m) => Json(m).into_response(),
        None => unavailable(),
    }
}

async fn upstreams(State(s): State<ApiState>) -> Response {
    match ask(&s, HubQuery::Upstreams).await {
        Some(u) => Json(u).into_response(),
        None => unavailable(),
    }
}

async fn stats(State(s): State<ApiState>) -> Response {
    match ask(&s, HubQuery::Stats).await {
        Some(st) => Json(st).into_response(),
        None => unavailable(),
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(s): State<ApiState>) -> Response {
    let (Some(st), Some(miners), Some(ups)) = (
        ask(&s, HubQuery::Stats).await,
        ask(&s, HubQuery::Miners).await,
        ask(&s, HubQuery::Upstreams).await,
    ) else {
        return unavailable();
    };
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, kind: &str, v: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    metric(
        "strata_proxy_miners",
        "Connected miners.",
        "gauge",
        st.miners as f64,
    );
    metric(
        "strata_proxy_shares_accepted_total",
        "Shares accepted locally.",
        "counter",
        st.shares_accepted as f64,
    );
    metric(
        "strata_proxy_shares_stale_total",
        "Stale shares.",
        "counter",
        st.shares_stale as f64,
    );
    metric(
        "strata_proxy_shares_forwarded_total",
        "Shares forwarded upstream.",
        "counter",
        st.shares_forwarded as f64,
    );
    metric(
        "strata_proxy_upstream_accepted_total",
        "Forwarded shares the pool accepted.",
        "counter",
        st.upstream_accepted as f64,
    );
    metric(
        "strata_proxy_upstream_rejected_total",
        "Forwarded shares the pool rejected or that went stale with their upstream.",
        "counter",
        st.upstream_rejected as f64,
    );
    metric(
        "strata_proxy_hashrate",
        "Summed miner hashrate estimate.",
        "gauge",
        st.hashrate,
    );
    metric(
        "strata_proxy_upstream_channels",
        "Upstream extended channels the proxy holds or is opening.",
        "gauge",
        st.channels as f64,
    );
    metric(
        "strata_proxy_upstream_epoch",
        "Upstream switches since start.",
        "counter",
        st.epoch as f64,
    );
    let ack = &st.upstream_ack_latency_ms;
    let _ = writeln!(out, "# HELP strata_proxy_upstream_ack_seconds From a miner's submit reaching the proxy to the pool's answer for the forwarded share.\n# TYPE strata_proxy_upstream_ack_seconds histogram");
    for (le, n) in ACK_BUCKETS_S.iter().zip(&ack.buckets) {
        let _ = writeln!(
            out,
            "strata_proxy_upstream_ack_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "strata_proxy_upstream_ack_seconds_bucket{{le=\"+Inf\"}} {n}\nstrata_proxy_upstream_ack_seconds_sum {}\nstrata_proxy_upstream_ack_seconds_count {n}",
        ack.sum_s,
        n = ack.samples
    );
    let _ = writeln!(out, "# HELP strata_proxy_upstream_active Whether each pool is the active upstream.\n# TYPE strata_proxy_upstream_active gauge");
    for u in &ups {
        let _ = writeln!(
            out,
            "strata_proxy_upstream_active{{url=\"{}\"}} {}",
            label(&u.url),
            u8::from(u.state == "active")
        );
    }
    let mut rejected: std::collections::BTreeMap<&str, u64> = Default::default();
    for m in &miners {
        for (k, v) in &m.report.rejected {
            *rejected.entry(k.as_str()).or_default() += v;
        }
    }
    let _ = writeln!(out, "# HELP strata_proxy_shares_rejected_total Shares rejected locally by reason (connected miners).\n# TYPE strata_proxy_shares_rejected_total counter");
    for (k, v) in rejected {
        let _ = writeln!(
            out,
            "strata_proxy_shares_rejected_total{{reason=\"{}\"}} {v}",
            label(k)
        );
    }
    let _ = writeln!(out, "# HELP strata_proxy_miner_hashrate Hashrate estimate per miner.\n# TYPE strata_proxy_miner_hashrate gauge");
    for m in miners.iter().take(s.max_miner_series) {
        let _ = writeln!(
            out,
            "strata_proxy_miner_hashrate{{worker=\"{}\",address=\"{}\"}} {}",
            label(&m.report.worker),
            label(&m.report.address),
            m.report.hashrate
        );
    }
    let _ = writeln!(out, "# HELP strata_proxy_miner_shares_accepted_total Shares accepted per miner.\n# TYPE strata_proxy_miner_shares_accepted_total counter");
    for m in miners.iter().take(s.max_miner_series) {
        let _ = writeln!(
            out,
            "strata_proxy_miner_shares_accepted_total{{worker=\"{}\",address=\"{}\"}} {}",
            label(&m.report.worker),
            label(&m.report.address),
            m.report.accepted
        );
    }
    if let Some((responder, signer)) = &s.certificate {
        let cert = responder.borrow().certificate();
        let now = strata_net::keys::unix_now();
        let expiring = match strata_net::cert::decide(&cert, *signer, now) {
            Decision::ExpiringSoon { .. } | Decision::Expired { .. } => 1,
            Decision::Keep | Decision::Renew => 0,
        };
        let _ = writeln!(
            out,
            "# HELP strata_proxy_certificate_not_valid_after_seconds End of the SV2 downstream certificate's validity (unix seconds).\n# TYPE strata_proxy_certificate_not_valid_after_seconds gauge\nstrata_proxy_certificate_not_valid_after_seconds {}",
            cert.not_valid_after()
        );
        let _ = writeln!(
            out,
            "# HELP strata_proxy_certificate_expiring 1 when a certificate signed offline expires within a week (or has expired) and no new one replaced it.\n# TYPE strata_proxy_certificate_expiring gauge\nstrata_proxy_certificate_expiring {expiring}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
