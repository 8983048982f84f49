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

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use strata_work::extranonce::{ExtranonceSplitter, MinerId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::monitor::Monitor;
use crate::upstream::{
    ShareRoute, UpstreamCommand, UpstreamEvent, CODE_STALE_UPSTREAM, PROXY_CODES,
};
use crate::work::{ForwardShare, UpstreamWork};

mod types;

pub use types::*;
use types::{ack_histogram, reported_rate};

#[derive(Debug)]
struct MinerEntry {
    report: Option<MinerReport>,
    forwarded: u64,
    upstream_accepted: u64,
    upstream_rejected: u64,
}

/// A miner waiting for its channel to open.
type Waiter = (SocketAddr, oneshot::Sender<Result<Joined, JoinError>>);

/// A channel's side on the active pool.
#[derive(Debug, Clone, Copy)]
struct Upstream {
    channel_id: u32,
}

/// One upstream channel as the hub keeps it (across pools: the splitter keeps the miners'
/// ids when the channel reopens on another pool).
#[derive(Debug)]
struct HubChannel {
    splitter: Option<ExtranonceSplitter>,
    /// Open on the active pool.
    upstream: Option<Upstream>,
    /// The active pool refused to open it.
    refused: Option<String>,
    last_work: Option<UpstreamWork>,
    work_tx: watch::Sender<Option<Arc<UpstreamWork>>>,
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
            work_tx: watch::Sender::new(None),
            waiting: Vec::new(),
            assigned: 0,
            announced_hashrate: 0.0,
            reported: 0.0,
            update_at: None,
        }
    }

    /// Sends the channel's current work (or `None`) to its miners.
    fn publish(&self, epoch: u64) {
        let work = self.last_work.as_ref().and_then(|w| {
            let split = self.splitter.as_ref()?;
            // no work without an open upstream channel; the work keeps its job's own target
            // (a `SetTarget` applies to the jobs activated after it, spec 5.3.21, which carry it)
            self.upstream.as_ref()?;
            Some(Arc::new(UpstreamWork {
                epoch,
                id_width: split.id_width(),
                extranonce2_size: split.extranonce2_size(),
                ..w.clone()
            }))
        });
        self.work_tx.send_replace(work);
    }

    /// The channel has no upstream any more (a new epoch, or the pool is down).
    fn clear(&mut self, epoch: u64) {
        self.upstream = None;
        self.refused = None;
        self.last_work = None;
        self.publish(epoch);
    }
}

/// An upstream channel as [`UpstreamEvent::Active`] and [`UpstreamEvent::ChannelOpened`]
/// describe it.
struct Opened {
    channel_id: u32,
    extranonce_prefix: bytes::Bytes,
    extranonce_size: u16,
}

/// The hub's state (sans-IO apart from the channels it is handed).
#[derive(Debug)]
struct Hub {
    cfg: HubConfig,
    /// The upstream channels, by proxy-side index (channel 0 always exists).
    channels: Vec<HubChannel>,
    miners: HashMap<(usize, MinerId), MinerEntry>,
    /// Statistics of miners that left (kept in the totals).
    departed: ProxyStats,
    epoch: u64,
    active_pool: Option<usize>,
    /// Where shares of `epoch` go while `active_pool` is set.
    route: Option<ShareRoute>,
    upstreams: Vec<UpstreamStatus>,
    /// Unbounded, so that the hub never waits on the upstream side: that side waits on the
    /// hub to take its events (share results, work), and a bounded queue each way let the
    /// two wait on each other for good (seen at 40,000 forwards/s with the pool refusing
    /// them). It stays short: the upstream task takes each command at once. Shares do not
    /// go this way but through [`Hub::route`], never waited on either.
    commands: mpsc::UnboundedSender<UpstreamCommand>,
    /// The earliest [`HubChannel::update_at`]: when [`Hub::channel_updates`] is next due.
    next_update: Option<Instant>,
    /// Submit-to-answer latencies (µs) of the shares the pools answered.
    ack_latency: Histogram<u64>,
    /// The same per pool (by index).
    pool_ack_latency: Vec<Histogram<u64>>,
    /// History, alerts and failovers.
    monitor: Monitor,
}

impl Hub {
    fn new(cfg: HubConfig, commands: mpsc::UnboundedSender<UpstreamCommand>) -> Self {
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
            commands,
            next_update: None,
            ack_latency: ack_histogram(),
            pool_ack_latency: cfg_pools.iter().map(|_| ack_histogram()).collect(),
            monitor: Monitor::detached(crate::monitor::unix_now()),
        }
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

