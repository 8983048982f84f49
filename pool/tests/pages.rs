//! The pool's web pages in a real browser (headless Chromium, `strata-testkit`): a pool on
//! its embedded regtest node with simulated miners finds blocks, then `/` and
//! `/miner/{address}` are loaded and the numbers they render (marked with ids and `data-*`
//! attributes) must equal the JSON API's: the connections while the miners mine, the
//! rejected shares by reason (a miner submits shares for a job the pool never sent), the
//! chart's summary over each range (`?range=`), each worker's hashrate as the page formats
//! it, each block that paid a miner. With an `api_token` the data appears only when the
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
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner, Sv2Output};
use strata_miner::Now;
use strata_net::http_auth::ApiToken;
use strata_net::sv2::Sv2Options;
use strata_pool::config::Config;
use strata_pool::server::RunningPool;
use strata_protocol::mining::{MiningMessage, SubmitSharesExtended};
use strata_protocol::{Message, B0_32};
use strata_testkit::dom::{
    attr_by_id, cells, number, row as row_of, screenshot_dir, table as table_of, tag_attr,
    text_by_id,
};
use strata_testkit::{browser, fmt};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "pages-test-token-5c1e";
/// Simulated hashrate of each miner (h/s).
const HASHRATE: f64 = 50_000.0;
/// Bound on waiting for the pool to have mined what the pages show.
const WAIT: Duration = Duration::from_secs(180);
/// Shares submitted for a job the pool never sent (`invalid-job-id`).
const UNKNOWN_JOB_SHARES: u32 = 3;
/// Times a page is loaded again when what it is compared with moved while it was loading.
const ATTEMPTS: usize = 8;

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

/// A miner paid to [`address`]`(0)` (worker `bad`) that opens its channel and submits `n`
/// shares for a job the pool never sent; returns once the pool refused each of them with
/// `invalid-job-id`, and disconnects.
async fn submit_for_an_unknown_job(pool: &RunningPool, n: u32) {
    let tcp = tokio::net::TcpStream::connect(pool.sv2_addr).await.unwrap();
    let (rd, wr) = tcp.into_split();
    let (mut reader, mut writer) =
        strata_net::sv2::initiate(rd, wr, pool.authority, &Sv2Options::default())
            .await
            .unwrap();
    let mut miner = Sv2Miner::new(Sv2Config {
        index: 99,
        user: format!("{}.bad", address(0)),
        channel: ChannelRequest::Extended {
            min_extranonce_size: 8,
        },
        nominal_hashrate: HASHRATE as f32,
        record_latency: false,
    })
    .unwrap();
    miner.connect(&pool.sv2_addr.ip().to_string(), pool.sv2_addr.port());
    let (mut sent, mut refused) = (false, Vec::new());
    tokio::time::timeout(WAIT, async {
        while refused.len() < n as usize {
            while let Some(out) = miner.poll_output() {
                if let Sv2Output::Send(m) = out {
                    writer.send_message(&m).await.unwrap();
                }
            }
            if let (Some(channel_id), false) = (miner.channel_id(), sent) {
                for sequence_number in 0..n {
                    let share: Message = SubmitSharesExtended {
                        channel_id,
                        sequence_number,
                        job_id: u32::MAX,
                        nonce: 0,
                        ntime: 0,
                        version: 0,
                        extranonce: B0_32::new(&[0u8; 8][..]).unwrap(),
                    }
                    .into();
                    writer.send_message(&share).await.unwrap();
                }
                sent = true;
            }
            let (_, msg) = reader
                .read_message()
                .await
                .unwrap()
                .expect("the pool answers");
            if let Message::Mining(MiningMessage::SubmitSharesError(e)) = &msg {
                refused.push(e.error_code.as_str().to_owned());
            }
            miner.handle(msg, Now::system()).unwrap();
        }
    })
    .await
    .expect("the pool refuses the shares");
    assert!(refused.iter().all(|c| c == "invalid-job-id"), "{refused:?}");
    let _ = writer.shutdown().await;
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
    let stop = mine_until_paid(pool, miners).await;
    stop_miners(pool, &stop).await;
}

/// The first half of [`mine`]: returns the stop token of the miners, still mining.
async fn mine_until_paid(pool: &RunningPool, miners: u8) -> CancellationToken {
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
    stop
}

