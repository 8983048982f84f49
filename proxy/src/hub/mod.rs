//! The hub: the one task that owns the upstream channels' state (one or more extended
//! channels on the active pool), their extranonce splitters and the routing of forwarded
//! shares. Miner tasks talk to it with [`HubRequest`]s; a join puts the miner on a channel
//! and hands it that channel's `watch` of [`UpstreamWork`].
//!
//! Assignment: with `miners_per_channel = N > 0` a joining miner goes to the first channel
//! with fewer than N miners; when all are full the hub asks the upstream side for one more
//! channel ([`UpstreamCommand::Channels`]) and the miner waits for that channel to open (its
//! session waits for work anyway). A channel the pool refuses gets no work: miners already
//! on it (from an earlier pool) wait for the next pool, miners still waiting for it and later
//! ones go to the open channel with the fewest miners (above N) rather than asking for more
//! refusals. With N = 0 every miner is on channel 0. Miner ids are
//! unique within a channel; the hub's maps are keyed by (channel, id).
//!
//! # UpdateChannel
//!
//! Each channel's `UpdateChannel` carries the summed hashrate of its own miners, as their
//! reports give it ([`miner_hashrate`]). The pool starts a channel opened with a zero
//! nominal hashrate at its minimum difficulty, where nearly every miner share is forwarded,
//! so the first announcement is prompt; the later ones are debounced:
//!
//! ```text
//!  nothing announced ──first report with a hashrate──▶ wait FIRST_UPDATE_DELAY (1 s: the
//!        ▲                                             miners connecting together join it)
//!        │ announced 0 (every miner left)                 │ UpdateChannel(sum)
//!        │                                                ▼
//!        └──────────────────────────────── announced ──every update_interval: UpdateChannel
//!                                                         when the sum moved by more than
//!                                                         update_threshold
//! ```
//!
//! A rise beyond [`URGENT_RISE`] times the announcement is announced [`FIRST_UPDATE_DELAY`]
//! after the report that showed it, without waiting for the interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::monitor::Monitor;
use crate::upstream::{UpstreamCommand, UpstreamEvent};
use crate::work::UpstreamWork;

mod core;
mod types;

pub(crate) use self::core::{Hub, HubAction, HubNow, Ticket};
pub use types::*;

/// The hub task's side of [`Hub`]: the channels' work `watch`es, the joins waiting for their
/// answer, and the upstream side's command queue. It carries out the hub's actions.
struct HubEdge {
    hub: Hub,
    /// One per channel index, created as the hub publishes to it.
    work: Vec<watch::Sender<Option<Arc<UpstreamWork>>>>,
    /// Joins waiting for their answer, by ticket.
    joins: HashMap<Ticket, oneshot::Sender<Result<Joined, JoinError>>>,
    next_ticket: Ticket,
    /// Unbounded, so that the hub never waits on the upstream side: that side waits on the
    /// hub to take its events (share results, work), and a bounded queue each way let the
    /// two wait on each other for good (seen at 40,000 forwards/s with the pool refusing
    /// them). It stays short: the upstream task takes each command at once. Shares do not
    /// go this way but through the active pool's share route, never waited on either.
    commands: mpsc::UnboundedSender<UpstreamCommand>,
}

impl HubEdge {
    fn new(hub: Hub, commands: mpsc::UnboundedSender<UpstreamCommand>) -> Self {
        HubEdge {
            hub,
            work: Vec::new(),
            joins: HashMap::new(),
            next_ticket: 0,
            commands,
        }
    }

    /// The work `watch` of channel `c`.
    fn work(&mut self, c: usize) -> &watch::Sender<Option<Arc<UpstreamWork>>> {
        while self.work.len() <= c {
            self.work.push(watch::Sender::new(None));
        }
        &self.work[c]
    }

    /// A miner task's request; `now` is read only for the requests that use the time (a
    /// share, the most frequent, needs none).
    fn on_request(&mut self, req: HubRequest, now: impl FnOnce() -> HubNow) {
        match req {
            HubRequest::Join { peer, reply } => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                self.joins.insert(ticket, reply);
                self.hub.join(peer, ticket, now());
            }
            HubRequest::Leave { channel, miner } => self.hub.forget(channel, miner),
            HubRequest::Share(share) => self.hub.share(share),
            HubRequest::Report { channel, report } => {
                self.hub.on_report(channel, report, now());
            }
        }
        self.carry_out();
    }

    fn on_event(&mut self, ev: UpstreamEvent, now: HubNow) {
        self.hub.on_event(ev, now);
        self.carry_out();
    }

    fn on_timer(&mut self, now: HubNow) {
        self.hub.on_timer(now);
        self.carry_out();
    }

    /// Carries out the hub's actions, in order.
    fn carry_out(&mut self) {
        let mut actions = self.hub.take_actions();
        if actions.is_empty() {
            self.hub.recycle(actions);
            return;
        }
        for action in actions.drain(..) {
            match action {
                HubAction::Publish { channel, work } => {
                    self.work(channel).send_replace(work);
                }
                HubAction::Answer {
                    ticket,
                    channel,
                    result,
                } => {
                    let Some(reply) = self.joins.remove(&ticket) else {
                        continue;
                    };
                    let answer = result.map(|slot| Joined {
                        slot,
                        channel,
                        work: self.work(channel).subscribe(),
                    });
                    if let Err(Ok(j)) = reply.send(answer) {
                        // the miner went away while waiting: its id is free again
                        self.hub.forget(j.channel, j.slot.miner);
                    }
                }
                HubAction::Upstream(cmd) => {
                    if self.commands.send(cmd).is_err() {
                        tracing::error!("upstream task gone");
                    }
                }
            }
        }
        self.hub.recycle(actions);
    }
}

