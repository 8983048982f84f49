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
mod tests {
    use std::sync::Arc;

    use strata_work::target::Target;

    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn url(port: u16) -> PoolUrl {
        PoolUrl {
            host: "127.0.0.1".into(),
            port,
            authority: strata_noise::AuthorityKeypair::generate().public_key(),
        }
    }

    fn config(pools: usize) -> UpstreamConfig {
        UpstreamConfig {
            pools: (0..pools).map(|i| url(3000 + i as u16)).collect(),
            backoff_min: S,
            backoff_max: 8 * S,
            probe_interval: 30 * S,
            stable_for: 60 * S,
            drain_timeout: 5 * S,
            ..UpstreamConfig::default()
        }
    }

    fn info(index: usize, channel_id: u32) -> ChannelInfo {
        ChannelInfo {
            index,
            channel_id,
            extranonce_prefix: Bytes::from(vec![channel_id as u8; 6]),
            extranonce_size: 10,
            target: Target::MAX,
            group_channel_id: 0,
        }
    }

    fn work(job_id: u32) -> UpstreamWork {
        let parts = || Bytes::from_static(&[1]);
        UpstreamWork {
            epoch: 0,
            seq: u64::from(job_id),
            job_id,
            version: 0x2000_0000,
            version_rolling_allowed: true,
            version_mask: 0x1fff_e000,
            prev_hash: [1; 32],
            nbits: 0x207f_ffff,
            min_ntime: 1,
            coinbase_prefix: parts(),
            coinbase_suffix: parts(),
            merkle_path: Arc::from(vec![]),
            extended: strata_work::channel::ExtendedWork::new(parts(), parts(), Arc::from(vec![])),
            extranonce_prefix: Bytes::from(vec![0; 6]),
            extranonce_size: 10,
            id_width: 0,
            extranonce2_size: 0,
            upstream_target: Target::MAX,
            clean: false,
        }
    }

    /// The core with a clock.
    struct Sim {
        core: Failover,
        now: Instant,
    }

    impl Sim {
        fn new(cfg: UpstreamConfig) -> (Self, Vec<Action>) {
            let now = Instant::now();
            let mut core = Failover::new(&cfg, now);
            let mut out = vec![];
            core.on_timer(now, &mut out);
            (Sim { core, now }, out)
        }

        /// Advances the clock by `d` and fires the timer.
        fn after(&mut self, d: Duration) -> Vec<Action> {
            self.now += d;
            let mut out = vec![];
            self.core.on_timer(self.now, &mut out);
            out
        }

        /// Advances to the core's next wake-up (which must be in the future) and fires.
        fn wake(&mut self) -> Vec<Action> {
            let t = self.core.next_wake().expect("a wake-up");
            assert!(t > self.now, "wake-up in the past");
            self.after(t - self.now)
        }

        fn ev(&mut self, id: u64, ev: ConnEvent) -> Vec<Action> {
            let mut out = vec![];
            self.core.on_conn_event(id, ev, self.now, 0.5, &mut out);
            if let Some(t) = self.core.next_wake() {
                assert!(t > self.now, "wake-up in the past after {out:?}");
            }
            out
        }

        fn cmd(&mut self, cmd: UpstreamCommand) -> Vec<Action> {
            let mut out = vec![];
            self.core.on_command(cmd, self.now, &mut out);
            out
        }

        fn ended(&mut self, id: u64) -> Vec<Action> {
            self.ev(
                id,
                ConnEvent::Ended {
                    reason: "connection lost".into(),
                    redirect: None,
                },
            )
        }

        /// Connection `id` opens channel 0 and gets work.
        fn up(&mut self, id: u64) -> Vec<Action> {
            let mut out = self.ev(id, ConnEvent::Opened(info(0, id as u32)));
            out.extend(self.ev(
                id,
                ConnEvent::Work {
                    channel: 0,
                    work: work(1),
                },
            ));
            out
        }
    }

