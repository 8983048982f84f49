//! The `rpc` template source against a fake bitcoind (axum on 127.0.0.1:0) that serves real
//! captured `getblocktemplate` responses and checks submitted blocks with the `bitcoin`
//! crate.
//!
//! Fixtures (pool/tests/data/), real `getblocktemplate` results stored verbatim:
//! * `gbt_signet_956.json`: a signet (challenge `51`) template at height 956 with four
//!   segwit transactions, from p2poolv2/p2poolv2
//!   `tests/test_data/validation/stratum/gbt_with_transactions.json`. Its txids, wtxids
//!   and `default_witness_commitment` all agree with the transaction data.
//! * `gbt_testnet3_1038222.json`: a testnet3 template at height 1038222 with three legacy
//!   transactions, from btccom/btcpool `test/TestStratum.cc`
//!   (`StratumJobWithWitnessCommitment`; the same capture appears in a Go client as a canned
//!   answer). Its authors kept only three of the template's transactions, so its
//!   `default_witness_commitment` no longer matches them: the tests use it as a second
//!   template and as a block the node must reject (`bad-witness-merkle-match`).
//!
//! Proof of work: the fake node checks it against the template's `bits`. Tests that submit
//! blocks rewrite `bits`/`target` of the loaded fixture to regtest's `207fffff` (see
//! [`with_regtest_bits`]) and grind a nonce; every other field stays as captured.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bitcoin::consensus;
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Network, ScriptBuf, WPubkeyHash};
use serde_json::{json, Value};
use strata_pool::template::rpc::{RpcAuth, RpcConfig, RpcSource};
use strata_pool::template::{Solution, SourceError, SubmitOutcome, Template, TemplateSource};
use strata_work::header::Header;
use strata_work::merkle::merkle_root_from_path;
use tokio::sync::watch;

use common::solve::grind;

const SIGNET: &str = "gbt_signet_956.json";
const TESTNET: &str = "gbt_testnet3_1038222.json";
const REGTEST_BITS: &str = "207fffff";
/// Long enough that a test passing proves the long poll (not a poll) delivered the template.
const NEVER: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------
// fixtures

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture json")
}

/// The fixture with regtest's proof-of-work limit, so a test can grind a valid nonce.
fn with_regtest_bits(mut gbt: Value) -> Value {
    gbt["bits"] = json!(REGTEST_BITS);
    gbt["target"] = json!(format!("7fffff{}", "0".repeat(58)));
    gbt
}

// ---------------------------------------------------------------------------------------
// the fake bitcoind

/// What the fake node has seen; tests wait on changes of it instead of sleeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Seen {
    /// `getblocktemplate` requests received (long polls included).
    gbt_requests: usize,
    /// Long-poll requests whose longpollid was current, i.e. that started waiting.
    longpolls_waiting: usize,
    /// Requests answered 401.
    unauthorized: usize,
}

/// One `submitblock` and the node's verdict (`None` = accepted).
#[derive(Debug, Clone)]
struct Submitted {
    block: Block,
    verdict: Option<String>,
}

#[derive(Debug)]
struct NodeState {
    /// The expected `Authorization` header value.
    authorization: String,
    template: Value,
    /// `params[0]` of every `getblocktemplate`.
    gbt_params: Vec<Value>,
    submitted: Vec<Submitted>,
    accepted: HashSet<BlockHash>,
    /// When set, every request is answered with this JSON-RPC error.
    rpc_error: Option<(i64, String)>,
    /// `getblockchaininfo`'s `chain` (`signet` unless a test sets another).
    chain: String,
    /// `getblockchaininfo` requests received.
    chain_requests: usize,
}

#[derive(Debug)]
struct FakeNode {
    state: Mutex<NodeState>,
    /// Bumped when the template changes; long polls wait on it.
    switched: watch::Sender<u64>,
    seen: watch::Sender<Seen>,
}

