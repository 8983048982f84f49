//! The `rpc` template source: bitcoind over JSON-RPC.
//!
//! Templates come from `getblocktemplate` (BIP22/23/145, `{"rules":["segwit"]}` plus
//! `"signet"` on signet); solved blocks go back with `submitblock`. The source keeps the raw
//! transactions of the last [`KEPT_TEMPLATES`] templates it returned, so a [`Solution`] (header
//! and full coinbase) is enough to assemble the block.
//!
//! How [`RpcSource::next_template`] waits for a change:
//!
//! ```text
//!  first call, or right after an accepted submit ──► plain getblocktemplate, returned at once
//!  longpoll on and the last template had a longpollid ──► getblocktemplate {longpollid}
//!        (bitcoind holds it until the tip or the mempool changes; an HTTP timeout re-issues it)
//!  otherwise ──► sleep poll_interval, getblocktemplate, repeat until something changed
//! ```
//!
//! "Changed" means a different `previousblockhash`, `longpollid` or transaction list. A
//! longpoll answer that changed nothing (a node that ignores `longpollid`) falls back to one
//! poll interval before the next request, so a misbehaving node cannot make us spin.
//!
//! The source state only changes once a template is about to be returned, so dropping a
//! `next_template` future mid-request loses nothing: the next call re-issues the request.
//!
//! How a `getblocktemplate` result becomes a [`Template`]: `prev_hash` is
//! `previousblockhash` in header byte order (the RPC hex reversed); `nbits` is `bits`;
//! `min_ntime` is `max(mintime, curtime)` (`mintime` is median time past + 1; starting at
//! the node's clock keeps jobs from going back in time); the coinbase is version 2, final
//! sequence, lock time 0, scriptSig prefix the BIP34 height push; `coinbase_tx_outputs` is
//! the `default_witness_commitment` output (0 sat) when the node sends one, and
//! `coinbase_tx_value_remaining` all of `coinbasevalue`; the merkle path is built from the
//! txids in internal byte order. Each transaction is decoded and its `txid` and `hash`
//! (wtxid) checked against its data, so a node answer that would produce invalid blocks is
//! a [`SourceError::Protocol`] rather than a rejected block later.
//!
//! Before its first template the source checks the node's chain (`getblockchaininfo`'s
//! `chain`) against [`RpcConfig::network`]: a node on another chain is a
//! [`SourceError::WrongChain`], which the pool treats as fatal at start.
//!
//! Authentication is HTTP Basic, either a fixed user and password or bitcoind's `.cookie`
//! file (`__cookie__:password`), which is re-read whenever the node answers 401 because
//! bitcoind writes a new one each time it starts.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bitcoin::consensus;
use bitcoin::hashes::Hash;
use bitcoin::{Network, ScriptBuf, Transaction, TxOut};
use serde::Deserialize;
use serde_json::{json, Value};
use strata_work::coinbase::{bip34_height_push, output};
use strata_work::header::assemble_block;
use strata_work::merkle::merkle_path_for_coinbase;
use strata_work::sha256d::sha256d;

use super::{Solution, SourceError, SubmitOutcome, Template, TemplateSource};

/// How many returned templates the source remembers (with their transactions) for `submit`.
pub const KEPT_TEMPLATES: usize = 16;

/// Coinbase nVersion of the templates this source builds.
const COINBASE_TX_VERSION: u32 = 2;
/// Coinbase input nSequence (final).
const COINBASE_SEQUENCE: u32 = 0xffff_ffff;
/// Coinbase nLockTime.
const COINBASE_LOCKTIME: u32 = 0;

/// How to authenticate to bitcoind's RPC server.
#[derive(Clone)]
pub enum RpcAuth {
    /// bitcoind's cookie file (`<datadir>/.cookie`, one line `__cookie__:password`). It is
    /// read before the first request and again whenever the node answers 401.
    Cookie(PathBuf),
    /// A fixed user and password (`rpcuser`/`rpcpassword` or `rpcauth`).
    UserPass {
        /// RPC user name.
        user: String,
        /// RPC password.
        password: String,
    },
}

