//! The Job Declarator Server at the edge: the `[jds]` listener (Noise with the pool's keys,
//! like the mining port), one task per JDC connection driving a [`JdsSession`], the task
//! that keeps the mempool view (polling the node's mempool over RPC), and the task owning
//! the [`Registry`] of declared jobs that the mining connections take custom jobs from.
//!
//! The JDS talks to the pool's node over JSON-RPC (`[rpc]`, [`NodeRpc`]) whatever the
//! template source: the mempool view (`getrawmempool`, `getrawtransaction`) and the block
//! checks (`getblocktemplate` in proposal mode, BIP23) go there. With the `rpc` source it is
//! the source's bitcoind; with `ipc` the same node's RPC port (Bitcoin Core's IPC Mining
//! interface gives no mempool access); with `tdp` the node whose mempool the JDS reads. The
//! embedded source has no mempool: no JDS. [`start`] asks the node for its chain first and
//! fails, naming `[rpc]`, when it does not answer or runs another network.
//!
//! Pushed solutions (`PushSolution`) go to the manager as [`FoundBlock`]s, like the blocks
//! found by shares: submitted whole (by the `rpc` source, or over this RPC connection for
//! the others: [`NodeRpc::submit_block`]), at most one per tip, and recorded in the ledger.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{Block, Transaction};
use serde_json::{json, Value};
use strata_net::keys::ResponderWatch;
use strata_net::sv2::{respond, Sv2Options};
use strata_protocol::Message;
use strata_work::time::Now;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    Action, ChainTip, DeclaredJob, JdsContext, JdsLimits, JdsSession, Registry, Required, SoloRules,
};
use crate::server::session::{FoundBlock, Payouts, Work};
use crate::template::rpc::NodeRpc;
use crate::template::{Solution, SourceError};

/// The mempool view: transactions by wtxid.
pub type Mempool = HashMap<[u8; 32], Arc<Transaction>>;

/// Commands queued to the registry task at most (senders wait beyond).
const REGISTRY_QUEUE: usize = 1024;

enum RegistryCmd {
    Insert(Arc<DeclaredJob>),
    Take(u64, oneshot::Sender<Option<Arc<DeclaredJob>>>),
}

/// The way to the task that owns the [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryHandle {
    tx: mpsc::Sender<RegistryCmd>,
}

impl std::fmt::Debug for RegistryCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryCmd::Insert(j) => write!(f, "Insert({})", j.token),
            RegistryCmd::Take(t, _) => write!(f, "Take({t})"),
        }
    }
}

impl RegistryHandle {
    /// Spawns the registry task (holding at most `capacity` jobs) on `tasks`; it ends with
    /// `shutdown`.
    pub fn spawn(capacity: usize, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (tx, mut rx) = mpsc::channel(REGISTRY_QUEUE);
        tasks.spawn(async move {
            let mut registry = Registry::new(capacity);
            loop {
                let cmd = tokio::select! {
                    c = rx.recv() => c,
                    () = shutdown.cancelled() => None,
                };
                match cmd {
                    None => return,
                    Some(RegistryCmd::Insert(job)) => {
                        registry.insert(job, tokio::time::Instant::now().into_std())
                    }
                    Some(RegistryCmd::Take(token, reply)) => {
                        let _ = reply
                            .send(registry.take(token, tokio::time::Instant::now().into_std()));
                    }
                }
            }
        });
        RegistryHandle { tx }
    }

    /// Adds a declared job.
    pub async fn insert(&self, job: Arc<DeclaredJob>) {
        let _ = self.tx.send(RegistryCmd::Insert(job)).await;
    }

    /// Takes out the declared job of a `SetCustomMiningJob.mining_job_token` (8 bytes, little
    /// endian), if the registry holds it.
    pub async fn take(&self, token: &[u8]) -> Option<Arc<DeclaredJob>> {
        let token = u64::from_le_bytes(<[u8; 8]>::try_from(token).ok()?);
        let (reply, answer) = oneshot::channel();
        self.tx.send(RegistryCmd::Take(token, reply)).await.ok()?;
        answer.await.ok().flatten()
    }
}

