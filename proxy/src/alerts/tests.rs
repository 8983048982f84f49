use std::collections::BTreeMap;

use super::*;
use crate::history::Row;

fn cfg() -> AlertConfig {
    AlertConfig {
        miner_silent_secs: 600,
        forget_after_secs: 3_600,
        hashrate_drop_percent: 30.0,
        drop_recent_secs: 600,
        drop_baseline_secs: 3_600,
        failover_active_secs: 600,
        max_recent: 4,
        max_miners: 100,
    }
}

fn row(t: u64, work: f64, accepted: u64) -> Row {
    Row {
        t,
        secs: 60,
        work,
        accepted,
        rejected: 0,
        stale: 0,
    }
}

/// The batch of the step starting at `t`: `miners` with their accepted shares (work 1 each),
/// the farm at `farm_work`.
fn batch(t: u64, miners: &[(&str, u64)], farm_work: f64) -> Batch {
    Batch {
        t,
        miners: miners
            .iter()
            .map(|(w, a)| ((*w).to_string(), row(t, *a as f64, *a)))
            .collect::<BTreeMap<_, _>>(),
        farm: row(t, farm_work, 1),
    }
}

/// Feeds steps `from..to` (minutes), judged at each step's end.
fn run(a: &mut Alerts, from: u64, to: u64, f: impl Fn(u64) -> Batch) -> Vec<Notice> {
    let mut out = Vec::new();
    for m in from..to {
        a.on_batch(&f(m * 60), m * 60 + 60, &mut out);
    }
    out
}

#[test]
fn a_silent_miner_fires_after_the_threshold_and_resolves_at_its_next_share() {
    let mut a = Alerts::new(cfg());
    // rig 412 shares in minutes 0..5, then nothing; rig7 keeps sharing
    let out = run(&mut a, 0, 15, |t| {
        let r412 = u64::from(t < 5 * 60);
        batch(t, &[("rig 412", r412), ("rig7", 1)], 1.0)
    });
    // its last share step ended at 300: silent from 900, fired at the end of minute 14
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].status, "fired");
    assert_eq!(out[0].alert.kind, AlertKind::MinerSilent);
    assert_eq!(out[0].alert.subject.as_deref(), Some("rig 412"));
    assert_eq!(out[0].alert.since, 900);
    assert_eq!(a.active_count(AlertKind::MinerSilent), 1);
    assert_eq!(a.fired_total(AlertKind::MinerSilent), 1);
    // still silent: no second notice
    assert!(run(&mut a, 15, 20, |t| batch(
        t,
        &[("rig 412", 0), ("rig7", 1)],
        1.0
    ))
    .is_empty());
    // it shares again
    let out = run(&mut a, 20, 21, |t| {
        batch(t, &[("rig 412", 2), ("rig7", 1)], 1.0)
    });
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].status, out[0].alert.resolved_at),
        ("resolved", Some(1_260))
    );
    assert_eq!(a.active_count(AlertKind::MinerSilent), 0);
    let v = a.view();
    assert!(v.active.is_empty());
    assert_eq!(
        v.recent.iter().map(|n| n.status).collect::<Vec<_>>(),
        vec!["resolved", "fired"]
    );
}

#[test]
fn a_miner_that_never_shares_is_silent_from_first_seen_and_gone_ones_are_forgotten() {
    let mut a = Alerts::new(cfg());
    // seen at 0 without a share; gone (no rows) after minute 2
    let out = run(&mut a, 0, 10, |t| {
        let m: &[(&str, u64)] = if t < 120 { &[("idle", 0)] } else { &[] };
        batch(t, m, 1.0)
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].alert.since, 600);
    // forgotten an hour after its start: the alert resolves
    let out = run(&mut a, 10, 60, |t| batch(t, &[], 1.0));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].status, out[0].alert.resolved_at),
        ("resolved", Some(3_600))
    );
    assert!(a.workers.is_empty());
}

#[test]
fn silent_workers_tracked_are_bounded() {
    let mut a = Alerts::new(AlertConfig {
        max_miners: 3,
        ..cfg()
    });
    let names: Vec<String> = (0..10).map(|i| format!("rig{i}")).collect();
    let out = run(&mut a, 0, 11, |t| {
        let m: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 0)).collect();
        batch(t, &m, 1.0)
    });
    assert_eq!(a.workers.len(), 3);
    assert_eq!(out.len(), 3);
}

#[test]
fn a_farm_drop_beyond_the_percentage_fires_and_resolves_when_back() {
    let mut a = Alerts::new(cfg());
    // an hour and ten minutes at 100, then 75 (25 %: below the 30 % threshold)
    let out = run(&mut a, 0, 80, |t| {
        batch(t, &[], if t < 70 * 60 { 100.0 } else { 75.0 })
    });
    assert!(out.is_empty(), "{out:?}");
    // then 60 for ten minutes: recent mean falls below 70 % of the baseline
    let out = run(&mut a, 80, 90, |t| batch(t, &[], 60.0));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].alert.kind, AlertKind::HashrateDrop);
    assert_eq!(a.active_count(AlertKind::HashrateDrop), 1);
    // back at 100: the recent mean rises above the threshold
    let out = run(&mut a, 90, 100, |t| batch(t, &[], 100.0));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, "resolved");
}

