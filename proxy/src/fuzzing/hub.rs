//! The `proxy_hub` harness: a script of miner joins, departures, shares and reports, upstream
//! events (pools becoming active and going down, channels opening or refused, work, new
//! extranonce prefixes, share results) and time steps, fed to the hub's sans-IO core
//! ([`crate::hub::Hub`]) the way its task feeds it, with the actions carried out by a shell
//! that checks them.
//!
//! Script: one byte of setup (bits 0-1: miners per channel 0..=3), then steps of one control
//! byte (taken modulo the step count) and its arguments. A share goes, as a miner task sends
//! it, into the route of its channel's last published work, and to the hub when that route
//! refuses it or there is none (or, by its argument's bit 6, to the hub directly).
//!
//! Invariants checked (beyond "no panic"):
//! * every join is answered at most once, and only joins that were made;
//! * no two connected miners share a (channel, id); the hub counts exactly the miners the
//!   shell holds (answered, not gone);
//! * published work is of the current epoch, and its extranonce layout adds up: the miner id
//!   and the miner's extranonce2 fill the pool's extranonce size, within 32 bytes with the
//!   pool's prefix; the route it carries (where miner tasks queue their shares) is of its
//!   epoch;
//! * a request for more channels names one more channel than the hub had; hashrate updates
//!   are for channels that exist, finite and not negative;
//! * a forwarded share left on the active route is of that route's epoch; the per-miner
//!   forwarded, accepted and refused figures never exceed what the script did;
//! * after a timer, the next one is later than now.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_work::extranonce::MinerId;
use strata_work::target::Target;
use tokio::sync::mpsc;

use super::{next, LAYOUTS};
use crate::hub::{Hub, HubAction, HubConfig, HubNow, MinerReport, Ticket};
use crate::monitor::Monitor;
use crate::upstream::{ShareRoute, UpstreamCommand, UpstreamEvent};
use crate::work::{ForwardShare, UpstreamWork};

const JOIN: u8 = 0;
const LEAVE: u8 = 1;
const SHARE: u8 = 2;
const REPORT: u8 = 3;
const ACTIVE: u8 = 4;
const OPENED: u8 = 5;
const REFUSED: u8 = 6;
const WORK: u8 = 7;
const PREFIX: u8 = 8;
const RESULT: u8 = 9;
const DOWN: u8 = 10;
const STEP: u8 = 11;
const TIMER: u8 = 12;
/// A miner still waiting for its answer goes away.
const ABANDON: u8 = 13;
const STEPS: u8 = 14;

/// Pools the hub knows.
const POOLS: usize = 3;

/// Largest number of shares queued on a route (a fuller route refuses the share).
const ROUTE_CAPACITY: usize = 8;

/// What the shell holds of the hub's world.
struct Shell {
    now: Instant,
    unix_ms: u64,
    next_ticket: Ticket,
    /// Joins not yet answered, and whether their miner went away meanwhile.
    waiting: HashMap<Ticket, bool>,
    /// Connected miners: (channel, id).
    miners: Vec<(usize, MinerId)>,
    /// Per miner: shares sent to the hub.
    sent: HashMap<(usize, MinerId), u64>,
    /// Channels the hub has (channel 0 always).
    channels: usize,
    epoch: u64,
    /// The upstream extranonce size of the current epoch.
    extranonce_size: u16,
    prefix_len: usize,
    /// The active route's receiving end (shares the hub or a miner task forwarded).
    route: Option<mpsc::Receiver<ForwardShare>>,
    /// Per channel: the route of the work last published to it (what its miners hold).
    published: HashMap<usize, ShareRoute>,
    route_epoch: u64,
    shares: u32,
}

impl Shell {
    fn now(&self) -> HubNow {
        HubNow {
            at: self.now,
            unix_ms: self.unix_ms,
        }
    }

