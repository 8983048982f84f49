//! The `ipc` template source against a real Bitcoin Core: a regtest `bitcoin-node
//! -ipcbind=unix` in a temporary data directory, driven with `bitcoin-cli` over RPC for the
//! chain set-up and through [`IpcSource`] for templates and blocks.
//!
//! The binaries come from `STRATA_BITCOIN_CORE_BIN` (a folder) when set, else from the last
//! line `scripts/bitcoin-core.sh` prints (which builds them once and caches them).
//!
//! `new_tip_latency` prints how long the source takes from a block mined elsewhere to the
//! template on it (`cargo test -p strata-pool --test ipc_node -- --nocapture`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{Address, KnownHrp, ScriptBuf};
use strata_pool::template::ipc::{BlockCheck, CheckOptions, IpcConfig, IpcSource};
use strata_pool::template::{Solution, SubmitOutcome, Template, TemplateSource};
use strata_work::coinbase::{output, Coinbase, CoinbaseParams};
use strata_work::header::{assemble_block, Header};
use strata_work::merkle::merkle_root_from_path;

const EXTRANONCE: [u8; 8] = [7; 8];
/// Longest wait for anything the node should do at once.
const WAIT: Duration = Duration::from_secs(10);

/// The folder holding `bitcoin-node` and `bitcoin-cli`.
fn core_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRATA_BITCOIN_CORE_BIN") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bitcoin-core.sh");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/bitcoin-core.sh");
    assert!(out.status.success(), "scripts/bitcoin-core.sh failed");
    let text = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(text.lines().last().expect("a folder").trim())
}

