//! The upstream side: one or more SV2 extended channels on one connection to the most
//! preferred reachable pool, with failover.
//!
//! * [`PoolUrl`] parses `stratum2+tcp://host:port/AUTHORITY_KEY`.
//! * [`session::UpstreamSession`]: the sans-IO SV2 client of one pool connection
//!   (SetupConnection, extension 0x0002, OpenExtendedMiningChannel, job/prevhash/target
//!   tracking, share sequence numbers and their answers).
//! * [`failover::Failover`]: the sans-IO failover decisions (which pool, which role, when to
//!   retry, when to switch back, what the hub hears), on time given as a value; its module
//!   docs draw the states.
//! * [`run_upstreams`]: the task the hub talks to, a thin tokio shell around
//!   [`failover::Failover`]: it starts the connection tasks, feeds the core their events,
//!   the hub's commands and its timer, and carries out the core's actions.
//!
//! Channels: the hub says how many it needs ([`UpstreamCommand::Channels`]); every
//! connection opens that many (proxy-side indices 0, 1, 2...; see [`session`]), so a new
//! active pool (failover, return to preferred) holds them all again. Channel 0 opening makes
//! a connection usable ([`UpstreamEvent::Active`]); each further channel of the active pool
//! is announced by [`UpstreamEvent::ChannelOpened`] (or [`UpstreamEvent::ChannelRefused`]).
//!
//! Epochs: each [`UpstreamEvent::Active`] carries a new `epoch` and the [`ShareRoute`] of
//! that epoch; the [`UpstreamWork`] of [`UpstreamEvent::Work`] carries the epoch too.
//!
//! Shares go straight to the active connection's task through its [`ShareRoute`], and its
//! answers straight back to the hub's event queue: the supervisor task is not woken per
//! share (each hand-off between tasks is a wake-up, and on a busy proxy they dominate the
//! cost of a forwarded share). [`ShareRoute::submit`] refuses at once a share of another
//! epoch or one the connection cannot take (`stale-upstream`, `upstream-busy`), handing it
//! back; every share it takes is answered by one [`UpstreamEvent::ShareResult`] (except at
//! shutdown).

pub mod failover;
pub mod session;
pub mod url;

mod conn;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_net::sv2::Sv2Options;
use strata_work::target::Target;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::work::{ForwardShare, UpstreamWork};
use conn::{ConnCommand, ConnSettings};
use failover::{Action, ConnEvent};
pub use failover::{Backoff, Failover};
pub use session::{
    ChannelInfo, UpstreamSession, CODE_NO_RESPONSE, CODE_STALE_UPSTREAM, CODE_UPSTREAM_CLOSED,
};
pub use url::{PoolUrl, PoolUrlError};

/// Default `min_extranonce_size` of an [`UpstreamConfig`]: 10 bytes = a 2-byte miner id
/// (65 536 miners) + an 8-byte SV1 `extranonce2` (the most cgminer-based firmware accepts).
/// Our pool grants exactly 10 with its default 16-byte extranonce and 6-byte prefixes; a pool
/// offering less refuses the channel (`min-extranonce-size-too-large`). The proxy's server
/// asks for less: what its extranonce split needs at least
/// ([`crate::config::Config::upstream_min_extranonce_size`], 6 = 2 + 4 by default).
pub const DEFAULT_MIN_EXTRANONCE_SIZE: u16 = 10;

/// Capacity of each connection's share queue (shares waiting to be written).
const SHARE_QUEUE: usize = 4096;

/// Capacity of each connection's command queue (hashrate updates, one per channel at most
/// every second or so, and a drain).
const CONN_QUEUE: usize = 1024;

/// Where the shares of one epoch go: the queue of the connection that was active when the
/// epoch began (handed out by [`UpstreamEvent::Active`]). Cloning is cheap.
#[derive(Clone)]
pub struct ShareRoute {
    epoch: u64,
    tx: mpsc::Sender<ForwardShare>,
}

