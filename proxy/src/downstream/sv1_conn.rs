//! The tokio shell of the SV1 downstream: one task per miner connection owns its socket and
//! its [`Sv1Session`], reads lines ([`LineReader`], bounded length), follows the hub's work
//! (`watch`), runs the session's timer (vardiff, reports, idle timeout) and talks to the hub
//! with [`HubRequest`]s. Every failure (a bad line, a miner that never reads, a timeout) ends
//! that one connection only.
//!
//! ```text
//!  listen_sv1 ──accept──▶ serve_sv1 (task per miner, at most max_per_ip per address)
//!     serve_sv1:  select { shutdown | work changed | line | timer }
//!                  └─▶ Sv1Session ─▶ actions: Send (buffered, written with a timeout),
//!                                             Join (hub round trip), Forward, Close
//!                               early report (mining started, estimate took over): Report,
//!                                             waiting for room in the hub's queue
//!     timer:      vardiff tick, handshake timeout (the session's), idle timeout, Report
//!                 every report_interval (dropped when the hub's queue is full: the next one
//!                 supersedes it)
//!     lines:      the first must start with `{` (else closed at its first byte); too long
//!                 or past the malformed-line budget: closed
//!     at exit:    Report(connected = false), Leave
//! ```
//!
//! Memory of an idle miner: a farm's miners are idle between shares, so a connection holds
//! no read or write buffer while it waits (strata-net's [`LineReader`] reads into the stack
//! once the socket is readable and keeps only an unfinished line; the write buffer and the
//! action list are released after each use), and the rarely used parts of the task (running
//! actions, the exit) are boxed so that they do not enlarge every waiting task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_net::limit::IpLimiter;
use strata_net::sv1::LineReader;
use strata_net::NetError;
use strata_sv1::{Id, Response, StratumError, Text};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::sv1::{Now, Sv1Action, Sv1Config, Sv1Session};
use crate::hub::{HubHandle, HubRequest, JoinError, Joined};
use crate::work::{queue_share, WorkRx};

/// How long the last report and the `Leave` of a closing miner may wait for the hub.
const EXIT_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (e.g. out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The shortest wait of the connection timer (guards against a deadline in the past).
const MIN_TIMER: Duration = Duration::from_millis(10);

/// Serves one SV1 miner until it disconnects, fails, idles out or `shutdown` is cancelled
/// (then it is sent `client.reconnect` first). Never panics on the miner's input; the hub
/// gets a `Leave` (and a last report) for a miner that had joined.
pub async fn serve_sv1(
    stream: TcpStream,
    peer: SocketAddr,
    hub: HubHandle,
    cfg: Arc<Sv1Config>,
    shutdown: CancellationToken,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay");
    }
    let mut session = match Sv1Session::new(cfg.clone(), peer, Now::current()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%peer, error = %e, "sv1 session not created");
            return;
        }
    };
    let (rd, wr) = stream.into_split();
    // a peer whose first bytes cannot start a JSON-RPC line is closed at once
    let mut lines = LineReader::new(rd, cfg.max_line_len).json_first_line();
    let mut conn = Conn {
        peer,
        hub,
        channel: 0,
        work: None,
        cfg: cfg.clone(),
        wr,
        out: Vec::new(),
        shutdown: shutdown.clone(),
        joined: false,
    };
    let mut actions = Vec::new();
    let mut last_line = TokioInstant::now();
    let mut next_report = TokioInstant::now() + cfg.report_interval;
    // the waits stay registered across the loop's turns: made afresh at every line, each
    // registered and removed itself under a lock (the token's, the watch's, the timer
    // wheel's) once per share
    let stopping = shutdown.clone().cancelled_owned();
    tokio::pin!(stopping);
    let next_work = work_changed(None);
    tokio::pin!(next_work);
    let timer = tokio::time::sleep_until(next_report);
    tokio::pin!(timer);
    tracing::debug!(%peer, "sv1 miner connected");

    let reason: String = loop {
        if !actions.is_empty() {
            // boxed: its state (hub sends, the write with its timeout) would otherwise be
            // part of every waiting connection's task
            if let Err(reason) = Box::pin(conn.run(&mut session, &mut actions)).await {
                break reason;
            }
        }
        if let Some(report) = session.take_early_report(Now::current()) {
            // boxed like `run`: twice in a connection's life
            Box::pin(conn.report_now(report)).await;
        }
        if std::mem::take(&mut conn.joined) {
            next_work.set(work_changed(conn.work.clone()));
        }
        let now = TokioInstant::now();
        let idle_at = last_line + cfg.idle_timeout;
        let deadline = idle_at
            .min(next_report)
            .min(TokioInstant::from_std(session.next_tick()))
            .max(now + MIN_TIMER);
        // moved only when it must come earlier (a line moves the idle deadline later at
        // every share): a timer that fires early finds nothing due and is set again
        if deadline < timer.deadline() || timer.is_elapsed() {
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            biased;
            () = &mut stopping => {
                session.shutdown(&mut actions);
            }
            (changed, rx) = &mut next_work => match changed {
                Ok(()) => {
                    if let Some(mut work) = rx {
                        let w = work.borrow_and_update().clone();
                        session.on_work(w.as_ref(), Now::current(), &mut actions);
                        next_work.set(work_changed(Some(work)));
                    }
                }
                Err(_) => {
                    // the hub is gone: the proxy is stopping
                    next_work.set(work_changed(None));
                    session.shutdown(&mut actions);
                }
            },
            line = lines.next() => match line {
                None => break "closed by the miner".into(),
                Some(Ok(line)) => {
                    last_line = TokioInstant::now();
                    session.handle_line(&line, Now::current(), &mut actions);
                }
                Some(Err(NetError::Line(e))) => {
                    let mut buf = Vec::new();
                    Response::error(
                        Id::Null,
                        StratumError::new(StratumError::PARSE_ERROR, Text::from(e.to_string())),
                    )
                    .encode(&mut buf);
                    conn.out.extend_from_slice(&buf);
                    // best effort: the miner is closed either way
                    let _ = Box::pin(conn.flush()).await;
                    break format!("{e}");
                }
                Some(Err(e)) => break format!("read: {e}"),
            },
            () = &mut timer => {
                let now = TokioInstant::now();
                if now >= idle_at {
                    break format!("idle for {:?}", cfg.idle_timeout);
                }
                session.on_tick(Now::current(), &mut actions);
                if now >= next_report {
                    next_report = now + cfg.report_interval;
                    if let Some(r) = session.report(Now::current()) {
                        conn.report(r);
                    }
                }
            }
        }
    };
    tracing::debug!(%peer, %reason, "sv1 miner disconnected");
    Box::pin(conn.leave(&session)).await;
}