/// Everything the JDS edge needs.
#[derive(Debug)]
pub struct JdsEdge {
    /// Listen address.
    pub listen: SocketAddr,
    /// The pool's Noise responder.
    pub responder: ResponderWatch,
    /// Handshake timeout and frame limits.
    pub net: Sv2Options,
    /// Per-connection limits.
    pub limits: JdsLimits,
    /// Connections at most.
    pub max_connections: usize,
    /// Time between connect and SetupConnection.
    pub setup_timeout: Duration,
    /// The pool's current work (tip and split).
    pub work: watch::Receiver<Arc<Work>>,
    /// The pool's node over JSON-RPC (`[rpc]`, whatever the template source).
    pub node: NodeRpc,
    /// The `[rpc]` URL, for errors.
    pub node_url: String,
    /// Mempool polling period and size bound.
    pub mempool_poll: Duration,
    /// Mempool transactions kept at most.
    pub max_mempool_txs: usize,
    /// Where accepted declarations go.
    pub registry: RegistryHandle,
    /// Where the blocks of pushed solutions go (the manager submits and records them).
    pub blocks: mpsc::Sender<FoundBlock>,
    /// The pool's solo payouts (used when the work pays solo); its network is the chain's
    /// (for the block subsidy and payout addresses).
    pub solo: SoloRules,
    /// Pool shutdown.
    pub shutdown: CancellationToken,
}

/// Checks the node (it answers `getblockchaininfo`, on the pool's network), binds the
/// listener and spawns the mempool task and the accept loop; returns the bound address.
pub async fn start(mut edge: JdsEdge, tasks: &TaskTracker) -> anyhow::Result<SocketAddr> {
    edge.node.check_chain().await.with_context(|| {
        format!(
            "[jds] reads the mempool of and checks blocks with the node at [rpc] url = {:?}, \
                 whatever the template source: set [rpc] to that node's RPC",
            edge.node_url
        )
    })?;
    let listener = TcpListener::bind(edge.listen)
        .await
        .with_context(|| format!("cannot listen on {} (jds)", edge.listen))?;
    let addr = listener.local_addr()?;
    let (mempool_tx, mempool) = watch::channel(Arc::new(Mempool::new()));
    tasks.spawn(run_mempool(
        edge.node.clone(),
        edge.mempool_poll,
        edge.max_mempool_txs,
        mempool_tx,
        edge.shutdown.clone(),
    ));
    let secret: [u8; 32] = rand::random();
    let shared = Arc::new(Shared {
        edge,
        mempool,
        secret,
    });
    tasks.spawn(accept_loop(listener, shared, tasks.clone()));
    tracing::info!(%addr, "job declarator server listening");
    Ok(addr)
}

#[derive(Debug)]
struct Shared {
    edge: JdsEdge,
    mempool: watch::Receiver<Arc<Mempool>>,
    secret: [u8; 32],
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tasks: TaskTracker) {
    let slots = Arc::new(Semaphore::new(shared.edge.max_connections.max(1)));
    let mut next_conn = 0u64;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shared.edge.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "jds: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "jds: connection limit reached; refusing");
            continue;
        };
        next_conn += 1;
        let conn_id = next_conn;
        let shared = shared.clone();
        tasks.spawn(async move {
            serve(stream, peer, conn_id, &shared).await;
            drop(permit);
        });
    }
}

/// A pushed solution as the manager takes found blocks: the declared job's split, window
/// and token (its template id), the token's user as the finder.
fn pushed_block(block: &Block, job: &DeclaredJob) -> FoundBlock {
    let coinbase = block.txdata.first().map(serialize).unwrap_or_default();
    let mut header = [0u8; 80];
    header.copy_from_slice(&serialize(&block.header));
    FoundBlock {
        solution: Solution {
            template_id: job.token,
            header,
            coinbase,
        },
        height: job.height,
        hash: block.block_hash().to_string(),
        prev_hash: job.prev_hash,
        worker: job.user.clone(),
        split: Arc::clone(&job.split),
        reward_sats: job.coinbase.reward(),
        window: job.window,
        template_id: job.token,
        block: Some(serialize(block)),
    }
}

