//! A real Bitcoin Core for integration tests: `bitcoind` (RPC) or `bitcoin-node` (RPC and
//! the IPC mining interface on a UNIX socket), on regtest, in a temporary data directory,
//! RPC on a loopback port picked by the OS, stopped by its pid when dropped.
//!
//! The binaries come from `STRATA_BITCOIN_CORE_BIN` (a folder) or, when that is unset, from
//! `scripts/bitcoin-core.sh`, which builds them once and caches them outside the clone
//! (10-15 minutes the first time, then instant).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{
    Address, Amount, CompressedPublicKey, KnownHrp, OutPoint, ScriptBuf, Transaction, TxOut, Txid,
};
use serde_json::{json, Value};
use strata_miner::funds::{coinbase_coin, fan_in, fan_out};

/// The folder holding `bitcoind`, `bitcoin-node` and `bitcoin-cli`.
pub fn core_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(dir) = std::env::var("STRATA_BITCOIN_CORE_BIN") {
            return PathBuf::from(dir);
        }
        // the workspace's scripts/, above the crate this test belongs to (pool/ or protocol/cli/)
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|d| d.join("scripts/bitcoin-core.sh"))
            .find(|s| s.exists())
            .expect("scripts/bitcoin-core.sh in a folder above the crate");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/bitcoin-core.sh");
        assert!(out.status.success(), "scripts/bitcoin-core.sh failed");
        let text = String::from_utf8(out.stdout).expect("utf-8 path");
        PathBuf::from(text.lines().last().expect("a folder").trim())
    })
}

/// Which binary to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `bitcoind`: RPC only.
    Bitcoind,
    /// `bitcoin-node -ipcbind=unix`: RPC and the IPC mining interface.
    Ipc,
}

