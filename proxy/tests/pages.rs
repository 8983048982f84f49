//! The proxy's web pages in a real browser (headless Chromium, `strata-testkit`): a proxy in
//! front of two pools (each on its embedded regtest chain) with simulated SV1 miners, one of
//! them named with markup (`<b>rig&1</b>`), and history at a 1 s resolution. After the
//! primary pool is stopped (a failover) and the miners' submits are held back (a relay in
//! front of the proxy; their connections stay open), `/` and `/miner/{name}` are loaded and
//! the numbers they render (marked with ids and `data-*` attributes) must equal the JSON
//! API's: the miner count, each miner's IP, firmware, accepted / rejected / stale shares,
//! difficulty, 1 h and 24 h hashrates (the API's before and after the load bracket them:
//! they fall while the shares are held back), last share and connection times (the texts
//! the API's times give at some instant of the load), the pools' states, announced
//! hashrates and acknowledgement latencies, the failover; the hostile name must appear as
//! text, never as markup. With an `api_token` the data appears only when the page is given
//! the token in its URL fragment; without it the page shows the token form.
//!
//! Without Chromium these tests fail (see `strata_testkit::browser`). With
//! `STRATA_SCREENSHOTS=DIR` they also write `proxy-overview.png` and `proxy-miner.png` there
//! (the ones in `docs/screenshots/` come from this).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{get_json, pool_config, pool_url, start_pool, sv1_miners_named, until};
use serde_json::Value;
use strata_miner::report::{Reporter, Sink};
use strata_net::http_auth::ApiToken;
use strata_proxy::config::{Config, HistorySettings, Sv1Settings};
use strata_testkit::dom::{attr_by_id, cell, cell_value, number, row, screenshot_dir, tag_attr};
use strata_testkit::{browser, fmt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "proxy-pages-token-7d3a";
/// A worker name that would be markup if written as HTML.
const HOSTILE: &str = "<b>rig&1</b>";
/// Times a page is loaded again when the counters moved while it was loading (a
/// difficulty or an acknowledgement arriving late).
const ATTEMPTS: usize = 8;

fn proxy_config(upstreams: Vec<String>, dir: &Path, token: Option<&str>) -> Config {
    let mut cfg = Config {
        upstreams,
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: None,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        api_token: token.map(ApiToken::new),
        data_dir: dir.to_path_buf(),
        report_interval_secs: 1,
        history: HistorySettings {
            resolution_secs: 1,
            ..HistorySettings::default()
        },
        // the simulated rigs (20 kH/s) share about 12 times a minute from the start
        sv1: Sv1Settings {
            initial_difficulty: 2.3e-5,
            shares_per_minute: 12.0,
            ..Sv1Settings::default()
        },
        ..Config::default()
    };
    cfg.upstream.stable_secs = 1;
    cfg
}

/// Text as an HTML serializer writes it in a text node.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

/// Milliseconds since the epoch.
fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

async fn in_browser<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// What the pages show that only moves with shares and events: the pages are compared with
/// the API when it is the same before and after they loaded.
async fn snapshot(api: &str) -> Value {
    let mut miners: Vec<Value> = get_json(format!("{api}/api/v1/miners"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            serde_json::json!([
                m["channel"],
                m["id"],
                m["worker"],
                m["accepted"],
                m["difficulty"],
                m["rejected"],
                m["stale"],
                m["ip"],
                m["user_agent"],
                m["protocol"],
                m["last_share_ms"],
                m["connected_since_ms"]
            ])
        })
        .collect();
    miners.sort_by_key(|m| m.to_string());
    let stats = get_json(format!("{api}/api/v1/stats")).await;
    let upstreams: Vec<Value> = get_json(format!("{api}/api/v1/upstreams"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let ack = &u["ack_latency_ms"];
            serde_json::json!([
                u["state"],
                u["announced_hashrate"],
                ack["samples"],
                ack["p50"]
            ])
        })
        .collect();
    let alerts = get_json(format!("{api}/api/v1/alerts")).await;
    serde_json::json!({
        "miners": miners,
        "accepted": stats["shares_accepted"],
        "rejected": stats["shares_rejected"],
        "upstreams": upstreams,
        "failovers": get_json(format!("{api}/api/v1/failovers")).await,
        "alerts": alerts["active"].as_array().unwrap().len(),
    })
}

/// A relay in front of the proxy's SV1 port at `proxy`: what the proxy sends reaches the
/// miners, what they send reaches the proxy until `hold` is set, then it is dropped (their
/// submits stop, their connections stay open: the counters the pages show stand still).
async fn relay(proxy: SocketAddr, hold: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((miner, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(proxy).await else {
                continue;
            };
            let (mut from_miner, mut to_miner) = miner.into_split();
            let (mut from_proxy, mut to_proxy) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_proxy, &mut to_miner).await;
            });
            let hold = hold.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match from_miner.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) if !hold.load(Ordering::SeqCst) => {
                            if to_proxy.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

/// A page loaded while the API's counters stood still.
struct Loaded {
    dom: String,
    /// The counters ([`snapshot`]).
    seen: Value,
    /// `/api/v1/miners` just before and just after the load (the figures that move with the
    /// time: the hashrate windows).
    miners_before: Value,
    miners_after: Value,
    /// The instants the page may have rendered at (milliseconds since the epoch): from
    /// before the browser started to its end plus the virtual time it may have run ahead.
    from_ms: u64,
    to_ms: u64,
}

/// Loads `url` until the API's counters were the same before and after; returns the DOM
/// and those counters.
async fn stable_dom(api: &str, url: &str) -> (String, Value) {
    let l = stable_load(api, url).await;
    (l.dom, l.seen)
}

/// [`stable_dom`], with the figures around the load.
async fn stable_load(api: &str, url: &str) -> Loaded {
    for attempt in 1..=ATTEMPTS {
        let before = snapshot(api).await;
        let miners_before = get_json(format!("{api}/api/v1/miners")).await;
        let u = url.to_owned();
        let from_ms = unix_ms();
        let dom = in_browser(move || browser::dump_dom(&u)).await;
        let to_ms = unix_ms() + u64::from(browser::VIRTUAL_TIME_BUDGET_MS);
        let miners_after = get_json(format!("{api}/api/v1/miners")).await;
        let after = snapshot(api).await;
        if after == before {
            eprintln!("{url}: compared at load {attempt}");
            return Loaded {
                dom,
                seen: before,
                miners_before,
                miners_after,
                from_ms,
                to_ms,
            };
        }
        let moved: Vec<&String> = before
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| after[k.as_str()] != **v)
            .map(|(k, _)| k)
            .collect();
        eprintln!("{url}: {moved:?} moved during load {attempt}");
    }
    panic!("the counters kept moving while {url} loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_the_apis_numbers_and_names_as_text() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary_addr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let primary = start_pool(pool_config(d1.path(), primary_addr)).await;
    let backup = start_pool(pool_config(d2.path(), "127.0.0.1:0".parse().unwrap())).await;
    let (primary_url, backup_url) = (pool_url(&primary), pool_url(&backup));
    let proxy_dir = tempfile::tempdir().unwrap();
    let proxy = strata_proxy::server::start(proxy_config(
        vec![primary_url.clone(), backup_url.clone()],
        proxy_dir.path(),
        None,
    ))
    .await
    .unwrap();
    let api = format!("http://{}", proxy.api_addr);

    let names: Vec<String> = ["rig-a", "rig-b", HOSTILE].map(String::from).to_vec();
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Silent, None, CancellationToken::new());
    let hold = Arc::new(AtomicBool::new(false));
    let sv1 = relay(proxy.sv1_addr, hold.clone()).await;
    sv1_miners_named(sv1, &names, &reporter, &stop);
    let hostile_history =
        format!("{api}/api/v1/miners/%3Cb%3Erig%261%3C%2Fb%3E/history?minutes=60");
    until("every rig has shares and history", 90, async || {
        let miners = get_json(format!("{api}/api/v1/miners")).await;
        let shared = names.iter().all(|n| {
            miners
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["worker"] == n.as_str() && m["accepted"].as_u64() >= Some(2))
        });
        let r = reqwest::get(hostile_history.clone()).await.unwrap();
        let points = if r.status().is_success() {
            let h: Value = r.json().await.unwrap();
            h["points"].as_array().unwrap().len()
        } else {
            0
        };
        let farm = get_json(format!("{api}/api/v1/history?minutes=60")).await;
        shared && points >= 2 && farm["points"].as_array().unwrap().len() >= 2
    })
    .await;

    // the primary goes away: the backup takes over
    primary.shutdown.cancel();
    primary.wait().await;
    until("the failover to the backup", 60, async || {
        let ups = get_json(format!("{api}/api/v1/upstreams")).await;
        let failovers = get_json(format!("{api}/api/v1/failovers")).await;
        ups[1]["state"] == "active"
            && ups[1]["shares_accepted"].as_u64() > Some(0)
            && !failovers.as_array().unwrap().is_empty()
    })
    .await;
    // from here the miners' submits stop (their connections stay): the figures stand still
    hold.store(true, Ordering::SeqCst);
    // the shares sent before reach the API with the miners' next reports (every second)
    let mut last = Value::Null;
    until("the figures settle", 30, async || {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let now = snapshot(&api).await;
        let settled = now == last;
        last = now;
        settled
    })
    .await;

    // the farm page
    let loaded = stable_load(&api, &format!("{api}/")).await;
    let (dom, seen) = (loaded.dom.clone(), loaded.seen.clone());
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    let miners = seen["miners"].as_array().unwrap();
    assert_eq!(number(&dom, "miner-count"), miners.len() as f64);
    assert_eq!(miners.len(), names.len(), "{seen}");
    assert_eq!(
        number(&dom, "shares-accepted"),
        seen["accepted"].as_f64().unwrap()
    );
    assert_eq!(
        attr_by_id(&dom, "miner-table", "data-count"),
        Some(miners.len().to_string())
    );
    for m in miners {
        // [channel, id, worker, accepted, difficulty, rejected, stale]
        let r = row(
            &dom,
            &format!("data-channel=\"{}\" data-id=\"{}\"", m[0], m[1]),
        );
        let name = m[2].as_str().unwrap();
        assert!(
            r.contains(&format!(">{}</a>", escaped(name))),
            "{name} as text in {r}"
        );
        assert!(
            r.contains(&format!("href=\"/miner/{}\"", encode(name))),
            "{r}"
        );
        assert_eq!(cell_value(r, "num accepted"), m[3].as_f64().unwrap(), "{r}");
        assert!(m[3].as_u64().unwrap() >= 2);
        assert_eq!(
            cell_value(r, "num difficulty"),
            m[4].as_f64().unwrap(),
            "{r}"
        );
        let rejected: u64 = m[5]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(cell_value(r, "num rejected"), rejected as f64, "{r}");
        assert_eq!(cell_value(r, "num stale"), m[6].as_f64().unwrap(), "{r}");
        // [.., ip, user_agent, protocol, last_share_ms, connected_since_ms]
        assert_eq!(cell(r, "mono ip").1, m[7].as_str().unwrap(), "{r}");
        assert_eq!(m[7], "127.0.0.1");
        let agent = cell(r, "agent");
        let ua = m[8].as_str().unwrap();
        assert!(!ua.is_empty(), "{m}");
        assert_eq!(agent.1, escaped(ua), "{r}");
        assert_eq!(tag_attr(agent.0, "title"), m[9].as_str().map(String::from));
        // the hashrate windows fall while the shares are held back: the page's value is
        // within the API's of just before and just after the load, and written as the page
        // writes hashrates
        let api_row = |miners: &Value| {
            miners
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["channel"] == m[0] && x["id"] == m[1])
                .unwrap_or_else(|| panic!("{m} in {miners}"))
                .clone()
        };
        let (before, after) = (
            api_row(&loaded.miners_before),
            api_row(&loaded.miners_after),
        );
        for (class, key) in [
            ("num hashrate-1h", "hashrate_1h"),
            ("num hashrate-24h", "hashrate_24h"),
        ] {
            let (tag, text) = cell(r, class);
            let value = tag_attr(tag, "data-value").unwrap();
            // read as the API's numbers are (serde_json's float parsing may be a unit in
            // the last place off), written from the number itself
            let page: f64 = serde_json::from_str(&value).unwrap();
            let (b, a) = (before[key].as_f64().unwrap(), after[key].as_f64().unwrap());
            assert!(a > 0.0, "{key} {after}");
            assert!(
                a.min(b) <= page && page <= a.max(b),
                "{key}: page {page}, API {b} before and {a} after"
            );
            assert_eq!(text, fmt::hashrate(value.parse().unwrap()), "{r}");
        }
        // the times: the exact one in the title, the age as it reads at some instant of the
        // load
        for (class, t) in [
            ("time last-share", m[10].as_u64().unwrap()),
            ("time connected", m[11].as_u64().unwrap()),
        ] {
            assert!(t > 0, "{m}");
            let (tag, text) = cell(r, class);
            assert_eq!(tag_attr(tag, "data-sort"), Some(t.to_string()), "{r}");
            assert_eq!(tag_attr(tag, "title"), Some(fmt::time(t)), "{r}");
            let texts = fmt::ago_between(t, loaded.from_ms, loaded.to_ms);
            assert!(
                texts.iter().any(|x| x == text),
                "{class}: {text:?}, not one of {texts:?}"
            );
        }
        assert!(
            m[11].as_u64() <= m[10].as_u64(),
            "connected before its last share"
        );
    }
    // the hostile name is text: no <b> element anywhere
    assert!(!dom.contains("<b>"), "markup from a worker name:\n{dom}");
    // the pools: the primary down, the backup active (its announced hashrate and
    // acknowledgement latency), and the failover between them
    let urls = [&primary_url, &backup_url];
    let ups = seen["upstreams"].as_array().unwrap();
    for ((u, state), url) in ups.iter().zip(["down", "active"]).zip(urls) {
        // [state, announced_hashrate, ack samples, ack p50]
        assert_eq!(u[0], state, "{ups:?}");
        let r = row(&dom, &format!("data-url=\"{url}\" data-state=\"{state}\""));
        assert!(r.contains(&format!(">{state}</td>")), "{r}");
        assert_eq!(
            cell_value(r, "num announced"),
            u[1].as_f64().unwrap(),
            "{r}"
        );
        assert_eq!(cell_value(r, "num ack"), u[3].as_f64().unwrap(), "{r}");
        let ack = &r[r[..r.find("class=\"num ack\"").unwrap()]
            .rfind('<')
            .unwrap()..];
        assert_eq!(tag_attr(ack, "data-samples"), Some(u[2].to_string()), "{r}");
    }
    assert!(
        ups[1][1].as_f64() > Some(0.0),
        "the backup's announced hashrate"
    );
    assert_eq!(number(&dom, "active-pool"), 1.0);
    let failovers = seen["failovers"].as_array().unwrap();
    assert_eq!(
        attr_by_id(&dom, "failover-table", "data-count"),
        Some(failovers.len().to_string())
    );
    let f = &failovers[0];
    assert_eq!(f["from"], primary_url.as_str());
    assert_eq!(f["to"], backup_url.as_str());
    let r = row(&dom, &format!("data-t=\"{}\"", f["t"]));
    for text in [&primary_url, &backup_url] {
        assert!(r.contains(&format!(">{}</td>", escaped(text))), "{r}");
    }
    let reason = escaped(f["reason"].as_str().unwrap());
    assert!(reason.starts_with("down: "), "{reason}");
    assert!(r.contains(&format!(">{reason}</td>")), "{r}");
    // the failover alert
    assert_eq!(
        number(&dom, "alert-count"),
        seen["alerts"].as_f64().unwrap()
    );
    assert!(dom.contains("data-kind=\"failover\""), "{dom}");
    // the farm chart drew the history
    let points: usize = attr_by_id(&dom, "chart", "data-points")
        .unwrap()
        .parse()
        .unwrap();
    assert!(points >= 2, "{points} points");
    assert!(dom.contains("<polyline"), "no line drawn");
    assert_eq!(
        attr_by_id(&dom, "chart", "data-minutes").as_deref(),
        Some("60")
    );

    // the hostile miner's page, its chart over 24 h
    let page = format!("{api}/miner/{}?range=24h", encode(HOSTILE));
    let (dom, seen) = stable_dom(&api, &page).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert!(dom.contains("data-known=\"true\""), "{dom}");
    assert!(!dom.contains("<b>"), "markup from a worker name:\n{dom}");
    assert!(
        dom.contains(&format!("id=\"name\">{}</span>", escaped(HOSTILE))),
        "{dom}"
    );
    let rows: Vec<&Value> = seen["miners"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m[2] == HOSTILE)
        .collect();
    assert_eq!(rows.len(), 1, "{seen}");
    assert_eq!(
        attr_by_id(&dom, "main", "hidden"),
        None,
        "the figures are shown"
    );
    assert!(dom.contains("data-connections=\"1\""), "{dom}");
    assert_eq!(number(&dom, "accepted"), rows[0][3].as_f64().unwrap());
    assert_eq!(number(&dom, "difficulty"), rows[0][4].as_f64().unwrap());
    assert_eq!(number(&dom, "stale"), rows[0][6].as_f64().unwrap());
    let points: usize = attr_by_id(&dom, "chart", "data-points")
        .unwrap()
        .parse()
        .unwrap();
    assert!(points >= 2, "{points} points");
    assert_eq!(
        attr_by_id(&dom, "chart", "data-minutes").as_deref(),
        Some("1440")
    );
    assert!(
        dom.contains("data-range=\"24h\" aria-pressed=\"true\""),
        "{dom}"
    );
    // its 5 min hashrate: the window moves with the time (the shares held back), so the
    // page's value is the API's of a moment earlier, not the same
    let api_rate = get_json(format!("{api}/api/v1/miners"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["worker"] == HOSTILE)
        .unwrap()["hashrate_5m"]
        .as_f64()
        .unwrap();
    let page_rate = number(&dom, "hashrate-5m");
    assert!(page_rate > 0.0 && api_rate > 0.0, "{page_rate} {api_rate}");
    assert!(
        (0.5..2.0).contains(&(page_rate / api_rate)),
        "{page_rate} {api_rate}"
    );

    if let Some(shots) = screenshot_dir() {
        let overview = format!("{api}/");
        in_browser(move || {
            browser::screenshot(&overview, &shots.join("proxy-overview.png"), 1400, 1700);
            browser::screenshot(&page, &shots.join("proxy-miner.png"), 1400, 1100);
        })
        .await;
    }

    // the miners leave: a miner's page still shows its history
    stop.cancel();
    until("the miners are gone", 30, async || {
        get_json(format!("{api}/api/v1/miners")).await == serde_json::json!([])
    })
    .await;
    let url = format!("{api}/miner/rig-a");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert!(dom.contains("data-known=\"true\""), "{dom}");
    assert!(dom.contains("data-connections=\"0\""), "{dom}");
    assert!(dom.contains("Not connected now"), "{dom}");
    assert_eq!(number(&dom, "accepted"), 0.0);
    let points: usize = attr_by_id(&dom, "chart", "data-points")
        .unwrap()
        .parse()
        .unwrap();
    assert!(points >= 2, "{points} points of its history");

    proxy.shutdown.cancel();
    proxy.wait().await;
    backup.shutdown.cancel();
    backup.wait().await;
}