impl ShareRoute {
    /// A route for `epoch` into a queue of `capacity` shares, and that queue's receiving end
    /// (what a connection task reads; also for tests that stand in for one).
    pub fn channel(epoch: u64, capacity: usize) -> (Self, mpsc::Receiver<ForwardShare>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ShareRoute { epoch, tx }, rx)
    }

    /// The epoch whose shares this route takes.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A route into the same queue for the shares of `epoch` (the proxy's Job Declarator
    /// Client hands the hub one per epoch of its own).
    pub fn with_epoch(&self, epoch: u64) -> Self {
        ShareRoute {
            epoch,
            tx: self.tx.clone(),
        }
    }

    /// Queues `share` for the pool without waiting; its answer comes as an
    /// [`UpstreamEvent::ShareResult`]. Refused at once, the share comes back with the code:
    /// [`CODE_STALE_UPSTREAM`] (another epoch, or the connection has ended) or
    /// [`CODE_UPSTREAM_BUSY`] (the connection's queue is full).
    // the share comes back whole (by value, no allocation) on the rare refusal so that it is
    // counted; the per-share path returns `Ok(())`
    #[allow(clippy::result_large_err)]
    pub fn submit(&self, share: ForwardShare) -> Result<(), (ForwardShare, &'static str)> {
        if share.epoch != self.epoch {
            return Err((share, CODE_STALE_UPSTREAM));
        }
        self.tx.try_send(share).map_err(|e| match e {
            mpsc::error::TrySendError::Full(s) => (s, CODE_UPSTREAM_BUSY),
            mpsc::error::TrySendError::Closed(s) => (s, CODE_STALE_UPSTREAM),
        })
    }
}

impl std::fmt::Debug for ShareRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareRoute")
            .field("epoch", &self.epoch)
            .field("queued", &(self.tx.max_capacity() - self.tx.capacity()))
            .finish()
    }
}

/// Two routes are equal when they lead into the same queue for the same epoch.
impl PartialEq for ShareRoute {
    fn eq(&self, other: &Self) -> bool {
        self.epoch == other.epoch && self.tx.same_channel(&other.tx)
    }
}

/// The code of a share refused because the connection's queue was full.
pub const CODE_UPSTREAM_BUSY: &str = "upstream-busy";

/// Every code the proxy itself gives a forwarded share that got no answer from the pool (a
/// [`UpstreamEvent::ShareResult`] with another code carries the pool's own answer).
pub const PROXY_CODES: [&str; 4] = [
    CODE_STALE_UPSTREAM,
    CODE_UPSTREAM_BUSY,
    CODE_NO_RESPONSE,
    CODE_UPSTREAM_CLOSED,
];

/// Settings of [`run_upstreams`]. `Default` gives the documented defaults and no pool.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Pools, most preferred first.
    pub pools: Vec<PoolUrl>,
    /// `user_identity` of the upstream channel (pool account). Default empty (pools refuse).
    pub user_identity: String,
    /// Nominal hashrate announced at open, hashes per second (default 0; see
    /// [`UpstreamCommand::UpdateHashrate`]).
    pub nominal_hashrate: f64,
    /// Channels opened on each connection from the start (default 1; the hub asks for more
    /// with [`UpstreamCommand::Channels`]).
    pub channels: usize,
    /// `min_extranonce_size` (default [`DEFAULT_MIN_EXTRANONCE_SIZE`]).
    pub min_extranonce_size: u16,
    /// Negotiate extension 0x0002 and tag shares with the miner's worker name (default true).
    pub worker_identity: bool,
    /// First reconnect delay of a pool after a failure (default 1 s); doubles per consecutive
    /// failure up to [`UpstreamConfig::backoff_max`], each delay jittered by ±25 %.
    pub backoff_min: Duration,
    /// Longest reconnect delay (default 30 s).
    pub backoff_max: Duration,
    /// While on a backup pool, probe more preferred pools and switch back (default true).
    pub return_to_preferred: bool,
    /// Time between probes of preferred pools (default 30 s).
    pub probe_interval: Duration,
    /// How long a probed pool must hold an open channel with work before the switch back;
    /// also how long a connection must have lived for its pool's backoff to reset
    /// (default 60 s).
    pub stable_for: Duration,
    /// TCP connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Noise handshake timeout (default 5 s).
    pub handshake_timeout: Duration,
    /// From the handshake to an open channel (default 10 s).
    pub setup_timeout: Duration,
    /// From channel 0 opening to its first job (default 15 s).
    pub first_job_timeout: Duration,
    /// Time a socket write may block (default 10 s).
    pub write_timeout: Duration,
    /// Shares awaiting the pool's answer per connection (default 8192).
    pub max_pending_shares: usize,
    /// After a switch, how long the old connection may take to answer shares already sent
    /// (default 5 s); unanswered ones come back as `upstream-closed`.
    pub drain_timeout: Duration,
    /// Open connections with `REQUIRES_WORK_SELECTION` (the proxy's Job Declarator Client
    /// sets custom jobs; default false).
    pub work_selection: bool,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            pools: Vec::new(),
            user_identity: String::new(),
            nominal_hashrate: 0.0,
            channels: 1,
            min_extranonce_size: DEFAULT_MIN_EXTRANONCE_SIZE,
            worker_identity: true,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            return_to_preferred: true,
            probe_interval: Duration::from_secs(30),
            stable_for: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            setup_timeout: Duration::from_secs(10),
            first_job_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
            max_pending_shares: 8192,
            drain_timeout: Duration::from_secs(5),
            work_selection: false,
        }
    }
}