/// A running regtest node.
pub struct CoreNode {
    child: Child,
    /// Its data directory (removed on drop).
    pub datadir: tempfile::TempDir,
    /// RPC port on 127.0.0.1.
    pub rpc_port: u16,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl CoreNode {
    /// Starts a node with `extra` arguments and waits until its RPC answers.
    pub async fn start(flavor: Flavor, extra: &[&str]) -> CoreNode {
        let datadir = tempfile::tempdir().expect("tempdir");
        let rpc_port = free_port();
        let exe = core_bin().join(match flavor {
            Flavor::Bitcoind => "bitcoind",
            Flavor::Ipc => "bitcoin-node",
        });
        let mut cmd = Command::new(&exe);
        cmd.arg("-regtest")
            .arg(format!("-datadir={}", datadir.path().display()))
            .arg(format!("-rpcport={rpc_port}"))
            .arg("-rpcbind=127.0.0.1")
            .arg("-rpcallowip=127.0.0.1")
            .args([
                "-listen=0",
                "-dnsseed=0",
                "-fixedseeds=0",
                "-printtoconsole=0",
            ])
            .arg("-txindex=0");
        if flavor == Flavor::Ipc {
            cmd.arg("-ipcbind=unix");
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
        let node = CoreNode {
            child,
            datadir,
            rpc_port,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if node.try_rpc("getblockcount", json!([])).await.is_ok()
                && (flavor != Flavor::Ipc || node.socket().exists())
            {
                return node;
            }
            assert!(Instant::now() < deadline, "node did not come up in 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Two nodes of one regtest chain, each with its own mempool: `a` takes peers on a port
    /// of the OS's choosing, `b` connects to it (`-connect`); returned once they are
    /// connected. Blocks and transactions reach the other node by relay, as between a pool's
    /// node and a farm's.
    pub async fn start_peered(a: Flavor, b: Flavor) -> (CoreNode, CoreNode) {
        let port = free_port();
        let node_a = CoreNode::start(a, &["-listen=1", &format!("-bind=127.0.0.1:{port}")]).await;
        let node_b = CoreNode::start(b, &[&format!("-connect=127.0.0.1:{port}")]).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while node_a.rpc("getconnectioncount", json!([])).await.as_u64() < Some(1)
            || node_b.rpc("getconnectioncount", json!([])).await.as_u64() < Some(1)
        {
            assert!(
                Instant::now() < deadline,
                "the two nodes did not connect in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (node_a, node_b)
    }

    /// Waits until this node's tip is `other`'s (blocks relayed), at most 30 s.
    pub async fn sync_with(&self, other: &CoreNode) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (mine, theirs) = (
                self.rpc("getbestblockhash", json!([])).await,
                other.rpc("getbestblockhash", json!([])).await,
            );
            if mine == theirs {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the nodes' tips differ after 30 s: {mine} and {theirs}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// The RPC cookie file.
    pub fn cookie(&self) -> PathBuf {
        self.datadir.path().join("regtest").join(".cookie")
    }

    /// The IPC socket (`-ipcbind=unix`).
    pub fn socket(&self) -> PathBuf {
        self.datadir.path().join("regtest").join("node.sock")
    }

    /// A regtest pool on this node through `source` (`rpc` with the cookie and the coinbase
    /// room it needs, or `ipc` on the node's socket), on `dir`, listening on ports of the
    /// OS's choosing; the rest is the defaults.
    pub fn pool_config(
        &self,
        dir: &Path,
        source: strata_pool::config::SourceKind,
    ) -> strata_pool::config::Config {
        let mut c = strata_pool::config::Config {
            data_dir: dir.to_path_buf(),
            listen: "127.0.0.1:0".parse().expect("an address"),
            api_listen: "127.0.0.1:0".parse().expect("an address"),
            template_source: source,
            network: bitcoin::Network::Regtest,
            ..strata_pool::config::Config::default()
        };
        c.rpc.url = self.rpc_url();
        c.rpc.cookie = Some(self.cookie());
        c.rpc.block_reserved_weight = pool_reserved_weight();
        c.ipc.socket = Some(self.socket());
        c
    }

    async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let cookie = std::fs::read_to_string(self.cookie()).map_err(|e| e.to_string())?;
        let (user, password) = cookie.trim().split_once(':').ok_or("bad cookie")?;
        let reply: Value = self
            .http
            .post(self.rpc_url())
            .basic_auth(user, Some(password))
            .json(&json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if !reply["error"].is_null() {
            return Err(format!("{method}: {}", reply["error"]));
        }
        Ok(reply["result"].clone())
    }

    /// A JSON-RPC call that must succeed.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A JSON-RPC call that may fail (its error as text).
    pub async fn rpc_result(&self, method: &str, params: Value) -> Result<Value, String> {
        self.try_rpc(method, params).await
    }

    /// Current height.
    pub async fn height(&self) -> u64 {
        self.rpc("getblockcount", json!([]))
            .await
            .as_u64()
            .expect("height")
    }

    /// Mines `n` blocks paying `address` (the node's own miner; no wallet needed).
    pub async fn generate_to(&self, n: u64, address: &str) -> Vec<String> {
        let hashes = self.rpc("generatetoaddress", json!([n, address])).await;
        hashes
            .as_array()
            .expect("hashes")
            .iter()
            .map(|h| h.as_str().expect("hash").to_string())
            .collect()
    }

    /// `getblock HASH 2`: the block with its decoded transactions.
    pub async fn block(&self, hash: &str) -> Value {
        self.rpc("getblock", json!([hash, 2])).await
    }

    /// The tip block, decoded.
    pub async fn tip(&self) -> Value {
        let hash = self.rpc("getbestblockhash", json!([])).await;
        self.block(hash.as_str().expect("hash")).await
    }

    /// Waits until `height` is reached (or panics after `timeout`).
    pub async fn wait_height(&self, height: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.height().await;
            if h >= height {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node at {h}, wanted {height} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for CoreNode {
    fn drop(&mut self) {
        // stopped by its pid, whatever the test did
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key the tests hold: mines to its P2WPKH address and spends what it got (the miner
/// crate's, which `strata-miner tips --mempool-txs` fills a node's mempool with).
pub use strata_miner::funds::Key as TestKey;

/// Regtest addresses of `n` distinct keys (P2WPKH), for payees.
pub fn payee_addresses(n: usize) -> Vec<String> {
    let secp = Secp256k1::signing_only();
    (0..n)
        .map(|i| {
            let mut bytes = [0x42u8; 32];
            bytes[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let sk = SecretKey::from_slice(&bytes).expect("valid scalar");
            let pk = CompressedPublicKey(PublicKey::from_secret_key(&secp, &sk));
            Address::p2wpkh(&pk, KnownHrp::Regtest).to_string()
        })
        .collect()
}

/// Mines `coins + 100` blocks paying `key`: the first `coins` coinbases are spendable
/// afterwards. Returns them (outpoint and value).
pub async fn fund(node: &CoreNode, key: &TestKey, coins: usize) -> Vec<(OutPoint, Amount)> {
    let hashes = node
        .generate_to(coins as u64 + 100, &key.address.to_string())
        .await;
    let mut funds = Vec::new();
    for hash in hashes.iter().take(coins) {
        let block = node.block(hash).await;
        funds.push(coinbase_coin(&block, key).expect("the coinbase pays the key"));
    }
    funds
}

/// Sends one transaction to `node`'s mempool: `funds` spent back to `key`, 50,000 sats of
/// fee. Returns its txid.
pub async fn spend_to_mempool(
    node: &CoreNode,
    key: &TestKey,
    funds: &[(OutPoint, Amount)],
) -> String {
    let spend = key.spend(
        funds,
        vec![TxOut {
            value: funds[0].1 - Amount::from_sat(50_000),
            script_pubkey: key.script(),
        }],
    );
    let txid = node
        .rpc(
            "sendrawtransaction",
            serde_json::json!([hex::encode(bitcoin::consensus::serialize(&spend))]),
        )
        .await;
    txid.as_str()
        .expect("sendrawtransaction answers a txid")
        .to_string()
}

/// Sends `children` transactions (and their parents) to `node`'s mempool: each of `funds`
/// is spent into `children / funds.len()` outputs (one fan-out transaction each), and each of
/// those outputs in a transaction of its own. Returns the txids sent (parents first).
pub async fn fill_mempool(
    node: &CoreNode,
    key: &TestKey,
    funds: &[(OutPoint, Amount)],
    children: usize,
) -> Vec<Txid> {
    let per_parent = children.div_ceil(funds.len());
    let mut sent = Vec::new();
    let mut fanned = Vec::new();
    for coin in funds {
        let (tx, coins) = fan_out(key, *coin, per_parent, Amount::from_sat(20_000));
        sent.push(send(node, &tx).await);
        fanned.extend(coins);
    }
    for coin in fanned.into_iter().take(children) {
        sent.push(send(node, &fan_in(key, coin, Amount::from_sat(1_000))).await);
    }
    sent
}

async fn send(node: &CoreNode, tx: &Transaction) -> Txid {
    let hex = bitcoin::consensus::encode::serialize_hex(tx);
    let id = node.rpc("sendrawtransaction", json!([hex])).await;
    Txid::from_str(id.as_str().expect("txid")).expect("txid")
}

/// The `-blockreservedweight` the pool says its coinbase needs with the default 100 payees
/// (the pool's output is its authority key's P2TR on regtest: 34 bytes of script, like any
/// P2TR): a node that keeps less is refused by the pool at start.
pub fn pool_reserved_weight() -> u32 {
    let cfg = strata_pool::config::Config::default();
    assert_eq!(cfg.payout.max_outputs, 100);
    let p2tr = ScriptBuf::from_bytes([&[0x51, 0x20][..], &[7u8; 32]].concat());
    let budget = strata_pool::budget::CoinbaseBudget::for_config(&cfg, &p2tr);
    u32::try_from(budget.reserved_weight).expect("a weight")
}
