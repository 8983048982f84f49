//! The failover decisions, sans-IO: which pool to connect to, in which role, when to retry,
//! when to switch and what the hub hears of it. [`super::run_upstreams`] is the tokio shell
//! around it: it feeds [`Failover`] the connections' [`ConnEvent`]s, the hub's
//! [`UpstreamCommand`]s and its timer, each with the time `now` (and a random `jitter` for a
//! connection that ended), and carries out the [`Action`]s that come back in order. The core
//! never reads a clock, never waits and never draws a random number.
//!
//! ```text
//!                 ┌──────── no pool up: wait for the earliest retry ────────┐
//!                 ▼                                                         │
//!   ──▶ Candidate(best pool not in backoff) ──Opened──▶ Active ──dies──▶ Down(was_active)
//!            │ fails: Down, backoff that pool, next pool                     │
//!            └────────────────────────────────────────────────────────────────┘
//!   Active on a backup ──every probe_interval──▶ Probe(preferred pool)
//!        Probe open with work for `stable_for` ──▶ Probe becomes Active (new epoch),
//!        the old Active drains (answers for shares already sent) and closes.
//! ```
//!
//! Invariants (checked by the `proxy_failover` fuzz target, [`crate::fuzzing::failover`]): at
//! most one connection is the active one or the candidate for it, at most one is a probe;
//! epochs only grow; after every step [`Failover::next_wake`] is later than the step's `now`
//! (the shell never spins).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::session::ChannelInfo;
use super::url::PoolUrl;
use super::{UpstreamCommand, UpstreamConfig, UpstreamEvent};
use crate::work::UpstreamWork;

/// What a connection tells the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnEvent {
    /// A channel is open.
    Opened(ChannelInfo),
    /// The pool refused a further channel.
    Refused {
        /// The channel's proxy-side index.
        channel: usize,
        /// The pool's error code.
        code: String,
    },
    /// New current work of a channel.
    Work {
        /// The channel's proxy-side index.
        channel: usize,
        /// The work (its epoch is the supervisor's to set).
        work: UpstreamWork,
    },
    /// SetExtranoncePrefix.
    ExtranoncePrefix {
        /// The channel's proxy-side index.
        channel: usize,
        /// The new prefix.
        prefix: Bytes,
    },
    /// The pool's answer to a custom job.
    CustomJob {
        /// The channel's proxy-side index.
        channel: usize,
        /// The job's `request_id`.
        request_id: u32,
        /// The job id, or the `SetCustomMiningJob.Error` code.
        result: Result<u32, String>,
    },
    /// The connection is over (always its last event).
    Ended {
        /// What happened.
        reason: String,
        /// `Reconnect`'s target (host, port; empty / 0: unchanged), if the pool asked for one.
        redirect: Option<(String, u16)>,
    },
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Connecting to become the active upstream.
    Candidate,
    /// The active upstream.
    Active,
    /// A preferred pool tried in the background.
    Probe,
    /// Replaced: answering shares already sent, then closing.
    Draining,
}

/// What [`Failover`] asks its shell to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start connection `id` to `url` (pool `pool`), opening `channels` channels; channel `i`
    /// announces `hashrates[i]` (`nominal_hashrate` past the end).
    Connect {
        /// The connection's id (its events come back with it).
        id: u64,
        /// Index of the pool.
        pool: usize,
        /// Where to connect (the pool's URL, or where its `Reconnect` pointed).
        url: PoolUrl,
        /// Why.
        role: Role,
        /// Channels to open.
        channels: usize,
        /// Nominal hashrate of each channel at open (the last announced).
        hashrates: Vec<f32>,
    },
    /// Connection `id` is the active upstream from epoch `epoch` on: tell the hub
    /// ([`UpstreamEvent::Active`] with the route into that connection's share queue).
    Activate {
        /// The connection.
        id: u64,
        /// The new epoch.
        epoch: u64,
        /// Index of the pool.
        pool: usize,
        /// The pool's URL.
        url: String,
        /// Its channel 0.
        info: ChannelInfo,
    },
    /// Tell the hub (never [`UpstreamEvent::Active`]: that is [`Action::Activate`]).
    Emit(UpstreamEvent),
    /// The hashrate of a channel changed: connection `id` announces it (`UpdateChannel` on the
    /// channel if open, at its open otherwise).
    UpdateHashrate {
        /// The connection.
        id: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// Hashes per second.
        hashrate: f32,
    },
    /// Connection `id` was replaced: let it answer the shares it has, for `timeout` at most,
    /// then end.
    Drain {
        /// The connection.
        id: u64,
        /// How long it may take.
        timeout: Duration,
    },
    /// Every live connection (and every later one) holds this many channels.
    Channels(usize),
    /// Connection `id` (the active one) sends `job` on channel `channel`.
    SetCustomJob {
        /// The connection.
        id: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// The job (its `channel_id` is filled in by the connection).
        job: Box<strata_protocol::mining::SetCustomMiningJob>,
    },
    /// Connection `id` ended: drop what the shell holds of it.
    Release {
        /// The connection.
        id: u64,
    },
}

