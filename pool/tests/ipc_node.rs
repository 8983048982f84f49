//! The `ipc` template source against a real Bitcoin Core: a regtest `bitcoin-node
//! -ipcbind=unix` in a temporary data directory (`common/bitcoin_core.rs`), driven over RPC
//! for the chain set-up and through [`IpcSource`] for templates and blocks.
//!
//! The time from a new tip to the miners' jobs is measured by `scripts/bench-tip.sh strata`,
//! not here.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{Address, KnownHrp, ScriptBuf};
use common::bitcoin_core::{CoreNode, Flavor};
use strata_pool::template::ipc::{BlockCheck, CheckOptions, IpcConfig, IpcSource};
use strata_pool::template::{Solution, SubmitOutcome, Template, TemplateSource};
use strata_work::header::assemble_block;

/// Longest wait for anything the node should do at once.
const WAIT: Duration = Duration::from_secs(10);

async fn start_node() -> CoreNode {
    CoreNode::start(Flavor::Ipc, &[]).await
}

async fn mine(node: &CoreNode, blocks: u64) {
    node.generate_to(blocks, &address()).await;
}

async fn source(node: &CoreNode) -> IpcSource {
    let mut config = IpcConfig::new(node.socket());
    config.cooldown = false;
    // waits end empty often: each ends and the next starts without a template lost
    config.wait_timeout = Duration::from_millis(200);
    IpcSource::connect(config).await.unwrap()
}

async fn best_hash(node: &CoreNode) -> String {
    let hash = node.rpc("getbestblockhash", serde_json::json!([])).await;
    hash.as_str().unwrap().to_owned()
}

/// A regtest P2WSH address of `OP_TRUE`.
fn address() -> String {
    Address::p2wsh(&ScriptBuf::from_bytes(vec![0x51]), KnownHrp::Regtest).to_string()
}

fn payout_script() -> ScriptBuf {
    ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::hash(&[0x51]))
}

fn solve(template: &Template, meets: bool) -> Solution {
    common::solve::solve(template, payout_script(), meets)
}

/// The node's best block hash in header byte order.
async fn best_prev_hash(node: &CoreNode) -> [u8; 32] {
    let mut hash: [u8; 32] = hex::decode(best_hash(node).await)
        .unwrap()
        .try_into()
        .unwrap();
    hash.reverse();
    hash
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_blocks_and_new_tips_through_ipc() {
    let node = start_node().await;
    mine(&node, 101).await;
    let mut source = source(&node).await;
    assert_eq!(source.name(), "ipc");

    // the first template is on the node's tip
    let t = within(source.next_template()).await.unwrap();
    assert_eq!(t.height, 102);
    assert_eq!(t.prev_hash, best_prev_hash(&node).await);
    assert_eq!(t.tx_count, 0);
    assert!(t.merkle_path.is_empty());
    assert_eq!(t.coinbase_tx_value_remaining, 50 * 100_000_000);

    // checkBlock: the solved block is valid, a wrong merkle root is not
    let good = solve(&t, true);
    let mut block = Vec::new();
    assemble_block::<&[u8]>(&good.header, &good.coinbase, &[], &mut block);
    let check = source
        .check_block(block.clone(), CheckOptions::default())
        .await
        .unwrap();
    assert_eq!(check, BlockCheck::Valid);
    block[40] ^= 1;
    let unmined = CheckOptions {
        check_pow: false,
        ..CheckOptions::default()
    };
    match source.check_block(block, unmined).await.unwrap() {
        BlockCheck::Invalid { reason, .. } => assert_eq!(reason, "bad-txnmrklroot"),
        other => panic!("{other:?}"),
    }

    // a header above the target is rejected with the node's reason
    match source.submit(solve(&t, false)).await.unwrap() {
        SubmitOutcome::Rejected { reason } => assert!(reason.contains("high-hash"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(node.height().await, 101);

    // the solved block extends the chain; the next template is on it at once
    let hash = match source.submit(good).await.unwrap() {
        SubmitOutcome::Accepted { hash } => hash,
        other => panic!("{other:?}"),
    };
    assert_eq!(node.height().await, 102);
    assert_eq!(best_hash(&node).await, hash);
    let next = tokio::time::timeout(Duration::from_millis(50), source.next_template())
        .await
        .expect("the template on the new tip is ready when submit returns")
        .unwrap();
    assert_eq!(next.height, 103);
    assert_eq!(next.prev_hash, best_prev_hash(&node).await);
    assert!(next.id > t.id);

    // an unknown template
    let mut stale = solve(&next, true);
    stale.template_id = 9_999;
    assert!(source.submit(stale).await.is_err());

    // a block mined elsewhere: the new tip's template comes within a second, unpolled;
    // a next_template dropped while waiting loses nothing
    let dropped = tokio::time::timeout(Duration::from_millis(700), source.next_template()).await;
    assert!(
        dropped.is_err(),
        "no template before a new tip, however many waits ended empty"
    );
    mine(&node, 1).await;
    let started = Instant::now();
    let tip = tokio::time::timeout(Duration::from_secs(1), source.next_template())
        .await
        .expect("a template on the new tip within a second")
        .unwrap();
    assert_eq!(tip.height, 104);
    assert_eq!(tip.prev_hash, best_prev_hash(&node).await);
    eprintln!(
        "template after generatetoaddress returned: {:?}",
        started.elapsed()
    );

    // the node going away is a connection error
    drop(node);
    let lost = within(source.next_template()).await;
    assert!(
        matches!(lost, Err(strata_pool::template::SourceError::Connection(_))),
        "{lost:?}"
    );
}