impl FakeNode {
    async fn start(template: Value, user: &str, password: &str) -> (Arc<FakeNode>, String) {
        let node = Arc::new(FakeNode {
            state: Mutex::new(NodeState {
                authorization: basic(user, password),
                template,
                gbt_params: Vec::new(),
                submitted: Vec::new(),
                accepted: HashSet::new(),
                rpc_error: None,
                chain: "signet".into(),
                chain_requests: 0,
            }),
            switched: watch::Sender::new(0),
            seen: watch::Sender::new(Seen::default()),
        });
        let app = Router::new()
            .route("/", post(handle))
            .with_state(node.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (node, format!("http://{addr}"))
    }

    fn switch_template(&self, template: Value) {
        self.state.lock().unwrap().template = template;
        self.switched.send_modify(|v| *v += 1);
    }

    fn set_credentials(&self, user: &str, password: &str) {
        self.state.lock().unwrap().authorization = basic(user, password);
    }

    fn set_rpc_error(&self, error: Option<(i64, &str)>) {
        self.state.lock().unwrap().rpc_error = error.map(|(c, m)| (c, m.to_owned()));
    }

    fn set_chain(&self, chain: &str) {
        self.state.lock().unwrap().chain = chain.to_owned();
    }

    fn chain_requests(&self) -> usize {
        self.state.lock().unwrap().chain_requests
    }

    fn gbt_params(&self) -> Vec<Value> {
        self.state.lock().unwrap().gbt_params.clone()
    }

    fn submitted(&self) -> Vec<Submitted> {
        self.state.lock().unwrap().submitted.clone()
    }

    /// Waits until `f` holds for what the node has seen.
    async fn until(&self, f: impl FnMut(&Seen) -> bool) {
        let mut rx = self.seen.subscribe();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(f))
            .await
            .expect("fake node never saw it")
            .expect("fake node gone");
    }

    fn seen(&self) -> Seen {
        self.seen.borrow().clone()
    }
}

fn rpc_reply(status: StatusCode, id: &Value, result: Value, error: Value) -> Response {
    (
        status,
        Json(json!({ "result": result, "error": error, "id": id })),
    )
        .into_response()
}

async fn handle(State(node): State<Arc<FakeNode>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorized = {
        let state = node.state.lock().unwrap();
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == state.authorization)
    };
    if !authorized {
        node.seen.send_modify(|s| s.unauthorized += 1);
        // bitcoind: 401 with an empty body
        return (StatusCode::UNAUTHORIZED, "").into_response();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    let id = request["id"].clone();
    if let Some((code, message)) = node.state.lock().unwrap().rpc_error.clone() {
        let error = json!({ "code": code, "message": message });
        return rpc_reply(StatusCode::INTERNAL_SERVER_ERROR, &id, Value::Null, error);
    }
    match request["method"].as_str() {
        Some("getblockchaininfo") => {
            let chain = {
                let mut state = node.state.lock().unwrap();
                state.chain_requests += 1;
                state.chain.clone()
            };
            // the fields of bitcoind's answer the pool could read, abridged
            let info = json!({ "chain": chain, "blocks": 956, "initialblockdownload": false });
            rpc_reply(StatusCode::OK, &id, info, Value::Null)
        }
        Some("getblocktemplate") => {
            let params = request["params"][0].clone();
            // subscribe before looking at the template, so a switch in between is not missed
            let mut switched = node.switched.subscribe();
            let must_wait = {
                let mut state = node.state.lock().unwrap();
                state.gbt_params.push(params.clone());
                params["longpollid"]
                    .as_str()
                    .is_some_and(|lp| state.template["longpollid"].as_str() == Some(lp))
            };
            node.seen.send_modify(|s| {
                s.gbt_requests += 1;
                s.longpolls_waiting += usize::from(must_wait);
            });
            if must_wait {
                let _ = switched.changed().await;
            }
            let template = node.state.lock().unwrap().template.clone();
            rpc_reply(StatusCode::OK, &id, template, Value::Null)
        }
        Some("submitblock") => {
            let hex_block = request["params"][0].as_str().unwrap_or_default();
            let Some(block) = hex::decode(hex_block)
                .ok()
                .and_then(|b| consensus::deserialize::<Block>(&b).ok())
            else {
                let error = json!({ "code": -22, "message": "Block decode failed" });
                return rpc_reply(StatusCode::INTERNAL_SERVER_ERROR, &id, Value::Null, error);
            };
            let mut state = node.state.lock().unwrap();
            let verdict = check_block(&state.template, &state.accepted, &block).err();
            if verdict.is_none() {
                state.accepted.insert(block.block_hash());
            }
            state.submitted.push(Submitted {
                block,
                verdict: verdict.clone(),
            });
            rpc_reply(StatusCode::OK, &id, json!(verdict), Value::Null)
        }
        _ => {
            let error = json!({ "code": -32601, "message": "Method not found" });
            rpc_reply(StatusCode::NOT_FOUND, &id, Value::Null, error)
        }
    }
}