/// A path segment as the pages' `encodeURIComponent` writes it.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_data_needs_it_and_the_pages_do_not() {
    let dir = tempfile::tempdir().unwrap();
    // a pool that is not there: the pages and the API serve regardless
    let key = strata_noise::AuthorityKeypair::generate().public_key();
    let upstream = format!("stratum2+tcp://127.0.0.1:{}/{key}", common::free_port());
    let proxy = strata_proxy::server::start(proxy_config(vec![upstream], dir.path(), Some(TOKEN)))
        .await
        .unwrap();
    let base = format!("http://{}", proxy.api_addr);
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/miner/x",
        "/assets/api.js",
        "/assets/strata.css",
        "/assets/proxy/overview.js",
        "/assets/proxy/miner.js",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    for path in ["/api/v1/miners", "/api/v1/history?minutes=60"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let ups: Value = http
        .get(format!("{base}/api/v1/upstreams"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // the token in the fragment: the data is there
    let url = format!("{base}/#token={TOKEN}");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert_eq!(number(&dom, "miner-count"), 0.0);
    let state = ups[0]["state"].as_str().unwrap();
    assert!(dom.contains(&format!("data-state=\"{state}\"")), "{dom}");
    assert!(!dom.contains("id=\"token-form\""));
    // a miner's page for a name the proxy never saw says so
    let url = format!("{base}/miner/nobody#token={TOKEN}");
    let dom = in_browser(move || browser::dump_dom(&url)).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert!(dom.contains("data-known=\"false\""), "{dom}");
    assert!(dom.contains("data-connections=\"0\""), "{dom}");

    // none: the token form, and no data
    for url in [format!("{base}/"), format!("{base}/#token=not-the-token")] {
        let dom = in_browser(move || browser::dump_dom(&url)).await;
        assert!(dom.contains("data-state=\"unauthorized\""), "{dom}");
        assert!(dom.contains("id=\"token-form\""), "{dom}");
        assert_eq!(attr_by_id(&dom, "miner-count", "data-value"), None);
    }
    proxy.shutdown.cancel();
    proxy.wait().await;
}