impl fmt::Debug for RpcAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcAuth::Cookie(path) => f.debug_tuple("Cookie").field(path).finish(),
            RpcAuth::UserPass { user, .. } => f
                .debug_struct("UserPass")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Configuration of an [`RpcSource`].
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// The node's RPC endpoint, `http://host:port` (optionally with a path such as
    /// `/wallet/x`, which `getblocktemplate` does not need).
    pub url: String,
    /// Credentials.
    pub auth: RpcAuth,
    /// The pool's network: the node must be on this chain (checked before the first
    /// template); on signet the `signet` rule is requested as well.
    pub network: Network,
    /// How often to poll when long polling is off or unavailable (default 1 s); also the
    /// pause after a long poll that returned nothing new.
    pub poll_interval: Duration,
    /// Use `getblocktemplate` long polling (default on).
    pub longpoll: bool,
    /// Timeout of ordinary requests (default 30 s).
    pub request_timeout: Duration,
    /// Timeout of a long-poll request; when it expires the long poll is simply re-issued
    /// (default 10 min).
    pub longpoll_timeout: Duration,
}

impl RpcConfig {
    /// A configuration with the defaults: poll every second, long polling on, 30 s request
    /// timeout, 10 min long-poll timeout.
    pub fn new(url: impl Into<String>, auth: RpcAuth, network: Network) -> Self {
        RpcConfig {
            url: url.into(),
            auth,
            network,
            poll_interval: Duration::from_secs(1),
            longpoll: true,
            request_timeout: Duration::from_secs(30),
            longpoll_timeout: Duration::from_secs(600),
        }
    }
}

/// How often the source polls while the node holds a long poll of a dropped call.
const HELD_LONGPOLL_POLL: Duration = Duration::from_millis(500);

/// The `rpc` template source: bitcoind's `getblocktemplate` and `submitblock`.
#[derive(Debug)]
pub struct RpcSource {
    rpc: RpcClient,
    config: RpcConfig,
    /// Id of the next template returned.
    next_id: u64,
    /// What the last returned template was built from, to tell whether a new one differs.
    last: Option<Fingerprint>,
    /// Fetch at once on the next call (first call, after an accepted block).
    fresh: bool,
    /// The long poll a dropped [`TemplateSource::next_template`] left behind: bitcoind holds
    /// it (and one of its RPC threads) until the template changes, whether or not anyone
    /// waits for the answer. While it is held the source polls instead of long-polling
    /// again, so that callers that drop the call on other events (the work manager on every
    /// block candidate) cannot tie up every RPC thread of the node and wedge it.
    held_longpoll: Option<String>,
    /// Raw transactions of the templates returned last, oldest first.
    kept: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// The node's chain was found to be [`RpcConfig::network`] (checked before the first
    /// template).
    chain_checked: bool,
}

impl RpcSource {
    /// A source talking to the node described by `config`. Nothing is sent until the first
    /// [`next_template`](TemplateSource::next_template).
    pub fn new(config: RpcConfig) -> Result<Self, SourceError> {
        let rpc = RpcClient::new(&config)?;
        Ok(RpcSource {
            rpc,
            config,
            next_id: 1,
            last: None,
            fresh: true,
            held_longpoll: None,
            kept: VecDeque::with_capacity(KEPT_TEMPLATES),
            chain_checked: false,
        })
    }

    /// Asks the node for its chain (`getblockchaininfo`) and compares it with
    /// [`RpcConfig::network`]: [`SourceError::WrongChain`] when they differ. Runs before the
    /// first template; calling it again asks again.
    pub async fn check_chain(&mut self) -> Result<(), SourceError> {
        let result = self
            .rpc
            .call("getblockchaininfo", json!([]), self.config.request_timeout)
            .await?;
        let node = result.get("chain").and_then(Value::as_str).ok_or_else(|| {
            SourceError::Protocol("getblockchaininfo result has no \"chain\"".into())
        })?;
        let configured = self.config.network.to_core_arg();
        if node != configured {
            return Err(SourceError::WrongChain {
                node: node.to_owned(),
                configured: configured.to_owned(),
            });
        }
        self.chain_checked = true;
        Ok(())
    }