/// The checks the fake node makes, with the reason strings bitcoind gives for them. The
/// last one stands in for full transaction validation: a block whose transactions differ
/// from the template's would spend inputs this node does not know.
fn check_block(
    template: &Value,
    accepted: &HashSet<BlockHash>,
    block: &Block,
) -> Result<(), String> {
    let reason = |r: &str| Err(r.to_owned());
    let prev: BlockHash = template["previousblockhash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    if block.header.prev_blockhash != prev {
        return reason("prev-blk-not-found");
    }
    if accepted.contains(&block.block_hash()) {
        return reason("duplicate");
    }
    let bits = u32::from_str_radix(template["bits"].as_str().unwrap(), 16).unwrap();
    if block.header.bits.to_consensus() != bits {
        return reason("bad-diffbits");
    }
    if block.header.validate_pow(block.header.target()).is_err() {
        return reason("high-hash");
    }
    if !block.check_merkle_root() {
        return reason("bad-txnmrklroot");
    }
    if !block.check_witness_commitment() {
        return reason("bad-witness-merkle-match");
    }
    let Some(coinbase) = block.txdata.first().filter(|tx| tx.is_coinbase()) else {
        return reason("bad-cb-missing");
    };
    if block.bip34_block_height().ok() != template["height"].as_u64() {
        return reason("bad-cb-height");
    }
    let paid: u64 = coinbase.output.iter().map(|o| o.value.to_sat()).sum();
    if paid > template["coinbasevalue"].as_u64().unwrap() {
        return reason("bad-cb-amount");
    }
    let expected: Vec<Vec<u8>> = template["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tx| hex::decode(tx["data"].as_str().unwrap()).unwrap())
        .collect();
    let got: Vec<Vec<u8>> = block.txdata[1..].iter().map(consensus::serialize).collect();
    if got != expected {
        return reason("bad-txns-inputs-missingorspent");
    }
    Ok(())
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// the pool side

fn config(url: &str, auth: RpcAuth, network: Network) -> RpcConfig {
    RpcConfig {
        request_timeout: Duration::from_secs(10),
        ..RpcConfig::new(url, auth, network)
    }
}

fn userpass(user: &str, password: &str) -> RpcAuth {
    RpcAuth::UserPass {
        user: user.into(),
        password: password.into(),
    }
}

async fn signet_node(template: Value) -> (Arc<FakeNode>, RpcSource) {
    let (node, url) = FakeNode::start(template, "pool", "hunter2").await;
    let mut cfg = config(&url, userpass("pool", "hunter2"), Network::Signet);
    cfg.poll_interval = NEVER;
    (node, RpcSource::new(cfg).unwrap())
}

/// The pool's payout script in these tests.
fn payout_script() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0x42; 20]))
}

fn solve(template: &Template) -> Solution {
    common::solve::solve(template, payout_script(), true)
}

fn display_hash(header: &[u8; 80]) -> String {
    let h: bitcoin::block::Header = Header::from_bytes(header).into();
    h.block_hash().to_string()
}

// ---------------------------------------------------------------------------------------
// tests