/// What the upstream side tells the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    /// A pool's channel 0 is now the active upstream: a new epoch starts. Work of earlier
    /// epochs is void (on every channel); shares of earlier epochs are refused
    /// (`stale-upstream`). The pool's further channels follow as
    /// [`UpstreamEvent::ChannelOpened`].
    Active {
        /// The new epoch (stamp it on [`UpstreamWork::epoch`] and expect it back on
        /// [`ForwardShare::epoch`]).
        epoch: u64,
        /// Where this epoch's shares go, on every channel.
        route: ShareRoute,
        /// Index of the pool in [`UpstreamConfig::pools`].
        pool: usize,
        /// The pool's URL.
        url: String,
        /// The upstream channel id of channel 0.
        channel_id: u32,
        /// The channel's `extranonce_prefix`.
        extranonce_prefix: Bytes,
        /// Bytes the proxy splits among the channel's miners.
        extranonce_size: u16,
        /// The target the pool opened the channel with (a later `SetTarget` reaches the
        /// miners in the work of the jobs after it, [`UpstreamWork::upstream_target`]).
        target: Target,
    },
    /// A further channel (index 1, 2...) of the active pool is open.
    ChannelOpened {
        /// The epoch it belongs to.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// Its upstream channel id.
        channel_id: u32,
        /// Its `extranonce_prefix`.
        extranonce_prefix: Bytes,
        /// Bytes the proxy splits among the channel's miners.
        extranonce_size: u16,
        /// The target the pool opened it with (later ones: as for [`UpstreamEvent::Active`]).
        target: Target,
    },
    /// The active pool refused to open channel `channel` (`OpenMiningChannel.Error`): its
    /// miners get no work on this pool.
    ChannelRefused {
        /// The epoch it belongs to.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// The pool's error code.
        reason: String,
    },
    /// New current work of channel `channel` in the active epoch (`epoch` set; `id_width`
    /// and `extranonce2_size` are 0 for the hub to fill).
    Work {
        /// The channel's proxy-side index.
        channel: usize,
        /// The work.
        work: UpstreamWork,
    },
    /// A channel's extranonce prefix changed (`SetExtranoncePrefix`): re-carve its miners'
    /// extranonce1; the next [`UpstreamEvent::Work`] carries it.
    ExtranoncePrefix {
        /// The epoch it belongs to.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// The new prefix (the size is unchanged).
        extranonce_prefix: Bytes,
    },
    /// The active pool's answer to an [`UpstreamCommand::SetCustomJob`] (or
    /// [`CODE_STALE_UPSTREAM`] when it could not be sent: another epoch, channel not open).
    CustomJob {
        /// The epoch it belongs to.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// The job's `request_id`.
        request_id: u32,
        /// The job id to submit shares with, or the `SetCustomMiningJob.Error` code.
        result: Result<u32, String>,
    },
    /// The answer for a share taken by [`ShareRoute::submit`].
    ShareResult {
        /// The share.
        share: ForwardShare,
        /// Accepted by the pool.
        accepted: bool,
        /// Why not: the pool's `SubmitShares.Error` code, or `stale-upstream` (not
        /// forwarded: its channel is not open, or the connection ended before writing it),
        /// `upstream-closed` (sent, but the connection ended before an answer),
        /// `no-response` (too many unanswered shares).
        code: Option<String>,
    },
    /// A connection to a pool failed or ended. With `was_active`, there is no upstream until
    /// the next [`UpstreamEvent::Active`].
    Down {
        /// Index of the pool.
        pool: usize,
        /// The pool's URL.
        url: String,
        /// What happened (also logged).
        reason: String,
        /// Whether it was the active upstream.
        was_active: bool,
    },
}

