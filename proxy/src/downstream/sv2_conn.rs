//! The task of one SV2 miner connection: Noise handshake (or plaintext on a trusted LAN),
//! then a loop that feeds the [`Sv2DownSession`] with frames, upstream work, the hub's join
//! answer and ticks, and carries out its [`Action`]s. The task owns the session and both
//! halves of the connection; it reports to the hub when the session has an early report
//! (a channel opened, a channel's hashrate estimate took over), about every
//! [`Sv2DownContext::report_interval`] and at exit, then leaves.
//!
//! [`listen_sv2`] accepts connections, caps them per IP address and runs one task each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::OptionFuture;
use futures::FutureExt as _;
use strata_net::keys::ResponderWatch;
use strata_net::limit::IpLimiter;
use strata_net::sv2::{plaintext, respond, Sv2Options, Sv2Reader, Sv2Writer};
use strata_protocol::frame::Frame;
use strata_protocol::Message;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::sv2::{Action, Now, Sv2DownConfig, Sv2DownSession};
use crate::hub::{HubHandle, HubRequest, JoinError, Joined};
use crate::work::{queue_share, WorkRx};

/// What every SV2 downstream connection task shares (read-only).
#[derive(Debug)]
pub struct Sv2DownContext {
    /// The Noise responder for new connections: the proxy's static key and its certificate
    /// signed by the proxy's own authority key (what the miners pin), here or offline. A
    /// renewed certificate replaces it; each handshake takes the current one.
    pub responder: ResponderWatch,
    /// Serve unencrypted SV2 (trusted LANs only; off by default).
    pub plaintext: bool,
    /// Handshake timeout and frame limits.
    pub net: Sv2Options,
    /// Session settings.
    pub session: Arc<Sv2DownConfig>,
    /// Vardiff and acknowledgement period.
    pub tick: Duration,
    /// Period of [`HubRequest::Report`]s.
    pub report_interval: Duration,
    /// Time allowed between connect and `SetupConnection`.
    pub setup_timeout: Duration,
    /// Time allowed to write to a miner before it is considered stuck and dropped.
    pub write_timeout: Duration,
    /// A miner that sends nothing for this long is dropped.
    pub idle_timeout: Duration,
}

impl Sv2DownContext {
    /// A context with default settings: Noise, 5 s ticks, reports every 10 s, 10 s to set
    /// up, 10 s write timeout, 10 min idle timeout. New connections take `responder`'s
    /// current value (a renewal task may publish new certificates into it).
    pub fn new(responder: ResponderWatch) -> Self {
        Sv2DownContext {
            responder,
            plaintext: false,
            net: Sv2Options::default(),
            session: Arc::new(Sv2DownConfig::default()),
            tick: Duration::from_secs(5),
            report_interval: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

type Reader = Sv2Reader<OwnedReadHalf>;
type Writer = Sv2Writer<OwnedWriteHalf>;

/// Time the exit path waits for an answer to a join already asked, so the id is released.
const JOIN_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Time the exit path spends flushing the last messages.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

async fn handshake(
    stream: TcpStream,
    ctx: &Sv2DownContext,
    shutdown: &CancellationToken,
) -> Result<(Reader, Writer), String> {
    let (rd, wr) = stream.into_split();
    if ctx.plaintext {
        return Ok(plaintext(rd, wr, &ctx.net));
    }
    let responder = ctx.responder.borrow().clone();
    tokio::select! {
        r = respond(rd, wr, &responder, &ctx.net) => r.map_err(|e| e.to_string()),
        () = shutdown.cancelled() => Err("proxy shutting down".into()),
    }
}

fn handle_frame(session: &mut Sv2DownSession, frame: &Frame, out: &mut Vec<Action>) {
    match Message::decode_with_tlvs(&frame.header, &frame.payload) {
        Ok((msg, tlvs)) => session.on_frame(msg, tlvs, Now::current(), out),
        Err(e) => out.push(Action::Close(format!("undecodable frame: {e}"))),
    }
}

/// Serves one SV2 miner until it leaves, misbehaves, the hub stops or `shutdown` is
/// cancelled.
pub async fn serve_sv2(
    stream: TcpStream,
    peer: SocketAddr,
    hub: HubHandle,
    ctx: Arc<Sv2DownContext>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = match handshake(stream, &ctx, &shutdown).await {
        Ok(halves) => halves,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "SV2 handshake failed");
            return;
        }
    };
    let mut session = Sv2DownSession::new(peer, ctx.session.clone(), Now::current());
    // the upstream channel the miner joined, and that channel's work (none before the join)
    let mut channel = 0usize;
    let mut work: Option<WorkRx> = None;
    let mut actions: Vec<Action> = Vec::with_capacity(16);
    let mut join_rx: Option<oneshot::Receiver<Result<Joined, JoinError>>> = None;
    let mut tick = tokio::time::interval(ctx.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = tokio::time::Instant::now();
    let mut report = tokio::time::interval_at(start + ctx.report_interval, ctx.report_interval);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let setup_deadline = tokio::time::sleep(ctx.setup_timeout);
    tokio::pin!(setup_deadline);
    let idle = tokio::time::sleep(ctx.idle_timeout);
    tokio::pin!(idle);
    tracing::debug!(%peer, "SV2 miner connected");

    let reason: String = loop {
        let mut stop: Option<String> = None;
        tokio::select! {
            frame = reader.read_frame() => match frame {
                Ok(Some(frame)) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + ctx.idle_timeout);
                    handle_frame(&mut session, &frame, &mut actions);
                    // the rest of the burst already received, then one acknowledgement each
                    while reader.buffered() > 0 && !session.is_closed() {
                        match reader.read_frame().now_or_never() {
                            Some(Ok(Some(f))) => handle_frame(&mut session, &f, &mut actions),
                            Some(Ok(None)) => {
                                stop = Some("closed by the miner".into());
                                break;
                            }
                            Some(Err(e)) => {
                                stop = Some(e.to_string());
                                break;
                            }
                            None => break,
                        }
                    }
                    session.flush_acks(&mut actions);
                }
                Ok(None) => break "closed by the miner".into(),
                Err(e) => break e.to_string(),
            },
            changed = work_changed(&mut work) => {
                if changed.is_err() {
                    break "hub stopped".into();
                }
                if let Some(w) = work.as_mut() {
                    let w = w.borrow_and_update().clone();
                    session.on_work(w, &mut actions);
                }
            }
            reply = OptionFuture::from(join_rx.as_mut()), if join_rx.is_some() => {
                join_rx = None;
                match reply {
                    Some(Ok(joined)) => {
                        let slot = joined.map(|j| {
                            channel = j.channel;
                            work = Some(j.work);
                            j.slot
                        });
                        session.on_slot(slot, &mut actions);
                        if let Some(w) = work.as_mut() {
                            let w = w.borrow_and_update().clone();
                            session.on_work(w, &mut actions);
                        }
                    }
                    _ => break "hub stopped".into(),
                }
            }
            _ = tick.tick() => session.on_tick(Now::current(), &mut actions),
            _ = report.tick() => {
                if let Some(report) = session.report(Now::current()) {
                    let req = HubRequest::Report { channel, report };
                    if hub.requests.send(req).await.is_err() {
                        break "hub stopped".into();
                    }
                }
            }
            () = &mut setup_deadline, if !session.is_ready() && !session.is_closed() => {
                break "no SetupConnection in time".into();
            }
            () = &mut idle => break "idle timeout".into(),
            () = shutdown.cancelled() => break "proxy shutting down".into(),
        }
        for action in actions.drain(..) {
            match action {
                Action::Send(msg) => {
                    if let Err(e) = writer.feed_message(&msg) {
                        stop.get_or_insert(format!("cannot encode {}: {e}", msg.name()));
                    }
                }
                Action::Join => {
                    let (tx, rx) = oneshot::channel();
                    let req = HubRequest::Join { peer, reply: tx };
                    if hub.requests.send(req).await.is_err() {
                        stop.get_or_insert("hub stopped".into());
                    } else {
                        join_rx = Some(rx);
                    }
                }
                Action::Forward(mut share) => {
                    share.channel = channel;
                    // straight into the route of the work; the hub takes what it refuses
                    if let Some(share) = queue_share(work.as_ref(), share) {
                        if hub.requests.send(HubRequest::Share(share)).await.is_err() {
                            stop.get_or_insert("hub stopped".into());
                        }
                    }
                }
                Action::Close(r) => {
                    stop.get_or_insert(r);
                }
            }
        }
        if let Some(report) = session.take_early_report(Now::current()) {
            let req = HubRequest::Report { channel, report };
            if hub.requests.send(req).await.is_err() {
                stop.get_or_insert("hub stopped".into());
            }
        }
        if writer.pending() > 0 {
            match tokio::time::timeout(ctx.write_timeout, writer.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break format!("write failed: {e}"),
                Err(_) => break "miner not reading (write timeout)".into(),
            }
        }
        if let Some(r) = stop {
            break r;
        }
    };

