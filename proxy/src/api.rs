//! HTTP API of the proxy (loopback by default; beyond loopback it needs a bearer token,
//! `api_token`, see [`strata_net::http_auth`]).
//!
//! * `GET /api/v1/miners`: per miner: its upstream channel index and id, worker, address,
//!   `ip`, user agent, difficulty, hashrate, `hashrate_5m` / `hashrate_1h` / `hashrate_24h`
//!   (h/s, from the history plus the open step: the accepted work of the miner's worker
//!   name, all its connections, over the time it was connected within the window, the
//!   window's start rounded down to a history step; 0 with the history off), accepted /
//!   rejected by reason / stale, last share, connected since, upstream counts.
//! * `GET /api/v1/upstreams`: each pool: state, shares forwarded and accepted,
//!   `announced_hashrate` (summed over its open channels while active, else 0),
//!   `ack_latency_ms` (as in `/stats`, the shares this pool answered); the active one also
//!   lists its channels (`channel_ids`, and `channels`: index, state open / opening /
//!   refused, upstream id, error, miners, announced hashrate).
//! * `GET /api/v1/miners/{name}/history?minutes=N` (worker name, percent-encoded; N default
//!   60, at most the retention): the worker's closed history steps, oldest first;
//!   404 for a name neither in the history nor connected; 503 with the history off:
//!
//!   ```json
//!   {"name": "rig 412", "resolution_secs": 60,
//!    "points": [{"t": 1765080000, "hashrate": 1.2e14, "accepted": 9, "rejected": 0, "stale": 0}]}
//!   ```
//!
//!   `t` is the step's start (UNIX seconds), `hashrate` its accepted work (summed share
//!   difficulty × 2^32) over the seconds it covers, the counts those of the step.
//! * `GET /api/v1/history?minutes=N`: the same for the farm (every miner), `"name": null`.
//! * `GET /api/v1/failovers`: changes of the active pool, newest first, at most
//!   `max_failovers`: `[{"t": 1765080000, "from": "stratum2+tcp://..." or null,
//!   "to": "stratum2+tcp://...", "reason": "down: <url>: <why>" or "return-to-preferred"}]`
//!   (`from` is null when no pool was active before, e.g. the preferred one was down at
//!   start).
//! * `GET /api/v1/alerts`: `{"active": [alert], "recent": [notice]}`; an alert is
//!   `{"kind": "miner_silent" | "hashrate_drop" | "failover", "subject": worker name, null or
//!   pool URL, "message": str, "since": unix_secs, "resolved_at": unix_secs or null}`, a
//!   notice the same with `"status": "fired" | "resolved"` (what the webhook gets; newest
//!   first, at most `alerts.max_recent`). The rules: [`crate::alerts`].
//! * `GET /api/v1/stats`: proxy-wide figures, with `upstream_ack_latency_ms` (samples, p50,
//!   p90, p99, max: from a miner's submit reaching the proxy to the pool's answer).
//! * Pages ([`pages`], without the token: they hold no data and read the routes above with
//!   the browser's token, given once as `/#token=...`): `GET /` (the farm) and
//!   `GET /miner/{name}`, their scripts under `/assets/proxy/`, the shared assets of
//!   [`strata_net::web`] under `/assets/`.
//! * `GET /metrics`: Prometheus text; per-miner series for at most `max_miner_series` miners.
//!   With an SV2 downstream: `strata_proxy_certificate_not_valid_after_seconds` and
//!   `strata_proxy_certificate_expiring` (1 when a certificate signed offline expires within
//!   a week or has expired). Alerts: `strata_proxy_alerts_active{kind}` (gauge) and
//!   `strata_proxy_alerts_fired_total{kind}` (counter), each kind listed;
//!   `strata_proxy_history_dropped_batches_total`, `strata_proxy_history_left_out_rows_total`,
//!   `strata_proxy_alert_webhook_dropped_total`.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

use strata_net::cert::{Decision, Signer};
use strata_net::http_auth::ApiAuth;
use strata_net::keys::ResponderWatch;

use serde::{Deserialize, Serialize};

use crate::history::{window_hashrate, HistoryHandle, Point};
use crate::hub::{HubQuery, MinerStatus, ACK_BUCKETS_S};
use crate::monitor::unix_now;

pub mod pages;

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
    /// The history thread (`None` with the history off).
    pub history: Option<HistoryHandle>,
}

/// The routes, behind the bearer token when one is configured, and the pages and assets,
/// without it.
pub fn router(state: ApiState) -> Router {
    let auth = state.auth.clone();
    let routes = Router::new()
        .route("/api/v1/miners", get(miners))
        .route("/api/v1/upstreams", get(upstreams))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/miners/{name}/history", get(miner_history))
        .route("/api/v1/history", get(farm_history))
        .route("/api/v1/failovers", get(failovers))
        .route("/api/v1/alerts", get(alerts))
        .route("/metrics", get(metrics))
        .with_state(state);
    auth.protect(routes).merge(pages::router())
}

async fn ask<T>(s: &ApiState, q: impl FnOnce(oneshot::Sender<T>) -> HubQuery) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    s.hub.send(q(tx)).await.ok()?;
    rx.await.ok()
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "proxy stopping").into_response()
}

/// A miner of `GET /api/v1/miners`: its status and its hashrate windows.
#[derive(Debug, Serialize)]
struct MinerRow {
    #[serde(flatten)]
    status: MinerStatus,
    /// The IP address of `address`.
    ip: String,
    hashrate_5m: f64,
    hashrate_1h: f64,
    hashrate_24h: f64,
}

