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
//!
//! Rooms: this file holds the settings and the source; `gbt.rs` the `getblocktemplate` result
//! and its conversion; `client.rs` the JSON-RPC client and [`NodeRpc`]; `tests.rs` the tests.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bitcoin::Network;
use serde_json::{json, Value};
use strata_work::header::assemble_block;
use strata_work::sha256d::sha256d;

use super::{Solution, SourceError, SubmitOutcome, Template, TemplateSource};

mod client;
mod gbt;
#[cfg(test)]
mod tests;

pub use client::NodeRpc;
use client::{CallError, RpcClient};
use gbt::{Fetched, Fingerprint};

/// How many returned templates the source remembers (with their transactions) for `submit`.
pub const KEPT_TEMPLATES: usize = 16;

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
        chain_is(&result, self.config.network)?;
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
        let hash = block_hash_hex(&block)?;
        let timeout = self.config.request_timeout;
        let result = self
            .rpc
            .call("submitblock", json!([hex::encode(&block)]), timeout)
            .await
            .map_err(SourceError::from)?;
        let outcome = submit_outcome(&result, hash)?;
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
/// Whether `getblockchaininfo`'s answer names `network`'s chain: [`SourceError::WrongChain`]
/// when it names another.
fn chain_is(info: &Value, network: Network) -> Result<(), SourceError> {
    let node = info
        .get("chain")
        .and_then(Value::as_str)
        .ok_or_else(|| SourceError::Protocol("getblockchaininfo result has no \"chain\"".into()))?;
    let configured = network.to_core_arg();
    if node != configured {
        return Err(SourceError::WrongChain {
            node: node.to_owned(),
            configured: configured.to_owned(),
        });
    }
    Ok(())
}

/// The display-order hex hash of a serialized block (of its first 80 bytes).
fn block_hash_hex(block: &[u8]) -> Result<String, SourceError> {
    let header = block
        .get(..80)
        .ok_or_else(|| SourceError::Protocol("a block of less than 80 bytes".into()))?;
    let mut hash = sha256d(header);
    hash.reverse();
    Ok(hex::encode(hash))
}

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