/// The second half of [`mine`]: stops the miners, waits for the counters to settle.
async fn stop_miners(pool: &RunningPool, stop: &CancellationToken) {
    let api = pool.api_addr;
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

/// Loads `url` until `api` (what the page is compared with, read from the API) was the same
/// before and after; returns the DOM and that value.
async fn stable_dom(url: &str, mut api: impl AsyncFnMut() -> Value) -> (String, Value) {
    for attempt in 1..=ATTEMPTS {
        let before = api().await;
        let u = url.to_owned();
        let dom = in_browser(move || browser::dump_dom(&u)).await;
        if api().await == before {
            return (dom, before);
        }
        eprintln!("{url}: the API moved during load {attempt}");
    }
    panic!("the API kept moving while {url} loaded");
}

/// A page's workers as the API lists them, before and after the page loaded: each
/// `{worker, hashrate, shares_accepted, shares_rejected}`.
type Workers = Vec<Value>;

/// `/api/v1/miners/{address}`'s workers (`miner`) or `/api/v1/workers` (`None`), in the
/// form of [`Workers`].
async fn api_workers(base: &str, miner: Option<&str>) -> Workers {
    let list = match miner {
        Some(a) => get_json(format!("{base}/api/v1/miners/{a}")).await["workers"].clone(),
        None => get_json(format!("{base}/api/v1/workers")).await,
    };
    list.as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let rejected = match &w["shares_rejected"] {
                Value::Null => w["rejected"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|n| n.as_u64().unwrap())
                    .sum(),
                n => n.as_u64().unwrap(),
            };
            serde_json::json!({
                "worker": w["worker"],
                "hashrate": w["hashrate"],
                "shares_accepted": w["shares_accepted"],
                "shares_rejected": rejected,
            })
        })
        .collect()
}

/// The workers' names and shares (what moves only with shares).
fn shares_of(workers: &Workers) -> Vec<Value> {
    workers
        .iter()
        .map(|w| serde_json::json!([w["worker"], w["shares_accepted"], w["shares_rejected"]]))
        .collect()
}

/// Loads `url` until the workers' shares (`miner`'s, see [`api_workers`]) were the same
/// before and after: their hashrates then only fell with the time in between (a window's
/// accepted difficulty over its span). Returns the DOM and the workers before and after.
async fn load_with_workers(
    base: &str,
    url: &str,
    miner: Option<&str>,
) -> (String, Workers, Workers) {
    for attempt in 1..=ATTEMPTS {
        let before = api_workers(base, miner).await;
        let u = url.to_owned();
        let dom = in_browser(move || browser::dump_dom(&u)).await;
        let after = api_workers(base, miner).await;
        if shares_of(&after) == shares_of(&before) {
            return (dom, before, after);
        }
        eprintln!("{url}: shares came in during load {attempt}");
    }
    panic!("shares kept coming in while {url} loaded");
}