/// Reconnect delays of one pool: exponential from `min` to `max`, jittered ±25 %.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// No failure yet.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// Records a failure; returns the delay before the next attempt. `jitter` in `[0, 1)`
    /// scales the delay by `0.75 + 0.5 * jitter`.
    pub fn failure(&mut self, jitter: f64) -> Duration {
        let exp = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let base = self
            .min
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .as_secs_f64();
        let jitter = if jitter.is_nan() { 0.5 } else { jitter };
        Duration::from_secs_f64(base * (0.75 + 0.5 * jitter.clamp(0.0, 1.0)))
    }

    /// The connection held: the next failure starts over from `min`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// One connection as the core sees it.
#[derive(Debug)]
struct Conn {
    id: u64,
    pool: usize,
    role: Role,
    /// When channel 0 opened.
    opened_at: Option<Instant>,
    /// Open channels, by index.
    infos: BTreeMap<usize, ChannelInfo>,
    /// Each channel's current work, by index.
    work: BTreeMap<usize, UpstreamWork>,
    /// Channels the pool refused, by index, with the code.
    refused: BTreeMap<usize, String>,
}

/// One configured pool.
#[derive(Debug)]
struct Slot {
    url: PoolUrl,
    /// Where its last `Reconnect` pointed (used once, by the next connection).
    redirect: Option<PoolUrl>,
    backoff: Backoff,
    /// Not connected to before this.
    retry_at: Instant,
}

/// The settings the decisions use (from [`UpstreamConfig`]).
#[derive(Debug, Clone)]
struct Settings {
    return_to_preferred: bool,
    probe_interval: Duration,
    stable_for: Duration,
    drain_timeout: Duration,
    nominal_hashrate: f32,
}

/// The supervisor's state: the pools (backoff, next retry, redirect), the live connections
/// with their role, channels and work, the epoch, and the channels and hashrates every new
/// connection opens with.
#[derive(Debug)]
pub struct Failover {
    cfg: Settings,
    slots: Vec<Slot>,
    conns: Vec<Conn>,
    next_id: u64,
    epoch: u64,
    next_probe_at: Instant,
    /// Channels wanted on every connection.
    channels: usize,
    /// Nominal hashrate of each channel as last announced, by index.
    hashrates: Vec<f32>,
}

impl Failover {
    /// The core for `cfg.pools`, every pool ready to be tried at `now`. Nothing happens
    /// before the first call (usually [`Failover::on_timer`] with the same `now`).
    pub fn new(cfg: &UpstreamConfig, now: Instant) -> Self {
        Failover {
            cfg: Settings {
                return_to_preferred: cfg.return_to_preferred,
                probe_interval: cfg.probe_interval,
                stable_for: cfg.stable_for,
                drain_timeout: cfg.drain_timeout,
                nominal_hashrate: cfg.nominal_hashrate as f32,
            },
            slots: cfg
                .pools
                .iter()
                .map(|url| Slot {
                    url: url.clone(),
                    redirect: None,
                    backoff: Backoff::new(cfg.backoff_min, cfg.backoff_max),
                    retry_at: now,
                })
                .collect(),
            conns: Vec::new(),
            next_id: 1,
            epoch: 0,
            next_probe_at: now + cfg.probe_interval,
            channels: cfg.channels.max(1),
            hashrates: Vec::new(),
        }
    }