    /// A miner joins: answered at once when its channel has been open, else when it opens.
    /// Returns the command asking for a new channel, if one is needed.
    fn join(
        &mut self,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    ) -> Option<UpstreamCommand> {
        let (c, new) = self.pick_channel();
        self.channels[c].assigned += 1;
        if self.channels[c].splitter.is_some() {
            self.answer(c, peer, reply);
        } else {
            tracing::debug!(%peer, channel = c, "miner waits for its upstream channel");
            self.channels[c].waiting.push((peer, reply));
        }
        new.then(|| {
            tracing::info!(
                channel = c,
                miners_per_channel = self.cfg.miners_per_channel,
                "every channel is full: asking for one more"
            );
            UpstreamCommand::Channels(self.channels.len())
        })
    }

    /// Allocates a miner id on channel `c` and sends the answer.
    fn answer(
        &mut self,
        c: usize,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    ) {
        let joined = self.allocate(c, peer);
        if joined.is_err() {
            self.channels[c].assigned = self.channels[c].assigned.saturating_sub(1);
        }
        match reply.send(joined) {
            Ok(()) | Err(Err(_)) => {}
            // the miner went away while waiting: its id is free again
            Err(Ok(j)) => self.forget(c, j.slot.miner),
        }
    }

    fn allocate(&mut self, c: usize, peer: SocketAddr) -> Result<Joined, JoinError> {
        let ch = &mut self.channels[c];
        let split = ch.splitter.as_mut().ok_or(JoinError::Full)?;
        let (miner, _) = split.allocate().map_err(|_| JoinError::Full)?;
        let work = ch.work_tx.subscribe();
        // listed at once; the miner's own reports fill in the rest
        let joined = MinerReport {
            miner,
            worker: String::new(),
            address: peer.to_string(),
            user_agent: String::new(),
            protocol: "",
            difficulty: 0.0,
            hashrate: 0.0,
            accepted: 0,
            accepted_work: 0.0,
            rejected: BTreeMap::new(),
            stale: 0,
            last_share_ms: 0,
            connected_since_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            connected: true,
        };
        self.miners.insert(
            (c, miner),
            MinerEntry {
                report: Some(joined),
                forwarded: 0,
                upstream_accepted: 0,
                upstream_rejected: 0,
            },
        );
        Ok(Joined {
            slot: Slot { miner },
            channel: c,
            work,
        })
    }

    /// A miner left channel `c`: its figures go to the totals, its id is released.
    fn forget(&mut self, c: usize, miner: MinerId) {
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
    fn open_channel(&mut self, c: usize, o: Opened) {
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
            ch.publish(epoch);
            return;
        }
        ch.upstream = Some(Upstream {
            channel_id: o.channel_id,
        });
        ch.refused = None;
        ch.last_work = None;
        ch.publish(epoch);
        for (peer, reply) in std::mem::take(&mut ch.waiting) {
            self.answer(c, peer, reply);
        }
    }