async fn check_block(mut node: NodeRpc, block: Arc<Block>) -> Result<(), String> {
    let hex = hex::encode(serialize(&*block));
    match node
        .call(
            "getblocktemplate",
            json!([{"mode": "proposal", "data": hex}]),
        )
        .await
    {
        Ok(Value::Null) => Ok(()),
        Ok(Value::String(reason)) => Err(reason),
        Ok(other) => Err(format!("unexpected answer {other}")),
        Err(e) => Err(e.to_string()),
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, conn_id: u64, shared: &Shared) {
    let edge = &shared.edge;
    let _ = stream.set_nodelay(true);
    // the socket again, to acknowledge messages that get no reply at once
    let socket = std::os::fd::AsFd::as_fd(&stream).try_clone_to_owned().ok();
    let (rd, wr) = stream.into_split();
    let responder = edge.responder.borrow().clone();
    let (mut reader, mut writer) = match respond(rd, wr, &responder, &edge.net).await {
        Ok(halves) => halves,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "jds: handshake failed");
            return;
        }
    };
    let mut session = JdsSession::new(conn_id, shared.secret, edge.limits.clone());
    let mut work = edge.work.clone();
    let mut actions: Vec<Action> = Vec::new();
    // block checks in flight: their id and the node's answer
    let mut calls: JoinSet<(u64, Result<(), String>)> = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let setup_deadline = tokio::time::sleep(edge.setup_timeout);
    tokio::pin!(setup_deadline);
    let mut last_seq = None;
    let reason: String = loop {
        let current = work.borrow_and_update().clone();
        let mempool = shared.mempool.borrow().clone();
        let t = &current.template;
        let required = match &current.payouts {
            Payouts::Shared(split) => Required::Shared {
                split,
                window: current.window,
            },
            Payouts::Solo => Required::Solo {
                reward: t.coinbase_tx_value_remaining,
                rules: &edge.solo,
            },
        };
        let ctx = JdsContext {
            tip: ChainTip {
                prev_hash: t.prev_hash,
                height: t.height,
                nbits: t.nbits,
                min_ntime: t.min_ntime,
                subsidy: super::block_subsidy(t.height, edge.solo.network),
            },
            required,
            mempool: &*mempool,
        };
        if last_seq != Some(current.seq) {
            // a new tip may be what a waiting declaration needs
            last_seq = Some(current.seq);
            session.on_work(Now::current(), &ctx, &mut actions);
        }
        tokio::select! {
            biased;
            () = std::future::ready(()), if !actions.is_empty() => {}
            frame = reader.read_frame() => match frame {
                Ok(Some(frame)) => match Message::decode(&frame.header, &frame.payload) {
                    Ok(msg) => {
                        session.on_message(msg, Now::current(), &ctx, &mut actions);
                        let replied = actions.iter().any(|a| matches!(a, Action::Send(_)));
                        if !replied && reader.buffered() == 0 {
                            // no reply (PushSolution, a declaration waiting for the tip): a
                            // delayed ACK would hold a Nagle-bound JDC's next message
                            if let Some(s) = &socket {
                                let _ = strata_net::tcp::ack_now(s);
                            }
                        }
                    }
                    Err(e) => break format!("undecodable frame: {e}"),
                },
                Ok(None) => break "closed by the JDC".into(),
                Err(e) => break format!("{e}"),
            },
            Some(done) = calls.join_next(), if !calls.is_empty() => {
                if let Ok((check, result)) = done {
                    // the tip as of now: a check answered after a new tip is stale
                    let latest = work.borrow().clone();
                    let tip = ChainTip {
                        prev_hash: latest.template.prev_hash,
                        ..ctx.tip
                    };
                    let ctx = JdsContext { tip, ..ctx };
                    session.on_check(check, result, Now::current(), &ctx, &mut actions);
                }
            }
            _ = tick.tick() => session.on_tick(Now::current(), &mut actions),
            changed = work.changed() => if changed.is_err() {
                break "pool stopping".into();
            },
            () = &mut setup_deadline, if !session.is_ready() => break "no SetupConnection in time".into(),
            () = edge.shutdown.cancelled() => break "pool shutting down".into(),
        }
        let mut close = None;
        for a in actions.drain(..) {
            match a {
                Action::Send(msg) => {
                    if let Err(e) = writer.feed_message(&msg) {
                        close = Some(format!("cannot encode {}: {e}", msg.name()));
                    }
                }
                Action::CheckBlock { check, block } => {
                    let node = edge.node.clone();
                    calls.spawn(async move { (check, check_block(node, block).await) });
                }
                Action::Declared(job) => {
                    tracing::info!(
                        conn = conn_id,
                        height = job.height,
                        txs = job.transactions.len(),
                        "jds: job declared"
                    );
                    edge.registry.insert(job).await;
                }
                Action::SubmitBlock { block, job } => {
                    let found = pushed_block(&block, &job);
                    tracing::info!(conn = conn_id, height = found.height, hash = %found.hash, "jds: pushed solution");
                    if edge.blocks.send(found).await.is_err() {
                        close = Some("pool stopping".into());
                    }
                }
                Action::Close(reason) => close = Some(reason),
            }
        }
        if writer.pending() > 0 {
            match tokio::time::timeout(Duration::from_secs(30), writer.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break format!("write failed: {e}"),
                Err(_) => break "JDC not reading (write timeout)".into(),
            }
        }
        if let Some(reason) = close {
            break reason;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.flush()).await;
    let _ = writer.shutdown().await;
    tracing::info!(conn = conn_id, %peer, %reason, "jds: connection closed");
}

