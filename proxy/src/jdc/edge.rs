//! The JDC's tokio shell: one task feeds the [`Jdc`] core the upstream side's events, the
//! hub's commands and shares, the farm node's templates and the JDS connection's messages,
//! and carries out its [`Action`]s. The template source has a task of its own (it owns the
//! source); so has each JDS connection (it owns the framed Noise stream).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::consensus::deserialize;
use bitcoin::Transaction;
use strata_net::sv2::{initiate, Sv2Options};
use strata_protocol::Message;
use strata_template::ipc::{IpcConfig, IpcSource};
use strata_template::rpc::{RpcConfig, RpcSource};
use strata_template::tdp::{TdpConfig, TdpSource};
use strata_template::{Solution, SourceError, SubmitOutcome, TemplateSource};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Action, Input, Jdc, JdcConfig, JdcStats, NodeTemplate};
use crate::upstream::{PoolUrl, ShareRoute, UpstreamCommand, UpstreamEvent};

/// Shares the hub may queue for the JDC (a full queue refuses a share as `upstream-busy`).
pub const SHARE_QUEUE: usize = 4096;
/// Templates waiting for the core.
pub const TEMPLATE_QUEUE: usize = 16;
/// Blocks waiting for the farm's node.
pub const BLOCK_QUEUE: usize = 16;
/// Messages waiting to be written to the JDS (more: the connection is dropped as stuck).
pub const JDS_OUT_QUEUE: usize = 256;
/// Events of the JDS connection waiting for the core.
pub const JDS_IN_QUEUE: usize = 256;

/// The farm's node.
#[derive(Debug, Clone)]
pub enum NodeSource {
    /// bitcoind over JSON-RPC.
    Rpc(RpcConfig),
    /// Bitcoin Core's IPC Mining interface (with `transactions` set for Full-Template).
    Ipc(IpcConfig),
    /// A Template Provider (transactions from `RequestTransactionData` when it verifies
    /// templates, the default).
    Tdp(TdpConfig),
}

/// What [`run`] needs besides its queues.
#[derive(Debug, Clone)]
pub struct JdcParams {
    /// The core's settings.
    pub core: JdcConfig,
    /// The pool's JDS (`stratum2+tcp://host:port/AUTHORITY_KEY`).
    pub jds: PoolUrl,
    /// The farm's node.
    pub source: NodeSource,
    /// The hub's pool index of the solo upstream (the number of pools).
    pub solo_pool: usize,
    /// TCP connect timeout of the JDS.
    pub connect_timeout: Duration,
}

/// The queues between the upstream side, the JDC and the hub.
#[derive(Debug)]
pub struct JdcQueues {
    /// From the upstream side.
    pub upstream_events: mpsc::Receiver<UpstreamEvent>,
    /// To the upstream side.
    pub upstream_commands: mpsc::UnboundedSender<UpstreamCommand>,
    /// To the hub.
    pub hub_events: mpsc::Sender<UpstreamEvent>,
    /// From the hub.
    pub hub_commands: mpsc::UnboundedReceiver<UpstreamCommand>,
    /// The core's mode, latencies and last failure, published as they change.
    pub stats: watch::Sender<JdcStats>,
}

enum JdsEvent {
    Connected(u64, mpsc::Sender<Message>),
    Message(u64, Message),
    Down(u64, String),
}