    fn on_event(&mut self, ev: UpstreamEvent) {
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
                self.monitor.on_active(&url, crate::monitor::unix_now());
                self.epoch = epoch;
                self.active_pool = Some(pool);
                self.route = Some(route);
                for ch in &mut self.channels {
                    ch.clear(epoch);
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
                    ch.publish(epoch);
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
                    for (peer, reply) in waiting {
                        match self.least_loaded_open() {
                            Some(to) => {
                                self.channels[to].assigned += 1;
                                self.answer(to, peer, reply);
                            }
                            None => {
                                let ch = &mut self.channels[channel];
                                ch.assigned += 1;
                                ch.waiting.push((peer, reply));
                            }
                        }
                    }
                }
            }
            UpstreamEvent::Work { channel, work } => {
                if work.epoch == self.epoch {
                    if let Some(ch) = self.channels.get_mut(channel) {
                        ch.last_work = Some(work);
                        ch.publish(self.epoch);
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
            } => self.on_share_result(&share, accepted, code),
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
                    for ch in &mut self.channels {
                        ch.clear(self.epoch);
                    }
                }
            }
        }
    }

    /// The pool's (or the upstream side's) answer for a forwarded share.
    fn on_share_result(&mut self, share: &ForwardShare, accepted: bool, code: Option<String>) {
        if accepted || code.as_deref().is_some_and(|c| !PROXY_CODES.contains(&c)) {
            let us = share.received.elapsed().as_micros();
            let us = u64::try_from(us).unwrap_or(u64::MAX).max(1);
            self.ack_latency.saturating_record(us);
            if let Some(h) = self
                .active_pool
                .and_then(|p| self.pool_ack_latency.get_mut(p))
            {
                h.saturating_record(us);
            }
        }
        if let Some(m) = self.miners.get_mut(&(share.channel, share.miner)) {
            if accepted {
                m.upstream_accepted += 1;
            } else {
                m.upstream_rejected += 1;
            }
        }
        if let Some(u) = self.active_pool.and_then(|p| self.upstreams.get_mut(p)) {
            if accepted {
                u.shares_accepted += 1;
            } else {
                *u.shares_rejected
                    .entry(code.unwrap_or_else(|| "rejected".into()))
                    .or_default() += 1;
            }
        }
    }

    fn on_request(&mut self, req: HubRequest) {
        match req {
            HubRequest::Join { peer, reply } => {
                if let Some(cmd) = self.join(peer, reply) {
                    if self.commands.send(cmd).is_err() {
                        tracing::error!("upstream task gone");
                    }
                }
            }
            HubRequest::Leave { channel, miner } => self.forget(channel, miner),
            HubRequest::Share(share) => {
                let key = (share.channel, share.miner);
                if let Some(m) = self.miners.get_mut(&key) {
                    m.forwarded += 1;
                }
                let open = self
                    .channels
                    .get(share.channel)
                    .is_some_and(|c| c.upstream.is_some());
                if share.epoch != self.epoch || self.active_pool.is_none() || !open {
                    if let Some(m) = self.miners.get_mut(&key) {
                        m.upstream_rejected += 1;
                    }
                    tracing::debug!(
                        miner = share.miner.0,
                        channel = share.channel,
                        "share of an old upstream epoch or a closed channel not forwarded"
                    );
                    return;
                }
                if let Some(u) = self.active_pool.and_then(|p| self.upstreams.get_mut(p)) {
                    u.shares_forwarded += 1;
                }
                let sent = match &self.route {
                    Some(route) => route.submit(share),
                    None => Err((share, CODE_STALE_UPSTREAM)),
                };
                if let Err((share, code)) = sent {
                    self.on_share_result(&share, false, Some(code.into()));
                }
            }
            HubRequest::Report { channel, report } => {
                self.on_report(channel, report, Instant::now());
            }
        }
    }

    /// A miner's report. The first one with a hashrate on a channel that has announced
    /// nothing schedules the channel's first `UpdateChannel`.
    fn on_report(&mut self, channel: usize, report: MinerReport, now: Instant) {
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
            let at = now + delay;
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
    fn channel_updates(&mut self, now: Instant) -> Vec<UpstreamCommand> {
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

    fn maybe_update_channels(&mut self, now: Instant) {
        for cmd in self.channel_updates(now) {
            if self.commands.send(cmd).is_err() {
                return;
            }
        }
    }

    fn stats(&self) -> ProxyStats {
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

    fn miners(&self) -> Vec<MinerStatus> {
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

    fn upstreams(&self) -> Vec<UpstreamStatus> {
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
    let mut hub = Hub::new(cfg, commands);
    hub.monitor = monitor;
    tokio::spawn(async move {
        // reset to the hub's next update only when that changes (not at every request)
        let wake = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(wake);
        // the monitor's steps are in UNIX seconds: each sleep is measured on the wall clock
        // when it is set, and lasts a step at most (a clock set back delays the step, it
        // does not stop the sampling)
        let step = Duration::from_secs(hub.monitor.resolution());
        let tick = tokio::time::sleep(until_unix(hub.monitor.next_tick()).min(step));
        tokio::pin!(tick);
        loop {
            let next_update = hub.next_update;
            if let Some(at) = next_update.map(tokio::time::Instant::from_std) {
                if wake.deadline() != at {
                    wake.as_mut().reset(at);
                }
            }
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => hub.on_event(ev),
                    None => break,
                },
                req = req_rx.recv() => match req {
                    Some(req) => hub.on_request(req),
                    None => break,
                },
                Some(q) = query_rx.recv() => match q {
                    HubQuery::Stats(r) => { let _ = r.send(hub.stats()); }
                    HubQuery::Miners(r) => { let _ = r.send(hub.miners()); }
                    HubQuery::Upstreams(r) => { let _ = r.send(hub.upstreams()); }
                    HubQuery::Live(r) => { let _ = r.send(hub.monitor.live()); }
                    HubQuery::Alerts(r) => { let _ = r.send(hub.monitor.alerts()); }
                    HubQuery::Failovers(r) => { let _ = r.send(hub.monitor.failovers()); }
                    HubQuery::Monitor(r) => { let _ = r.send(hub.monitor.stats()); }
                },
                () = &mut tick => {
                    hub.monitor.tick(crate::monitor::unix_now());
                    let wait = until_unix(hub.monitor.next_tick()).min(step);
                    tick.as_mut().reset(tokio::time::Instant::now() + wait);
                }
                () = &mut wake, if next_update.is_some() => {
                    // never before the deadline the timer was set for (no spinning on it)
                    let now = next_update.map_or_else(Instant::now, |at| at.max(Instant::now()));
                    hub.maybe_update_channels(now);
                }
                _ = shutdown.cancelled() => break,
            }
        }
        hub.monitor.flush(crate::monitor::unix_now());
        tracing::debug!("hub stopped");
    });
    (HubHandle { requests: req_tx }, query_tx)
}

#[cfg(test)]
mod tests;