/// Waits for a change of the channel's work (forever before the miner joined a channel) and
/// hands the receiver back, so that one wait is kept across the loop's turns.
async fn work_changed(
    work: Option<WorkRx>,
) -> (Result<(), watch::error::RecvError>, Option<WorkRx>) {
    match work {
        Some(mut w) => (w.changed().await, Some(w)),
        None => std::future::pending().await,
    }
}

/// The socket's write half and the hub, for running a session's actions.
struct Conn {
    peer: SocketAddr,
    hub: HubHandle,
    /// The upstream channel the miner joined (0 until then).
    channel: usize,
    /// That channel's work, once joined.
    work: Option<WorkRx>,
    cfg: Arc<Sv1Config>,
    wr: OwnedWriteHalf,
    out: Vec<u8>,
    shutdown: CancellationToken,
    /// Set when a join gave the miner its channel's work: the loop then follows it.
    joined: bool,
}

impl Conn {
    /// Runs the queued actions (and those they lead to), then writes what was queued.
    /// `Err(reason)`: the connection is over.
    async fn run(
        &mut self,
        session: &mut Sv1Session,
        actions: &mut Vec<Sv1Action>,
    ) -> Result<(), String> {
        let mut i = 0;
        while i < actions.len() {
            let action = std::mem::replace(&mut actions[i], Sv1Action::Join);
            i += 1;
            match action {
                Sv1Action::Send(line) => {
                    self.out.extend_from_slice(line.as_bytes());
                    self.out.push(b'\n');
                }
                Sv1Action::Join => {
                    let slot = self.join().await?.map(|j| {
                        self.channel = j.channel;
                        self.work = Some(j.work);
                        self.joined = true;
                        j.slot
                    });
                    session.on_slot(slot, Now::current(), actions);
                    if let Some(work) = self.work.as_mut() {
                        let w = work.borrow_and_update().clone();
                        session.on_work(w.as_ref(), Now::current(), actions);
                    }
                }
                Sv1Action::Forward(mut share) => {
                    share.channel = self.channel;
                    // straight into the route of the work (decision record 0010); the hub
                    // takes what it refuses (another epoch, a full queue) and counts it
                    let Some(share) = queue_share(self.work.as_ref(), share) else {
                        continue;
                    };
                    // the miner's `true` follows in `actions`: it is not sent if the share
                    // cannot be handed over
                    let sent = tokio::select! {
                        r = self.hub.requests.send(HubRequest::Share(share)) => r.is_ok(),
                        () = self.shutdown.cancelled() => false,
                    };
                    if !sent {
                        actions.clear();
                        return Err("share not handed to the hub".into());
                    }
                }
                Sv1Action::Close { reason } => {
                    actions.clear();
                    // best effort: the connection closes either way
                    let _ = self.flush().await;
                    return Err(reason);
                }
            }
        }
        // released: most connections wait far longer than they work
        *actions = Vec::new();
        self.flush().await
    }