    /// The configuration this source runs with.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    fn gbt_params(&self, longpollid: Option<&str>) -> Value {
        let mut rules = vec!["segwit"];
        if self.config.network == Network::Signet {
            rules.push("signet");
        }
        let mut request = json!({ "rules": rules });
        if let Some(id) = longpollid {
            request["longpollid"] = json!(id);
        }
        json!([request])
    }

    async fn fetch(&mut self, longpollid: Option<&str>) -> Result<Option<Fetched>, SourceError> {
        let params = self.gbt_params(longpollid);
        let timeout = if longpollid.is_some() {
            self.config.longpoll_timeout
        } else {
            self.config.request_timeout
        };
        match self.rpc.call("getblocktemplate", params, timeout).await {
            Ok(result) => Fetched::parse(result).map(Some),
            // an expired long poll only means nothing happened in that time
            Err(CallError::TimedOut) if longpollid.is_some() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Turns a fetched template into the returned one: assigns the id, remembers the
    /// transactions and the fingerprint. The only place the source state changes.
    fn accept(&mut self, fetched: Fetched) -> Template {
        let id = self.next_id;
        self.next_id += 1;
        let Fetched {
            template,
            fingerprint,
            raw_txs,
        } = fetched;
        if self.kept.len() == KEPT_TEMPLATES {
            self.kept.pop_front();
        }
        self.kept.push_back((id, raw_txs));
        self.last = Some(fingerprint);
        self.fresh = false;
        self.held_longpoll = None;
        tracing::debug!(
            id,
            height = template.height,
            txs = template.tx_count,
            "rpc: new template"
        );
        Template { id, ..template }
    }

    async fn wait_for_template(&mut self) -> Result<Template, SourceError> {
        if !self.chain_checked {
            self.check_chain().await?;
        }
        loop {
            let last = match (&self.last, self.fresh) {
                (Some(last), false) => last.clone(),
                _ => {
                    if let Some(fetched) = self.fetch(None).await? {
                        return Ok(self.accept(fetched));
                    }
                    continue;
                }
            };
            let longpollid = last
                .longpollid
                .as_deref()
                .filter(|_| self.config.longpoll)
                .filter(|id| self.held_longpoll.as_deref() != Some(*id));
            match longpollid {
                Some(id) => {
                    let id = id.to_owned();
                    // cleared when the call completes; left set when it is dropped midway
                    self.held_longpoll = Some(id.clone());
                    let fetched = self.fetch(Some(&id)).await;
                    self.held_longpoll = None;
                    match fetched? {
                        Some(fetched) if fetched.fingerprint != last => {
                            return Ok(self.accept(fetched))
                        }
                        // the node answered without a change (or the long poll expired):
                        // pause like a poll would before asking again
                        Some(_) => tokio::time::sleep(self.config.poll_interval).await,
                        None => {}
                    }
                }
                None if self.held_longpoll.is_some() => {
                    // the node still holds our dropped long poll: ask now, then at most
                    // every HELD_LONGPOLL_POLL until the template changes (which frees it)
                    if let Some(fetched) = self.fetch(None).await? {
                        if fetched.fingerprint != last {
                            return Ok(self.accept(fetched));
                        }
                    }
                    tokio::time::sleep(self.config.poll_interval.min(HELD_LONGPOLL_POLL)).await;
                }
                None => {
                    tokio::time::sleep(self.config.poll_interval).await;
                    if let Some(fetched) = self.fetch(None).await? {
                        if fetched.fingerprint != last {
                            return Ok(self.accept(fetched));
                        }
                    }
                }
            }
        }
    }

    /// `submitblock` of a whole serialized block (a custom job's).
    async fn submit_whole_block(&mut self, block: Vec<u8>) -> Result<SubmitOutcome, SourceError> {
        let header: [u8; 80] = block
            .get(..80)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| SourceError::Protocol("a block of less than 80 bytes".into()))?;
        let mut hash = sha256d(&header);
        hash.reverse();
        let timeout = self.config.request_timeout;
        let result = self
            .rpc
            .call("submitblock", json!([hex::encode(&block)]), timeout)
            .await
            .map_err(SourceError::from)?;
        let outcome = submit_outcome(&result, hex::encode(hash))?;
        if matches!(outcome, SubmitOutcome::Accepted { .. }) {
            self.fresh = true;
        }
        Ok(outcome)
    }

    async fn submit_block(&mut self, solution: Solution) -> Result<SubmitOutcome, SourceError> {
        let txs = self
            .kept
            .iter()
            .find(|(id, _)| *id == solution.template_id)
            .map(|(_, txs)| txs)
            .ok_or(SourceError::UnknownTemplate(solution.template_id))?;
        let mut block = Vec::new();
        assemble_block(&solution.header, &solution.coinbase, txs, &mut block);
        let mut hash = sha256d(&solution.header);
        hash.reverse();
        let hash = hex::encode(hash);
        let timeout = self.config.request_timeout;
        let result = self
            .rpc
            .call("submitblock", json!([hex::encode(&block)]), timeout)
            .await
            .map_err(SourceError::from)?;
        let outcome = submit_outcome(&result, hash)?;
        match &outcome {
            SubmitOutcome::Accepted { hash } => {
                tracing::info!(%hash, template = solution.template_id, "rpc: block accepted");
                self.fresh = true;
            }
            SubmitOutcome::Rejected { reason } => {
                tracing::warn!(%reason, template = solution.template_id, "rpc: block rejected");
            }
        }
        Ok(outcome)
    }
}

