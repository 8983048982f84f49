//! The shared web assets in a real browser (headless Chromium, `strata-testkit`): a page made
//! of them, served with `web::page` (its policy allows no inline script) beside a JSON route
//! behind a bearer token: tables sort by the clicked column with numbers as numbers, the
//! chart draws its series, strings from the API land as text, and the data needs the token
//! from the `#token=` fragment (the token form otherwise).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use strata_net::http_auth::{ApiAuth, ApiToken};
use strata_net::web;
use strata_testkit::{browser, fmt};

const TOKEN: &str = "assets-test-token";
const PAGE: &str = include_str!("web/test.html");
const SCRIPT: &str = include_str!("web/test.js");

async fn serve() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = ApiAuth::new(addr, Some(&ApiToken::new(TOKEN))).unwrap();
    let data = Router::new().route(
        "/data",
        get(|| async {
            Json(serde_json::json!({"n": 42, "text": "<img src=x onerror=alert(1)>"}))
        }),
    );
    let app = auth
        .protect(data)
        .merge(web::assets_router())
        .route("/", get(|h: HeaderMap| async move { web::page(PAGE, &h) }))
        .route(
            "/test.js",
            get(|h: HeaderMap| async move { web::asset("test.js", SCRIPT, &h) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn dom_of(url: String) -> String {
    browser::dump_dom(&url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assets_work_in_a_browser() {
    let addr = serve().await;
    let url = format!("http://{addr}/#token={TOKEN}");
    let dom = tokio::task::spawn_blocking(move || dom_of(url))
        .await
        .unwrap();

    // by rate (data-sort, numerically), again reversed, by name (digits by value), by a
    // column with an empty cell (last)
    assert!(
        dom.contains(
            "data-sorts=\"rig2,rig1,rig10|rig10,rig1,rig2|rig1,rig2,rig10|rig1,rig10,rig2\""
        ),
        "{dom}"
    );
    assert!(dom.contains("data-aria-sort=\"ascending\""), "{dom}");
    // two series; the point that is not a number is left out
    assert!(dom.contains("data-name=\"a\" data-points=\"3\""), "{dom}");
    assert!(dom.contains("data-points=\"1\""), "{dom}");
    assert_eq!(dom.matches("<polyline").count(), 2, "{dom}");
    // a series name and an API string are text, never markup
    assert!(dom.contains("&lt;b&gt;b&lt;/b&gt;"), "{dom}");
    assert!(
        dom.contains(
            "<span id=\"echo\" data-value=\"42\">&lt;img src=x onerror=alert(1)&gt;</span>"
        ),
        "{dom}"
    );
    assert!(!dom.contains("<img"), "{dom}");
    assert!(!dom.contains("id=\"token-form\""));
    // the figures' formatting: what strata-testkit's fmt computes for the pages' tests, and
    // no "1.00e+3 kH/s" for what rounds up to the next unit, no "500 H/s" for 0.5 H/s
    let rates = [
        0.0,
        0.5,
        1.0,
        999.4,
        999.5,
        12_250.0,
        50_000.0,
        999_700.0,
        123_456_789.0,
        1e27,
    ];
    let expected = [
        "0 H/s",
        "0.500 H/s",
        "1.00 H/s",
        "999 H/s",
        "1.00 kH/s",
        "12.3 kH/s",
        "50.0 kH/s",
        "1.00 MH/s",
        "123 MH/s",
        "1.00e+6 ZH/s",
    ];
    let ported: Vec<String> = rates.iter().map(|h| fmt::hashrate(*h)).collect();
    assert_eq!(ported, expected);
    assert!(
        dom.contains(&format!("data-hashrates=\"{}\"", expected.join("|"))),
        "{dom}"
    );
    let numbers: Vec<String> = [0, 12, 1_234_567].map(fmt::number).to_vec();
    assert!(
        dom.contains(&format!("data-numbers=\"{}\"", numbers.join("|"))),
        "{dom}"
    );
    let times: Vec<String> = [0, 1_700_000_000_123, 951_782_400_000]
        .map(fmt::time)
        .to_vec();
    assert!(
        dom.contains(&format!("data-times=\"{}\"", times.join("|"))),
        "{dom}"
    );

    // without the token: the form, no data
    let url = format!("http://{addr}/");
    let dom = tokio::task::spawn_blocking(move || dom_of(url))
        .await
        .unwrap();
    assert!(dom.contains("id=\"token-form\""), "{dom}");
    assert!(dom.contains("data-state=\"unauthorized\""), "{dom}");
    assert!(!dom.contains("id=\"echo\""), "{dom}");
}