/// What the hub tells the upstream side.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamCommand {
    /// The nominal hashrate of a channel's miners changed: `UpdateChannel` on that channel
    /// of the active pool, and the value announced by later opens of the channel.
    UpdateHashrate {
        /// The channel's proxy-side index.
        channel: usize,
        /// Hashes per second.
        hashrate: f64,
    },
    /// Hold this many channels (indices `0..n`) on the active pool and on every pool
    /// connected later. Channels are never closed by asking for fewer.
    Channels(usize),
    /// Send `SetCustomMiningJob` on channel `channel` of the active pool, if `epoch` is
    /// still current (answered by [`UpstreamEvent::CustomJob`]).
    SetCustomJob {
        /// The epoch the job was built for.
        epoch: u64,
        /// The channel's proxy-side index.
        channel: usize,
        /// The job (`channel_id` is filled in by the connection).
        job: Box<strata_protocol::mining::SetCustomMiningJob>,
    },
}

/// A connection as the shell holds it: its queues and its cancellation.
#[derive(Debug)]
struct ConnHandle {
    tx: mpsc::Sender<ConnCommand>,
    /// Its share queue (handed to the hub as a [`ShareRoute`] when it becomes active).
    shares: mpsc::Sender<ForwardShare>,
    cancel: CancellationToken,
}

/// The hub is gone.
struct HubGone;

/// The tokio side of [`run_upstreams`]: the connection tasks and the queues to the hub.
struct Shell {
    settings: ConnSettings,
    conns: HashMap<u64, ConnHandle>,
    events: mpsc::Sender<UpstreamEvent>,
    conn_tx: mpsc::Sender<(u64, ConnEvent)>,
    /// Channels wanted on every connection.
    channels: watch::Sender<usize>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// Runs the upstream side until `shutdown` (or until the hub drops `events`): keeps one
/// channel open on the most preferred reachable pool of `cfg.pools`, reports through
/// `events`, takes hashrate updates from `commands` and shares through the
/// [`ShareRoute`] of each [`UpstreamEvent::Active`] (see the module docs). The decisions are
/// [`Failover`]'s; this loop feeds it and carries out its [`Action`]s.
pub async fn run_upstreams(
    cfg: UpstreamConfig,
    events: mpsc::Sender<UpstreamEvent>,
    mut commands: mpsc::UnboundedReceiver<UpstreamCommand>,
    shutdown: CancellationToken,
) {
    let (conn_tx, mut conn_rx) = mpsc::channel(1024);
    let channels = cfg.channels.max(1);
    let settings = ConnSettings {
        session: session::SessionConfig {
            user_identity: cfg.user_identity.clone(),
            nominal_hashrate: cfg.nominal_hashrate as f32,
            channels,
            min_extranonce_size: cfg.min_extranonce_size,
            request_worker_identity: cfg.worker_identity,
            max_pending_shares: cfg.max_pending_shares,
            setup_timeout: cfg.setup_timeout,
            first_job_timeout: cfg.first_job_timeout,
            work_selection: cfg.work_selection,
            ..session::SessionConfig::default()
        },
        connect_timeout: cfg.connect_timeout,
        net: Sv2Options {
            handshake_timeout: cfg.handshake_timeout,
            ..Sv2Options::default()
        },
        write_timeout: cfg.write_timeout,
    };
    if cfg.pools.is_empty() {
        tracing::error!("no upstream pool configured");
    }
    let mut core = Failover::new(&cfg, Instant::now());
    let mut shell = Shell {
        settings,
        conns: HashMap::new(),
        events,
        conn_tx,
        channels: watch::Sender::new(channels),
        tasks: TaskTracker::new(),
        shutdown: shutdown.child_token(),
    };
    let mut out = Vec::new();
    core.on_timer(Instant::now(), &mut out);
    let mut commands_open = true;
    while !shutdown.is_cancelled() && shell.carry_out(&mut out).await.is_ok() {
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
            Some((id, ev)) = conn_rx.recv() => {
                core.on_conn_event(id, ev, Instant::now(), rand::random::<f64>(), &mut out);
            }
            cmd = commands.recv(), if commands_open => match cmd {
                Some(c) => core.on_command(c, Instant::now(), &mut out),
                None => commands_open = false,
            },
            () = sleep => core.on_timer(Instant::now(), &mut out),
        }
    }
    shell.shutdown.cancel();
    shell.tasks.close();
    drop(conn_rx);
    shell.tasks.wait().await;
}