/// Events (or requests) taken per wake-up of the hub task at most, so that a burst of one
/// kind does not hold the other and the timers for long.
const BATCH: usize = 64;

/// How long until UNIX second `t` (zero once past).
fn until_unix(t: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(t).saturating_sub(now)
}

/// Starts the hub task (with `monitor`: history, alerts, failovers): returns the handle
/// miner tasks use and the query channel of the API.
pub fn spawn(
    cfg: HubConfig,
    monitor: Monitor,
    mut events: mpsc::Receiver<UpstreamEvent>,
    commands: mpsc::UnboundedSender<UpstreamCommand>,
    shutdown: CancellationToken,
) -> (HubHandle, mpsc::Sender<HubQuery>) {
    let (req_tx, mut req_rx) = mpsc::channel::<HubRequest>(4096);
    let (query_tx, mut query_rx) = mpsc::channel::<HubQuery>(64);
    let mut edge = HubEdge::new(Hub::new(cfg, monitor), commands);
    tokio::spawn(async move {
        // reset to the hub's next update only when that changes (not at every request)
        let wake = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(wake);
        // the monitor's steps are in UNIX seconds: each sleep is measured on the wall clock
        // when it is set, and lasts a step at most (a clock set back delays the step, it
        // does not stop the sampling)
        let step = Duration::from_secs(edge.hub.monitor.resolution());
        let tick = tokio::time::sleep(until_unix(edge.hub.monitor.next_tick()).min(step));
        tokio::pin!(tick);
        loop {
            let next_update = edge.hub.next_update();
            if let Some(at) = next_update.map(tokio::time::Instant::from_std) {
                if wake.deadline() != at {
                    wake.as_mut().reset(at);
                }
            }
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => {
                        // with the events queued behind it (a pool's answer for several
                        // shares), at the time of this wake-up
                        let now = HubNow::read();
                        edge.on_event(ev, now);
                        for _ in 1..BATCH {
                            let Ok(ev) = events.try_recv() else { break };
                            edge.on_event(ev, now);
                        }
                    }
                    None => break,
                },
                req = req_rx.recv() => match req {
                    Some(req) => {
                        edge.on_request(req, HubNow::read);
                        for _ in 1..BATCH {
                            let Ok(req) = req_rx.try_recv() else { break };
                            edge.on_request(req, HubNow::read);
                        }
                    }
                    None => break,
                },
                Some(q) = query_rx.recv() => match q {
                    // read-only: nothing to carry out
                    HubQuery::Stats(r) => { let _ = r.send(edge.hub.stats()); }
                    HubQuery::Miners(r) => { let _ = r.send(edge.hub.miners()); }
                    HubQuery::Upstreams(r) => { let _ = r.send(edge.hub.upstreams()); }
                    HubQuery::Live(r) => { let _ = r.send(edge.hub.monitor.live()); }
                    HubQuery::Alerts(r) => { let _ = r.send(edge.hub.monitor.alerts()); }
                    HubQuery::Failovers(r) => { let _ = r.send(edge.hub.monitor.failovers()); }
                    HubQuery::Monitor(r) => { let _ = r.send(edge.hub.monitor.stats()); }
                },
                () = &mut tick => {
                    edge.hub.monitor.tick(crate::monitor::unix_now());
                    let wait = until_unix(edge.hub.monitor.next_tick()).min(step);
                    tick.as_mut().reset(tokio::time::Instant::now() + wait);
                }
                () = &mut wake, if next_update.is_some() => {
                    // never before the deadline the timer was set for (no spinning on it)
                    let mut now = HubNow::read();
                    now.at = next_update.map_or(now.at, |at| at.max(now.at));
                    edge.on_timer(now);
                }
                _ = shutdown.cancelled() => break,
            }
        }
        edge.hub.monitor.flush(crate::monitor::unix_now());
        tracing::debug!("hub stopped");
    });
    (HubHandle { requests: req_tx }, query_tx)
}

#[cfg(test)]
mod tests;