    /// Carries out (and checks) the hub's actions.
    fn carry_out(&mut self, hub: &mut Hub) {
        for action in hub.take_actions() {
            match action {
                HubAction::Publish { channel, work } => {
                    match work.as_ref().and_then(|w| w.route.clone()) {
                        Some(r) => self.published.insert(channel, r),
                        None => self.published.remove(&channel),
                    };
                    if let Some(w) = work {
                        assert_eq!(w.epoch, self.epoch, "work of another epoch published");
                        if let Some(r) = &w.route {
                            assert_eq!(r.epoch(), w.epoch, "work with another epoch's route");
                        }
                        // the pool's prefix is apart; its extranonce_size is the miners' part
                        let miners = w.id_width + w.extranonce2_size;
                        assert_eq!(
                            miners,
                            usize::from(w.extranonce_size),
                            "extranonce layout: id {} + extranonce2 {} of {}",
                            w.id_width,
                            w.extranonce2_size,
                            w.extranonce_size
                        );
                        assert!(w.extranonce_prefix.len() + miners <= 32, "over 32 bytes");
                    }
                }
                HubAction::Answer {
                    ticket,
                    channel,
                    result,
                } => {
                    let gone = self
                        .waiting
                        .remove(&ticket)
                        .unwrap_or_else(|| panic!("join {ticket} answered twice or never made"));
                    assert!(channel < self.channels, "answer on channel {channel}");
                    if let Ok(slot) = result {
                        let key = (channel, slot.miner);
                        if gone {
                            hub.forget(channel, slot.miner);
                        } else {
                            assert!(!self.miners.contains(&key), "{key:?} given twice");
                            self.miners.push(key);
                        }
                    }
                }
                HubAction::Upstream(UpstreamCommand::Channels(n)) => {
                    assert_eq!(n, self.channels + 1, "channels asked for");
                    self.channels = n;
                }
                HubAction::Upstream(UpstreamCommand::UpdateHashrate { channel, hashrate }) => {
                    assert!(channel < self.channels, "update of channel {channel}");
                    assert!(hashrate.is_finite() && hashrate >= 0.0, "{hashrate}");
                }
                HubAction::Upstream(other) => {
                    panic!("the hub sent a command that is not its own: {other:?}")
                }
            }
        }
        assert_eq!(hub.stats().miners, self.miners.len(), "miners counted");
    }

    fn work(&self, channel: usize, job: u8) -> UpstreamWork {
        let prefix = Bytes::from(vec![job; self.prefix_len]);
        UpstreamWork {
            epoch: self.epoch,
            seq: u64::from(job),
            job_id: u32::from(job),
            version: 0x2000_0000,
            version_rolling_allowed: true,
            version_mask: 0x1fff_e000,
            prev_hash: [job; 32],
            nbits: 0x207f_ffff,
            min_ntime: 1_700_000_000,
            coinbase_prefix: Bytes::from_static(&[1]),
            coinbase_suffix: Bytes::from_static(&[2]),
            merkle_path: std::sync::Arc::from(vec![]),
            extended: strata_work::channel::ExtendedWork::new(
                Bytes::from_static(&[1]),
                Bytes::from_static(&[2]),
                std::sync::Arc::from(vec![]),
            ),
            extranonce_prefix: prefix,
            extranonce_size: self.extranonce_size,
            id_width: 0,
            extranonce2_size: 0,
            upstream_target: if channel == 0 {
                Target::MAX
            } else {
                Target::from_le_bytes([job; 32])
            },
            clean: job.is_multiple_of(2),
            route: None,
        }
    }
}

/// A miner task's report.
fn report(miner: MinerId, hashrate: f64, connected: bool) -> MinerReport {
    MinerReport {
        worker: format!("rig-{}", miner.0),
        protocol: "sv1",
        difficulty: 1.0,
        hashrate,
        connected,
        ..MinerReport::joined(miner, String::new(), 0)
    }
}

fn peer(b: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, b], 4028))
}