#[tokio::test]
async fn templates_from_captured_responses() {
    for (name, network, chain, rules) in [
        (
            SIGNET,
            Network::Signet,
            "signet",
            json!(["segwit", "signet"]),
        ),
        (TESTNET, Network::Testnet, "test", json!(["segwit"])),
    ] {
        let gbt = fixture(name);
        let (node, url) = FakeNode::start(gbt.clone(), "u", "p").await;
        node.set_chain(chain);
        let mut source = RpcSource::new(config(&url, userpass("u", "p"), network)).unwrap();
        assert_eq!(source.name(), "rpc");
        let t = source.next_template().await.unwrap();

        assert_eq!(node.gbt_params(), vec![json!({ "rules": rules })], "{name}");
        assert_eq!(t.id, 1);
        assert_eq!(u64::from(t.height), gbt["height"].as_u64().unwrap());
        let prev: BlockHash = gbt["previousblockhash"].as_str().unwrap().parse().unwrap();
        assert_eq!(t.prev_hash, prev.to_byte_array(), "header byte order");
        assert_eq!(u64::from(t.version), gbt["version"].as_u64().unwrap());
        assert_eq!(format!("{:08x}", t.nbits), gbt["bits"].as_str().unwrap());
        assert_eq!(u64::from(t.min_ntime), gbt["curtime"].as_u64().unwrap());
        assert_eq!(
            t.coinbase_prefix,
            strata_work::coinbase::bip34_height_push(t.height)
        );
        assert_eq!(
            (
                t.coinbase_tx_version,
                t.coinbase_tx_input_sequence,
                t.coinbase_tx_locktime
            ),
            (2, 0xffff_ffff, 0)
        );
        assert_eq!(
            t.coinbase_tx_value_remaining,
            gbt["coinbasevalue"].as_u64().unwrap()
        );
        assert_eq!(t.coinbase_tx_outputs.len(), 1);
        assert_eq!(t.coinbase_tx_outputs[0].value.to_sat(), 0);
        assert_eq!(
            hex::encode(t.coinbase_tx_outputs[0].script_pubkey.as_bytes()),
            gbt["default_witness_commitment"].as_str().unwrap()
        );
        let txids: Vec<bitcoin::Txid> = gbt["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tx| tx["txid"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(t.tx_count as usize, txids.len());
        // the path folds any coinbase txid into the root the bitcoin crate computes
        let coinbase_txid = [0x5a; 32];
        let expected = bitcoin::merkle_tree::calculate_root(
            std::iter::once(bitcoin::Txid::from_byte_array(coinbase_txid)).chain(txids),
        )
        .unwrap();
        assert_eq!(
            merkle_root_from_path(coinbase_txid, &t.merkle_path),
            expected.to_byte_array()
        );
    }
}

#[tokio::test]
async fn full_cycle_block_is_accepted_and_the_next_template_comes_at_once() {
    let gbt = with_regtest_bits(fixture(SIGNET));
    let (node, mut source) = signet_node(gbt.clone()).await;
    let template = source.next_template().await.unwrap();
    let solution = solve(&template);
    let hash = display_hash(&solution.header);

    let outcome = source.submit(solution.clone()).await.unwrap();
    assert_eq!(outcome, SubmitOutcome::Accepted { hash: hash.clone() });
    let submitted = node.submitted();
    assert_eq!(submitted.len(), 1);
    let block = &submitted[0].block;
    assert_eq!(submitted[0].verdict, None);
    assert_eq!(block.block_hash().to_string(), hash);
    assert_eq!(block.txdata.len(), 5, "coinbase + the template's four");
    assert_eq!(block.bip34_block_height().unwrap(), 956);
    assert_eq!(block.txdata[0].output[0].script_pubkey, payout_script());
    assert_eq!(block.txdata[0].output[0].value.to_sat(), 5_000_056_400);
    assert_eq!(
        consensus::serialize(&block.txdata[0]),
        solution.coinbase,
        "the coinbase goes in as given, witness included"
    );

    // after an accepted block the next template is fetched at once, without a long poll
    // (the poll interval is an hour and the node's longpollid has not changed)
    let requests = node.seen().gbt_requests;
    let next = tokio::time::timeout(Duration::from_secs(5), source.next_template())
        .await
        .expect("fresh template after a block")
        .unwrap();
    assert_eq!(next.id, 2);
    assert_eq!(node.seen().gbt_requests, requests + 1);
    assert_eq!(node.gbt_params().last().unwrap().get("longpollid"), None);

    // the node already has the block: still accepted
    let again = source.submit(solution).await.unwrap();
    assert_eq!(again, SubmitOutcome::Accepted { hash });
    assert_eq!(node.submitted()[1].verdict.as_deref(), Some("duplicate"));
}

#[tokio::test]
async fn bad_blocks_are_rejected_with_the_nodes_reason() {
    let (node, mut source) = signet_node(with_regtest_bits(fixture(SIGNET))).await;
    let template = source.next_template().await.unwrap();
    let good = solve(&template);

    // a header that commits to other transactions
    let mut header = Header::from_bytes(&good.header);
    header.merkle_root[0] ^= 1;
    let tampered = Solution {
        header: grind(header, true).to_bytes(),
        ..good.clone()
    };
    // a header whose hash misses the target
    let weak = Solution {
        header: grind(Header::from_bytes(&good.header), false).to_bytes(),
        ..good.clone()
    };
    for (solution, reason) in [(tampered, "bad-txnmrklroot"), (weak, "high-hash")] {
        assert_eq!(
            source.submit(solution).await.unwrap(),
            SubmitOutcome::Rejected {
                reason: reason.into()
            }
        );
    }
    assert!(node.submitted().iter().all(|s| s.verdict.is_some()));

    // a template the source never returned
    let unknown = Solution {
        template_id: 999,
        ..good.clone()
    };
    assert!(matches!(
        source.submit(unknown).await,
        Err(SourceError::UnknownTemplate(999))
    ));

    // the testnet capture lists fewer transactions than its witness commitment covers
    let (node, url) = FakeNode::start(with_regtest_bits(fixture(TESTNET)), "u", "p").await;
    node.set_chain("test");
    let mut source = RpcSource::new(config(&url, userpass("u", "p"), Network::Testnet)).unwrap();
    let template = source.next_template().await.unwrap();
    assert_eq!(
        source.submit(solve(&template)).await.unwrap(),
        SubmitOutcome::Rejected {
            reason: "bad-witness-merkle-match".into()
        }
    );
}

#[tokio::test]
async fn cookie_is_reread_after_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join(".cookie");
    std::fs::write(&cookie, "__cookie__:first").unwrap();
    let (node, url) = FakeNode::start(fixture(SIGNET), "__cookie__", "first").await;
    let mut cfg = config(&url, RpcAuth::Cookie(cookie.clone()), Network::Signet);
    cfg.longpoll = false;
    cfg.poll_interval = Duration::from_millis(10);
    let mut source = RpcSource::new(cfg).unwrap();
    assert_eq!(source.next_template().await.unwrap().height, 956);
    assert_eq!(node.seen().unauthorized, 0);

    // bitcoind restarts: new cookie, new template
    node.set_credentials("__cookie__", "second");
    std::fs::write(&cookie, "__cookie__:second\n").unwrap();
    node.switch_template(fixture(TESTNET));
    let t = source.next_template().await.unwrap();
    assert_eq!(t.height, 1_038_222);
    assert!(
        node.seen().unauthorized >= 1,
        "the old cookie was refused first"
    );

    // the node wants a cookie the file does not have
    node.set_credentials("__cookie__", "third");
    node.switch_template(fixture(SIGNET));
    assert!(matches!(
        source.next_template().await,
        Err(SourceError::Auth(_))
    ));

    // no cookie file at all
    std::fs::remove_file(&cookie).unwrap();
    let mut source =
        RpcSource::new(config(&url, RpcAuth::Cookie(cookie), Network::Signet)).unwrap();
    assert!(matches!(
        source.next_template().await,
        Err(SourceError::Io(_))
    ));
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let (node, url) = FakeNode::start(fixture(SIGNET), "pool", "right").await;
    let mut source =
        RpcSource::new(config(&url, userpass("pool", "wrong"), Network::Signet)).unwrap();
    let err = source.next_template().await.unwrap_err();
    assert!(matches!(err, SourceError::Auth(_)), "{err:?}");
    assert_eq!(node.seen().unauthorized, 1, "a password is not retried");
}