impl TemplateSource for RpcSource {
    fn name(&self) -> &'static str {
        "rpc"
    }

    fn transactions(&self, template_id: u64) -> Option<&[Vec<u8>]> {
        self.kept
            .iter()
            .find(|(id, _)| *id == template_id)
            .map(|(_, txs)| txs.as_slice())
    }

    fn next_template(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Template, SourceError>> + Send {
        self.wait_for_template()
    }

    fn submit(
        &mut self,
        solution: Solution,
    ) -> impl std::future::Future<Output = Result<SubmitOutcome, SourceError>> + Send {
        self.submit_block(solution)
    }

    fn submit_full_block(
        &mut self,
        block: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<SubmitOutcome, SourceError>> + Send {
        self.submit_whole_block(block)
    }
}

/// `submitblock`'s answer (BIP22): `null` when accepted, otherwise a reason string.
/// `"duplicate"` (the node already has the block) counts as accepted.
fn submit_outcome(result: &Value, hash: String) -> Result<SubmitOutcome, SourceError> {
    match result {
        Value::Null => Ok(SubmitOutcome::Accepted { hash }),
        Value::String(s) if s == "duplicate" => Ok(SubmitOutcome::Accepted { hash }),
        Value::String(reason) => Ok(SubmitOutcome::Rejected {
            reason: reason.clone(),
        }),
        other => Err(SourceError::Protocol(format!(
            "submitblock returned {other}, expected null or a string"
        ))),
    }
}

/// What decides whether a newer template differs from the last one returned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    previousblockhash: String,
    longpollid: Option<String>,
    /// Txids in internal byte order, block order.
    txids: Vec<[u8; 32]>,
}

/// A parsed `getblocktemplate` result (id not yet assigned).
#[derive(Debug)]
struct Fetched {
    template: Template,
    fingerprint: Fingerprint,
    raw_txs: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct GbtResult {
    version: u32,
    previousblockhash: String,
    transactions: Vec<GbtTransaction>,
    coinbasevalue: u64,
    bits: String,
    height: u32,
    curtime: u32,
    mintime: u32,
    #[serde(default)]
    default_witness_commitment: Option<String>,
    #[serde(default)]
    longpollid: Option<String>,
}

#[derive(Deserialize)]
struct GbtTransaction {
    data: String,
    txid: String,
    /// The wtxid (absent from pre-segwit nodes).
    #[serde(default)]
    hash: Option<String>,
}

/// A 32-byte hash given as RPC (display order) hex, in internal byte order.
fn rpc_hash(field: &str, hex_str: &str) -> Result<[u8; 32], SourceError> {
    let mut bytes: [u8; 32] = hex::decode(hex_str)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SourceError::Protocol(format!("{field} is not 32 bytes of hex")))?;
    bytes.reverse();
    Ok(bytes)
}