    /// The (id, pool, role) of each Connect.
    fn connects(out: &[Action]) -> Vec<(u64, usize, Role)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Connect { id, pool, role, .. } => Some((*id, *pool, *role)),
                _ => None,
            })
            .collect()
    }

    /// The (epoch, pool) of each Activate.
    fn activates(out: &[Action]) -> Vec<(u64, usize)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Activate { epoch, pool, .. } => Some((*epoch, *pool)),
                _ => None,
            })
            .collect()
    }

    fn downs(out: &[Action]) -> Vec<(usize, bool)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Emit(UpstreamEvent::Down {
                    pool, was_active, ..
                }) => Some((*pool, *was_active)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_primary_is_connected_first_and_its_work_carries_the_epoch() {
        let (mut sim, out) = Sim::new(config(2));
        assert_eq!(connects(&out), vec![(1, 0, Role::Candidate)]);
        assert_eq!(
            sim.core.next_wake(),
            None,
            "nothing to do until the connection answers"
        );
        let out = sim.up(1);
        assert_eq!(activates(&out), vec![(1, 0)]);
        assert!(
            matches!(out.last(), Some(Action::Emit(UpstreamEvent::Work { channel: 0, work })) if work.epoch == 1)
        );
        assert_eq!(sim.core.active(), Some((1, 0)));
        assert_eq!(
            sim.core.next_wake(),
            None,
            "on the preferred pool: no probe"
        );
    }

    #[test]
    fn the_primary_dies_and_the_backup_takes_over_at_once() {
        let (mut sim, _) = Sim::new(config(2));
        sim.up(1);
        sim.after(10 * S);
        let out = sim.ended(1);
        assert_eq!(out[0], Action::Release { id: 1 });
        assert_eq!(downs(&out), vec![(0, true)]);
        // no wait: the backup is connected in the same step
        assert_eq!(connects(&out), vec![(2, 1, Role::Candidate)]);
        let out = sim.up(2);
        assert_eq!(activates(&out), vec![(2, 1)]);
        assert_eq!(sim.core.epoch(), 2);
        // the primary is retried after its backoff (1 s, jitter 0.5 = none)
        assert_eq!(sim.core.retry_at(0), Some(sim.now + S));
    }

    #[test]
    fn back_to_the_preferred_pool_once_it_held_stable_for() {
        let (mut sim, _) = Sim::new(config(2));
        sim.up(1);
        sim.ended(1);
        sim.up(2);
        let on_backup = sim.now;
        // the first probe: once the primary is out of backoff and probe_interval passed
        let out = sim.wake();
        assert_eq!(sim.now, on_backup + 30 * S);
        assert_eq!(connects(&out), vec![(3, 0, Role::Probe)]);
        // the probe opens and gets work: no switch yet
        sim.after(200 * MS);
        let out = sim.up(3);
        assert!(activates(&out).is_empty(), "{out:?}");
        assert!(
            !out.iter().any(|a| matches!(a, Action::Emit(_))),
            "the hub hears nothing of a probe: {out:?}"
        );
        let opened = sim.now;
        assert_eq!(sim.core.next_wake(), Some(opened + 60 * S));
        assert!(activates(&sim.after(59 * S)).is_empty());
        // after stable_for: the probe becomes active with its work (clean), the backup drains
        let out = sim.wake();
        assert_eq!(sim.now, opened + 60 * S);
        assert_eq!(
            out[..2],
            [
                Action::Drain {
                    id: 2,
                    timeout: 5 * S
                },
                Action::Activate {
                    id: 3,
                    epoch: 3,
                    pool: 0,
                    url: sim.core.slots[0].url.to_string(),
                    info: info(0, 3),
                }
            ]
        );
        assert!(
            matches!(&out[2], Action::Emit(UpstreamEvent::Work { channel: 0, work }) if work.epoch == 3 && work.clean)
        );
        // the drained backup ends quietly
        let out = sim.ended(2);
        assert_eq!(out, vec![Action::Release { id: 2 }]);
        assert_eq!(sim.core.next_wake(), None);
    }

    #[test]
    fn no_return_to_preferred_when_disabled() {
        let (mut sim, _) = Sim::new(UpstreamConfig {
            return_to_preferred: false,
            ..config(2)
        });
        sim.up(1);
        sim.ended(1);
        sim.up(2);
        assert_eq!(sim.core.next_wake(), None);
        assert!(connects(&sim.after(3600 * S)).is_empty());
    }

    #[test]
    fn a_failing_probe_backs_off_and_leaves_the_backup_alone() {
        let (mut sim, _) = Sim::new(config(2));
        sim.up(1);
        sim.ended(1); // pool 0: 1st failure, 1 s
        sim.up(2);
        let out = sim.wake();
        assert_eq!(connects(&out), vec![(3, 0, Role::Probe)]);
        let out = sim.ended(3); // 2nd failure: 2 s
        assert_eq!(downs(&out), vec![(0, false)]);
        assert!(activates(&out).is_empty());
        assert_eq!(sim.core.active(), Some((2, 1)));
        // the next probe waits for the probe interval (longer than the backoff)
        let t = sim.now;
        let out = sim.wake();
        assert_eq!(sim.now, t + 30 * S);
        assert_eq!(connects(&out), vec![(4, 0, Role::Probe)]);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_connection_that_held() {
        let (mut sim, out) = Sim::new(config(1));
        let mut id = connects(&out)[0].0;
        let mut delays = vec![];
        for _ in 0..6 {
            let t = sim.now;
            assert!(connects(&sim.ended(id)).is_empty(), "in backoff");
            let out = sim.wake();
            delays.push((sim.now - t).as_secs());
            id = connects(&out)[0].0;
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 8, 8]);
        assert_eq!(sim.core.failures(0), 6);
        // a connection shorter than stable_for does not reset it
        sim.up(id);
        sim.after(59 * S);
        sim.ended(id);
        assert_eq!(sim.core.retry_at(0), Some(sim.now + 8 * S));
        id = connects(&sim.wake())[0].0;
        // one that held stable_for does: the next delay is the first again
        sim.up(id);
        sim.after(60 * S);
        sim.ended(id);
        assert_eq!(sim.core.failures(0), 1);
        assert_eq!(sim.core.retry_at(0), Some(sim.now + S));
    }

    #[test]
    fn jitter_scales_the_delay_by_three_quarters_to_five_quarters() {
        for (jitter, ms) in [(0.0, 750), (0.5, 1000), (1.0, 1250), (f64::NAN, 1000)] {
            let (mut sim, _) = Sim::new(config(1));
            let mut out = vec![];
            sim.core.on_conn_event(
                1,
                ConnEvent::Ended {
                    reason: "refused".into(),
                    redirect: None,
                },
                sim.now,
                jitter,
                &mut out,
            );
            let delay = sim.core.retry_at(0).unwrap() - sim.now;
            assert_eq!(delay.as_millis(), ms, "jitter {jitter}");
        }
    }

    #[test]
    fn a_pool_that_never_answers_holds_nothing_up() {
        let (mut sim, out) = Sim::new(config(2));
        assert_eq!(connects(&out), vec![(1, 0, Role::Candidate)]);
        // the connection's own timeouts end it; until then the core waits without spinning
        assert_eq!(sim.core.next_wake(), None);
        assert!(sim.after(4 * S).is_empty());
        sim.after(S);
        let out = sim.ev(
            1,
            ConnEvent::Ended {
                reason: "tcp connect timed out".into(),
                redirect: None,
            },
        );
        assert_eq!(downs(&out), vec![(0, false)]);
        assert_eq!(connects(&out), vec![(2, 1, Role::Candidate)]);
        sim.up(2);
        // a probe of the silent pool hangs as long as it likes: one at a time, the backup
        // stays active and no second probe starts
        let out = sim.wake();
        assert_eq!(connects(&out), vec![(3, 0, Role::Probe)]);
        assert_eq!(sim.core.next_wake(), None);
        assert!(sim.after(600 * S).is_empty());
        assert_eq!(sim.core.active(), Some((2, 1)));
        // events of connections the core does not know are ignored
        assert!(sim.up(99).is_empty());
    }

    #[test]
    fn every_pool_down_then_one_returns() {
        let (mut sim, out) = Sim::new(config(3));
        let mut id = connects(&out)[0].0;
        // each pool fails in turn, then all are in backoff: the timer waits for the earliest
        let mut tried = vec![];
        for _ in 0..3 {
            let out = sim.ended(id);
            if let Some(&(next, pool, _)) = connects(&out).first() {
                tried.push(pool);
                id = next;
            }
        }
        assert_eq!(tried, vec![1, 2]);
        assert_eq!(sim.core.connections().count(), 0);
        assert_eq!(sim.core.next_wake(), Some(sim.now + S));
        // pool 0 is retried first (its backoff ends first), and fails again
        let out = sim.wake();
        assert_eq!(connects(&out)[0].1, 0);
        let out = sim.ended(connects(&out)[0].0);
        // then at once pool 1 (out of backoff too), which is back: it becomes active
        let (id, pool, _) = connects(&out)[0];
        assert_eq!(pool, 1);
        let out = sim.up(id);
        assert_eq!(activates(&out), vec![(1, 1)]);
        // and pool 0 is probed from there
        assert!(sim.core.next_wake().is_some());
    }

    #[test]
    fn a_reconnect_request_is_followed_at_once_to_the_new_address() {
        let (mut sim, _) = Sim::new(config(2));
        sim.up(1);
        let out = sim.ev(
            1,
            ConnEvent::Ended {
                reason: "reconnect".into(),
                redirect: Some(("10.0.0.9".into(), 0)),
            },
        );
        assert_eq!(downs(&out), vec![(0, true)]);
        let Some(Action::Connect { pool, url, .. }) =
            out.iter().find(|a| matches!(a, Action::Connect { .. }))
        else {
            panic!("{out:?}")
        };
        assert_eq!(*pool, 0);
        assert_eq!(url.host, "10.0.0.9");
        assert_eq!(url.port, sim.core.slots[0].url.port);
        assert_eq!(sim.core.failures(0), 0);
    }

    #[test]
    fn hashrate_updates_go_to_the_active_pool_and_open_later_channels() {
        let (mut sim, _) = Sim::new(UpstreamConfig {
            nominal_hashrate: 100.0,
            ..config(2)
        });
        // before any pool is active: remembered, and the connecting candidate opens with it
        assert_eq!(
            sim.cmd(UpstreamCommand::UpdateHashrate {
                channel: 1,
                hashrate: 5e12,
            }),
            vec![Action::UpdateHashrate {
                id: 1,
                channel: 1,
                hashrate: 5e12
            }]
        );
        sim.up(1);
        let out = sim.cmd(UpstreamCommand::UpdateHashrate {
            channel: 0,
            hashrate: 7e12,
        });
        assert_eq!(
            out,
            vec![Action::UpdateHashrate {
                id: 1,
                channel: 0,
                hashrate: 7e12
            }]
        );
        // nonsense is dropped
        for h in [f64::NAN, -1.0, f64::INFINITY] {
            assert!(sim
                .cmd(UpstreamCommand::UpdateHashrate {
                    channel: 0,
                    hashrate: h,
                })
                .is_empty());
        }
        // more channels: every connection follows; fewer: nothing
        assert_eq!(
            sim.cmd(UpstreamCommand::Channels(3)),
            vec![Action::Channels(3)]
        );
        assert!(sim.cmd(UpstreamCommand::Channels(2)).is_empty());
        // the backup opens as many channels, each at its last announced hashrate
        let out = sim.ended(1);
        let Some(Action::Connect {
            channels,
            hashrates,
            ..
        }) = out.iter().find(|a| matches!(a, Action::Connect { .. }))
        else {
            panic!("{out:?}")
        };
        assert_eq!(*channels, 3);
        assert_eq!(hashrates, &vec![7e12, 5e12]);
    }

    #[test]
    fn a_probe_hears_the_hashrate_announced_while_it_waits_to_take_over() {
        let (mut sim, _) = Sim::new(config(2));
        sim.ended(1);
        sim.up(2);
        let probe = connects(&sim.wake())[0].0;
        sim.up(probe);
        let out = sim.cmd(UpstreamCommand::UpdateHashrate {
            channel: 0,
            hashrate: 3e12,
        });
        let ids: Vec<u64> = out
            .iter()
            .filter_map(|a| match a {
                Action::UpdateHashrate { id, hashrate, .. } if *hashrate == 3e12 => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec![2, probe], "the active pool and the probe");
        // once the probe took over, the drained connection hears nothing more
        sim.wake();
        let out = sim.cmd(UpstreamCommand::UpdateHashrate {
            channel: 0,
            hashrate: 4e12,
        });
        assert_eq!(
            out,
            vec![Action::UpdateHashrate {
                id: probe,
                channel: 0,
                hashrate: 4e12
            }]
        );
    }

    #[test]
    fn the_backup_comes_back_with_its_other_channels_and_refusals() {
        let (mut sim, _) = Sim::new(config(2));
        sim.cmd(UpstreamCommand::Channels(3));
        let mut out = sim.up(1);
        out.extend(sim.ev(1, ConnEvent::Opened(info(1, 11))));
        out.extend(sim.ev(
            1,
            ConnEvent::Refused {
                channel: 2,
                code: "no".into(),
            },
        ));
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Emit(UpstreamEvent::ChannelOpened {
                epoch: 1,
                channel: 1,
                ..
            })
        )));
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Emit(UpstreamEvent::ChannelRefused {
                epoch: 1,
                channel: 2,
                ..
            })
        )));
        // a probe's channels are replayed to the hub when it takes over
        sim.ended(1);
        sim.up(2);
        let out = sim.wake();
        let probe = connects(&out)[0].0;
        sim.up(probe);
        sim.ev(probe, ConnEvent::Opened(info(1, 21)));
        sim.ev(
            probe,
            ConnEvent::ExtranoncePrefix {
                channel: 1,
                prefix: Bytes::from_static(&[7; 6]),
            },
        );
        let out = sim.wake();
        assert_eq!(activates(&out), vec![(3, 0)]);
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Emit(UpstreamEvent::ChannelOpened { epoch: 3, channel: 1, extranonce_prefix, .. })
                if extranonce_prefix[..] == [7; 6]
        )));
    }

    #[test]
    fn a_probe_open_without_work_does_not_make_the_timer_spin() {
        let (mut sim, _) = Sim::new(UpstreamConfig {
            stable_for: S,
            ..config(2)
        });
        sim.up(1);
        sim.ended(1);
        sim.up(2);
        let probe = connects(&sim.wake())[0].0;
        sim.ev(probe, ConnEvent::Opened(info(0, 9)));
        sim.after(10 * S);
        // no work yet: nothing to wait for (the work itself replans)
        assert_eq!(sim.core.next_wake(), None);
        let out = sim.ev(
            probe,
            ConnEvent::Work {
                channel: 0,
                work: work(2),
            },
        );
        assert_eq!(activates(&out), vec![(3, 0)]);
    }

    #[test]
    fn the_active_pool_dying_while_a_probe_is_open_promotes_the_probe() {
        let (mut sim, _) = Sim::new(config(3));
        sim.ended(1);
        let out = sim.ended(2);
        let id = connects(&out)[0].0;
        sim.up(id);
        assert_eq!(sim.core.active(), Some((id, 2)));
        // probe of pool 0 (after the probe interval), open but not yet stable
        let out = sim.wake();
        let probe = connects(&out)[0];
        assert_eq!(probe.1, 0);
        sim.up(probe.0);
        // the active pool dies: the open probe takes over at once
        let active = sim.core.active().unwrap().0;
        let out = sim.ended(active);
        assert_eq!(activates(&out).len(), 1);
        assert_eq!(activates(&out)[0].1, 0);
        assert!(connects(&out).is_empty());
    }
}