#[test]
fn no_drop_is_judged_before_the_baseline_is_half_covered() {
    let mut a = Alerts::new(cfg());
    // 20 minutes of 100 then 10 minutes of 0: the baseline holds only 20 of 60 minutes
    let out = run(&mut a, 0, 30, |t| {
        batch(t, &[], if t < 20 * 60 { 100.0 } else { 0.0 })
    });
    assert!(out.is_empty(), "{out:?}");
    // with the history of an earlier run seeded, the same drop is judged
    let mut a = Alerts::new(cfg());
    a.seed_farm((0..40).map(|m| row(m * 60, 100.0, 1)));
    let out = run(&mut a, 40, 50, |t| batch(t, &[], 0.0));
    assert!(
        out.iter().any(|n| n.alert.kind == AlertKind::HashrateDrop),
        "{out:?}"
    );
}

#[test]
fn a_failover_is_active_for_its_time_and_a_newer_one_replaces_it() {
    let mut a = Alerts::new(cfg());
    let f = |t, to: &str| FailoverRecord {
        t,
        from: Some("stratum2+tcp://a:1/K".into()),
        to: to.into(),
        reason: "down: connection refused".into(),
    };
    let mut out = Vec::new();
    a.on_failover(&f(100, "stratum2+tcp://b:2/K"), 100, &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].alert.message.contains("connection refused"));
    assert_eq!(
        out[0].alert.subject.as_deref(),
        Some("stratum2+tcp://b:2/K")
    );
    a.judge(699, &mut out);
    assert_eq!(a.active_count(AlertKind::Failover), 1);
    a.on_failover(&f(650, "stratum2+tcp://c:3/K"), 650, &mut out);
    assert_eq!(out.len(), 3, "the older one resolves, the newer one fires");
    assert_eq!(a.fired_total(AlertKind::Failover), 2);
    a.judge(1_250, &mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(out[3].status, "resolved");
    assert_eq!(a.active_count(AlertKind::Failover), 0);
    // max_recent = 4: the oldest notice went
    a.on_failover(&f(2_000, "stratum2+tcp://a:1/K"), 2_000, &mut out);
    let v = a.view();
    assert_eq!(v.recent.len(), 4);
    assert_eq!(v.recent[0].alert.since, 2_000);
    assert_eq!(v.active.len(), 1);
}

#[test]
fn thresholds_of_zero_turn_rules_off() {
    let mut a = Alerts::new(AlertConfig {
        miner_silent_secs: 0,
        hashrate_drop_percent: 0.0,
        failover_active_secs: 0,
        ..cfg()
    });
    let out = run(&mut a, 0, 90, |t| {
        batch(t, &[("rig", 0)], if t < 70 * 60 { 100.0 } else { 0.0 })
    });
    assert!(out.is_empty());
    let mut out = Vec::new();
    a.on_failover(
        &FailoverRecord {
            t: 0,
            from: None,
            to: "x".into(),
            reason: "r".into(),
        },
        0,
        &mut out,
    );
    assert!(out.is_empty());
}

#[test]
fn the_webhook_url_must_be_plain_http() {
    assert!(webhook::check_url("http://10.0.0.5:9000/hook").is_ok());
    assert!(webhook::check_url("https://hooks.example/x").is_err());
    assert!(webhook::check_url("not a url").is_err());
}

#[tokio::test]
async fn the_webhook_posts_each_notice_to_a_local_listener() {
    use axum::routing::post;
    let (seen_tx, mut seen) = tokio::sync::mpsc::channel::<serde_json::Value>(8);
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(v).await;
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(l, app).await });
    let stop = tokio_util::sync::CancellationToken::new();
    let url = webhook::check_url(&format!("http://{addr}/hook")).expect("url");
    let (hook, task) = webhook::spawn(url, std::time::Duration::from_secs(5), 4, stop.clone());
    let mut a = Alerts::new(cfg());
    let mut out = Vec::new();
    a.on_failover(
        &FailoverRecord {
            t: 7,
            from: None,
            to: "stratum2+tcp://b:2/K".into(),
            reason: "down: refused".into(),
        },
        7,
        &mut out,
    );
    a.judge(607, &mut out);
    for n in out {
        assert!(hook.try_send(n));
    }
    let fired = seen.recv().await.expect("the fired alert");
    assert_eq!(fired["status"], "fired");
    assert_eq!(fired["kind"], "failover");
    assert_eq!(fired["subject"], "stratum2+tcp://b:2/K");
    assert_eq!(fired["since"], 7);
    assert!(fired["resolved_at"].is_null());
    let resolved = seen.recv().await.expect("the resolved alert");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_at"], 607);
    stop.cancel();
    task.await.expect("the task ends at shutdown");
}

#[test]
fn workers_of_an_earlier_run_that_do_not_come_back_are_silent_after_the_start() {
    let mut a = Alerts::new(AlertConfig {
        max_miners: 2,
        ..cfg()
    });
    a.seed_workers(["gone".to_string(), "back".into(), "beyond".into()], 6_000);
    assert_eq!(a.workers.len(), 2, "bounded");
    let out = run(&mut a, 100, 111, |t| batch(t, &[("back", 1)], 1.0));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].alert.subject.as_deref(), Some("gone"));
    assert_eq!(out[0].alert.since, 6_600);
}