impl Shell {
    /// Carries out the core's actions, in order (waiting for room in the hub's queue).
    async fn carry_out(&mut self, out: &mut Vec<Action>) -> Result<(), HubGone> {
        for action in out.drain(..) {
            match action {
                Action::Connect {
                    id,
                    pool,
                    url,
                    role,
                    channels,
                    hashrates,
                } => {
                    let (tx, rx) = mpsc::channel(CONN_QUEUE);
                    let (route, shares) = ShareRoute::channel(0, SHARE_QUEUE);
                    let cancel = self.shutdown.child_token();
                    let mut settings = self.settings.clone();
                    settings.session.channels = channels;
                    settings.session.channel_hashrates = hashrates;
                    tracing::debug!(pool, id, ?role, "connection task started");
                    self.tasks.spawn(conn::run(
                        id,
                        url,
                        Arc::new(settings),
                        conn::Queues {
                            commands: rx,
                            shares,
                            channels: self.channels.subscribe(),
                            events: self.conn_tx.clone(),
                            results: self.events.clone(),
                        },
                        cancel.clone(),
                    ));
                    self.conns.insert(
                        id,
                        ConnHandle {
                            tx,
                            shares: route.tx,
                            cancel,
                        },
                    );
                }
                Action::Activate {
                    id,
                    epoch,
                    pool,
                    url,
                    info,
                } => {
                    let Some(c) = self.conns.get(&id) else {
                        continue;
                    };
                    let route = ShareRoute {
                        epoch,
                        tx: c.shares.clone(),
                    };
                    self.emit(UpstreamEvent::Active {
                        epoch,
                        route,
                        pool,
                        url,
                        channel_id: info.channel_id,
                        extranonce_prefix: info.extranonce_prefix,
                        extranonce_size: info.extranonce_size,
                        target: info.target,
                    })
                    .await?;
                }
                Action::Emit(ev) => self.emit(ev).await?,
                Action::UpdateHashrate {
                    id,
                    channel,
                    hashrate,
                } => {
                    if let Some(c) = self.conns.get(&id) {
                        let _ =
                            c.tx.try_send(ConnCommand::UpdateHashrate { channel, hashrate });
                    }
                }
                Action::Drain { id, timeout } => {
                    if let Some(c) = self.conns.get(&id) {
                        let _ = c.tx.try_send(ConnCommand::Drain { timeout });
                    }
                }
                Action::Channels(n) => {
                    self.channels.send_replace(n);
                }
                Action::SetCustomJob { id, channel, job } => {
                    if let Some(c) = self.conns.get(&id) {
                        let _ = c.tx.try_send(ConnCommand::SetCustomJob { channel, job });
                    }
                }
                Action::Release { id } => {
                    if let Some(c) = self.conns.remove(&id) {
                        c.cancel.cancel();
                    }
                }
            }
        }
        Ok(())
    }

    async fn emit(&self, ev: UpstreamEvent) -> Result<(), HubGone> {
        self.events.send(ev).await.map_err(|_| HubGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        assert_eq!(b.failure(0.5), Duration::from_secs(1));
        assert_eq!(b.failure(0.5), Duration::from_secs(2));
        assert_eq!(b.failure(0.5), Duration::from_secs(4));
        assert_eq!(b.failure(0.5), Duration::from_secs(8));
        assert_eq!(b.failure(0.5), Duration::from_secs(8));
        assert_eq!(b.failure(0.0), Duration::from_secs(6));
        assert_eq!(b.failure(1.0), Duration::from_secs(10));
        assert_eq!(b.failures(), 7);
        b.reset();
        assert_eq!(b.failure(0.5), Duration::from_secs(1));
    }
}