#[tokio::test]
async fn longpoll_returns_when_the_template_switches_and_not_before() {
    let (node, url) = FakeNode::start(fixture(SIGNET), "u", "p").await;
    let mut cfg = config(&url, userpass("u", "p"), Network::Signet);
    cfg.poll_interval = NEVER;
    // short enough that an idle long poll expires and is re-issued during the test
    cfg.longpoll_timeout = Duration::from_millis(300);
    let mut source = RpcSource::new(cfg).unwrap();
    let first = source.next_template().await.unwrap();

    let next = source.next_template();
    tokio::pin!(next);
    // two long polls waiting in turn: the first expired and was re-issued, nothing returned
    tokio::select! {
        r = &mut next => panic!("returned before the template changed: {r:?}"),
        () = node.until(|s| s.longpolls_waiting >= 2) => {}
    }
    let longpollid = fixture(SIGNET)["longpollid"].clone();
    assert!(node.gbt_params()[1..]
        .iter()
        .all(|p| p["longpollid"] == longpollid));

    let switched_at = Instant::now();
    node.switch_template(fixture(TESTNET));
    let t = tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .expect("long poll answered")
        .unwrap();
    assert!(switched_at.elapsed() < Duration::from_secs(2));
    assert_eq!(t.height, 1_038_222);
    assert_eq!(t.id, first.id + 1);
    assert_ne!(t.prev_hash, first.prev_hash);
}

