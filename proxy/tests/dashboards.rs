//! The Grafana dashboards in `deploy/grafana/` ask only for series the binaries emit: a pool
//! (embedded regtest node) and a proxy in front of it are started, their `/metrics` read, and
//! every `strata_*` name in every query of `strata-pool.json` and `strata-proxy.json` must be
//! a metric (or a histogram's `_bucket`, `_sum`, `_count`) of the matching binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{get_text, pool_config, pool_url, start_pool};
use serde_json::Value;
use strata_proxy::config::Config;

/// The series names a Prometheus text exposition offers: every `# TYPE` family (with the
/// `_bucket`, `_sum` and `_count` series of a histogram or summary) and every sample's name.
fn exposed(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            names.insert(name.to_string());
            if kind == "histogram" || kind == "summary" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Every `expr` of the dashboard, wherever it is nested.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The `strata_*` identifiers of a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("strata_") {
        let preceded = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !preceded {
            names.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// Checks one dashboard file against the names `/metrics` offered.
fn check_dashboard(file: &str, prefix: &str, offered: &BTreeSet<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/grafana")
        .join(file);
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let panels = dashboard["panels"].as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "{file}: panel ids are unique");
    let mut exprs = Vec::new();
    queries(&dashboard, &mut exprs);
    assert!(exprs.len() >= panels.len(), "{file}: every panel queries");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{file}: {expr} names no strata series");
        for name in names {
            assert!(name.starts_with(prefix), "{file}: {name} is not {prefix}*");
            assert!(
                offered.contains(&name),
                "{file}: {name} (in {expr}) is not in /metrics: {offered:?}"
            );
            used.insert(name);
        }
    }
    eprintln!("{file}: {} queries over {} series", exprs.len(), used.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_query_only_series_the_binaries_emit() {
    let pool_dir = tempfile::tempdir().unwrap();
    let pool = start_pool(pool_config(pool_dir.path(), "127.0.0.1:0".parse().unwrap())).await;
    let proxy_dir = tempfile::tempdir().unwrap();
    let proxy = strata_proxy::server::start(Config {
        upstreams: vec![pool_url(&pool)],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        // with an SV2 downstream the certificate series are there too
        sv2_listen: Some("127.0.0.1:0".parse().unwrap()),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: proxy_dir.path().to_path_buf(),
        ..Config::default()
    })
    .await
    .unwrap();

    let pool_metrics = exposed(&get_text(format!("http://{}/metrics", pool.api_addr)).await);
    let proxy_metrics = exposed(&get_text(format!("http://{}/metrics", proxy.api_addr)).await);
    assert!(
        pool_metrics.contains("strata_pool_height"),
        "{pool_metrics:?}"
    );
    assert!(
        proxy_metrics.contains("strata_proxy_miners"),
        "{proxy_metrics:?}"
    );
    check_dashboard("strata-pool.json", "strata_pool_", &pool_metrics);
    check_dashboard("strata-proxy.json", "strata_proxy_", &proxy_metrics);

    // the check itself catches a series that is not there
    assert_eq!(
        metric_names("rate(strata_pool_made_up_total[5m]) / x_strata_no"),
        vec!["strata_pool_made_up_total".to_string()]
    );
    assert!(!pool_metrics.contains("strata_pool_made_up_total"));

    proxy.shutdown.cancel();
    proxy.wait().await;
    pool.shutdown.cancel();
    pool.wait().await;
}