/// The rows of a workers table in `dom` are the API's `before` and `after` the load: a row
/// per worker, its name, its hashrate (within the API's before and after, and written as the
/// page writes hashrates), its accepted and rejected shares.
fn assert_workers(dom: &str, before: &Workers, after: &Workers) {
    let table = table_of(dom, "workers");
    assert_eq!(
        table.matches("<tr data-worker=").count(),
        before.len(),
        "{table}"
    );
    for (b, a) in before.iter().zip(after) {
        let name = b["worker"].as_str().unwrap();
        assert_eq!(a["worker"], name);
        let r = row_of(table, &format!("data-worker=\"{name}\""));
        assert!(r.contains(&format!(">{name}</")), "{r}");
        let c = cells(r);
        let value = tag_attr(c[1].0, "data-value").unwrap();
        assert!(c[1].0.contains("class=\"num hashrate\""), "{r}");
        // read as the API's numbers are (serde_json's float parsing may be a unit in the
        // last place off), written from the number itself
        let page: f64 = serde_json::from_str(&value).unwrap();
        let (hb, ha) = (
            b["hashrate"].as_f64().unwrap(),
            a["hashrate"].as_f64().unwrap(),
        );
        assert!(
            ha.min(hb) <= page && page <= ha.max(hb),
            "{name}: page {page}, API {hb} before and {ha} after"
        );
        assert_eq!(c[1].1, fmt::hashrate(value.parse().unwrap()), "{name}: {r}");
        assert_eq!(
            tag_attr(c[2].0, "data-sort"),
            Some(b["shares_accepted"].to_string()),
            "{r}"
        );
        assert_eq!(
            tag_attr(c[3].0, "data-sort"),
            Some(b["shares_rejected"].to_string()),
            "{r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_the_apis_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), None, false).await;
    let api = pool.api_addr;
    let base = format!("http://{api}");
    submit_for_an_unknown_job(&pool, UNKNOWN_JOB_SHARES).await;
    let stop = mine_until_paid(&pool, 2).await;

    // while the miners mine: their connections
    let (dom, connections) = stable_dom(&format!("{base}/"), async || {
        get_json(format!("{base}/api/v1/stats")).await["connections"].clone()
    })
    .await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert_eq!(connections, 2, "the two miners");
    assert_eq!(number(&dom, "connections"), connections.as_f64().unwrap());
    assert_eq!(text_by_id(&dom, "connections").as_deref(), Some("2"));
    // and a miner's workers with their hashrate (its accepted difficulty over the time)
    let miner = address(0);
    let url = format!("{base}/miner/{miner}");
    let (dom, before, after) = load_with_workers(&base, &url, Some(&miner)).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    // its miner and the one that submitted for an unknown job
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        before.iter().any(|w| w["hashrate"].as_f64() > Some(0.0)),
        "{before:?}"
    );
    assert_workers(&dom, &before, &after);
    stop_miners(&pool, &stop).await;

    // the overview
    let stats = get_json(format!("{base}/api/v1/stats")).await;
    let (dom, before, after) = load_with_workers(&base, &format!("{base}/"), None).await;
    // every worker, the one that only had shares refused too
    assert_eq!(before.len(), 3, "{before:?}");
    assert_workers(&dom, &before, &after);
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
    // the rejected shares by reason: a row per reason, its count
    let reasons = stats["rejected_by_reason"].as_object().unwrap();
    assert_eq!(
        reasons["invalid-job-id"], UNKNOWN_JOB_SHARES,
        "the shares for an unknown job: {stats}"
    );
    let table = table_of(&dom, "rejects");
    assert_eq!(
        table.matches("<tr data-reason=").count(),
        reasons.len(),
        "{table}"
    );
    for (reason, n) in reasons {
        let r = row_of(table, &format!("data-reason=\"{reason}\""));
        let c = cells(r);
        assert_eq!(c.len(), 2, "{r}");
        assert_eq!(c[0].1, reason, "{r}");
        let n = n.as_u64().unwrap();
        assert_eq!(tag_attr(c[1].0, "data-value"), Some(n.to_string()), "{r}");
        assert_eq!(c[1].1, fmt::number(n), "{r}");
    }
    assert_eq!(
        reasons.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        stats["shares_rejected"].as_u64().unwrap()
    );
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

    // the chart over each range (`?range=`): its points and its summary, the API's history
    // of that range
    for range in ["1h", "24h", "7d"] {
        let url = format!("{base}/?range={range}");
        // what the summary shows (the last bucket's mean hashrate moves with each sample)
        let (dom, history) = stable_dom(&url, async || {
            let h = get_json(format!("{base}/api/v1/history?range={range}")).await;
            let points = h["points"].as_array().unwrap();
            let sum = |k: &str| points.iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
            serde_json::json!({
                "range": h["range"],
                "bucket_ms": h["bucket_ms"],
                "points": points.len(),
                "accepted": sum("accepted"),
                "rejected": sum("rejected"),
            })
        })
        .await;
        assert!(dom.contains("data-state=\"ready\""), "{dom}");
        assert!(
            dom.contains(&format!("data-range=\"{range}\" aria-pressed=\"true\"")),
            "{range} pressed: {dom}"
        );
        assert_eq!(dom.matches("aria-pressed=\"true\"").count(), 1, "{dom}");
        assert_eq!(history["range"], range);
        assert_eq!(
            attr_by_id(&dom, "chart", "data-range").as_deref(),
            Some(range)
        );
        let points = history["points"].as_u64().unwrap();
        assert!(points > 0, "{range}: {history}");
        assert_eq!(
            attr_by_id(&dom, "chart", "data-points"),
            Some(points.to_string())
        );
        assert!(dom.contains("<polyline"), "{range}: no line drawn");
        let accepted = history["accepted"].as_u64().unwrap();
        let rejected = history["rejected"].as_u64().unwrap();
        assert!(accepted > 0, "{range}: {history}");
        let bucket_secs = (history["bucket_ms"].as_f64().unwrap() / 1000.0).round();
        assert_eq!(
            text_by_id(&dom, "chart-note").unwrap(),
            format!(
                "{points} points of {bucket_secs} s; {} shares accepted, {} rejected in this range",
                fmt::number(accepted),
                fmt::number(rejected)
            ),
            "{range}"
        );
    }

    // a miner's page: the miner the newest block paid
    let paid = listed
        .iter()
        .flat_map(|b| b["outputs"].as_array().unwrap())
        .map(|o| o["owner"].as_str().unwrap().to_owned())
        .find(|owner| owner.starts_with("bcrt1"))
        .unwrap();
    let view = get_json(format!("{base}/api/v1/miners/{paid}")).await;
    let url = format!("{base}/miner/{paid}");
    let (dom, before, after) = load_with_workers(&base, &url, Some(&paid)).await;
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
    // each worker: its hashrate as the page formats it, its shares
    assert_eq!(before.len(), view["workers"].as_array().unwrap().len());
    assert!(!before.is_empty(), "{view}");
    assert_workers(&dom, &before, &after);
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
    // every block that paid it: its height, hash and amount
    for b in past {
        let hash = b["hash"].as_str().unwrap();
        let r = row_of(table_of(&dom, "blocks"), &format!("data-hash=\"{hash}\""));
        let c = cells(r);
        let height = b["height"].as_u64().unwrap();
        assert_eq!(
            tag_attr(c[0].0, "data-value"),
            Some(height.to_string()),
            "{r}"
        );
        assert_eq!(c[0].1, fmt::number(height), "{r}");
        assert_eq!(c[3].1, hash, "{r}");
        assert_eq!(
            tag_attr(c[4].0, "data-value"),
            Some(b["sats"].to_string()),
            "{r}"
        );
        assert!(b["sats"].as_u64().unwrap() > 0, "{b}");
    }

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