/// A regtest `bitcoin-node`, killed (by its pid) on drop.
struct Node {
    child: Child,
    bin: PathBuf,
    dir: tempfile::TempDir,
    rpc_port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Node {
    /// Starts the node and waits for its RPC server and IPC socket.
    fn start() -> Node {
        let bin = core_bin();
        let dir = tempfile::tempdir().unwrap();
        let rpc_port = free_port();
        let p2p_port = free_port();
        let child = Command::new(bin.join("bitcoin-node"))
            .args([
                "-regtest",
                "-ipcbind=unix",
                &format!("-datadir={}", dir.path().display()),
                &format!("-port={p2p_port}"),
                "-listen=0",
                &format!("-rpcport={rpc_port}"),
                "-printtoconsole=0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bitcoin-node");
        let mut node = Node {
            child,
            bin,
            dir,
            rpc_port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(node.socket().exists() && node.try_cli(&["getblockcount"]).is_some()) {
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!("bitcoin-node exited: {status}");
            }
            assert!(Instant::now() < deadline, "bitcoin-node not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("regtest").join("node.sock")
    }

    /// `bitcoin-cli` over RPC; its trimmed output, `None` when it failed.
    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = self.cli_command(args).stderr(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.bin.join("bitcoin-cli"));
        command
            .args([
                "-regtest",
                "-noipcconnect",
                &format!("-datadir={}", self.dir.path().display()),
                &format!("-rpcport={}", self.rpc_port),
            ])
            .args(args);
        command
    }

    /// `bitcoin-cli` over RPC; its trimmed output.
    fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_command(args).output().expect("run bitcoin-cli");
        assert!(
            out.status.success(),
            "bitcoin-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn mine(&self, blocks: u32) {
        self.cli(&["generatetoaddress", &blocks.to_string(), &address()]);
    }

    fn height(&self) -> u32 {
        self.cli(&["getblockcount"]).parse().unwrap()
    }

    async fn source(&self) -> IpcSource {
        let mut config = IpcConfig::new(self.socket());
        config.cooldown = false;
        IpcSource::connect(config).await.unwrap()
    }
}

/// A regtest P2WSH address of `OP_TRUE`.
fn address() -> String {
    Address::p2wsh(&ScriptBuf::from_bytes(vec![0x51]), KnownHrp::Regtest).to_string()
}

fn payout_script() -> ScriptBuf {
    ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::hash(&[0x51]))
}

/// The block the pool would make of `template`: coinbase (pool payout, then the template's
/// outputs), merkle root from the path, a nonce ground until the header meets (or misses)
/// its target.
fn solve(template: &Template, meets: bool) -> Solution {
    let params = CoinbaseParams {
        version: template.coinbase_tx_version,
        script_sig_prefix: template.coinbase_prefix.clone(),
        pool_tag: b"/strata/".to_vec(),
        extranonce_len: EXTRANONCE.len(),
        sequence: template.coinbase_tx_input_sequence,
        pool_outputs: vec![output(
            template.coinbase_tx_value_remaining,
            payout_script(),
        )],
        template_outputs: template.coinbase_tx_outputs.clone(),
        lock_time: template.coinbase_tx_locktime,
        witness_reserved_value: [0; 32],
    };
    let coinbase = Coinbase::build(&params).unwrap();
    let txid = coinbase.txid(&[&EXTRANONCE]).unwrap();
    let mut full = Vec::new();
    coinbase.write_full(&[&EXTRANONCE], &mut full).unwrap();
    let mut header = Header {
        version: template.version,
        prev_hash: template.prev_hash,
        merkle_root: merkle_root_from_path(txid, &template.merkle_path),
        ntime: template.min_ntime,
        nbits: template.nbits,
        nonce: 0,
    };
    loop {
        let h: bitcoin::block::Header = header.into();
        if h.validate_pow(h.target()).is_ok() == meets {
            break;
        }
        header.nonce += 1;
    }
    Solution {
        template_id: template.id,
        header: header.to_bytes(),
        coinbase: full,
    }
}

/// The node's best block hash in header byte order.
fn best_prev_hash(node: &Node) -> [u8; 32] {
    let mut hash: [u8; 32] = hex::decode(node.cli(&["getbestblockhash"]))
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
    let node = Node::start();
    node.mine(101);
    let mut source = node.source().await;
    assert_eq!(source.name(), "ipc");

    // the first template is on the node's tip
    let t = within(source.next_template()).await.unwrap();
    assert_eq!(t.height, 102);
    assert_eq!(t.prev_hash, best_prev_hash(&node));
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
    assert_eq!(node.height(), 101);

    // the solved block extends the chain; the next template is on it at once
    let hash = match source.submit(good).await.unwrap() {
        SubmitOutcome::Accepted { hash } => hash,
        other => panic!("{other:?}"),
    };
    assert_eq!(node.height(), 102);
    assert_eq!(node.cli(&["getbestblockhash"]), hash);
    let next = tokio::time::timeout(Duration::from_millis(50), source.next_template())
        .await
        .expect("the template on the new tip is ready when submit returns")
        .unwrap();
    assert_eq!(next.height, 103);
    assert_eq!(next.prev_hash, best_prev_hash(&node));
    assert!(next.id > t.id);

    // an unknown template
    let mut stale = solve(&next, true);
    stale.template_id = 9_999;
    assert!(source.submit(stale).await.is_err());

    // a block mined elsewhere: the new tip's template comes within a second, unpolled;
    // a next_template dropped while waiting loses nothing
    let dropped = tokio::time::timeout(Duration::from_millis(100), source.next_template()).await;
    assert!(dropped.is_err(), "no template before a new tip");
    node.mine(1);
    let started = Instant::now();
    let tip = tokio::time::timeout(Duration::from_secs(1), source.next_template())
        .await
        .expect("a template on the new tip within a second")
        .unwrap();
    assert_eq!(tip.height, 104);
    assert_eq!(tip.prev_hash, best_prev_hash(&node));
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

/// A bare JSON-RPC call (cookie auth), to time the node's answer without a process start.
async fn rpc(node: &Node, method: &str, params: serde_json::Value) -> serde_json::Value {
    let cookie = std::fs::read_to_string(node.dir.path().join("regtest").join(".cookie")).unwrap();
    let (user, password) = cookie.trim().split_once(':').unwrap();
    let body = serde_json::json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params});
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/", node.rpc_port))
        .basic_auth(user, Some(password))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_tip_latency() {
    const RUNS: usize = 7;
    let node = Node::start();
    node.mine(101);
    let mut source = node.source().await;
    within(source.next_template()).await.unwrap();
    let mut after_mined = Vec::new();
    let mut after_request = Vec::new();
    for run in 0..RUNS {
        let sent = Instant::now();
        // generatetoaddress answers once the block is connected: from its answer to the
        // template on the new tip is the source's share (negative when it came first)
        let (answered, template) = tokio::join!(
            async {
                rpc(
                    &node,
                    "generatetoaddress",
                    serde_json::json!([1, address()]),
                )
                .await;
                Instant::now()
            },
            async {
                let t = within(source.next_template()).await.unwrap();
                (Instant::now(), t)
            }
        );
        let (arrived, t) = template;
        assert_eq!(t.height, 103 + run as u32);
        let micros = if arrived >= answered {
            arrived.duration_since(answered).as_micros() as i64
        } else {
            -(answered.duration_since(arrived).as_micros() as i64)
        };
        after_mined.push(micros);
        after_request.push(arrived.duration_since(sent).as_micros() as i64);
    }
    after_request.sort_unstable();
    after_mined.sort_unstable();
    eprintln!(
        "ipc new tip -> template, µs after generatetoaddress answered (sorted, {RUNS} runs): {after_mined:?}; median {} µs",
        after_mined[RUNS / 2]
    );
    eprintln!(
        "ipc new tip -> template, µs after generatetoaddress was sent (sorted): {after_request:?}; median {} µs",
        after_request[RUNS / 2]
    );
    assert!(after_mined[RUNS / 2] < 1_000_000);
}