/// Runs the JDC until `shutdown` (or until the hub or the upstream side is gone).
pub async fn run(
    params: JdcParams,
    mut q: JdcQueues,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let (route, mut shares) = ShareRoute::channel(0, SHARE_QUEUE);
    let mut core = Jdc::new(params.core.clone(), route, params.solo_pool, Instant::now());
    let (templates_tx, mut templates) = mpsc::channel(TEMPLATE_QUEUE);
    let (blocks_tx, blocks_rx) = mpsc::channel(BLOCK_QUEUE);
    let stop = shutdown.child_token();
    match params.source.clone() {
        NodeSource::Rpc(c) => tasks.spawn(run_source(
            move || {
                let c = c.clone();
                async move { RpcSource::new(c) }
            },
            templates_tx,
            blocks_rx,
            stop.clone(),
        )),
        NodeSource::Ipc(c) => tasks.spawn(run_source(
            move || IpcSource::connect(c.clone()),
            templates_tx,
            blocks_rx,
            stop.clone(),
        )),
        NodeSource::Tdp(c) => tasks.spawn(run_source(
            move || TdpSource::connect(c.clone()),
            templates_tx,
            blocks_rx,
            stop.clone(),
        )),
    };
    let (jds_events_tx, mut jds_events) = mpsc::channel(JDS_IN_QUEUE);
    let mut jds: Option<(u64, CancellationToken, Option<mpsc::Sender<Message>>)> = None;
    let mut generation = 0u64;
    let mut out = Vec::new();
    let mut upstream_open = true;
    let mut commands_open = true;
    loop {
        let stats = core.stats();
        q.stats.send_if_modified(|s| {
            let changed = *s != stats;
            *s = stats;
            changed
        });
        for a in out.drain(..) {
            match a {
                Action::ToHub(ev) => {
                    if q.hub_events.send(ev).await.is_err() {
                        stop.cancel();
                        return;
                    }
                }
                Action::ToUpstream(c) => {
                    let _ = q.upstream_commands.send(c);
                }
                Action::ConnectJds => {
                    if let Some((_, cancel, _)) = jds.take() {
                        cancel.cancel();
                    }
                    generation += 1;
                    let cancel = stop.child_token();
                    tasks.spawn(jds_connection(
                        generation,
                        params.jds.clone(),
                        params.connect_timeout,
                        jds_events_tx.clone(),
                        cancel.clone(),
                    ));
                    jds = Some((generation, cancel, None));
                }
                Action::ToJds(m) => {
                    let Some(tx) = jds.as_ref().and_then(|(_, _, tx)| tx.as_ref()) else {
                        tracing::debug!(msg = m.name(), "no JDS connection: message dropped");
                        continue;
                    };
                    if tx.try_send(m).is_err() {
                        tracing::warn!("JDS connection stuck or gone: dropped");
                        let _ = jds_events_tx.try_send(JdsEvent::Down(
                            generation,
                            "the JDS does not read its messages".into(),
                        ));
                    }
                }
                Action::CloseJds(reason) => {
                    if let Some((_, cancel, _)) = jds.take() {
                        tracing::warn!(%reason, "JDS connection closed");
                        cancel.cancel();
                    }
                }
                Action::SubmitBlock(s) => {
                    if blocks_tx.try_send(s).is_err() {
                        tracing::error!(
                            "the farm node's block queue is full: a block was not submitted"
                        );
                    }
                }
            }
        }
        let wake = core.next_wake();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            ev = q.upstream_events.recv(), if upstream_open => match ev {
                Some(ev) => core.handle(Input::Upstream(ev), Instant::now(), &mut out),
                None => upstream_open = false,
            },
            Some(s) = shares.recv() => core.handle(Input::Share(s), Instant::now(), &mut out),
            c = q.hub_commands.recv(), if commands_open => match c {
                Some(c) => core.handle(Input::Command(c), Instant::now(), &mut out),
                None => commands_open = false,
            },
            Some(t) = templates.recv() => core.handle(Input::Template(t), Instant::now(), &mut out),
            Some(ev) = jds_events.recv() => {
                let current = jds.as_ref().map(|(g, _, _)| *g);
                let input = match ev {
                    JdsEvent::Connected(g, tx) if Some(g) == current => {
                        if let Some(j) = jds.as_mut() {
                            j.2 = Some(tx);
                        }
                        Some(Input::JdsConnected)
                    }
                    JdsEvent::Message(g, m) if Some(g) == current => Some(Input::JdsMessage(m)),
                    JdsEvent::Down(g, reason) if Some(g) == current => {
                        jds = None;
                        Some(Input::JdsDown(reason))
                    }
                    _ => None,
                };
                if let Some(i) = input {
                    core.handle(i, Instant::now(), &mut out);
                }
            }
            () = sleep => core.on_timer(Instant::now(), &mut out),
        }
    }
    stop.cancel();
}

/// One JDS connection: TCP, Noise (the JDS's certificate signed by the URL's key), then
/// frames both ways until it fails or `cancel` fires. Reports `Connected` once, `Down` last.
async fn jds_connection(
    generation: u64,
    url: PoolUrl,
    connect_timeout: Duration,
    events: mpsc::Sender<JdsEvent>,
    cancel: CancellationToken,
) {
    let reason = tokio::select! {
        () = cancel.cancelled() => return,
        r = jds_session(generation, &url, connect_timeout, &events) => r,
    };
    let _ = events.send(JdsEvent::Down(generation, reason)).await;
}