/// Keeps the mempool view: every `poll`, the node's mempool listing (with wtxids), the new
/// transactions fetched, the gone ones dropped, at most `max` kept.
async fn run_mempool(
    mut node: NodeRpc,
    poll: Duration,
    max: usize,
    view: watch::Sender<Arc<Mempool>>,
    shutdown: CancellationToken,
) {
    let mut current = Mempool::new();
    loop {
        match refresh(&mut node, &mut current, max).await {
            Ok(true) => {
                view.send_replace(Arc::new(current.clone()));
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "jds: cannot read the node's mempool"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One refresh; whether the view changed.
async fn refresh(
    node: &mut NodeRpc,
    current: &mut Mempool,
    max: usize,
) -> Result<bool, SourceError> {
    let listing = node.call("getrawmempool", json!([true])).await?;
    let Value::Object(entries) = listing else {
        return Err(SourceError::Protocol("getrawmempool: not an object".into()));
    };
    let mut listed: HashMap<[u8; 32], String> = HashMap::with_capacity(entries.len());
    for (txid, entry) in &entries {
        let Some(wtxid) = entry
            .get("wtxid")
            .and_then(Value::as_str)
            .and_then(display_hash)
        else {
            continue;
        };
        listed.insert(wtxid, txid.clone());
    }
    let before = current.len();
    current.retain(|w, _| listed.contains_key(w));
    let mut changed = current.len() != before;
    for (wtxid, txid) in listed {
        if current.len() >= max {
            break;
        }
        if current.contains_key(&wtxid) {
            continue;
        }
        let Ok(Value::String(hex)) = node.call("getrawtransaction", json!([txid])).await else {
            continue; // mined or evicted since the listing
        };
        let Some(tx) = hex::decode(hex)
            .ok()
            .and_then(|b| deserialize::<Transaction>(&b).ok())
        else {
            continue;
        };
        current.insert(wtxid, Arc::new(tx));
        changed = true;
    }
    Ok(changed)
}

/// A hash in RPC (display) hex, in internal byte order.
fn display_hash(hex: &str) -> Option<[u8; 32]> {
    let mut b: [u8; 32] = hex::decode(hex).ok()?.try_into().ok()?;
    b.reverse();
    Some(b)
}