impl Fetched {
    /// Parses a `getblocktemplate` result. Each transaction is decoded and its txid (and
    /// wtxid, when given) checked against the node's, since the merkle path is built from
    /// them.
    ///
    /// `min_ntime` is `max(mintime, curtime)`: `mintime` is median time past + 1, and
    /// starting at the node's current time keeps jobs from going back in time.
    fn parse(result: Value) -> Result<Self, SourceError> {
        let gbt: GbtResult = serde_json::from_value(result)
            .map_err(|e| SourceError::Protocol(format!("getblocktemplate result: {e}")))?;
        let prev_hash = rpc_hash("previousblockhash", &gbt.previousblockhash)?;
        let nbits = u32::from_str_radix(&gbt.bits, 16)
            .map_err(|_| SourceError::Protocol(format!("bits {:?} is not hex", gbt.bits)))?;

        let mut txids = Vec::with_capacity(gbt.transactions.len());
        let mut raw_txs = Vec::with_capacity(gbt.transactions.len());
        for (i, tx) in gbt.transactions.iter().enumerate() {
            let raw = hex::decode(&tx.data)
                .map_err(|_| SourceError::Protocol(format!("transaction {i}: data is not hex")))?;
            let decoded: Transaction = consensus::deserialize(&raw).map_err(|e| {
                SourceError::Protocol(format!("transaction {i} does not decode: {e}"))
            })?;
            let txid = rpc_hash("txid", &tx.txid)?;
            if decoded.compute_txid().to_byte_array() != txid {
                return Err(SourceError::Protocol(format!(
                    "transaction {i}: txid {} does not match its data",
                    tx.txid
                )));
            }
            if let Some(wtxid) = &tx.hash {
                if decoded.compute_wtxid().to_byte_array() != rpc_hash("hash", wtxid)? {
                    return Err(SourceError::Protocol(format!(
                        "transaction {i}: hash {wtxid} does not match its data"
                    )));
                }
            }
            txids.push(txid);
            raw_txs.push(raw);
        }

        let coinbase_tx_outputs = match &gbt.default_witness_commitment {
            Some(script) => {
                let script = hex::decode(script).map_err(|_| {
                    SourceError::Protocol("default_witness_commitment is not hex".into())
                })?;
                vec![output(0, ScriptBuf::from_bytes(script))]
            }
            None => Vec::<TxOut>::new(),
        };
        let tx_count = u32::try_from(txids.len())
            .map_err(|_| SourceError::Protocol("too many transactions".into()))?;
        let template = Template {
            id: 0,
            height: gbt.height,
            prev_hash,
            version: gbt.version,
            nbits,
            min_ntime: gbt.mintime.max(gbt.curtime),
            coinbase_tx_version: COINBASE_TX_VERSION,
            coinbase_prefix: bip34_height_push(gbt.height),
            coinbase_tx_input_sequence: COINBASE_SEQUENCE,
            coinbase_tx_value_remaining: gbt.coinbasevalue,
            coinbase_tx_outputs,
            coinbase_tx_locktime: COINBASE_LOCKTIME,
            merkle_path: merkle_path_for_coinbase(&txids),
            tx_count,
        };
        Ok(Fetched {
            template,
            fingerprint: Fingerprint {
                previousblockhash: gbt.previousblockhash,
                longpollid: gbt.longpollid,
                txids,
            },
            raw_txs,
        })
    }
}

/// Why one JSON-RPC call failed.
#[derive(Debug)]
enum CallError {
    /// The request timed out (expected for an idle long poll).
    TimedOut,
    /// Anything else.
    Failed(SourceError),
}

impl From<CallError> for SourceError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::TimedOut => SourceError::Connection("request timed out".into()),
            CallError::Failed(e) => e,
        }
    }
}

impl From<SourceError> for CallError {
    fn from(e: SourceError) -> Self {
        CallError::Failed(e)
    }
}

/// A JSON-RPC client to the node of an [`RpcConfig`], for other parts of the pool than the
/// template source (the Job Declarator Server's mempool view and block checks).
#[derive(Debug, Clone)]
pub struct NodeRpc {
    rpc: RpcClient,
    timeout: Duration,
}

impl NodeRpc {
    /// A client of `config`'s node (nothing is sent yet).
    pub fn new(config: &RpcConfig) -> Result<Self, SourceError> {
        Ok(NodeRpc {
            rpc: RpcClient::new(config)?,
            timeout: config.request_timeout,
        })
    }

    /// Calls `method`; bitcoind's error message becomes [`SourceError::Protocol`].
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, SourceError> {
        self.rpc
            .call(method, params, self.timeout)
            .await
            .map_err(SourceError::from)
    }
}

/// A JSON-RPC 1.0 response as bitcoind sends it.
#[derive(Deserialize)]
struct RpcResponse {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Value,
}

