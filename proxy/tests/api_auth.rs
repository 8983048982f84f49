//! The proxy's HTTP API and metrics behind a bearer token: refused to start beyond loopback
//! without one; with one, every route answers 401 unless the request carries it.
#![allow(clippy::unwrap_used)]

use strata_net::http_auth::ApiToken;
use strata_noise::AuthorityKeypair;
use strata_proxy::config::Config;

const TOKEN: &str = "proxy-api-token-91c2";

fn config(dir: &std::path::Path, api_listen: &str, token: Option<&str>) -> Config {
    // a pool that is not there: the API serves regardless
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pool_key = AuthorityKeypair::generate().public_key();
    Config {
        upstreams: vec![format!("stratum2+tcp://127.0.0.1:{port}/{pool_key}")],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: api_listen.parse().unwrap(),
        api_token: token.map(ApiToken::new),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_without_a_token_the_proxy_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = strata_proxy::server::start(config(dir.path(), "[::]:0", None))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("[::]:0") && msg.contains("api_token"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_route_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = strata_proxy::server::start(config(dir.path(), "0.0.0.0:0", Some(TOKEN)))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", proxy.api_addr.port());
    let http = reqwest::Client::new();
    for path in [
        "/api/v1/miners",
        "/api/v1/upstreams",
        "/api/v1/stats",
        "/api/v1/history?minutes=5",
        "/api/v1/failovers",
        "/api/v1/alerts",
        "/metrics",
    ] {
        let url = format!("{base}{path}");
        let none = http.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path}");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let wrong = http
            .get(&url)
            .bearer_auth("proxy-api-token-91c3")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let right = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(right.status(), 200, "{path}");
    }
    // a miner's history: refused without the token, 404 (no such miner) with it
    let url = format!("{base}/api/v1/miners/rig1/history");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let right = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(right.status(), 404);
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("strata_proxy_"), "{metrics}");
    proxy.shutdown.cancel();
    proxy.wait().await;
}
