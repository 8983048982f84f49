//! History and alerts on a real proxy (in front of a pool on its embedded regtest chain),
//! at a 1 s history resolution: a simulated miner's history and hashrate windows, the farm
//! series, 404 for an unknown name; a miner that authorizes and never submits fires
//! `miner_silent` (log, `/api/v1/alerts`, `/metrics`, and a POST to a local webhook
//! listener); the history is still served after a restart of the proxy on the same
//! `data_dir`. A failover and the return to the preferred pool are listed, alerted and posted.
//! The farm's miners stop: `hashrate_drop` fires (its log line, the API, `/metrics`, the
//! webhook), and resolves when they are back.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{get_json, get_text, pool_config, pool_url, start_pool, sv1_miners_named, until};
use serde_json::Value;
use strata_miner::report::{Reporter, Sink};
use strata_proxy::config::{AlertSettings, Config, HistorySettings, Sv1Settings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

fn proxy_config(pool: String, dir: &Path, webhook: Option<String>) -> Config {
    Config {
        upstreams: vec![pool],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        report_interval_secs: 1,
        history: HistorySettings {
            resolution_secs: 1,
            ..HistorySettings::default()
        },
        // the simulated rig (20 kH/s) shares about twice a second from the start: never
        // silent for 10 s
        sv1: Sv1Settings {
            initial_difficulty: 2e-6,
            shares_per_minute: 60.0,
            ..Sv1Settings::default()
        },
        alerts: AlertSettings {
            miner_silent_secs: 10,
            webhook_url: webhook,
            ..AlertSettings::default()
        },
        ..Config::default()
    }
}

/// The value of the sample `series` (name and labels as written) in a `/metrics` text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"))
}

/// A local webhook receiver: every POSTed body goes to the returned queue.
async fn webhook_listener() -> (String, tokio::sync::mpsc::Receiver<Value>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(64);
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v).await;
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}/hook"), rx)
}

