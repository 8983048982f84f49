//! `strata verify-payout` end to end: a PPLNS pool on its embedded regtest node (Bitcoin
//! Core's consensus) with three simulated miners paying to three addresses finds blocks;
//! the `strata` binary checks one of them from the pool's API and the node's block files,
//! then must fail, naming the payees, on a tampered window and on a block whose coinbase
//! pays otherwise than the window says.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use axum::extract::Path as UrlPath;
use axum::routing::get;
use axum::{Json, Router};
use bitcoin::{consensus, Amount, Block, Network};
use common::{accepted_paying_two_miners, address, get_json, start_miners, wait_for_block, TOKEN};
use serde_json::Value;
use strata_miner::sv2::ChannelRequest;
use strata_pool::config::{Config, PayoutKind};

async fn strata(args: Vec<String>) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .await
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8(o.stdout.clone()).unwrap(),
        String::from_utf8(o.stderr.clone()).unwrap(),
    )
}

/// Miner `i`'s channel: standard for even `i`, extended for odd.
fn mixed_channels(i: u8) -> ChannelRequest {
    if i.is_multiple_of(2) {
        ChannelRequest::Standard
    } else {
        ChannelRequest::Extended {
            min_extranonce_size: 8,
        }
    }
}

/// An accepted block whose coinbase pays at least two of the miners, with a window of at
/// least 12 shares (several pages of 5).
async fn block_paying_two_miners(api: std::net::SocketAddr) -> Value {
    wait_for_block(
        api,
        Duration::from_secs(180),
        Duration::from_millis(300),
        "pays two miners",
        |b| {
            accepted_paying_two_miners(b)
                && b["window"][1].as_i64().unwrap_or(0) - b["window"][0].as_i64().unwrap_or(0) >= 11
        },
    )
    .await
}

