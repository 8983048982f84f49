//! The pool's web pages in a real browser (headless Chromium, `strata-testkit`): a pool on
//! its embedded regtest node with simulated miners finds blocks, then `/` and
//! `/miner/{address}` are loaded and the numbers they render (marked with ids and `data-*`
//! attributes) must equal the JSON API's. With an `api_token` the data appears only when the
//! page is given the token in its URL fragment; without it the page shows the token form. A
//! solo pool's miner page says it is solo and shows what a found block pays.
//!
//! Without Chromium these tests fail (see `strata_testkit::browser`). With
//! `STRATA_SCREENSHOTS=DIR` they also write `pool-overview.png`, `pool-miner.png` and
//! `pool-token-form.png` there (the ones in `docs/screenshots/` come from this).
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bitcoin::{Address, Network, ScriptBuf};
use serde_json::Value;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::http_auth::ApiToken;
use strata_net::sv2::Sv2Options;
use strata_pool::config::Config;
use strata_pool::server::RunningPool;
use strata_testkit::browser;
use strata_testkit::dom::{attr_by_id, number, screenshot_dir, tag_attr};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "pages-test-token-5c1e";
/// Simulated hashrate of each miner (h/s).
const HASHRATE: f64 = 50_000.0;
/// Bound on waiting for the pool to have mined what the pages show.
const WAIT: Duration = Duration::from_secs(180);

fn address(i: u8) -> String {
    Address::p2wsh(&ScriptBuf::from(vec![0x51, i]), Network::Regtest).to_string()
}

async fn start_pool(dir: &std::path::Path, token: Option<&str>, solo: bool) -> RunningPool {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        api_token: token.map(ApiToken::new),
        ..Config::default()
    };
    // a sample a second: the chart has points within the test
    cfg.history.sample_secs = 1;
    if solo {
        cfg.payout.mode = strata_pool::config::PayoutKind::Solo;
    }
    strata_pool::server::start(cfg).await.unwrap()
}

/// Starts `n` miners, miner `i` paid to [`address`]`(i)`; returns their stop token.
fn start_miners(pool: &RunningPool, n: u8) -> CancellationToken {
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    for i in 0..n {
        let connect = Sv2Connect {
            endpoint: Endpoint::parse(&pool.sv2_addr.to_string()).unwrap(),
            authority: Some(pool.authority),
            options: Sv2Options::default(),
        };
        let cfg = Sv2Config {
            index: usize::from(i),
            user: format!("{}.rig{i}", address(i)),
            channel: ChannelRequest::Extended {
                min_extranonce_size: 8,
            },
            nominal_hashrate: HASHRATE as f32,
            record_latency: false,
        };
        let (reporter, stop) = (reporter.clone(), stop.clone());
        tokio::spawn(async move {
            let mut miner = Sv2Miner::new(cfg).unwrap();
            let _ = run_sv2(
                &mut miner,
                &connect,
                Pacing::Hashrate(HASHRATE),
                &reporter,
                &stop,
            )
            .await;
        });
    }
    stop
}