#[tokio::test]
async fn a_dropped_call_loses_nothing() {
    let (node, mut source) = signet_node(fixture(SIGNET)).await;
    let first = source.next_template().await.unwrap();
    {
        let next = source.next_template();
        tokio::pin!(next);
        tokio::select! {
            r = &mut next => panic!("returned before the template changed: {r:?}"),
            () = node.until(|s| s.longpolls_waiting >= 1) => {}
        }
        // dropped mid-request
    }
    node.switch_template(fixture(TESTNET));
    let t = tokio::time::timeout(Duration::from_secs(5), source.next_template())
        .await
        .expect("the change is not lost")
        .unwrap();
    assert_eq!(t.height, 1_038_222);
    assert_eq!(t.id, first.id + 1);
}

#[tokio::test]
async fn polls_when_longpoll_is_off() {
    let (node, url) = FakeNode::start(fixture(SIGNET), "u", "p").await;
    let mut cfg = config(&url, userpass("u", "p"), Network::Signet);
    cfg.longpoll = false;
    cfg.poll_interval = Duration::from_millis(20);
    let mut source = RpcSource::new(cfg).unwrap();
    let first = source.next_template().await.unwrap();

    let next = source.next_template();
    tokio::pin!(next);
    // several polls with the same answer return nothing
    tokio::select! {
        r = &mut next => panic!("returned before the template changed: {r:?}"),
        () = node.until(|s| s.gbt_requests >= 4) => {}
    }
    node.switch_template(fixture(TESTNET));
    let t = tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .expect("poll saw the change")
        .unwrap();
    assert_eq!(t.height, 1_038_222);
    assert_eq!(t.id, first.id + 1);
    assert!(node
        .gbt_params()
        .iter()
        .all(|p| p.get("longpollid").is_none()));
    assert_eq!(node.seen().longpolls_waiting, 0);
}

#[tokio::test]
async fn server_down_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    let mut source = RpcSource::new(config(
        &format!("http://{addr}"),
        userpass("u", "p"),
        Network::Bitcoin,
    ))
    .unwrap();
    let err = source.next_template().await.unwrap_err();
    assert!(matches!(err, SourceError::Connection(_)), "{err:?}");
}