/// A stand-in for the pool's API answering for one block with the given JSON.
async fn fake_pool(hash: String, answer: Value, window: Value) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/api/v1/blocks/{hash}",
            get({
                let hash = hash.clone();
                move |UrlPath(h): UrlPath<String>| async move {
                    assert_eq!(h, hash);
                    Json(answer)
                }
            }),
        )
        .route(
            "/api/v1/blocks/{hash}/window",
            get(move |UrlPath(h): UrlPath<String>| async move {
                assert_eq!(h, hash);
                Json(window)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The block's window as one page (every share; the test's window is small).
async fn whole_window(api: std::net::SocketAddr, hash: &str) -> Value {
    let page = get_json(format!(
        "http://{api}/api/v1/blocks/{hash}/window?limit=10000"
    ))
    .await;
    assert!(page["next_after"].is_null(), "{page}");
    page
}

fn find_block(blocks_dir: &Path, hash: &str) -> Block {
    // a reader of Bitcoin Core's block files of its own, independent of the CLI's under test
    let key: Vec<u8> = std::fs::read(blocks_dir.join("xor.dat")).unwrap_or_else(|_| vec![0; 8]);
    let mut files: Vec<_> = std::fs::read_dir(blocks_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("blk") && n.ends_with(".dat")
        })
        .collect();
    files.sort();
    for f in files {
        let mut data = std::fs::read(f).unwrap();
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % 8];
        }
        let mut at = 0;
        while at + 8 <= data.len() && data[at..at + 4] == Network::Regtest.magic().to_bytes() {
            let size = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
            let block: Block = consensus::deserialize(&data[at + 8..at + 8 + size]).unwrap();
            if block.block_hash().to_string() == hash {
                return block;
            }
            at += 8 + size;
        }
    }
    panic!("block {hash} not in {}", blocks_dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_payout_confirms_a_pplns_block_and_fails_on_a_tampered_window_or_coinbase() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    cfg.api_token = Some(strata_net::http_auth::ApiToken::new(TOKEN));
    cfg.payout.mode = PayoutKind::Pplns;
    cfg.payout.window_shares = 60;
    // a block (every regtest share is one) every second or so per miner
    cfg.vardiff.shares_per_minute = 60.0;
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let api = pool.api_addr;
    let stop = start_miners(&pool, 3, mixed_channels);
    let block = block_paying_two_miners(api).await;
    stop.cancel();
    let hash = block["hash"].as_str().unwrap().to_string();
    // the rules the split followed were recorded with the block
    let answer = get_json(format!("http://{api}/api/v1/blocks/{hash}")).await;
    assert_eq!(answer["payout_recorded"], true, "{answer}");
    assert_eq!(answer["payout"]["rules"]["mode"], "pplns", "{answer}");
    let blocks_dir = dir.path().join("regtest").join("blocks");
    let pool_url = format!("http://{api}");

    // 1. the block as it is: every output of the split is in the coinbase
    let verify = |pool_url: String, extra: Vec<String>| {
        let mut args = vec![
            "verify-payout".to_string(),
            "--pool".into(),
            pool_url,
            "--block".into(),
            hash.clone(),
            "--api-token".into(),
            TOKEN.into(),
        ];
        args.extend(extra);
        strata(args)
    };
    let out = verify(
        pool_url.clone(),
        vec![
            "--blocks-dir".into(),
            blocks_dir.display().to_string(),
            "--page-shares".into(),
            "5".into(),
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let outputs = block["outputs"].as_array().unwrap();
    let ok_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok ")).collect();
    assert_eq!(ok_lines.len(), outputs.len(), "{stdout}");
    for o in outputs {
        let owner = o["owner"].as_str().unwrap();
        let sats = o["sats"].as_u64().unwrap().to_string();
        assert!(
            ok_lines
                .iter()
                .any(|l| l.contains(owner) && l.contains(&sats)),
            "{owner} {sats} not confirmed: {stdout}"
        );
    }
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    assert!(stdout.contains("the payout matches"), "{stdout}");

    // without the token the pool does not answer, and the CLI says so
    let out = strata(vec![
        "verify-payout".into(),
        "--pool".into(),
        pool_url.clone(),
        "--block".into(),
        hash.clone(),
        "--blocks-dir".into(),
        blocks_dir.display().to_string(),
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stderr.contains("401"), "{stderr}");

    // the API's pages of the window are its shares in id order, each id once
    let whole = whole_window(api, &hash).await;
    let mut paged: Vec<Value> = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let url = match after {
            Some(a) => format!("{pool_url}/api/v1/blocks/{hash}/window?limit=5&after={a}"),
            None => format!("{pool_url}/api/v1/blocks/{hash}/window?limit=5"),
        };
        let page = get_json(url).await;
        assert!(page["shares"].as_array().unwrap().len() <= 5, "{page}");
        paged.extend(page["shares"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(&paged, whole["shares"].as_array().unwrap());
    let (first, last) = (
        block["window"][0].as_i64().unwrap(),
        block["window"][1].as_i64().unwrap(),
    );
    let ids: Vec<i64> = paged.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (first..=last).collect::<Vec<_>>());

    // the same from a raw block file (hex) gives the same verdict
    let raw = consensus::serialize(&find_block(&blocks_dir, &hash));
    let hex_file = dir.path().join("block.hex");
    std::fs::write(&hex_file, hex::encode(&raw)).unwrap();
    let out = verify(
        pool_url.clone(),
        vec!["--block-file".into(), hex_file.display().to_string()],
    )
    .await;
    assert!(out.status.success(), "{:?}", text(&out));

    // 2. a tampered window: the first miner's shares weigh ten times more
    let mut window = whole_window(api, &hash).await;
    let victim = address(0);
    let mut changed = 0;
    for s in window["shares"].as_array_mut().unwrap() {
        if s["identity"].as_str().unwrap().starts_with(&victim) {
            s["difficulty"] = Value::from(s["difficulty"].as_f64().unwrap() * 10.0);
            changed += 1;
        }
    }
    assert!(changed > 0, "the first miner has shares in the window");
    let window_file = dir.path().join("window.json");
    std::fs::write(&window_file, window.to_string()).unwrap();
    let out = verify(
        pool_url.clone(),
        vec![
            "--blocks-dir".into(),
            blocks_dir.display().to_string(),
            "--window-file".into(),
            window_file.display().to_string(),
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("MISMATCH") && l.contains(&victim)),
        "{stdout}"
    );
    assert!(stderr.contains("the payout does not match"), "{stderr}");

    // 3. a block whose coinbase moves 1000 sats from its largest payee to its second, with
    // the merkle root and proof of work redone: served by a stand-in for the pool that
    // answers for it with the real block's record and window
    let mut forged = find_block(&blocks_dir, &hash);
    let coinbase = &mut forged.txdata[0];
    coinbase.output[0].value -= Amount::from_sat(1000);
    coinbase.output[1].value += Amount::from_sat(1000);
    let (payee0, payee1) = (
        outputs[0]["owner"].as_str().unwrap().to_string(),
        outputs[1]["owner"].as_str().unwrap().to_string(),
    );
    forged.header.merkle_root = forged.compute_merkle_root().unwrap();
    while forged.header.validate_pow(forged.header.target()).is_err() {
        forged.header.nonce = forged.header.nonce.wrapping_add(1);
    }
    let forged_hash = forged.block_hash().to_string();
    let mut answer = get_json(format!("{pool_url}/api/v1/blocks/{hash}")).await;
    answer["block"]["hash"] = Value::from(forged_hash.clone());
    let fake = fake_pool(forged_hash.clone(), answer, whole_window(api, &hash).await).await;
    let forged_file = dir.path().join("forged.bin");
    std::fs::write(&forged_file, consensus::serialize(&forged)).unwrap();
    let out = strata(vec![
        "verify-payout".into(),
        "--pool".into(),
        format!("http://{fake}"),
        "--block".into(),
        forged_hash,
        "--block-file".into(),
        forged_file.display().to_string(),
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let mismatched: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("MISMATCH"))
        .collect();
    assert!(mismatched.iter().any(|l| l.contains(&payee0)), "{stdout}");
    assert!(mismatched.iter().any(|l| l.contains(&payee1)), "{stdout}");
    // the outputs it did not touch still match
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        outputs.len() - 2,
        "{stdout}"
    );

    // 4. a block file that is not the block asked for is refused before any comparison
    let out = verify(
        pool_url,
        vec!["--block-file".into(), forged_file.display().to_string()],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("not"), "{stdout}\n{stderr}");

    pool.shutdown.cancel();
    pool.wait().await;
}