/// Runs one fuzz input through the hub's core (see the module docs).
pub fn hub(data: &[u8]) {
    let mut i = 0;
    let setup = next(data, &mut i);
    let cfg = HubConfig {
        miners_per_channel: u32::from(setup % 4),
        update_interval: Duration::from_secs(10),
        pools: (0..POOLS)
            .map(|p| format!("stratum2+tcp://pool{p}:1/KEY"))
            .collect(),
        ..HubConfig::default()
    };
    let unix_ms = 1_700_000_000_000;
    let mut hub = Hub::new(cfg, Monitor::detached(unix_ms / 1000));
    let mut s = Shell {
        now: Instant::now(),
        unix_ms,
        next_ticket: 0,
        waiting: HashMap::new(),
        miners: Vec::new(),
        sent: HashMap::new(),
        channels: 1,
        epoch: 0,
        extranonce_size: 0,
        prefix_len: 0,
        route: None,
        published: HashMap::new(),
        route_epoch: 0,
        shares: 0,
    };
    while i < data.len() {
        // the clock moves between any two inputs (a departed miner's shares were received
        // before the next miner with its id joined)
        s.now += Duration::from_micros(1);
        let op = next(data, &mut i) % STEPS;
        let a = next(data, &mut i);
        let now = s.now();
        match op {
            JOIN => {
                let ticket = s.next_ticket;
                s.next_ticket += 1;
                s.waiting.insert(ticket, false);
                hub.join(peer(a), ticket, now);
            }
            LEAVE => {
                if !s.miners.is_empty() {
                    let (c, m) = s.miners.swap_remove(usize::from(a) % s.miners.len());
                    hub.forget(c, m);
                }
            }
            SHARE => {
                let Some(&(channel, miner)) = s.miners.get(usize::from(a) % s.miners.len().max(1))
                else {
                    continue;
                };
                s.shares += 1;
                *s.sent.entry((channel, miner)).or_default() += 1;
                let epoch = if a & 0x80 == 0 {
                    s.epoch
                } else {
                    s.epoch.saturating_sub(1)
                };
                let share = ForwardShare {
                    channel,
                    miner,
                    worker: format!("rig-{a}"),
                    epoch,
                    job_id: u32::from(a % 4),
                    nonce: s.shares,
                    ntime: 1_700_000_000,
                    version: 0x2000_0000,
                    extranonce: Bytes::from(vec![a; usize::from(a % 8)]),
                    difficulty: 1.0,
                    received: s.now,
                };
                // as a miner task: into its work's route, to the hub what that refuses
                let route = (a & 0x40 == 0).then(|| s.published.get(&channel)).flatten();
                match route {
                    Some(r) => {
                        if let Err((share, _)) = r.submit(share) {
                            hub.share(share);
                        }
                    }
                    None => hub.share(share),
                }
            }
            REPORT => {
                if let Some(&(channel, miner)) =
                    s.miners.get(usize::from(a) % s.miners.len().max(1))
                {
                    let hashrate = f64::from(next(data, &mut i)) * 1e10;
                    let r = report(miner, hashrate, a & 0x40 == 0);
                    hub.on_report(channel, r, now);
                }
            }
            ACTIVE => {
                let (prefix_len, id_width, e2) = LAYOUTS[usize::from(a) % LAYOUTS.len()];
                s.epoch += 1;
                s.prefix_len = prefix_len;
                s.extranonce_size = u16::try_from(id_width + e2).unwrap_or(0);
                let (route, rx) = ShareRoute::channel(s.epoch, ROUTE_CAPACITY);
                s.route = Some(rx);
                s.route_epoch = s.epoch;
                hub.on_event(
                    UpstreamEvent::Active {
                        epoch: s.epoch,
                        route,
                        pool: usize::from(a >> 4) % POOLS,
                        url: format!("stratum2+tcp://pool{}:1/KEY", usize::from(a >> 4) % POOLS),
                        channel_id: u32::from(a),
                        extranonce_prefix: Bytes::from(vec![a; prefix_len]),
                        extranonce_size: s.extranonce_size,
                        target: Target::MAX,
                    },
                    now,
                );
            }
            OPENED => {
                let channel = usize::from(a) % (s.channels + 1);
                let epoch = if a & 0x80 == 0 { s.epoch } else { s.epoch + 1 };
                hub.on_event(
                    UpstreamEvent::ChannelOpened {
                        epoch,
                        channel,
                        channel_id: 100 + u32::from(a),
                        extranonce_prefix: Bytes::from(vec![a; s.prefix_len]),
                        extranonce_size: s.extranonce_size,
                        target: Target::MAX,
                    },
                    now,
                );
            }
            REFUSED => {
                let channel = usize::from(a) % (s.channels + 1);
                hub.on_event(
                    UpstreamEvent::ChannelRefused {
                        epoch: s.epoch,
                        channel,
                        reason: "max-channels".into(),
                    },
                    now,
                );
            }
            WORK => {
                let channel = usize::from(a) % (s.channels + 1);
                let mut work = s.work(channel, a);
                if a & 0x80 != 0 {
                    work.epoch = s.epoch.wrapping_sub(1);
                }
                hub.on_event(UpstreamEvent::Work { channel, work }, now);
            }
            PREFIX => {
                let channel = usize::from(a) % (s.channels + 1);
                let len = if a & 0x80 == 0 {
                    s.prefix_len
                } else {
                    s.prefix_len + 1
                };
                hub.on_event(
                    UpstreamEvent::ExtranoncePrefix {
                        epoch: s.epoch,
                        channel,
                        extranonce_prefix: Bytes::from(vec![a; len]),
                    },
                    now,
                );
            }
            RESULT => {
                let taken = s.route.as_mut().and_then(|rx| rx.try_recv().ok());
                if let Some(share) = taken {
                    assert_eq!(
                        share.epoch, s.route_epoch,
                        "a share on another epoch's route"
                    );
                    let accepted = a & 1 == 0;
                    let code = (!accepted)
                        .then(|| ["stale-share", "invalid-share"][usize::from(a >> 1) % 2].into());
                    hub.on_event(
                        UpstreamEvent::ShareResult {
                            share,
                            accepted,
                            code,
                        },
                        now,
                    );
                }
            }
            DOWN => {
                let pool = usize::from(a) % POOLS;
                hub.on_event(
                    UpstreamEvent::Down {
                        pool,
                        url: format!("stratum2+tcp://pool{pool}:1/KEY"),
                        reason: "eof".into(),
                        was_active: a & 0x80 != 0,
                    },
                    now,
                );
            }
            STEP => {
                let ms = u64::from(a) << (next(data, &mut i) % 12);
                s.now += Duration::from_millis(ms);
                s.unix_ms += ms;
            }
            TIMER => {
                if let Some(at) = hub.next_update() {
                    if at > s.now {
                        s.unix_ms += u64::try_from((at - s.now).as_millis()).unwrap_or(0);
                        s.now = at;
                    }
                    hub.on_timer(s.now());
                    s.carry_out(&mut hub);
                    if let Some(next) = hub.next_update() {
                        assert!(next > s.now, "the next timer is not later than now");
                    }
                }
            }
            ABANDON => {
                let mut open: Vec<Ticket> = s
                    .waiting
                    .iter()
                    .filter(|(_, gone)| !**gone)
                    .map(|(t, _)| *t)
                    .collect();
                open.sort_unstable();
                if let Some(t) = open.get(usize::from(a) % open.len().max(1)) {
                    s.waiting.insert(*t, true);
                }
            }
            _ => unreachable!("op {op} of {STEPS}"),
        }
        s.carry_out(&mut hub);
        for m in hub.miners() {
            let key = (m.channel, MinerId(m.id));
            let sent = s.sent.get(&key).copied().unwrap_or(0);
            assert!(
                m.forwarded <= sent,
                "{key:?}: {} forwarded of {sent}",
                m.forwarded
            );
            assert!(
                m.upstream_accepted + m.upstream_rejected <= m.forwarded,
                "{key:?}: more answers than shares"
            );
        }
    }
}
