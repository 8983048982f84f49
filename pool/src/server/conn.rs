//! The task of one miner connection: Noise handshake, then a loop that feeds the
//! [`Session`] with frames, new work, ledger commits and ticks, and carries out its events.
//! The task owns the session, both halves of the connection and nothing else.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;

use strata_net::keys::ResponderWatch;
use strata_net::sv2::{respond, Sv2Options};
use strata_protocol::Message;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, ReusableBoxFuture};

use super::session::{Event, FoundBlock, Now, PendingAck, Session, SessionConfig, Work};
use super::stats::{StatsEvent, StatsHandle};
use crate::ledger::{CommitTicket, Ledger, LedgerError, ShareRecord};

/// What every connection task shares (read-only).
#[derive(Debug)]
pub struct ConnContext {
    /// The Noise responder (static key and certificate) for new connections; a renewed
    /// certificate replaces it (each connection takes the current one at its handshake).
    pub responder: ResponderWatch,
    /// Handshake timeout and frame limits.
    pub net: Sv2Options,
    /// Session settings.
    pub session: Arc<SessionConfig>,
    /// Vardiff/flush period.
    pub tick: Duration,
    /// Time allowed to write to a miner before it is considered stuck and dropped.
    pub write_timeout: Duration,
    /// Time allowed between connect and SetupConnection.
    pub setup_timeout: Duration,
}

/// Shares being committed, oldest first: the ledger commits in queue order, so only the
/// oldest ticket needs polling.
type Commits = VecDeque<(CommitTicket, Vec<PendingAck>)>;

/// What the commits that resolved together say: the shares to acknowledge and, when a
/// commit failed, its error and shares.
#[derive(Debug, Default)]
struct Resolved {
    committed: Vec<PendingAck>,
    failed: Option<(LedgerError, Vec<PendingAck>)>,
}

/// Resolves when the oldest commit does, with the commits resolved right behind it (one
/// group commit often answers several requests of a connection): their acknowledgements
/// go out as one `SubmitShares.Success` per channel in one write. Pending while there is
/// no commit.
fn resolved_commits(commits: &mut Commits) -> impl Future<Output = Resolved> + '_ {
    std::future::poll_fn(move |cx| {
        let Some((ticket, _)) = commits.front_mut() else {
            return Poll::Pending;
        };
        let first = std::task::ready!(Pin::new(ticket).poll(cx));
        let (_, acks) = commits.pop_front().expect("the front was just polled");
        let mut resolved = Resolved::default();
        match first {
            Ok(_) => resolved.committed = acks,
            Err(e) => {
                resolved.failed = Some((e, acks));
                return Poll::Ready(resolved);
            }
        }
        while let Some((ticket, _)) = commits.front_mut() {
            let Poll::Ready(next) = Pin::new(ticket).poll(cx) else {
                break;
            };
            let (_, acks) = commits.pop_front().expect("the front was just polled");
            match next {
                Ok(_) => resolved.committed.extend(acks),
                Err(e) => {
                    resolved.failed = Some((e, acks));
                    break;
                }
            }
        }
        Poll::Ready(resolved)
    })
}

/// Waits for the next work and hands the receiver back. Kept in a [`ReusableBoxFuture`]
/// across the loop's turns: a `changed()` made afresh at every turn registered and removed
/// a waiter under the watch's lock at every share.
async fn work_changed(
    mut rx: watch::Receiver<Arc<Work>>,
) -> (
    Result<(), watch::error::RecvError>,
    watch::Receiver<Arc<Work>>,
) {
    let changed = rx.changed().await;
    (changed, rx)
}