    /// The current epoch (0 before the first [`Action::Activate`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The live connections: (id, pool, role).
    pub fn connections(&self) -> impl Iterator<Item = (u64, usize, Role)> + '_ {
        self.conns.iter().map(|c| (c.id, c.pool, c.role))
    }

    /// The active connection and its pool.
    pub fn active(&self) -> Option<(u64, usize)> {
        self.find(Role::Active)
            .map(|i| (self.conns[i].id, self.conns[i].pool))
    }

    /// Consecutive failures of pool `pool`.
    pub fn failures(&self, pool: usize) -> u32 {
        self.slots.get(pool).map_or(0, |s| s.backoff.failures())
    }

    /// When pool `pool` may next be connected to.
    pub fn retry_at(&self, pool: usize) -> Option<Instant> {
        self.slots.get(pool).map(|s| s.retry_at)
    }

    /// The timer fired (or the shell starts): whatever is due at `now`.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.plan(now, out);
    }

    /// When [`Failover::on_timer`] may have something new to do (`None`: only an event or a
    /// command can change anything). Always later than the `now` of the last step.
    pub fn next_wake(&self) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        if let Some(i) = self.find(Role::Probe) {
            let c = &self.conns[i];
            // without work the probe cannot take over yet: its first job (an event) replans
            if let (Some(t), true) = (c.opened_at, c.work.contains_key(&0)) {
                at(t + self.cfg.stable_for);
            }
        }
        let earliest_retry = |below: usize| self.slots.iter().take(below).map(|s| s.retry_at).min();
        if self.find(Role::Active).is_none() && self.find(Role::Candidate).is_none() {
            if let Some(t) = earliest_retry(self.slots.len()) {
                at(t);
            }
        } else if let Some(a) = self.active_pool() {
            if self.cfg.return_to_preferred && a > 0 && self.find(Role::Probe).is_none() {
                if let Some(t) = earliest_retry(a) {
                    at(t.max(self.next_probe_at));
                }
            }
        }
        wake
    }

    /// The hub's command.
    pub fn on_command(&mut self, cmd: UpstreamCommand, now: Instant, out: &mut Vec<Action>) {
        match cmd {
            UpstreamCommand::UpdateHashrate { channel, hashrate } => {
                let h = hashrate as f32;
                if h.is_finite() && h >= 0.0 {
                    if self.hashrates.len() <= channel {
                        self.hashrates
                            .resize(channel + 1, self.cfg.nominal_hashrate);
                    }
                    self.hashrates[channel] = h;
                    // not only the active pool: a probe or a candidate that takes over later
                    // must hold the hashrate of now, not the one of when it connected (a probe
                    // lives `stable_for`, and a pool opened at 0 starts at its minimum
                    // difficulty)
                    for c in self.conns.iter().filter(|c| c.role != Role::Draining) {
                        out.push(Action::UpdateHashrate {
                            id: c.id,
                            channel,
                            hashrate: h,
                        });
                    }
                }
            }
            UpstreamCommand::SetCustomJob {
                epoch,
                channel,
                job,
            } => {
                let active = self.conns.iter().find(|c| c.role == Role::Active);
                match active.filter(|_| epoch == self.epoch) {
                    Some(c) => out.push(Action::SetCustomJob {
                        id: c.id,
                        channel,
                        job,
                    }),
                    None => out.push(Action::Emit(UpstreamEvent::CustomJob {
                        epoch,
                        channel,
                        request_id: job.request_id,
                        result: Err(super::CODE_STALE_UPSTREAM.into()),
                    })),
                }
            }
            UpstreamCommand::Channels(n) => {
                if n > self.channels {
                    tracing::info!(channels = n, "upstream channels wanted");
                    self.channels = n;
                    // every live connection follows (and one started later opens them all)
                    out.push(Action::Channels(n));
                }
            }
        }
        self.plan(now, out);
    }

    /// An event of connection `id` at `now`. `jitter` in `[0, 1)` scales the reconnect delay
    /// if the connection ended (see [`Backoff::failure`]).
    pub fn on_conn_event(
        &mut self,
        id: u64,
        ev: ConnEvent,
        now: Instant,
        jitter: f64,
        out: &mut Vec<Action>,
    ) {
        if let Some(i) = self.conns.iter().position(|c| c.id == id) {
            self.conn_event(i, ev, now, jitter, out);
        }
        self.plan(now, out);
    }

    fn conn_event(
        &mut self,
        i: usize,
        ev: ConnEvent,
        now: Instant,
        jitter: f64,
        out: &mut Vec<Action>,
    ) {
        let epoch = self.epoch;
        match ev {
            ConnEvent::Opened(info) => {
                let c = &mut self.conns[i];
                let index = info.index;
                c.refused.remove(&index);
                c.infos.insert(index, info.clone());
                if index == 0 {
                    c.opened_at = Some(now);
                    if c.role == Role::Candidate {
                        self.promote(i, now, out);
                    } else {
                        tracing::info!(pool = c.pool, "probe: preferred pool opened a channel");
                    }
                } else if c.role == Role::Active {
                    tracing::info!(
                        pool = c.pool,
                        channel = index,
                        channel_id = info.channel_id,
                        "further upstream channel open"
                    );
                    out.push(Action::Emit(opened_event(epoch, info)));
                }
            }
            ConnEvent::Refused { channel, code } => {
                let c = &mut self.conns[i];
                c.refused.insert(channel, code.clone());
                if c.role == Role::Active {
                    out.push(Action::Emit(UpstreamEvent::ChannelRefused {
                        epoch,
                        channel,
                        reason: code,
                    }));
                }
            }
            ConnEvent::Work { channel, mut work } => {
                let c = &mut self.conns[i];
                c.work.insert(channel, work.clone());
                if c.role == Role::Active {
                    work.epoch = epoch;
                    out.push(Action::Emit(UpstreamEvent::Work { channel, work }));
                }
            }
            ConnEvent::ExtranoncePrefix { channel, prefix } => {
                let c = &mut self.conns[i];
                if let Some(info) = c.infos.get_mut(&channel) {
                    info.extranonce_prefix = prefix.clone();
                }
                if c.role == Role::Active {
                    out.push(Action::Emit(UpstreamEvent::ExtranoncePrefix {
                        epoch,
                        channel,
                        extranonce_prefix: prefix,
                    }));
                }
            }
            ConnEvent::CustomJob {
                channel,
                request_id,
                result,
            } => {
                if self.conns[i].role == Role::Active {
                    out.push(Action::Emit(UpstreamEvent::CustomJob {
                        epoch,
                        channel,
                        request_id,
                        result,
                    }));
                }
            }
            ConnEvent::Ended { reason, redirect } => {
                let c = self.conns.remove(i);
                out.push(Action::Release { id: c.id });
                if c.role == Role::Draining {
                    tracing::debug!(pool = c.pool, "replaced upstream closed");
                    return;
                }
                let stable_for = self.cfg.stable_for;
                let slot = &mut self.slots[c.pool];
                if let Some((host, port)) = redirect {
                    let mut url = slot.url.clone();
                    if !host.is_empty() {
                        url.host = host;
                    }
                    if port != 0 {
                        url.port = port;
                    }
                    slot.redirect = Some(url);
                    slot.retry_at = now;
                } else {
                    if c.opened_at.is_some_and(|t| now >= t + stable_for) {
                        slot.backoff.reset();
                    }
                    slot.retry_at = now + slot.backoff.failure(jitter);
                }
                let was_active = c.role == Role::Active;
                tracing::warn!(
                    pool = c.pool,
                    url = %slot.url.address(),
                    role = ?c.role,
                    retry_in_ms = slot.retry_at.saturating_duration_since(now).as_millis() as u64,
                    %reason,
                    "pool connection down"
                );
                out.push(Action::Emit(UpstreamEvent::Down {
                    pool: c.pool,
                    url: slot.url.to_string(),
                    reason,
                    was_active,
                }));
            }
        }
    }

    fn find(&self, role: Role) -> Option<usize> {
        self.conns.iter().position(|c| c.role == role)
    }

    fn active_pool(&self) -> Option<usize> {
        self.find(Role::Active).map(|i| self.conns[i].pool)
    }

    fn spawn(&mut self, pool: usize, role: Role, out: &mut Vec<Action>) {
        let id = self.next_id;
        self.next_id += 1;
        let slot = &mut self.slots[pool];
        let url = slot.redirect.take().unwrap_or_else(|| slot.url.clone());
        tracing::info!(pool, url = %url.address(), ?role, "connecting to pool");
        out.push(Action::Connect {
            id,
            pool,
            url,
            role,
            channels: self.channels,
            hashrates: self.hashrates.clone(),
        });
        self.conns.push(Conn {
            id,
            pool,
            role,
            opened_at: None,
            infos: BTreeMap::new(),
            work: BTreeMap::new(),
            refused: BTreeMap::new(),
        });
    }

    /// Starts the connections the state calls for.
    fn plan(&mut self, now: Instant, out: &mut Vec<Action>) {
        // 1. a stable probe takes over
        if let Some(i) = self.find(Role::Probe) {
            let c = &self.conns[i];
            if c.work.contains_key(&0)
                && c.opened_at.is_some_and(|t| now >= t + self.cfg.stable_for)
            {
                self.promote(i, now, out);
            }
        }
        // 2. nothing active or connecting: the probe (if up) or the best pool available
        if self.find(Role::Active).is_none() && self.find(Role::Candidate).is_none() {
            if let Some(i) = self.find(Role::Probe) {
                if self.conns[i].infos.contains_key(&0) {
                    self.promote(i, now, out);
                } else {
                    self.conns[i].role = Role::Candidate;
                }
            } else if let Some(p) = self.best_available(now, self.slots.len()) {
                self.spawn(p, Role::Candidate, out);
            }
        }
        // 3. on a backup: probe a preferred pool now and then
        if self.cfg.return_to_preferred && self.find(Role::Probe).is_none() {
            if let Some(a) = self.active_pool() {
                if a > 0 && now >= self.next_probe_at {
                    if let Some(p) = self.best_available(now, a) {
                        self.next_probe_at = now + self.cfg.probe_interval;
                        self.spawn(p, Role::Probe, out);
                    }
                }
            }
        }
    }

    /// The most preferred pool below index `below` that is out of backoff and has no live
    /// connection.
    fn best_available(&self, now: Instant, below: usize) -> Option<usize> {
        (0..below.min(self.slots.len())).find(|&p| {
            self.slots[p].retry_at <= now
                && !self
                    .conns
                    .iter()
                    .any(|c| c.pool == p && c.role != Role::Draining)
        })
    }

    /// Makes conn `i` the active upstream: a new epoch; the old active drains.
    fn promote(&mut self, i: usize, now: Instant, out: &mut Vec<Action>) {
        let timeout = self.cfg.drain_timeout;
        for c in self.conns.iter_mut().filter(|c| c.role == Role::Active) {
            c.role = Role::Draining;
            out.push(Action::Drain { id: c.id, timeout });
        }
        let c = &mut self.conns[i];
        c.role = Role::Active;
        let Some(info) = c.infos.get(&0).cloned() else {
            return;
        };
        self.epoch += 1;
        let epoch = self.epoch;
        let (id, pool) = (c.id, c.pool);
        let others: Vec<ChannelInfo> = c.infos.values().skip(1).cloned().collect();
        let refused: Vec<(usize, String)> =
            c.refused.iter().map(|(i, r)| (*i, r.clone())).collect();
        let work: Vec<(usize, UpstreamWork)> =
            c.work.iter().map(|(i, w)| (*i, w.clone())).collect();
        tracing::info!(
            pool,
            url = %self.slots[pool].url.address(),
            epoch,
            channel = info.channel_id,
            channels = others.len() + 1,
            extranonce_size = info.extranonce_size,
            "upstream active"
        );
        if pool > 0 {
            self.next_probe_at = now + self.cfg.probe_interval;
        }
        out.push(Action::Activate {
            id,
            epoch,
            pool,
            url: self.slots[pool].url.to_string(),
            info,
        });
        for info in others {
            out.push(Action::Emit(opened_event(epoch, info)));
        }
        for (channel, reason) in refused {
            out.push(Action::Emit(UpstreamEvent::ChannelRefused {
                epoch,
                channel,
                reason,
            }));
        }
        for (channel, mut w) in work {
            w.epoch = epoch;
            w.clean = true;
            out.push(Action::Emit(UpstreamEvent::Work { channel, work: w }));
        }
    }
}

fn opened_event(epoch: u64, info: ChannelInfo) -> UpstreamEvent {
    UpstreamEvent::ChannelOpened {
        epoch,
        channel: info.index,
        channel_id: info.channel_id,
        extranonce_prefix: info.extranonce_prefix,
        extranonce_size: info.extranonce_size,
        target: info.target,
    }
}

#[cfg(test)]
mod tests;