/// The windows of `GET /api/v1/miners` (seconds).
const WINDOWS: [u64; 3] = [300, 3600, 86_400];

async fn miners(State(s): State<ApiState>) -> Response {
    let (Some(miners), Some(live)) = (
        ask(&s, HubQuery::Miners).await,
        ask(&s, HubQuery::Live).await,
    ) else {
        return unavailable();
    };
    let now = unix_now().max(live.from);
    let sums = match &s.history {
        Some(h) => h
            .windows(
                WINDOWS
                    .iter()
                    .map(|w| {
                        // rounded down to the step: one read of the file per step
                        let since = now.saturating_sub(*w);
                        since - since % h.resolution_secs.max(1)
                    })
                    .collect(),
            )
            .await
            .ok(),
        None => None,
    };
    let rows: Vec<MinerRow> = miners
        .into_iter()
        .map(|m| {
            let live_work = live.workers.get(&m.report.worker).copied().unwrap_or(0.0);
            let rate = |i: usize| {
                let Some(sums) = &sums else { return 0.0 };
                let stored = sums
                    .get(i)
                    .and_then(|w| w.get(&m.report.worker))
                    .copied()
                    .unwrap_or_default();
                window_hashrate(stored, live_work, live.from, now)
            };
            MinerRow {
                ip: m
                    .report
                    .address
                    .parse::<std::net::SocketAddr>()
                    .map_or_else(|_| m.report.address.clone(), |a| a.ip().to_string()),
                hashrate_5m: rate(0),
                hashrate_1h: rate(1),
                hashrate_24h: rate(2),
                status: m,
            }
        })
        .collect();
    Json(rows).into_response()
}

/// `?minutes=N` of the history endpoints.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    minutes: Option<u64>,
}

/// The body of the history endpoints.
#[derive(Debug, Serialize)]
struct HistoryBody {
    name: Option<String>,
    resolution_secs: u64,
    points: Vec<Point>,
}

/// Minutes of history when `?minutes` is not given.
const DEFAULT_HISTORY_MINUTES: u64 = 60;

async fn history(s: &ApiState, name: Option<String>, q: HistoryQuery) -> Response {
    let Some(h) = &s.history else {
        return (StatusCode::SERVICE_UNAVAILABLE, "history is off").into_response();
    };
    let secs = q
        .minutes
        .unwrap_or(DEFAULT_HISTORY_MINUTES)
        .saturating_mul(60)
        .min(h.retention_secs);
    let since = unix_now().saturating_sub(secs);
    let points = match h.points(name.clone(), since).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            // not in the file: known only if connected now (no closed step yet)
            let connected = ask(s, HubQuery::Miners)
                .await
                .is_some_and(|m| m.iter().any(|m| Some(&m.report.worker) == name.as_ref()));
            if !connected {
                return (StatusCode::NOT_FOUND, "no such miner").into_response();
            }
            Vec::new()
        }
        Err(_) => return unavailable(),
    };
    Json(HistoryBody {
        name,
        resolution_secs: h.resolution_secs,
        points,
    })
    .into_response()
}

async fn miner_history(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    history(&s, Some(name), q).await
}

async fn farm_history(State(s): State<ApiState>, Query(q): Query<HistoryQuery>) -> Response {
    history(&s, None, q).await
}

async fn failovers(State(s): State<ApiState>) -> Response {
    match ask(&s, HubQuery::Failovers).await {
        Some(f) => Json(f).into_response(),
        None => unavailable(),
    }
}

async fn alerts(State(s): State<ApiState>) -> Response {
    match ask(&s, HubQuery::Alerts).await {
        Some(a) => Json(a).into_response(),
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
    let (Some(st), Some(miners), Some(ups), Some(mon)) = (
        ask(&s, HubQuery::Stats).await,
        ask(&s, HubQuery::Miners).await,
        ask(&s, HubQuery::Upstreams).await,
        ask(&s, HubQuery::Monitor).await,
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
    let _ = writeln!(out, "# HELP strata_proxy_alerts_active Active alerts by kind.\n# TYPE strata_proxy_alerts_active gauge");
    for (kind, active, _) in &mon.alerts {
        let _ = writeln!(
            out,
            "strata_proxy_alerts_active{{kind=\"{kind}\"}} {active}"
        );
    }
    let _ = writeln!(out, "# HELP strata_proxy_alerts_fired_total Alerts fired since the start by kind.\n# TYPE strata_proxy_alerts_fired_total counter");
    for (kind, _, fired) in &mon.alerts {
        let _ = writeln!(
            out,
            "strata_proxy_alerts_fired_total{{kind=\"{kind}\"}} {fired}"
        );
    }
    let _ = writeln!(out, "# HELP strata_proxy_history_dropped_batches_total History steps dropped because the history writer was behind.\n# TYPE strata_proxy_history_dropped_batches_total counter\nstrata_proxy_history_dropped_batches_total {}", mon.history_dropped_batches);
    let _ = writeln!(out, "# HELP strata_proxy_history_left_out_rows_total Worker rows left out of history steps beyond history.max_miners (the farm row counts them).\n# TYPE strata_proxy_history_left_out_rows_total counter\nstrata_proxy_history_left_out_rows_total {}", mon.history_left_out_rows);
    let _ = writeln!(out, "# HELP strata_proxy_alert_webhook_dropped_total Alerts not sent to the webhook because its queue was full.\n# TYPE strata_proxy_alert_webhook_dropped_total counter\nstrata_proxy_alert_webhook_dropped_total {}", mon.webhook_dropped);
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