/// The next body POSTed to the webhook with this `kind` (others skipped), within `secs`.
async fn next_post(
    posts: &mut tokio::sync::mpsc::Receiver<Value>,
    kind: &str,
    secs: u64,
    what: &str,
) -> Value {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            let v = posts.recv().await.expect("webhook listener alive");
            if v["kind"] == kind {
                return v;
            }
        }
    })
    .await
    .expect(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_windows_silent_miner_alert_webhook_and_restart() {
    let pool_dir = tempfile::tempdir().unwrap();
    let pool = start_pool(pool_config(pool_dir.path(), "127.0.0.1:0".parse().unwrap())).await;
    let proxy_dir = tempfile::tempdir().unwrap();
    let (hook, mut posts) = webhook_listener().await;
    let proxy =
        strata_proxy::server::start(proxy_config(pool_url(&pool), proxy_dir.path(), Some(hook)))
            .await
            .unwrap();
    let api = format!("http://{}", proxy.api_addr);

    // a mining rig, and a connection that authorizes and never submits
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    sv1_miners_named(proxy.sv1_addr, &["rig 412".to_string()], &reporter, &stop);
    let mut idle = tokio::net::TcpStream::connect(proxy.sv1_addr)
        .await
        .unwrap();
    idle.write_all(
        b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"idle-fw/1.0\"]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"idle.rig\",\"x\"]}\n",
    )
    .await
    .unwrap();
    let (idle_read, _idle_write) = idle.into_split();
    // keep reading what the proxy sends so that it never waits on this connection
    tokio::spawn(async move {
        let mut lines = BufReader::new(idle_read).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    });

    // the rig's history fills step by step
    let rig = format!("{api}/api/v1/miners/rig%20412/history?minutes=10");
    until("the rig's history holds accepted shares", 60, async || {
        // 404 until the rig has connected
        let r = reqwest::get(rig.clone()).await.unwrap();
        if r.status() == 404 {
            return false;
        }
        let h: Value = r.json().await.unwrap();
        h["points"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["accepted"].as_u64() > Some(0)))
    })
    .await;
    let h = get_json(rig.clone()).await;
    assert_eq!(h["name"], "rig 412");
    assert_eq!(h["resolution_secs"], 1);
    for p in h["points"].as_array().unwrap() {
        for k in ["t", "hashrate", "accepted", "rejected", "stale"] {
            assert!(p.get(k).is_some(), "point without {k}: {p}");
        }
        // a step with accepted shares has their work
        assert_eq!(
            p["accepted"].as_u64() > Some(0),
            p["hashrate"].as_f64() > Some(0.0),
            "{p}"
        );
    }
    let farm = get_json(format!("{api}/api/v1/history?minutes=10")).await;
    assert!(farm["name"].is_null());
    assert!(!farm["points"].as_array().unwrap().is_empty());
    let unknown = reqwest::get(format!("{api}/api/v1/miners/nobody/history"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // the windows and the IP in /miners
    // (20 accepted shares first: the estimate's relative error is then about 22 %)
    until("the rig's 5 min hashrate", 60, async || {
        let miners = get_json(format!("{api}/api/v1/miners")).await;
        miners.as_array().unwrap().iter().any(|m| {
            m["worker"] == "rig 412"
                && m["accepted"].as_u64() >= Some(20)
                && m["hashrate_5m"].as_f64() > Some(0.0)
                && m["hashrate_1h"].as_f64() > Some(0.0)
                && m["hashrate_24h"].as_f64() > Some(0.0)
                && m["ip"] == "127.0.0.1"
        })
    })
    .await;
    let miners = get_json(format!("{api}/api/v1/miners")).await;
    // the estimate is the accepted share difficulty over time: about the rig's 20 kH/s
    // (wide bounds: 20 shares or a few more)
    let rig_row = miners
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["worker"] == "rig 412")
        .unwrap();
    let h1 = rig_row["hashrate_1h"].as_f64().unwrap();
    eprintln!("rig 412 (20 kH/s): {h1:.0} H/s from its accepted shares");
    assert!((4_000.0..100_000.0).contains(&h1), "{rig_row}");
    let idle_row = miners
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["worker"] == "idle.rig")
        .expect("the idle connection is listed");
    assert_eq!(idle_row["user_agent"], "idle-fw/1.0");
    assert_eq!(idle_row["hashrate_5m"], 0.0);

    // the silent miner: the webhook gets it, the API and /metrics show it
    let fired = next_post(
        &mut posts,
        "miner_silent",
        30,
        "a miner_silent alert reaches the webhook",
    )
    .await;
    assert_eq!(fired["status"], "fired");
    assert_eq!(fired["subject"], "idle.rig");
    assert!(fired["since"].as_u64().unwrap() > 0);
    assert!(fired["resolved_at"].is_null());
    let alerts = get_json(format!("{api}/api/v1/alerts")).await;
    let active = alerts["active"].as_array().unwrap();
    assert!(
        active
            .iter()
            .any(|a| a["kind"] == "miner_silent" && a["subject"] == "idle.rig"),
        "{alerts}"
    );
    assert!(
        !active.iter().any(|a| a["subject"] == "rig 412"),
        "the mining rig is not silent: {alerts}"
    );
    assert!(alerts["recent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["status"] == "fired"));
    let metrics = get_text(format!("{api}/metrics")).await;
    assert!(
        metric(
            &metrics,
            "strata_proxy_alerts_active{kind=\"miner_silent\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &metrics,
            "strata_proxy_alerts_fired_total{kind=\"miner_silent\"}"
        ) >= 1.0
    );
    assert_eq!(
        metric(&metrics, "strata_proxy_alerts_active{kind=\"failover\"}"),
        0.0
    );
    assert_eq!(
        metric(&metrics, "strata_proxy_history_dropped_batches_total"),
        0.0
    );
    let failovers = get_json(format!("{api}/api/v1/failovers")).await;
    assert_eq!(failovers, serde_json::json!([]), "one pool, never down");
    let ups = get_json(format!("{api}/api/v1/upstreams")).await;
    assert!(ups[0]["announced_hashrate"].as_f64() > Some(0.0), "{ups}");
    assert!(
        ups[0]["ack_latency_ms"]["samples"].as_u64().is_some(),
        "{ups}"
    );

    // a restart on the same data_dir serves the history of the last run
    let before = get_json(rig.clone()).await["points"]
        .as_array()
        .unwrap()
        .len();
    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    let proxy = strata_proxy::server::start(proxy_config(pool_url(&pool), proxy_dir.path(), None))
        .await
        .unwrap();
    let h = get_json(format!(
        "http://{}/api/v1/miners/rig%20412/history?minutes=10",
        proxy.api_addr
    ))
    .await;
    let after = h["points"].as_array().unwrap();
    assert!(
        after.len() >= before,
        "{before} points before, {} after",
        after.len()
    );
    assert!(after.iter().any(|p| p["accepted"].as_u64() > Some(0)));
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}

/// `GET /api/v1/failovers` (newest first).
async fn failover_log(api: &str) -> Vec<Value> {
    get_json(format!("{api}/api/v1/failovers"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_and_return_to_preferred_are_logged_alerted_and_posted() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let primary_addr: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let primary = start_pool(pool_config(d1.path(), primary_addr)).await;
    let backup = start_pool(pool_config(d2.path(), "127.0.0.1:0".parse().unwrap())).await;
    let (primary_url, backup_url) = (pool_url(&primary), pool_url(&backup));
    let proxy_dir = tempfile::tempdir().unwrap();
    let (hook, mut posts) = webhook_listener().await;
    let mut cfg = proxy_config(primary_url.clone(), proxy_dir.path(), Some(hook));
    cfg.upstreams.push(backup_url.clone());
    cfg.upstream.stable_secs = 1;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();
    let api = format!("http://{}", proxy.api_addr);
    until("the primary is active", 30, async || {
        get_json(format!("{api}/api/v1/upstreams")).await[0]["state"] == "active"
    })
    .await;
    assert!(failover_log(&api).await.is_empty(), "no failover at start");

    // the primary dies: a failover to the backup
    primary.shutdown.cancel();
    primary.wait().await;
    until("a failover is listed", 30, async || {
        !failover_log(&api).await.is_empty()
    })
    .await;
    let f = &failover_log(&api).await[0];
    assert_eq!(f["from"], primary_url.as_str());
    assert_eq!(f["to"], backup_url.as_str());
    let reason = f["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("down: {primary_url}: ")),
        "{reason}"
    );
    assert!(f["t"].as_u64().unwrap() > 0);
    let alerts = get_json(format!("{api}/api/v1/alerts")).await;
    assert!(
        alerts["active"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "failover" && a["subject"] == backup_url.as_str()),
        "{alerts}"
    );
    let post = tokio::time::timeout(Duration::from_secs(10), posts.recv())
        .await
        .expect("the failover reaches the webhook")
        .unwrap();
    assert_eq!(
        (&post["status"], &post["kind"]),
        (&"fired".into(), &"failover".into())
    );

    // the primary comes back on its port: the return is listed too
    let primary = start_pool(pool_config(d1.path(), primary_addr)).await;
    until("the return to the primary is listed", 60, async || {
        failover_log(&api).await.len() == 2
    })
    .await;
    let f = &failover_log(&api).await[0];
    assert_eq!(f["from"], backup_url.as_str());
    assert_eq!(f["to"], primary_url.as_str());
    assert_eq!(f["reason"], "return-to-preferred");
    let metrics = get_text(format!("{api}/metrics")).await;
    assert_eq!(
        metric(
            &metrics,
            "strata_proxy_alerts_fired_total{kind=\"failover\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(&metrics, "strata_proxy_alerts_active{kind=\"failover\"}"),
        1.0,
        "the newer failover replaced the older one"
    );

    proxy.shutdown.cancel();
    proxy.wait().await;
    for p in [primary, backup] {
        p.shutdown.cancel();
        p.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_webhook_url_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // no pool needed: the start stops before connecting
    let key = strata_noise::AuthorityKeypair::generate().public_key();
    let cfg = proxy_config(
        format!("stratum2+tcp://127.0.0.1:1/{key}"),
        dir.path(),
        Some("https://hooks.example/strata".into()),
    );
    let err = strata_proxy::server::start(cfg).await.unwrap_err();
    assert!(format!("{err:#}").contains("only http://"), "{err:#}");
}

/// What the proxies of this test binary log (a subscriber for the whole process, installed
/// at the first call: the proxies run in the tests' runtimes, on their threads).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(sink.clone()))
            .try_init()
            .expect("the only subscriber of this test binary");
        buf
    })
    .clone()
}

/// The lines logged so far that contain every one of `parts`.
fn log_lines(parts: &[&str]) -> Vec<String> {
    let logs = logs();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farm_whose_miners_stop_fires_hashrate_drop_and_resolves_when_they_are_back() {
    let _ = logs();
    let pool_dir = tempfile::tempdir().unwrap();
    let pool = start_pool(pool_config(pool_dir.path(), "127.0.0.1:0".parse().unwrap())).await;
    let proxy_dir = tempfile::tempdir().unwrap();
    let (hook, mut posts) = webhook_listener().await;
    let mut cfg = proxy_config(pool_url(&pool), proxy_dir.path(), Some(hook));
    // the drop rule over seconds: the last 5 s below a tenth of the 10 s before (only a
    // farm that stopped: at about ten shares a second, 5 s without one do not happen while
    // it mines); the silent rule off (the stopped rigs would fire it too)
    cfg.alerts.hashrate_drop_percent = 90.0;
    cfg.alerts.drop_recent_secs = 5;
    cfg.alerts.drop_baseline_secs = 10;
    cfg.alerts.miner_silent_secs = 0;
    cfg.sv1.shares_per_minute = 600.0;
    let proxy = strata_proxy::server::start(cfg).await.unwrap();
    let api = format!("http://{}", proxy.api_addr);
    let drop_metric = |text: &str, series: &str| {
        metric(
            text,
            &format!("strata_proxy_alerts_{series}{{kind=\"hashrate_drop\"}}"),
        )
    };

    // two rigs mine for more than both spans
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let names = ["drop-a".to_string(), "drop-b".to_string()];
    let stop = CancellationToken::new();
    sv1_miners_named(proxy.sv1_addr, &names, &reporter, &stop);
    until("15 s of the farm's history with work", 90, async || {
        let farm = get_json(format!("{api}/api/v1/history?minutes=10")).await;
        let points = farm["points"].as_array().unwrap();
        let mining = points
            .iter()
            .skip_while(|p| p["accepted"].as_u64() == Some(0))
            .count();
        mining >= 15
    })
    .await;
    let alerts = get_json(format!("{api}/api/v1/alerts")).await;
    assert_eq!(alerts["active"], serde_json::json!([]), "while it mines");
    let metrics = get_text(format!("{api}/metrics")).await;
    assert_eq!(drop_metric(&metrics, "fired_total"), 0.0);

    // the miners stop
    stop.cancel();
    let stopped = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fired = next_post(
        &mut posts,
        "hashrate_drop",
        30,
        "a hashrate_drop alert reaches the webhook",
    )
    .await;
    assert_eq!(fired["status"], "fired", "{fired}");
    assert!(fired["subject"].is_null(), "{fired}");
    assert!(fired["resolved_at"].is_null(), "{fired}");
    let since = fired["since"].as_u64().unwrap();
    assert!(
        since >= stopped,
        "fired at {since}, the miners stopped at {stopped}"
    );
    let message = fired["message"].as_str().unwrap();
    assert!(
        message.starts_with("farm hashrate ") && message.contains("over the last 5 s"),
        "{message}"
    );
    let alerts = get_json(format!("{api}/api/v1/alerts")).await;
    let active = alerts["active"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{alerts}");
    assert_eq!(active[0]["kind"], "hashrate_drop");
    assert!(active[0]["subject"].is_null());
    assert_eq!(active[0]["message"], message);
    assert_eq!(active[0]["since"], since);
    assert!(alerts["recent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["kind"] == "hashrate_drop" && n["status"] == "fired"));
    let metrics = get_text(format!("{api}/metrics")).await;
    assert_eq!(drop_metric(&metrics, "active"), 1.0);
    assert_eq!(drop_metric(&metrics, "fired_total"), 1.0);
    // the log: a warning with the kind and the message
    let lines = log_lines(&["WARN", "hashrate_drop", &format!("alert: {message}")]);
    assert_eq!(lines.len(), 1, "{lines:?}");

    // they come back: it resolves
    let stop = CancellationToken::new();
    sv1_miners_named(proxy.sv1_addr, &names, &reporter, &stop);
    let resolved = next_post(
        &mut posts,
        "hashrate_drop",
        60,
        "the resolution reaches the webhook",
    )
    .await;
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    assert_eq!(resolved["since"], since);
    assert!(
        resolved["resolved_at"].as_u64() >= Some(since),
        "{resolved}"
    );
    let alerts = get_json(format!("{api}/api/v1/alerts")).await;
    assert_eq!(alerts["active"], serde_json::json!([]), "{alerts}");
    let metrics = get_text(format!("{api}/metrics")).await;
    assert_eq!(drop_metric(&metrics, "active"), 0.0);
    assert_eq!(drop_metric(&metrics, "fired_total"), 1.0);
    let lines = log_lines(&[
        "INFO",
        "hashrate_drop",
        &format!("alert resolved: {message}"),
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");

    stop.cancel();
    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}