    /// The hub round trip of a join.
    async fn join(&mut self) -> Result<Result<Joined, JoinError>, String> {
        let (reply, answer) = oneshot::channel();
        let request = HubRequest::Join {
            peer: self.peer,
            reply,
        };
        tokio::select! {
            r = self.hub.requests.send(request) => {
                r.map_err(|_| "hub gone".to_owned())?;
            }
            () = self.shutdown.cancelled() => return Err("shutdown during join".into()),
        }
        tokio::select! {
            r = answer => r.map_err(|_| "hub dropped the join".to_owned()),
            () = self.shutdown.cancelled() => Err("shutdown during join".into()),
        }
    }

    /// Writes the queued lines within the write timeout.
    async fn flush(&mut self) -> Result<(), String> {
        if self.out.is_empty() {
            return Ok(());
        }
        // the socket usually takes it all at once: no timer then
        let written = match self.wr.try_write(&self.out) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(format!("write: {e}")),
        };
        if written == self.out.len() {
            self.out = Vec::new();
            return Ok(());
        }
        let rest = &self.out[written..];
        match tokio::time::timeout(self.cfg.write_timeout, self.wr.write_all(rest)).await {
            Ok(Ok(())) => {
                // released: an idle miner holds no write buffer
                self.out = Vec::new();
                Ok(())
            }
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err(format!(
                "write timed out after {:?} (miner not reading)",
                self.cfg.write_timeout
            )),
        }
    }

    /// A periodic report; dropped when the hub is busy (the next one supersedes it).
    fn report(&self, r: crate::hub::MinerReport) {
        let request = HubRequest::Report {
            channel: self.channel,
            report: r,
        };
        if let Err(e) = self.hub.requests.try_send(request) {
            tracing::debug!(peer = %self.peer, error = %e, "periodic report dropped");
        }
    }

    /// An early report (the session's first figures, or the first resting on evidence):
    /// the channel's first `UpdateChannel` is made of these, so it waits for room in the
    /// hub's queue rather than being dropped (a shutdown ends the wait; its branch follows).
    async fn report_now(&self, r: crate::hub::MinerReport) {
        let request = HubRequest::Report {
            channel: self.channel,
            report: r,
        };
        tokio::select! {
            sent = self.hub.requests.send(request) => {
                if sent.is_err() {
                    tracing::debug!(peer = %self.peer, "hub gone before an early report");
                }
            }
            () = self.shutdown.cancelled() => {}
        }
    }

    /// The last report and the `Leave` of a miner that had joined.
    async fn leave(mut self, session: &Sv1Session) {
        let _ = self.wr.shutdown().await;
        let Some(miner) = session.miner() else {
            return;
        };
        let requests = self.hub.requests.clone();
        let channel = self.channel;
        let send = async move {
            if let Some(mut report) = session.report(Now::current()) {
                report.connected = false;
                requests
                    .send(HubRequest::Report { channel, report })
                    .await?;
            }
            requests.send(HubRequest::Leave { channel, miner }).await
        };
        match tokio::time::timeout(EXIT_SEND_TIMEOUT, send).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::debug!(peer = %self.peer, "hub gone before the leave"),
            Err(_) => tracing::warn!(peer = %self.peer, ?miner, "leave not delivered in time"),
        }
    }
}

/// Accepts SV1 miners on `listener` until `shutdown` is cancelled, one [`serve_sv1`] task
/// each, at most `max_per_ip` at once from one address (0: no limit; further connections
/// from it are closed at once, logged at debug); returns when every connection task has
/// finished.
pub async fn listen_sv1(
    listener: TcpListener,
    hub: HubHandle,
    cfg: Arc<Sv1Config>,
    max_per_ip: usize,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let per_ip = IpLimiter::new("sv1", max_per_ip);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "sv1 accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Some(slot) = per_ip.admit(peer) else {
            drop(stream);
            continue;
        };
        let (hub, cfg, shutdown) = (hub.clone(), cfg.clone(), shutdown.clone());
        tracker.spawn(async move {
            serve_sv1(stream, peer, hub, cfg, shutdown).await;
            drop(slot);
        });
    }
    tracker.close();
    tracker.wait().await;
}