#[tokio::test]
async fn rpc_error_objects_are_protocol_errors() {
    let (node, mut source) = signet_node(with_regtest_bits(fixture(SIGNET))).await;
    node.set_rpc_error(Some((
        -10,
        "Bitcoin Core is in initial sync and waiting for blocks...",
    )));
    let err = source.next_template().await.unwrap_err();
    match err {
        SourceError::Protocol(message) => {
            assert!(message.contains("initial sync"), "{message}");
            assert!(message.contains("-10"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // the same source recovers once the node does
    node.set_rpc_error(None);
    let template = source.next_template().await.unwrap();
    // a block the node cannot decode: bitcoind answers with an error object, not a reason
    let garbage = Solution {
        coinbase: vec![0x00],
        ..solve(&template)
    };
    let err = source.submit(garbage).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Protocol(m) if m.contains("Block decode failed")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_node_on_another_chain_is_refused_before_any_template() {
    let (node, url) = FakeNode::start(fixture(SIGNET), "u", "p").await;
    // testnet3 is "test" and testnet4 "testnet4": neither is the other
    for (node_chain, network) in [
        ("signet", Network::Bitcoin),
        ("main", Network::Signet),
        ("test", Network::Testnet4),
        ("testnet4", Network::Testnet),
        ("regtest", Network::Signet),
    ] {
        node.set_chain(node_chain);
        let mut source = RpcSource::new(config(&url, userpass("u", "p"), network)).unwrap();
        let err = source.next_template().await.unwrap_err();
        match &err {
            SourceError::WrongChain { node, configured } => {
                assert_eq!(node, node_chain);
                assert_eq!(configured, network.to_core_arg());
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_permanent());
        let message = err.to_string();
        assert!(
            message.contains(node_chain) && message.contains(network.to_core_arg()),
            "{message}"
        );
    }
    assert_eq!(
        node.seen().gbt_requests,
        0,
        "no template from the wrong chain"
    );

    // the right chain: checked once, then templates
    node.set_chain("signet");
    let mut source = RpcSource::new(config(&url, userpass("u", "p"), Network::Signet)).unwrap();
    let before = node.chain_requests();
    source.next_template().await.unwrap();
    assert_eq!(node.chain_requests(), before + 1);
    assert_eq!(node.seen().gbt_requests, 1);
}

/// A pool configuration on the `rpc` source at `url` (user `u`, password `p`), signet.
fn pool_config(dir: &Path, url: &str) -> strata_pool::config::Config {
    let mut cfg = strata_pool::config::Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        template_source: strata_pool::config::SourceKind::Rpc,
        network: Network::Signet,
        pool_address: Some("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c".into()),
        ..Default::default()
    };
    cfg.rpc.url = url.to_owned();
    cfg.rpc.user = Some("u".into());
    cfg.rpc.password = Some("p".into());
    cfg
}

#[tokio::test]
async fn the_pool_refuses_to_start_on_a_coinbase_too_big_or_the_wrong_chain() {
    let (node, url) = FakeNode::start(fixture(SIGNET), "u", "p").await;
    let dir = tempfile::tempdir().unwrap();

    // 100 payees do not fit bitcoind's default -blockreservedweight: the message says what
    // bitcoind needs, before anything is asked of it
    let cfg = pool_config(dir.path(), &url);
    assert_eq!(cfg.rpc.block_reserved_weight, 8000);
    assert_eq!(cfg.payout.max_outputs, 100);
    let err = format!("{:#}", strata_pool::server::start(cfg).await.unwrap_err());
    assert!(err.contains("-blockreservedweight=18268"), "{err}");
    assert!(err.contains("max_outputs to 40"), "{err}");
    assert_eq!(node.chain_requests(), 0);

    // with room for it, a node on another chain is refused at once (no retries)
    node.set_chain("regtest");
    let mut cfg = pool_config(dir.path(), &url);
    cfg.rpc.block_reserved_weight = 18_268;
    let err = format!(
        "{:#}",
        strata_pool::server::start(cfg.clone()).await.unwrap_err()
    );
    assert!(
        err.contains("\"regtest\"") && err.contains("\"signet\""),
        "{err}"
    );
    assert_eq!(node.seen().gbt_requests, 0);

    // the right chain: the pool starts on the node's template
    node.set_chain("signet");
    let pool = strata_pool::server::start(cfg).await.unwrap();
    assert!(node.seen().gbt_requests >= 1);
    pool.shutdown.cancel();
    pool.wait().await;
}