async fn get_json(url: String) -> Value {
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Polls `what` every half second until `done` says yes, at most [`WAIT`].
async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> Option<String>) {
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        match done().await {
            None => return,
            Some(state) => assert!(tokio::time::Instant::now() < end, "no {what}: {state}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Mines with `miners` miners until the pool has found blocks (every share is a block
/// candidate on regtest) paying each of them and recorded history; then stops the miners and waits for the counters to settle
/// (what the pages show and what the API says must be the same numbers).
async fn mine(pool: &RunningPool, miners: u8) {
    let api = pool.api_addr;
    let stop = start_miners(pool, miners);
    wait_until("blocks paying every miner", async || {
        let stats = get_json(format!("http://{api}/api/v1/stats")).await;
        let blocks = get_json(format!("http://{api}/api/v1/blocks?limit=100")).await;
        let history = get_json(format!("http://{api}/api/v1/history?range=1h")).await;
        let paid = |i: u8| {
            blocks.as_array().unwrap().iter().any(|b| {
                b["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| o["owner"] == address(i))
            })
        };
        let ready = stats["blocks_found"].as_u64().unwrap() >= 2
            && (0..miners).all(paid)
            && history["points"].as_array().unwrap().len() >= 2;
        (!ready).then(|| format!("{stats} {history}"))
    })
    .await;
    stop.cancel();
    let mut last = Value::Null;
    wait_until("settled counters", async || {
        let stats = get_json(format!("http://{api}/api/v1/stats")).await;
        let settled = stats["connections"] == 0 && stats == last;
        last = stats;
        (!settled).then(|| last.to_string())
    })
    .await;
}

async fn in_browser<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_the_apis_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), None, false).await;
    let api = pool.api_addr;
    mine(&pool, 2).await;
    let base = format!("http://{api}");

    // the overview
    let stats = get_json(format!("{base}/api/v1/stats")).await;
    let url = format!("{base}/");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    // the latest blocks, as many as the page asks for
    let limit = attr_by_id(&dom, "blocks", "data-limit").unwrap();
    let blocks = get_json(format!("{base}/api/v1/blocks?limit={limit}")).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert_eq!(number(&dom, "height"), stats["height"].as_f64().unwrap());
    assert_eq!(
        number(&dom, "blocks-found"),
        stats["blocks_found"].as_f64().unwrap()
    );
    assert_eq!(
        number(&dom, "shares-accepted"),
        stats["shares_accepted"].as_f64().unwrap()
    );
    assert_eq!(
        number(&dom, "shares-rejected"),
        stats["shares_rejected"].as_f64().unwrap()
    );
    assert_eq!(number(&dom, "connections"), 0.0);
    let listed = blocks.as_array().unwrap();
    assert_eq!(
        attr_by_id(&dom, "blocks", "data-count"),
        Some(listed.len().to_string())
    );
    // every block's row, with its split
    for b in listed {
        let hash = b["hash"].as_str().unwrap();
        let row = &dom[dom.find(&format!("data-hash=\"{hash}\"")).unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        for o in b["outputs"].as_array().unwrap() {
            let owner = o["owner"].as_str().unwrap();
            assert!(
                row.contains(&format!(
                    "data-owner=\"{owner}\" data-sats=\"{}\"",
                    o["sats"]
                )),
                "{owner} in {row}"
            );
        }
    }
    // the chart drew the history (one series, some points)
    let points: usize = attr_by_id(&dom, "chart", "data-points")
        .unwrap()
        .parse()
        .unwrap();
    assert!(points >= 2, "{points} points");
    assert!(dom.contains("<polyline"), "no line drawn");

    // a miner's page: the miner the newest block paid
    let paid = listed
        .iter()
        .flat_map(|b| b["outputs"].as_array().unwrap())
        .map(|o| o["owner"].as_str().unwrap().to_owned())
        .find(|owner| owner.starts_with("bcrt1"))
        .unwrap();
    let view = get_json(format!("{base}/api/v1/miners/{paid}")).await;
    let url = format!("{base}/miner/{paid}");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert!(dom.contains("data-mode=\"pplns\""));
    assert_eq!(
        number(&dom, "window-shares"),
        view["window"]["miner_shares"].as_f64().unwrap()
    );
    assert!(
        view["window"]["miner_shares"].as_u64().unwrap() > 0,
        "{view}"
    );
    assert_eq!(
        number(&dom, "next-sats"),
        view["next_block"]["sats"].as_f64().unwrap()
    );
    assert_eq!(
        number(&dom, "worker-count"),
        view["workers"].as_array().unwrap().len() as f64
    );
    let past = view["blocks"].as_array().unwrap();
    assert!(!past.is_empty(), "{view}");
    assert_eq!(
        attr_by_id(&dom, "blocks", "data-count"),
        Some(past.len().to_string())
    );
    // the newest block that paid it: its hash, height and amount
    let table = &dom[dom.find(" id=\"blocks\"").unwrap()..];
    let first = &table[table.find("<tbody").unwrap()..];
    let row = &first[first.find("<tr").unwrap()..];
    assert_eq!(
        tag_attr(row, "data-hash").as_deref(),
        past[0]["hash"].as_str()
    );
    let amount = &row[row.find("class=\"num amount\"").unwrap() - 4..];
    let amount = &amount[amount.find('<').unwrap()..];
    assert_eq!(
        tag_attr(amount, "data-value"),
        Some(past[0]["sats"].to_string())
    );
    assert!(past[0]["sats"].as_u64().unwrap() > 0);

    // what the pages cannot ask for
    let http = reqwest::Client::new();
    for path in [
        "/api/v1/history?range=2h".to_owned(),
        "/api/v1/miners/not-an-address".to_owned(),
        // an address of another network
        format!(
            "/api/v1/miners/{}",
            Address::p2wsh(&ScriptBuf::from(vec![0x51]), Network::Bitcoin)
        ),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }

    if let Some(shots) = screenshot_dir() {
        let (overview, miner) = (format!("{base}/"), format!("{base}/miner/{paid}"));
        in_browser(move || {
            browser::screenshot(&overview, &shots.join("pool-overview.png"), 1280, 1500);
            browser::screenshot(&miner, &shots.join("pool-miner.png"), 1280, 1000);
        })
        .await;
    }
    pool.shutdown.cancel();
    pool.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_data_needs_it_and_the_pages_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), Some(TOKEN), false).await;
    let base = format!("http://{}", pool.api_addr);
    let http = reqwest::Client::new();
    // the pages and the assets: no token needed; the data: 401 without it
    for path in [
        "/",
        "/miner/x",
        "/assets/api.js",
        "/assets/strata.css",
        "/assets/pool/overview.js",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    for path in [
        "/api/v1/history?range=1h",
        &format!("/api/v1/miners/{}", address(0)),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let stats = get_json(format!("{base}/api/v1/stats")).await;

    // the token in the fragment: the data is there
    let url = format!("{base}/#token={TOKEN}");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert_eq!(number(&dom, "height"), stats["height"].as_f64().unwrap());
    assert!(!dom.contains("id=\"token-form\""));

    // none: the token form, and no data
    let url = format!("{base}/");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("data-state=\"unauthorized\""), "{dom}");
    assert!(dom.contains("id=\"token-form\""), "{dom}");
    assert_eq!(attr_by_id(&dom, "height", "data-value"), None);
    // a wrong one: the same
    let url = format!("{base}/#token=not-the-token");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("id=\"token-form\""), "{dom}");

    if let Some(shots) = screenshot_dir() {
        let url = format!("{base}/");
        in_browser(move || {
            browser::screenshot(&url, &shots.join("pool-token-form.png"), 1280, 500)
        })
        .await;
    }
    pool.shutdown.cancel();
    pool.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_solo_mode_a_miners_page_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), None, true).await;
    mine(&pool, 1).await;
    let base = format!("http://{}", pool.api_addr);
    let miner = address(0);
    let view = get_json(format!("{base}/api/v1/miners/{miner}")).await;
    assert_eq!(view["mode"], "solo");
    assert!(view["window"].is_null(), "{view}");
    // a block it finds pays it the reward less the fee (1 %)
    let reward = view["next_block"]["reward_sats"].as_u64().unwrap();
    let sats = view["next_block"]["sats"].as_u64().unwrap();
    assert_eq!(sats, reward - reward / 100, "{view}");

    let url = format!("{base}/miner/{miner}");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert!(dom.contains("data-mode=\"solo\""));
    assert!(dom.contains("Solo mode"), "{dom}");
    assert_eq!(
        attr_by_id(&dom, "window-card", "hidden").as_deref(),
        Some("")
    );
    assert_eq!(number(&dom, "next-sats"), sats as f64);
    let blocks = view["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty());
    assert_eq!(
        attr_by_id(&dom, "blocks", "data-count"),
        Some(blocks.len().to_string())
    );
    pool.shutdown.cancel();
    pool.wait().await;
}