/// The HTTP side: one `reqwest` client, credentials, request ids.
#[derive(Clone)]
struct RpcClient {
    http: reqwest::Client,
    url: String,
    auth: RpcAuth,
    /// Credentials in use (read from the cookie file for [`RpcAuth::Cookie`]).
    credentials: Option<(String, String)>,
    next_request_id: u64,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("url", &self.url)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    fn new(config: &RpcConfig) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| SourceError::Connection(format!("http client: {e}")))?;
        let credentials = match &config.auth {
            RpcAuth::UserPass { user, password } => Some((user.clone(), password.clone())),
            RpcAuth::Cookie(_) => None,
        };
        Ok(RpcClient {
            http,
            url: config.url.clone(),
            auth: config.auth.clone(),
            credentials,
            next_request_id: 0,
        })
    }

    /// Reads the cookie file into the credentials (a no-op for a fixed user and password).
    async fn load_cookie(&mut self) -> Result<(), SourceError> {
        let RpcAuth::Cookie(path) = &self.auth else {
            return Ok(());
        };
        let text = tokio::fs::read_to_string(path).await?;
        let (user, password) = text.trim_end().split_once(':').ok_or_else(|| {
            SourceError::Auth(format!(
                "cookie file {} is not user:password",
                path.display()
            ))
        })?;
        self.credentials = Some((user.to_owned(), password.to_owned()));
        Ok(())
    }

    async fn call(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        if self.credentials.is_none() {
            self.load_cookie().await?;
        }
        match self.call_once(method, &params, timeout).await {
            Err(CallError::Failed(SourceError::Auth(_)))
                if matches!(self.auth, RpcAuth::Cookie(_)) =>
            {
                // bitcoind restarted and wrote a new cookie: read it and try once more
                tracing::info!("rpc: 401 with the cookie in use, re-reading the cookie file");
                self.load_cookie().await?;
                self.call_once(method, &params, timeout).await
            }
            other => other,
        }
    }

    async fn call_once(
        &mut self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        self.next_request_id += 1;
        let body = json!({
            "jsonrpc": "1.0",
            "id": self.next_request_id,
            "method": method,
            "params": params,
        });
        let mut request = self.http.post(&self.url).timeout(timeout).json(&body);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SourceError::Auth(format!("{method}: http {status}")).into());
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        // bitcoind answers RPC errors with a JSON body and a 4xx/5xx status: read the body
        // first, fall back to the status
        let parsed: RpcResponse = match serde_json::from_slice(&bytes) {
            Ok(parsed) => parsed,
            Err(_) if !status.is_success() => {
                return Err(SourceError::Connection(format!("{method}: http {status}")).into())
            }
            Err(e) => {
                return Err(
                    SourceError::Protocol(format!("{method}: invalid response: {e}")).into(),
                )
            }
        };
        if !parsed.error.is_null() {
            let message = parsed
                .error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| parsed.error.to_string(), str::to_owned);
            let code = parsed.error.get("code").and_then(Value::as_i64);
            return Err(SourceError::Protocol(match code {
                Some(code) => format!("{method}: {message} (code {code})"),
                None => format!("{method}: {message}"),
            })
            .into());
        }
        Ok(parsed.result)
    }
}

fn transport_error(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::TimedOut
    } else {
        CallError::Failed(SourceError::Connection(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submitblock_results() {
        let h = || "00".repeat(32);
        assert_eq!(
            submit_outcome(&Value::Null, h()).unwrap(),
            SubmitOutcome::Accepted { hash: h() }
        );
        assert_eq!(
            submit_outcome(&json!("duplicate"), h()).unwrap(),
            SubmitOutcome::Accepted { hash: h() }
        );
        for reason in [
            "high-hash",
            "bad-txnmrklroot",
            "inconclusive",
            "duplicate-invalid",
        ] {
            assert_eq!(
                submit_outcome(&json!(reason), h()).unwrap(),
                SubmitOutcome::Rejected {
                    reason: reason.into()
                }
            );
        }
        assert!(matches!(
            submit_outcome(&json!(true), h()),
            Err(SourceError::Protocol(_))
        ));
    }

    #[test]
    fn bad_template_fields_are_protocol_errors() {
        let base = json!({
            "version": 536870912, "previousblockhash": "00".repeat(32), "transactions": [],
            "coinbasevalue": 5000000000u64, "bits": "207fffff", "height": 1,
            "curtime": 2, "mintime": 1
        });
        let parsed = Fetched::parse(base.clone()).unwrap();
        assert_eq!(parsed.template.min_ntime, 2);
        assert!(parsed.template.coinbase_tx_outputs.is_empty());
        for (field, value) in [
            ("bits", json!("zz")),
            ("previousblockhash", json!("00")),
            ("height", json!(-1)),
            (
                "transactions",
                json!([{"data": "00", "txid": "00".repeat(32)}]),
            ),
        ] {
            let mut bad = base.clone();
            bad[field] = value;
            assert!(
                matches!(Fetched::parse(bad), Err(SourceError::Protocol(_))),
                "{field}"
            );
        }
    }

    #[test]
    fn auth_debug_hides_the_password() {
        let auth = RpcAuth::UserPass {
            user: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{auth:?}").contains("secret"));
    }
}