async fn jds_session(
    generation: u64,
    url: &PoolUrl,
    connect_timeout: Duration,
    events: &mpsc::Sender<JdsEvent>,
) -> String {
    let addr = url.address();
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(&addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return format!("tcp connect to {addr} failed: {e}"),
        Err(_) => return format!("tcp connect to {addr} timed out"),
    };
    let _ = tcp.set_nodelay(true);
    // the socket again, to acknowledge what the JDS sends at once (below)
    let socket = std::os::fd::AsFd::as_fd(&tcp).try_clone_to_owned().ok();
    let (rd, wr) = tcp.into_split();
    let (mut reader, mut writer) =
        match initiate(rd, wr, url.authority, &Sv2Options::default()).await {
            Ok(rw) => rw,
            Err(e) => return format!("noise handshake with the JDS at {addr} failed: {e}"),
        };
    let (tx, mut rx) = mpsc::channel::<Message>(JDS_OUT_QUEUE);
    if events
        .send(JdsEvent::Connected(generation, tx))
        .await
        .is_err()
    {
        return "JDC gone".into();
    }
    loop {
        tokio::select! {
            frame = reader.read_frame() => {
                let frame = match frame {
                    Ok(Some(f)) => f,
                    Ok(None) => return "the JDS closed the connection".into(),
                    Err(e) => return format!("JDS connection lost: {e}"),
                };
                if reader.buffered() == 0 {
                    // most JDS messages get no reply on this connection (a token, a
                    // declaration's success: the custom job goes to the pool): a JDS that
                    // leaves Nagle on would hold its next message for our delayed ACK
                    if let Some(s) = &socket {
                        let _ = strata_net::tcp::ack_now(s);
                    }
                }
                match Message::decode(&frame.header, &frame.payload) {
                    Ok(m) => {
                        if events.send(JdsEvent::Message(generation, m)).await.is_err() {
                            return "JDC gone".into();
                        }
                    }
                    Err(e) => return format!("garbage from the JDS: {e}"),
                }
            }
            m = rx.recv() => {
                let Some(m) = m else {
                    return "JDC gone".into();
                };
                if let Err(e) = writer.feed_message(&m) {
                    return format!("JDS write failed: {e}");
                }
                while let Ok(m) = rx.try_recv() {
                    if let Err(e) = writer.feed_message(&m) {
                        return format!("JDS write failed: {e}");
                    }
                }
                if let Err(e) = writer.flush().await {
                    return format!("JDS write failed: {e}");
                }
            }
        }
    }
}

/// Raw transactions of a template, parsed (`None` if any does not parse).
fn parse_transactions(raw: &[Vec<u8>]) -> Option<Vec<Arc<Transaction>>> {
    raw.iter()
        .map(|r| deserialize::<Transaction>(r).ok().map(Arc::new))
        .collect()
}

/// The template source's task: templates to the core, blocks to the node. A failing source
/// is reopened with backoff.
async fn run_source<S, C, F>(
    mut open: C,
    templates: mpsc::Sender<Arc<NodeTemplate>>,
    mut blocks: mpsc::Receiver<Solution>,
    stop: CancellationToken,
) where
    S: TemplateSource + 'static,
    C: FnMut() -> F + Send + 'static,
    F: std::future::Future<Output = Result<S, SourceError>> + Send + 'static,
{
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut source = tokio::select! {
            () = stop.cancelled() => return,
            s = open() => match s {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "the farm's node cannot be used");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            },
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                t = source.next_template() => match t {
                    Ok(t) => {
                        backoff = Duration::from_millis(500);
                        let transactions = source.transactions(t.id).and_then(parse_transactions);
                        let nt = Arc::new(NodeTemplate { template: t, transactions });
                        if templates.send(nt).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(source = source.name(), error = %e, "the farm's node failed: reopening");
                        break;
                    }
                },
                Some(s) = blocks.recv() => match source.submit(s).await {
                    Ok(SubmitOutcome::Accepted { hash }) => {
                        tracing::info!(%hash, "the farm's node accepted the block");
                    }
                    Ok(SubmitOutcome::Rejected { reason }) => {
                        tracing::error!(%reason, "the farm's node rejected the block");
                    }
                    Err(e) => tracing::error!(error = %e, "block submission to the farm's node failed"),
                },
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}