    // a join already asked is answered before we go, so its id is released
    if let Some(rx) = join_rx.take() {
        if let Ok(Ok(joined)) = tokio::time::timeout(JOIN_DRAIN_TIMEOUT, rx).await {
            let slot = joined.map(|j| {
                channel = j.channel;
                j.slot
            });
            session.on_slot(slot, &mut actions);
        }
    }
    for action in actions.drain(..) {
        if let Action::Send(msg) = action {
            let _ = writer.feed_message(&msg);
        }
    }
    let _ = tokio::time::timeout(FINAL_FLUSH_TIMEOUT, writer.flush()).await;
    let _ = writer.shutdown().await;
    if let Some(mut report) = session.report(Now::current()) {
        report.connected = false;
        let _ = hub
            .requests
            .send(HubRequest::Report { channel, report })
            .await;
    }
    if let Some(miner) = session.miner() {
        let _ = hub
            .requests
            .send(HubRequest::Leave { channel, miner })
            .await;
    }
    tracing::info!(%peer, %reason, "SV2 miner disconnected");
}

/// Waits for a change of the channel's work (forever before the miner joined a channel).
async fn work_changed(work: &mut Option<WorkRx>) -> Result<(), watch::error::RecvError> {
    match work {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// Accepts SV2 miners on `listener` until `shutdown` is cancelled, at most `max_per_ip`
/// connections per IP address at a time (0: no limit; further ones are closed at once,
/// logged at debug), one [`serve_sv2`] task each; returns once every connection task has
/// ended.
pub async fn listen_sv2(
    listener: TcpListener,
    hub: HubHandle,
    ctx: Arc<Sv2DownContext>,
    max_per_ip: usize,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let per_ip = IpLimiter::new("sv2", max_per_ip);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = per_ip.admit(peer) else {
                        continue;
                    };
                    let (hub, ctx, shutdown) = (hub.clone(), ctx.clone(), shutdown.clone());
                    tracker.spawn(async move {
                        let _slot = slot;
                        serve_sv2(stream, peer, hub, ctx, shutdown).await;
                    });
                }
                Err(e) => {
                    // out of file descriptors and the like: back off instead of spinning
                    tracing::warn!(error = %e, "SV2 accept failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            },
            () = shutdown.cancelled() => break,
        }
    }
    tracker.close();
    tracker.wait().await;
}