/// The channels a connection task talks to.
#[derive(Debug, Clone)]
pub struct ConnLinks {
    /// Current work (one-to-many).
    pub work: watch::Receiver<Arc<Work>>,
    /// The share ledger.
    pub ledger: Ledger,
    /// Found blocks, to the work manager.
    pub blocks: mpsc::Sender<FoundBlock>,
    /// Statistics.
    pub stats: StatsHandle,
    /// Pool shutdown.
    pub shutdown: CancellationToken,
    /// The Job Declarator Server's declared jobs (`[jds]` enabled), for custom jobs.
    pub registry: Option<crate::jds::edge::RegistryHandle>,
}

/// Serves one miner until it leaves, misbehaves or the pool shuts down.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    conn_id: u64,
    ctx: Arc<ConnContext>,
    mut links: ConnLinks,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let responder = ctx.responder.borrow().clone();
    let (mut reader, mut writer) = match respond(rd, wr, &responder, &ctx.net).await {
        Ok(halves) => halves,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "handshake failed");
            return;
        }
    };
    links.stats.send(StatsEvent::Connected);
    let mut session = Session::new(conn_id, ctx.session.clone());
    let mut events: Vec<Event> = Vec::with_capacity(16);
    let mut commits: Commits = VecDeque::new();
    let mut batch: Vec<ShareRecord> = Vec::new();
    let mut acks: Vec<PendingAck> = Vec::new();
    let mut tick = tokio::time::interval(ctx.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let setup_deadline = tokio::time::sleep(ctx.setup_timeout);
    tokio::pin!(setup_deadline);
    // the waits that outlive a turn of the loop stay registered (no lock taken per share)
    let shutdown = links.shutdown.clone().cancelled_owned();
    tokio::pin!(shutdown);
    // the current work is delivered once the miner is set up and opens channels
    let first = links.work.borrow_and_update().clone();
    // the newest work the session has (a custom job may make it take one early, below)
    let mut applied_seq = first.seq;
    session.on_work(first, Now::current(), &mut events);
    events.clear();
    let mut next_work = ReusableBoxFuture::new(work_changed(links.work.clone()));
    let reason: String = loop {
        tokio::select! {
            frame = reader.read_frame() => match frame {
                Ok(Some(frame)) => {
                    let now = Now::current();
                    // the frames that came in the same read: one ledger request, one write
                    let failed: Option<String> = 'frames: {
                        let mut frame = frame;
                        loop {
                            match Message::decode_with_tlvs(&frame.header, &frame.payload) {
                                Ok((msg, tlvs)) => session.on_message(msg, tlvs, now, &mut events),
                                Err(e) => break 'frames Some(format!("undecodable frame: {e}")),
                            }
                            // a custom job is taken up, a close carried out, before the next frame
                            if events.iter().any(|e| matches!(e, Event::CustomJob(_) | Event::Close(_))) {
                                break 'frames None;
                            }
                            match reader.buffered_frame() {
                                Ok(Some(next)) => frame = next,
                                Ok(None) => break 'frames None,
                                Err(e) => break 'frames Some(format!("{e}")),
                            }
                        }
                    };
                    if let Some(reason) = failed {
                        break reason;
                    }
                }
                Ok(None) => break "closed by the miner".into(),
                Err(e) => break format!("{e}"),
            },
            (changed, rx) = &mut next_work => {
                if changed.is_err() {
                    break "pool stopping".into();
                }
                let work = rx.borrow().clone();
                next_work.set(work_changed(rx));
                if work.seq > applied_seq {
                    applied_seq = work.seq;
                    session.on_work(work, Now::current(), &mut events);
                }
            }
            resolved = resolved_commits(&mut commits), if !commits.is_empty() => {
                if !resolved.committed.is_empty() {
                    session.on_committed(&resolved.committed, &mut events);
                }
                if let Some((e, done)) = resolved.failed {
                    tracing::error!(conn = conn_id, error = %e, shares = done.len(), "ledger commit failed; shares not acknowledged");
                    session.on_commit_failed(&done, &mut events);
                }
            }
            _ = tick.tick() => session.on_tick(Now::current(), &mut events),
            _ = &mut setup_deadline, if !session.is_ready() => {
                break "no SetupConnection in time".into();
            }
            _ = &mut shutdown => break "pool shutting down".into(),
        }
        let mut close = None;
        let mut customs = Vec::new();
        for ev in events.drain(..) {
            match ev {
                Event::Send(msg) => {
                    if let Err(e) = writer.feed_message(&msg) {
                        close = Some(format!("cannot encode {}: {e}", msg.name()));
                    }
                }
                Event::Accepted(b) => {
                    // counted in the statistics once committed (the ledger's observer)
                    let (record, ack) = *b;
                    batch.push(record);
                    acks.push(ack);
                }
                Event::Rejected { worker, code } => {
                    links.stats.send(StatsEvent::Rejected { worker, code })
                }
                Event::Block(found) => {
                    // debug: on regtest about every other share is a candidate; the manager logs what
                    // becomes of it (submitted and accepted or rejected) at info or above
                    tracing::debug!(conn = conn_id, height = found.height, hash = %found.hash, worker = %found.worker, "block candidate");
                    if links.blocks.send(*found).await.is_err() {
                        close = Some("pool stopping".into());
                    }
                }
                Event::Hashrate { worker, hashrate } => links.stats.send(StatsEvent::Hashrate {
                    conn: conn_id,
                    worker,
                    hashrate,
                }),
                Event::CustomJob(j) => customs.push(j),
                Event::Close(reason) => close = Some(reason),
            }
        }
        if !customs.is_empty() {
            // a job the JDS declared on a new tip can arrive before this connection's turn
            // to take the new work: the session gets it first, so the job is not stale
            let latest = links.work.borrow().clone();
            if latest.seq > applied_seq {
                applied_seq = latest.seq;
                session.on_work(latest, Now::current(), &mut events);
            }
        }
        for j in customs {
            let declared = match &links.registry {
                Some(r) => r.take(j.mining_job_token.as_slice()).await,
                None => None,
            };
            session.on_custom_job(&j, declared, Now::current(), &mut events);
            for ev in events.drain(..) {
                match ev {
                    Event::Send(msg) => {
                        if let Err(e) = writer.feed_message(&msg) {
                            close = Some(format!("cannot encode {}: {e}", msg.name()));
                        }
                    }
                    Event::Close(reason) => close = Some(reason),
                    _ => {}
                }
            }
        }
        if !batch.is_empty() {
            let shares = std::mem::take(&mut batch);
            let done = std::mem::take(&mut acks);
            match links.ledger.submit(shares).await {
                Ok(ticket) => commits.push_back((ticket, done)),
                Err(e) => {
                    tracing::error!(conn = conn_id, error = %e, "ledger unavailable");
                    session.on_commit_failed(&done, &mut events);
                    for ev in events.drain(..) {
                        if let Event::Send(msg) = ev {
                            let _ = writer.feed_message(&msg);
                        }
                    }
                }
            }
        }
        if writer.pending() > 0 {
            // the socket usually takes it at once: no timer then
            let flushed = match writer.flush().now_or_never() {
                Some(done) => Ok(done),
                None => tokio::time::timeout(ctx.write_timeout, writer.flush()).await,
            };
            match flushed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break format!("write failed: {e}"),
                Err(_) => break "miner not reading (write timeout)".into(),
            }
        }
        if let Some(reason) = close {
            break reason;
        }
    };
    // acknowledge what is already being committed, if the miner is still there
    for (ticket, done) in commits.drain(..) {
        if ticket.await.is_ok() {
            session.on_committed(&done, &mut events);
        }
    }
    for ev in events.drain(..) {
        if let Event::Send(msg) = ev {
            let _ = writer.feed_message(&msg);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.flush()).await;
    let _ = writer.shutdown().await;
    links.stats.send(StatsEvent::Disconnected { conn: conn_id });
    tracing::info!(conn = conn_id, %peer, %reason, "connection closed");
}
