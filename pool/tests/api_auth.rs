//! The pool's HTTP API and metrics behind a bearer token: refused to start beyond loopback
//! without one; with one, every route answers 401 unless the request carries it.
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used)]

use strata_net::http_auth::ApiToken;
use strata_pool::config::Config;

const TOKEN: &str = "pool-api-token-7f3a";

fn config(dir: &std::path::Path, api_listen: &str, token: Option<&str>) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: api_listen.parse().unwrap(),
        api_token: token.map(ApiToken::new),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_without_a_token_the_pool_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = strata_pool::server::start(config(dir.path(), "0.0.0.0:0", None))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("0.0.0.0:0") && msg.contains("api_token"),
        "{msg}"
    );
    // nothing was started: no keys, no ledger
    assert!(!dir.path().join("ledger.sqlite").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_route_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let pool = strata_pool::server::start(config(dir.path(), "0.0.0.0:0", Some(TOKEN)))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", pool.api_addr.port());
    let http = reqwest::Client::new();
    for path in [
        "/api/v1/stats",
        "/api/v1/workers",
        "/api/v1/blocks",
        "/api/v1/blocks/00000000000000000000000000000000000000000000000000000000000000aa",
        "/api/v1/history?range=1h",
        "/api/v1/miners/bcrt1qexample",
        "/metrics",
    ] {
        let url = format!("{base}{path}");
        let none = http.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path}");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let wrong = http
            .get(&url)
            .bearer_auth("pool-api-token-7f3b")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let basic = http
            .get(&url)
            .basic_auth("x", Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401, "{path}");
        let right = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        // once past the token: the made-up block is unknown (404), the made-up address not
        // an address (400)
        let expected = if path.contains("/blocks/") {
            404
        } else if path.contains("/miners/") {
            400
        } else {
            200
        };
        assert_eq!(right.status(), expected, "{path}");
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("strata_pool_height"), "{metrics}");
    pool.shutdown.cancel();
    pool.wait().await;
}
