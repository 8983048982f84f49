//! The hub's logic as a synchronous core: every input comes with the time ([`HubNow`]) and
//! what it causes is queued as [`HubAction`]s that the hub task ([`super::spawn`]) carries
//! out: publishing a channel's work to its miners, answering a join, commanding the upstream
//! side. The one hand-off it makes itself is a forwarded share into the active pool's
//! [`ShareRoute`] (a bounded queue it never waits on: a full or closed route is the share's
//! `stale-upstream` refusal, decided here), so a share costs no action.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use strata_work::extranonce::{ExtranonceSplitter, MinerId};

use super::types::{ack_histogram, reported_rate};
use super::*;
use crate::monitor::Monitor;
use crate::upstream::{
    ShareRoute, UpstreamCommand, UpstreamEvent, CODE_STALE_UPSTREAM, PROXY_CODES,
};
use crate::work::{ForwardShare, UpstreamWork};

/// The time of an input: the monotonic clock (timers, latencies) and the wall clock in UNIX
/// milliseconds (what the API and the history show).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubNow {
    /// Monotonic time.
    pub at: Instant,
    /// Wall-clock time, UNIX milliseconds.
    pub unix_ms: u64,
}

impl HubNow {
    /// Both clocks read now (the hub task's edge; tests pass their own).
    pub(crate) fn read() -> Self {
        HubNow {
            at: Instant::now(),
            unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// Names a join's answer: the caller keeps whatever waits for it (a miner task's reply).
pub(crate) type Ticket = u64;

/// What the hub's inputs cause, carried out in order by its caller.
#[derive(Debug)]
pub(crate) enum HubAction {
    /// Channel `channel`'s miners now mine `work` (`None`: no usable upstream, stop).
    Publish {
        /// The proxy-side channel index.
        channel: usize,
        /// Its work, with the miners' extranonce layout filled in.
        work: Option<Arc<UpstreamWork>>,
    },
    /// The answer to the join of `ticket`. If nobody waits for it any more (the miner left
    /// meanwhile), give its id back with [`Hub::forget`].
    Answer {
        /// The join's ticket.
        ticket: Ticket,
        /// The channel the miner is on.
        channel: usize,
        /// Its slot, or why it has none.
        result: Result<Slot, JoinError>,
    },
    /// A command for the upstream side.
    Upstream(UpstreamCommand),
}

#[derive(Debug)]
pub(super) struct MinerEntry {
    /// When it joined: a share received before is of the id's previous holder.
    joined: Instant,
    report: Option<MinerReport>,
    forwarded: u64,
    upstream_accepted: u64,
    upstream_rejected: u64,
}

/// A miner waiting for its channel to open.
type Waiter = (SocketAddr, Ticket);

/// A channel's side on the active pool.
#[derive(Debug, Clone, Copy)]
struct Upstream {
    channel_id: u32,
}

/// One upstream channel as the hub keeps it (across pools: the splitter keeps the miners'
/// ids when the channel reopens on another pool).
#[derive(Debug)]
pub(super) struct HubChannel {
    splitter: Option<ExtranonceSplitter>,
    /// Open on the active pool.
    upstream: Option<Upstream>,
    /// The active pool refused to open it.
    refused: Option<String>,
    last_work: Option<UpstreamWork>,
    /// Miners waiting for the channel's first opening.
    waiting: Vec<Waiter>,
    /// Miners on the channel: joined, or waiting for it.
    assigned: usize,
    announced_hashrate: f64,
    /// Summed hashrate of the channel's connected miners as reported, kept up to date report
    /// by report (and recomputed exactly at each look): how a sharp rise is noticed between
    /// two looks.
    reported: f64,
    /// When the announcement is next considered: [`FIRST_UPDATE_DELAY`] after the first
    /// report with a hashrate while nothing is announced, then every `update_interval`;
    /// `None` while nothing is announced and no miner reported a hashrate.
    update_at: Option<Instant>,
}

impl HubChannel {
    fn new() -> Self {
        HubChannel {
            splitter: None,
            upstream: None,
            refused: None,
            last_work: None,
            waiting: Vec::new(),
            assigned: 0,
            announced_hashrate: 0.0,
            reported: 0.0,
            update_at: None,
        }
    }

    /// The channel's current work (or `None`) for its miners: [`HubAction::Publish`], with
    /// `route` when it is the route of `epoch` (the miners' tasks queue their shares into
    /// it themselves).
    fn publish(
        &self,
        index: usize,
        epoch: u64,
        route: Option<&ShareRoute>,
        out: &mut Vec<HubAction>,
    ) {
        let work = self.last_work.as_ref().and_then(|w| {
            let split = self.splitter.as_ref()?;
            // no work without an open upstream channel; the work keeps its job's own target
            // (a `SetTarget` applies to the jobs activated after it, spec 5.3.21, which carry it)
            self.upstream.as_ref()?;
            Some(Arc::new(UpstreamWork {
                epoch,
                id_width: split.id_width(),
                extranonce2_size: split.extranonce2_size(),
                route: route.filter(|r| r.epoch() == epoch).cloned(),
                ..w.clone()
            }))
        });
        out.push(HubAction::Publish {
            channel: index,
            work,
        });
    }

    /// The channel has no upstream any more (a new epoch, or the pool is down).
    fn clear(&mut self, index: usize, epoch: u64, out: &mut Vec<HubAction>) {
        self.upstream = None;
        self.refused = None;
        self.last_work = None;
        self.publish(index, epoch, None, out);
    }
}

/// An upstream channel as [`UpstreamEvent::Active`] and [`UpstreamEvent::ChannelOpened`]
/// describe it.
struct Opened {
    channel_id: u32,
    extranonce_prefix: bytes::Bytes,
    extranonce_size: u16,
}

/// The hub's logic: the upstream channels, the miners on them, the share route and the
/// announcements. Sans-IO: each input comes with the time, and what it causes is queued as
/// [`HubAction`]s for the caller to carry out ([`Hub::take_actions`]).
#[derive(Debug)]
pub(crate) struct Hub {
    pub(super) cfg: HubConfig,
    /// The upstream channels, by proxy-side index (channel 0 always exists).
    pub(super) channels: Vec<HubChannel>,
    pub(super) miners: HashMap<(usize, MinerId), MinerEntry>,
    /// Statistics of miners that left (kept in the totals).
    departed: ProxyStats,
    epoch: u64,
    active_pool: Option<usize>,
    /// Where shares of `epoch` go while `active_pool` is set.
    route: Option<ShareRoute>,
    upstreams: Vec<UpstreamStatus>,
    /// What the inputs since the last [`Hub::take_actions`] caused, in order.
    out: Vec<HubAction>,
    /// The earliest [`HubChannel::update_at`]: when [`Hub::channel_updates`] is next due.
    pub(super) next_update: Option<Instant>,
    /// Submit-to-answer latencies (µs) of the shares the pools answered.
    ack_latency: Histogram<u64>,
    /// The same per pool (by index).
    pool_ack_latency: Vec<Histogram<u64>>,
    /// History, alerts and failovers.
    pub(crate) monitor: Monitor,
}

impl Hub {
    /// A hub with channel 0 (not yet open), no miners and no active pool.
    pub(crate) fn new(cfg: HubConfig, monitor: Monitor) -> Self {
        let cfg_pools = cfg.pools.clone();
        let upstreams = cfg
            .pools
            .iter()
            .map(|url| UpstreamStatus {
                url: url.clone(),
                state: "standby".into(),
                ..UpstreamStatus::default()
            })
            .collect();
        Hub {
            cfg,
            channels: vec![HubChannel::new()],
            miners: HashMap::new(),
            departed: ProxyStats::default(),
            epoch: 0,
            active_pool: None,
            route: None,
            upstreams,
            out: Vec::new(),
            next_update: None,
            ack_latency: ack_histogram(),
            pool_ack_latency: cfg_pools.iter().map(|_| ack_histogram()).collect(),
            monitor,
        }
    }

    /// What the inputs since the last call caused, in order (the buffer is handed over:
    /// give it back with [`Hub::recycle`] to keep its allocation).
    pub(crate) fn take_actions(&mut self) -> Vec<HubAction> {
        std::mem::take(&mut self.out)
    }

    /// Gives back an emptied action buffer.
    pub(crate) fn recycle(&mut self, mut buffer: Vec<HubAction>) {
        if self.out.is_empty() {
            buffer.clear();
            self.out = buffer;
        }
    }

    /// When [`Hub::on_timer`] is next due (`None`: nothing scheduled).
    pub(crate) fn next_update(&self) -> Option<Instant> {
        self.next_update
    }

    /// The channel a joining miner goes to; `true` when it is a new one.
    fn pick_channel(&mut self) -> (usize, bool) {
        let n = self.cfg.miners_per_channel as usize;
        if n == 0 {
            return (0, false);
        }
        if let Some(c) = self
            .channels
            .iter()
            .position(|c| c.assigned < n && c.refused.is_none())
        {
            return (c, false);
        }
        // the pool refuses channels: more miners on the open ones rather than more refusals
        if self.channels.iter().any(|c| c.refused.is_some()) {
            if let Some(c) = self.least_loaded_open() {
                return (c, false);
            }
        }
        self.channels.push(HubChannel::new());
        (self.channels.len() - 1, true)
    }

    /// The open channel with the fewest miners.
    fn least_loaded_open(&self) -> Option<usize> {
        self.channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.upstream.is_some())
            .min_by_key(|(_, c)| c.assigned)
            .map(|(i, _)| i)
    }

    /// A miner joins (`ticket` names its answer, [`HubAction::Answer`]): answered at once
    /// when its channel has been open, else when it opens. Asks the upstream side for a new
    /// channel when every one is full.
    pub(crate) fn join(&mut self, peer: SocketAddr, ticket: Ticket, now: HubNow) {
        let (c, new) = self.pick_channel();
        self.channels[c].assigned += 1;
        if self.channels[c].splitter.is_some() {
            self.answer(c, peer, ticket, now);
        } else {
            tracing::debug!(%peer, channel = c, "miner waits for its upstream channel");
            self.channels[c].waiting.push((peer, ticket));
        }
        if new {
            tracing::info!(
                channel = c,
                miners_per_channel = self.cfg.miners_per_channel,
                "every channel is full: asking for one more"
            );
            self.out.push(HubAction::Upstream(UpstreamCommand::Channels(
                self.channels.len(),
            )));
        }
    }

    /// Allocates a miner id on channel `c` and queues the answer.
    fn answer(&mut self, c: usize, peer: SocketAddr, ticket: Ticket, now: HubNow) {
        let result = self.allocate(c, peer, now);
        if result.is_err() {
            self.channels[c].assigned = self.channels[c].assigned.saturating_sub(1);
        }
        self.out.push(HubAction::Answer {
            ticket,
            channel: c,
            result,
        });
    }

    fn allocate(&mut self, c: usize, peer: SocketAddr, now: HubNow) -> Result<Slot, JoinError> {
        let ch = &mut self.channels[c];
        let split = ch.splitter.as_mut().ok_or(JoinError::Full)?;
        let (miner, _) = split.allocate().map_err(|_| JoinError::Full)?;
        // listed at once; the miner's own reports fill in the rest
        let joined = MinerReport::joined(miner, peer.to_string(), now.unix_ms);
        self.miners.insert(
            (c, miner),
            MinerEntry {
                joined: now.at,
                report: Some(joined),
                forwarded: 0,
                upstream_accepted: 0,
                upstream_rejected: 0,
            },
        );
        Ok(Slot { miner })
    }

    /// A miner left channel `c` (or its answer found nobody waiting for it): its figures go
    /// to the totals, its id is released.
    pub(crate) fn forget(&mut self, c: usize, miner: MinerId) {
        let Some(m) = self.miners.remove(&(c, miner)) else {
            return;
        };
        self.monitor.on_leave((c, miner.0));
        if let Some(ch) = self.channels.get_mut(c) {
            ch.reported -= reported_rate(m.report.as_ref());
        }
        if let Some(r) = m.report {
            self.departed.shares_accepted += r.accepted;
            self.departed.shares_rejected += r.rejected.values().sum::<u64>();
            self.departed.shares_stale += r.stale;
        }
        self.departed.shares_forwarded += m.forwarded;
        self.departed.upstream_accepted += m.upstream_accepted;
        self.departed.upstream_rejected += m.upstream_rejected;
        if let Some(ch) = self.channels.get_mut(c) {
            ch.assigned = ch.assigned.saturating_sub(1);
            if let Some(s) = ch.splitter.as_mut() {
                let _ = s.release(miner);
            }
        }
    }

    /// Channel `c` opened on the active pool: carve its extranonce space (keeping the ids of
    /// miners already on it), then serve the miners waiting for it.
    fn open_channel(&mut self, c: usize, o: Opened, now: HubNow) {
        let epoch = self.epoch;
        let Some(ch) = self.channels.get_mut(c) else {
            tracing::warn!(channel = c, "an upstream channel the hub did not ask for");
            return;
        };
        let carved = match ch.splitter.as_mut() {
            Some(s) => s
                .set_upstream(&o.extranonce_prefix, o.extranonce_size)
                .map(|_| ()),
            None => {
                ExtranonceSplitter::new(self.cfg.split, &o.extranonce_prefix, o.extranonce_size)
                    .map(|s| ch.splitter = Some(s))
            }
        };
        if let Err(e) = carved {
            tracing::error!(
                channel = c,
                error = %e,
                "the pool's extranonce space cannot be split among miners: the channel's miners get no work"
            );
            ch.refused = Some(format!("extranonce space unusable: {e}"));
            ch.upstream = None;
            ch.last_work = None;
            ch.publish(c, epoch, self.route.as_ref(), &mut self.out);
            return;
        }
        ch.upstream = Some(Upstream {
            channel_id: o.channel_id,
        });
        ch.refused = None;
        ch.last_work = None;
        ch.publish(c, epoch, self.route.as_ref(), &mut self.out);
        for (peer, ticket) in std::mem::take(&mut ch.waiting) {
            self.answer(c, peer, ticket, now);
        }
    }

    /// Something the upstream side tells.
    pub(crate) fn on_event(&mut self, ev: UpstreamEvent, now: HubNow) {
        match ev {
            UpstreamEvent::Active {
                epoch,
                route,
                pool,
                url,
                channel_id,
                extranonce_prefix,
                extranonce_size,
                ..
            } => {
                self.monitor.on_active(&url, now.unix_ms / 1000);
                self.epoch = epoch;
                self.active_pool = Some(pool);
                self.route = Some(route);
                for (i, ch) in self.channels.iter_mut().enumerate() {
                    ch.clear(i, epoch, &mut self.out);
                }
                tracing::info!(pool, channel_id, epoch, "upstream active");
                for (i, u) in self.upstreams.iter_mut().enumerate() {
                    if i == pool {
                        u.state = "active".into();
                    } else if u.state == "active" {
                        u.state = "standby".into();
                    }
                }
                self.open_channel(
                    0,
                    Opened {
                        channel_id,
                        extranonce_prefix,
                        extranonce_size,
                    },
                    now,
                );
            }
            UpstreamEvent::ChannelOpened {
                epoch,
                channel,
                channel_id,
                extranonce_prefix,
                extranonce_size,
                ..
            } => {
                if epoch == self.epoch {
                    tracing::info!(channel, channel_id, epoch, "upstream channel open");
                    self.open_channel(
                        channel,
                        Opened {
                            channel_id,
                            extranonce_prefix,
                            extranonce_size,
                        },
                        now,
                    );
                }
            }
            UpstreamEvent::ChannelRefused {
                epoch,
                channel,
                reason,
            } => {
                if epoch != self.epoch {
                    return;
                }
                if let Some(ch) = self.channels.get_mut(channel) {
                    tracing::error!(
                        channel,
                        %reason,
                        miners = ch.assigned,
                        "the pool refused an upstream channel: its miners get no work"
                    );
                    ch.refused = Some(reason);
                    ch.upstream = None;
                    ch.last_work = None;
                    ch.publish(channel, epoch, self.route.as_ref(), &mut self.out);
                    // miners still waiting for it have no id yet: they go to an open channel
                    // (above the per-channel count) rather than wait for a channel that
                    // does not come; miners already on it keep their id for the next pool
                    let waiting = std::mem::take(&mut ch.waiting);
                    ch.assigned -= waiting.len().min(ch.assigned);
                    if let Some(to) = self.least_loaded_open().filter(|_| !waiting.is_empty()) {
                        tracing::warn!(
                            from = channel,
                            to,
                            miners = waiting.len(),
                            "waiting miners moved to an open channel"
                        );
                    }
                    for (peer, ticket) in waiting {
                        match self.least_loaded_open() {
                            Some(to) => {
                                self.channels[to].assigned += 1;
                                self.answer(to, peer, ticket, now);
                            }
                            None => {
                                let ch = &mut self.channels[channel];
                                ch.assigned += 1;
                                ch.waiting.push((peer, ticket));
                            }
                        }
                    }
                }
            }
            UpstreamEvent::Work { channel, work } => {
                if work.epoch == self.epoch {
                    if let Some(ch) = self.channels.get_mut(channel) {
                        ch.last_work = Some(work);
                        ch.publish(channel, self.epoch, self.route.as_ref(), &mut self.out);
                    }
                }
            }
            UpstreamEvent::ExtranoncePrefix {
                epoch,
                channel,
                extranonce_prefix,
            } => {
                if epoch != self.epoch {
                    return;
                }
                if let Some(s) = self
                    .channels
                    .get_mut(channel)
                    .and_then(|ch| ch.splitter.as_mut())
                {
                    let size = s.extranonce_size() as u16;
                    if let Err(e) = s.set_upstream(&extranonce_prefix, size) {
                        tracing::error!(channel, error = %e, "the new extranonce prefix cannot be split");
                    }
                }
                // the next job carries the new prefix; miners follow it
            }
            UpstreamEvent::ShareResult {
                share,
                accepted,
                code,
            } => self.on_share_result(&share, accepted, code, now),
            // the Job Declarator Client's (it sits between the upstream side and the hub)
            UpstreamEvent::CustomJob { .. } => {}
            UpstreamEvent::Down {
                pool,
                url,
                reason,
                was_active,
            } => {
                tracing::warn!(pool, %url, %reason, "upstream down");
                self.monitor.on_down(&url, &reason, was_active);
                if let Some(u) = self.upstreams.get_mut(pool) {
                    u.state = "down".into();
                    u.last_error = Some(reason);
                }
                if self.active_pool == Some(pool) {
                    self.active_pool = None;
                    self.route = None;
                    for (i, ch) in self.channels.iter_mut().enumerate() {
                        ch.clear(i, self.epoch, &mut self.out);
                    }
                }
            }
        }
    }

    /// The pool's (or the upstream side's) answer for a forwarded share.
    fn on_share_result(
        &mut self,
        share: &ForwardShare,
        accepted: bool,
        code: Option<String>,
        now: HubNow,
    ) {
        if accepted || code.as_deref().is_some_and(|c| !PROXY_CODES.contains(&c)) {
            let us = now.at.saturating_duration_since(share.received).as_micros();
            let us = u64::try_from(us).unwrap_or(u64::MAX).max(1);
            self.ack_latency.saturating_record(us);
            if let Some(h) = self
                .active_pool
                .and_then(|p| self.pool_ack_latency.get_mut(p))
            {
                h.saturating_record(us);
            }
        }
        self.count_result(share, accepted, code);
    }

    /// Counts an answer for a share (the pool's, or the proxy's own refusal) for its miner
    /// and the active pool; no time is read. A share counts as forwarded here, when its
    /// answer is known: the miners' tasks queue most shares into the route themselves, and
    /// every share a route takes is answered exactly once.
    fn count_result(&mut self, share: &ForwardShare, accepted: bool, code: Option<String>) {
        // the answer for a share of a miner that left counts in the departed figures, not for
        // the miner that has its id now (found by the `proxy_hub` fuzz target)
        let key = (share.channel, share.miner);
        let (accepts, rejects) = match self.miners.get_mut(&key) {
            Some(m) if share.received >= m.joined => {
                m.forwarded += 1;
                (&mut m.upstream_accepted, &mut m.upstream_rejected)
            }
            _ => {
                self.departed.shares_forwarded += 1;
                (
                    &mut self.departed.upstream_accepted,
                    &mut self.departed.upstream_rejected,
                )
            }
        };
        if accepted {
            *accepts += 1;
        } else {
            *rejects += 1;
        }
        if let Some(u) = self.active_pool.and_then(|p| self.upstreams.get_mut(p)) {
            u.shares_forwarded += 1;
            if accepted {
                u.shares_accepted += 1;
            } else {
                *u.shares_rejected
                    .entry(code.unwrap_or_else(|| "rejected".into()))
                    .or_default() += 1;
            }
        }
    }

    /// A share meeting the upstream target that its miner's task did not queue into the
    /// route of its work itself (work without a route, or a route that refused it):
    /// forwarded on the route of its epoch, or counted as refused (`stale-upstream`) when
    /// that route is gone.
    pub(crate) fn share(&mut self, share: ForwardShare) {
        let open = self
            .channels
            .get(share.channel)
            .is_some_and(|c| c.upstream.is_some());
        if share.epoch != self.epoch || self.active_pool.is_none() || !open {
            if let Some(m) = self.miners.get_mut(&(share.channel, share.miner)) {
                m.forwarded += 1;
                m.upstream_rejected += 1;
            }
            tracing::debug!(
                miner = share.miner.0,
                channel = share.channel,
                "share of an old upstream epoch or a closed channel not forwarded"
            );
            return;
        }
        let sent = match &self.route {
            Some(route) => route.submit(share),
            None => Err((share, CODE_STALE_UPSTREAM)),
        };
        if let Err((share, code)) = sent {
            // the route's refusals are the proxy's own codes: counted, never timed
            self.count_result(&share, false, Some(code.into()));
        }
    }

    /// A miner's report. The first one with a hashrate on a channel that has announced
    /// nothing schedules the channel's first `UpdateChannel`.
    pub(crate) fn on_report(&mut self, channel: usize, report: MinerReport, now: HubNow) {
        if !self.miners.contains_key(&(channel, report.miner)) {
            return;
        }
        self.monitor.on_report((channel, report.miner.0), &report);
        let Some(m) = self.miners.get_mut(&(channel, report.miner)) else {
            return;
        };
        let wakes = report.connected && report.hashrate > 0.0;
        let change = reported_rate(Some(&report)) - reported_rate(m.report.as_ref());
        m.report = Some(report);
        let delay = FIRST_UPDATE_DELAY.min(self.cfg.update_interval);
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.reported += change;
            let at = now.at + delay;
            let first = wakes && ch.update_at.is_none();
            let urgent = ch.announced_hashrate > 0.0
                && ch.reported > URGENT_RISE * ch.announced_hashrate
                && ch.update_at.is_some_and(|t| t > at);
            if first || urgent {
                ch.update_at = Some(at);
                self.next_update = Some(self.next_update.map_or(at, |t| t.min(at)));
            }
        }
    }

    /// Summed hashrate of the connected miners, per channel.
    fn hashrates(&self) -> Vec<f64> {
        let mut h = vec![0.0; self.channels.len()];
        for ((c, _), m) in &self.miners {
            if let (Some(r), Some(sum)) = (m.report.as_ref(), h.get_mut(*c)) {
                if r.connected {
                    *sum += r.hashrate;
                }
            }
        }
        h
    }

    /// The `UpdateChannel`s due at `now`: each open channel whose time has come
    /// ([`HubChannel::update_at`]) and whose miners' summed hashrate moved from 0, or by more
    /// than the threshold, since its last announcement. Schedules each channel's next look.
    pub(super) fn channel_updates(&mut self, now: Instant) -> Vec<UpstreamCommand> {
        let threshold = self.cfg.update_threshold;
        let interval = self.cfg.update_interval;
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        let rates = self.hashrates();
        for (c, (ch, h)) in self.channels.iter_mut().zip(rates).enumerate() {
            // exact again (the running sum drifts by rounding)
            ch.reported = h;
            if ch.update_at.is_some_and(|at| at <= now) {
                let old = ch.announced_hashrate;
                let changed = if old <= 0.0 {
                    h > 0.0
                } else {
                    ((h - old) / old).abs() > threshold
                };
                if changed && ch.upstream.is_some() {
                    ch.announced_hashrate = h;
                    due.push(UpstreamCommand::UpdateHashrate {
                        channel: c,
                        hashrate: h,
                    });
                }
                // with something announced, looked at again after a full interval; with
                // nothing (all miners gone, or no upstream for the first one yet), at the
                // next report with a hashrate
                ch.update_at = (ch.announced_hashrate > 0.0).then(|| now + interval);
            }
            if let Some(at) = ch.update_at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        self.next_update = next;
        due
    }

    /// The timer of [`Hub::next_update`] fired: queues the `UpdateChannel`s due.
    pub(crate) fn on_timer(&mut self, now: HubNow) {
        let due = self.channel_updates(now.at);
        self.out.extend(due.into_iter().map(HubAction::Upstream));
    }

    /// Proxy-wide figures.
    pub(crate) fn stats(&self) -> ProxyStats {
        let mut s = ProxyStats {
            miners: self.miners.len(),
            active_pool: self.active_pool,
            channels: self.channels.len(),
            epoch: self.epoch,
            hashrate: self.hashrates().iter().sum(),
            upstream_ack_latency_ms: AckLatency::of(&self.ack_latency),
            ..self.departed.clone()
        };
        for m in self.miners.values() {
            if let Some(r) = &m.report {
                s.shares_accepted += r.accepted;
                s.shares_rejected += r.rejected.values().sum::<u64>();
                s.shares_stale += r.stale;
            }
            s.shares_forwarded += m.forwarded;
            s.upstream_accepted += m.upstream_accepted;
            s.upstream_rejected += m.upstream_rejected;
        }
        s
    }

    /// Every connected miner.
    pub(crate) fn miners(&self) -> Vec<MinerStatus> {
        let mut out: Vec<MinerStatus> = self
            .miners
            .iter()
            .filter_map(|((c, id), m)| {
                Some(MinerStatus {
                    id: id.0,
                    channel: *c,
                    report: m.report.clone()?,
                    forwarded: m.forwarded,
                    upstream_accepted: m.upstream_accepted,
                    upstream_rejected: m.upstream_rejected,
                })
            })
            .collect();
        out.sort_by_key(|m| (m.channel, m.id));
        out
    }

    /// Every upstream pool.
    pub(crate) fn upstreams(&self) -> Vec<UpstreamStatus> {
        let mut out = self.upstreams.clone();
        for (u, h) in out.iter_mut().zip(&self.pool_ack_latency) {
            u.ack_latency_ms = AckLatency::of(h);
        }
        if let Some(u) = self.active_pool.and_then(|p| out.get_mut(p)) {
            u.announced_hashrate = self
                .channels
                .iter()
                .filter(|c| c.upstream.is_some())
                .map(|c| c.announced_hashrate)
                .sum();
            u.channel_id = self.channels[0].upstream.map(|up| up.channel_id);
            u.channel_ids = self
                .channels
                .iter()
                .filter_map(|c| c.upstream.map(|up| up.channel_id))
                .collect();
            u.channels = self
                .channels
                .iter()
                .enumerate()
                .map(|(index, c)| ChannelStatus {
                    index,
                    state: if c.upstream.is_some() {
                        "open"
                    } else if c.refused.is_some() {
                        "refused"
                    } else {
                        "opening"
                    }
                    .into(),
                    channel_id: c.upstream.map(|up| up.channel_id),
                    error: c.refused.clone(),
                    miners: c.assigned,
                    announced_hashrate: c.announced_hashrate,
                })
                .collect();
        }
        out
    }
}
