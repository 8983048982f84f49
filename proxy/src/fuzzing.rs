//! Fuzzing harnesses for the proxy's role state machines (the `proxy_sv1_session`,
//! `proxy_sv2_session`, `proxy_upstream_session`, `proxy_failover`, `proxy_hub` and
//! `jdc_session` cargo-fuzz targets are shims over [`sv1_session`], [`sv2_session`],
//! [`upstream_session`], [`failover`], [`hub()`] and [`jdc::session`]; their seeds are
//! replayed by `cargo test`).
//!
//! Each input is a script: one control byte, then its argument. The downstream scripts feed
//! the session miner input (SV1 lines or SV2 frame bytes), the hub's answer to a join, new
//! [`UpstreamWork`] (same tip, new tip, new epoch with another extranonce layout, or none)
//! and ticks with advancing time. The upstream script feeds pool frames, shares to forward,
//! hashrate updates, time and the end of the connection.
//!
//! Invariants checked (beyond "no panic"):
//!
//! * SV1 ([`crate::downstream::sv1::Sv1Session`]): nothing after a `Close`; every `Send` is
//!   one JSON line (`serde_json` parses it, no newline inside); every `Forward` is followed
//!   by the miner's `true` and counted as an accepted share, and carries an extranonce of
//!   exactly the current work's `extranonce_size` bytes.
//! * SV2 downstream ([`crate::downstream::sv2::Sv2DownSession`]): nothing after a `Close`;
//!   every `Send` encodes to a frame that decodes back to the same message; forwards are
//!   counted as accepted and carry `extranonce_size` bytes of extranonce.
//! * Upstream ([`crate::upstream::session::UpstreamSession`]): every share submitted comes
//!   back at most once as a `ShareResult`, all of them once the connection ended; after an
//!   error (which ends the connection, as the connection task does) the session refuses
//!   every input: pool messages are errors with no output, a share comes straight back as
//!   `stale-upstream`, hashrate updates send nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use strata_protocol::{FrameDecoder, Message};
use strata_work::channel::ExtendedWork;
use strata_work::extranonce::MinerId;
use strata_work::target::Target;

use crate::downstream::sv1::{Now as Sv1Now, Sv1Action, Sv1Config, Sv1Session};
use crate::downstream::sv2::{Action as Sv2Action, Now as Sv2Now, Sv2DownConfig, Sv2DownSession};
use crate::hub::{JoinError, Slot};
use crate::upstream::session::{
    Action as UpAction, SessionConfig as UpConfig, UpstreamSession, CODE_STALE_UPSTREAM,
};
use crate::work::{ForwardShare, UpstreamWork};

mod hub;

pub use self::hub::hub;
pub mod jdc;

/// Largest frame the harness decoder accepts.
pub(crate) const MAX_FRAME: usize = 1 << 16;

/// UNIX time (ms) every script starts at; the works' `min_ntime` is its second.
const START_UNIX_MS: u64 = 1_700_000_000_000;

/// Extranonce layouts a new epoch may take: (upstream prefix length, miner id width,
/// extranonce2 size). The last ones do not fit 32 bytes or leave nothing to roll.
const LAYOUTS: [(usize, usize, usize); 8] = [
    (4, 2, 4),
    (8, 1, 2),
    (2, 4, 8),
    (16, 2, 14),
    (0, 3, 8),
    (4, 2, 1),
    (20, 2, 12),
    (4, 0, 0),
];

fn peer() -> SocketAddr {
    SocketAddr::from(([192, 168, 1, 50], 4028))
}

/// Reads the byte at `*i` (0 past the end) and advances.
pub(crate) fn next(data: &[u8], i: &mut usize) -> u8 {
    let b = data.get(*i).copied().unwrap_or(0);
    *i = (*i + 1).min(data.len());
    b
}

/// Reads a one-byte length and that many bytes (fewer at the end of the input).
pub(crate) fn chunk<'a>(data: &'a [u8], i: &mut usize) -> &'a [u8] {
    let n = usize::from(next(data, i));
    let end = (*i + n).min(data.len());
    let c = &data[*i..end];
    *i = end;
    c
}

/// The upstream work a downstream script is fed, step by step.
struct WorkGen {
    epoch: u64,
    seq: u64,
    prev: u8,
    layout: usize,
    rolling: bool,
    easy_upstream: bool,
    current: Option<Arc<UpstreamWork>>,
}

impl WorkGen {
    fn new() -> Self {
        WorkGen {
            epoch: 1,
            seq: 0,
            prev: 1,
            layout: 0,
            rolling: true,
            easy_upstream: true,
            current: None,
        }
    }

    fn build(&self, clean: bool) -> Arc<UpstreamWork> {
        let (prefix_len, id_width, extranonce2_size) = LAYOUTS[self.layout % LAYOUTS.len()];
        let upstream_target = if self.easy_upstream {
            Target::MAX
        } else {
            let mut t = [0xff; 32];
            t[31] = 0x0f;
            Target::from_le_bytes(t)
        };
        let coinbase_prefix = Bytes::from(vec![self.prev; 42]);
        let coinbase_suffix = Bytes::from(vec![0xee; 37]);
        let merkle_path: Arc<[[u8; 32]]> =
            vec![[self.prev ^ 0x5a; 32]; usize::from(self.prev % 3)].into();
        Arc::new(UpstreamWork {
            epoch: self.epoch,
            seq: self.seq,
            job_id: u32::try_from(self.seq % 1000).unwrap_or(0) + 1,
            version: 0x2000_0000,
            version_rolling_allowed: self.rolling,
            version_mask: 0x1fff_e000,
            prev_hash: [self.prev; 32],
            nbits: 0x207f_ffff,
            min_ntime: 1_700_000_000,
            extended: ExtendedWork::new(
                coinbase_prefix.clone(),
                coinbase_suffix.clone(),
                Arc::clone(&merkle_path),
            ),
            coinbase_prefix,
            coinbase_suffix,
            merkle_path,
            extranonce_prefix: Bytes::from(vec![self.epoch as u8; prefix_len]),
            extranonce_size: u16::try_from(id_width + extranonce2_size).unwrap_or(u16::MAX),
            id_width,
            extranonce2_size,
            upstream_target,
            route: None,
            clean,
        })
    }

    /// One work step: `b % 4` is 0 same tip, 1 new tip, 2 new epoch (layout `(b >> 2) % 8`),
    /// 3 no upstream; bit 5 forbids version rolling, bit 7 makes the upstream target hard.
    fn step(&mut self, b: u8) -> Option<Arc<UpstreamWork>> {
        self.rolling = b & 0x20 == 0;
        self.easy_upstream = b & 0x80 == 0;
        self.seq += 1;
        let w = match b % 4 {
            0 => Some(self.build(false)),
            1 => {
                self.prev = self.prev.wrapping_add(1);
                Some(self.build(true))
            }
            2 => {
                self.epoch += 1;
                self.layout = usize::from(b >> 2) % LAYOUTS.len();
                Some(self.build(true))
            }
            _ => None,
        };
        self.current = w.clone();
        w
    }
}

/// The hub's answer to a join: `b % 4 == 3` refuses, otherwise miner id `b`.
fn slot(b: u8) -> Result<Slot, JoinError> {
    if b % 4 == 3 {
        Err(JoinError::Full)
    } else {
        Ok(Slot {
            miner: MinerId(u32::from(b)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// SV1 downstream
// ---------------------------------------------------------------------------------------------

/// Runs one fuzz input through an SV1 miner session.
///
/// Steps (`op % 5`): 0 and 1 a line (one length byte, then the line), 2 the hub's answer to
/// a join (`slot`), 3 new work (`WorkGen::step`), 4 a tick `4 * arg` seconds later. The
/// first byte picks the configuration: even bytes give difficulty-free shares (every share
/// meets the miner's target), odd bytes the defaults.
pub fn sv1_session(data: &[u8]) {
    let mut i = 0;
    let easy = next(data, &mut i).is_multiple_of(2);
    let mut cfg = Sv1Config::default();
    if easy {
        cfg.vardiff.min_difficulty = 1e-12;
        cfg.initial_difficulty = 1e-12;
    }
    let mut now = Sv1Now {
        mono: Instant::now(),
        unix_ms: START_UNIX_MS,
    };
    let mut s =
        Sv1Session::new(Arc::new(cfg), peer(), now).expect("the harness configuration is valid");
    let mut works = WorkGen::new();
    let mut out: Vec<Sv1Action> = Vec::new();
    let mut closed = false;
    let mut forwards = 0u64;
    while i < data.len() {
        let op = next(data, &mut i);
        match op % 5 {
            0 | 1 => {
                let line = chunk(data, &mut i);
                s.handle_line(line, now, &mut out);
            }
            2 => s.on_slot(slot(next(data, &mut i)), now, &mut out),
            3 => {
                let w = works.step(next(data, &mut i));
                s.on_work(w.as_ref(), now, &mut out);
            }
            _ => {
                now = now.after(Duration::from_secs(4 * u64::from(next(data, &mut i))));
                s.on_tick(now, &mut out);
                let _ = s.report(now);
            }
        }
        let mut actions = out.drain(..).peekable();
        while let Some(a) = actions.next() {
            assert!(!closed, "action after Close: {a:?}");
            match a {
                Sv1Action::Send(line) => check_json_line(&line),
                Sv1Action::Forward(f) => {
                    forwards += 1;
                    let size = works
                        .current
                        .as_ref()
                        .map(|w| usize::from(w.extranonce_size));
                    assert_eq!(
                        Some(f.extranonce.len()),
                        size,
                        "forwarded extranonce of the wrong size: {f:?}"
                    );
                    match actions.peek() {
                        Some(Sv1Action::Send(line)) => {
                            let v: serde_json::Value = serde_json::from_str(line)
                                .unwrap_or_else(|e| panic!("not json: {line:?}: {e}"));
                            assert_eq!(v["result"], true, "forward without `true`: {line}");
                        }
                        other => panic!("forward not followed by the miner's answer: {other:?}"),
                    }
                }
                Sv1Action::Close { .. } => closed = true,
                Sv1Action::Join => {}
            }
        }
        assert!(
            forwards <= s.accepted(),
            "{forwards} forwards for {} accepted shares",
            s.accepted()
        );
    }
}

fn check_json_line(line: &str) {
    assert!(!line.contains('\n'), "newline inside a line: {line:?}");
    if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
        panic!("not one JSON value: {line:?}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// SV2 downstream
// ---------------------------------------------------------------------------------------------

/// Feeds `bytes` to `decoder` and returns the messages it completes.
pub(crate) fn decode_all(
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    bytes: &[u8],
) -> Vec<Message> {
    buf.extend_from_slice(bytes);
    let mut msgs = Vec::new();
    while let Ok(Some(frame)) = decoder.decode(buf) {
        if let Ok((msg, _tlvs)) = Message::decode_with_tlvs(&frame.header, &frame.payload) {
            msgs.push(msg);
        }
    }
    msgs
}

/// Asserts that `msg` encodes to one frame that decodes back to `msg`.
fn check_round_trip(msg: &Message) {
    let mut wire = BytesMut::new();
    msg.encode_frame(&mut wire);
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let frame = match decoder.decode(&mut wire) {
        Ok(Some(f)) => f,
        other => panic!("{} does not frame: {other:?}", msg.name()),
    };
    assert!(
        wire.is_empty(),
        "{} leaves bytes after its frame",
        msg.name()
    );
    match Message::decode_with_tlvs(&frame.header, &frame.payload) {
        Ok((back, tlvs)) => {
            assert!(
                tlvs.is_empty(),
                "{} decodes with trailing bytes",
                msg.name()
            );
            assert_eq!(&back, msg, "{} does not decode to itself", msg.name());
        }
        Err(e) => panic!("{} does not decode: {e}", msg.name()),
    }
}

/// Runs one fuzz input through an SV2 miner session.
///
/// Steps (`op % 6`): 0 and 1 SV2 stream bytes (one length byte, then the bytes; every
/// complete frame that decodes goes to the session), 2 the hub's answer to the join the
/// session asked for (`slot`; ignored when none is outstanding), 3 new work (`WorkGen::step`), 4 a tick `4 * arg` seconds later, 5
/// `flush_acks`.
pub fn sv2_session(data: &[u8]) {
    let start = Instant::now();
    let mut now = Sv2Now {
        mono: start,
        unix_ms: START_UNIX_MS,
    };
    let mut s = Sv2DownSession::new(peer(), Arc::new(Sv2DownConfig::default()), now);
    let mut works = WorkGen::new();
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut out: Vec<Sv2Action> = Vec::new();
    let mut closed = false;
    let mut forwards = 0u64;
    let mut join_asked = false;
    let mut i = 0;
    while i < data.len() {
        let op = next(data, &mut i);
        match op % 6 {
            0 | 1 => {
                for msg in decode_all(&mut decoder, &mut buf, chunk(data, &mut i)) {
                    s.on_message(msg, now, &mut out);
                }
            }
            2 => {
                // the hub answers only the join the session asked for
                let answer = slot(next(data, &mut i));
                if std::mem::take(&mut join_asked) {
                    s.on_slot(answer, &mut out);
                }
            }
            3 => {
                let w = works.step(next(data, &mut i));
                s.on_work(w, &mut out);
            }
            4 => {
                let secs = 4 * u64::from(next(data, &mut i));
                now.mono += Duration::from_secs(secs);
                now.unix_ms += secs * 1000;
                s.on_tick(now, &mut out);
            }
            _ => s.flush_acks(&mut out),
        }
        for a in out.drain(..) {
            assert!(!closed, "action after Close: {a:?}");
            match a {
                Sv2Action::Send(msg) => check_round_trip(&msg),
                Sv2Action::Forward(f) => {
                    forwards += 1;
                    let size = works
                        .current
                        .as_ref()
                        .map(|w| usize::from(w.extranonce_size));
                    assert_eq!(
                        Some(f.extranonce.len()),
                        size,
                        "forwarded extranonce of the wrong size: {f:?}"
                    );
                }
                Sv2Action::Close(_) => closed = true,
                Sv2Action::Join => join_asked = true,
            }
        }
        let accepted = s.report(now).map_or(0, |r| r.accepted);
        assert!(
            forwards <= accepted,
            "{forwards} forwards for {accepted} accepted shares"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// upstream
// ---------------------------------------------------------------------------------------------

/// The share of submit step number `n` (its `nonce` is `n`, so results can be matched).
fn share(n: u32, b: u8) -> ForwardShare {
    ForwardShare {
        // two channels: the high bit picks the second (opened, maybe, by the script)
        channel: usize::from(b >> 7),
        miner: MinerId(u32::from(b)),
        worker: if b & 1 == 0 {
            format!("rig-{b}")
        } else {
            "ü".repeat(usize::from(b) / 4)
        },
        epoch: 1,
        job_id: u32::from(b % 4),
        nonce: n,
        ntime: 1_700_000_000,
        version: 0x2000_0000 | (u32::from(b) << 13),
        extranonce: Bytes::from(vec![b; usize::from(b % 40)]),
        difficulty: 1.0,
        received: std::time::Instant::now(),
    }
}

/// Runs one fuzz input through a pool connection's session.
///
/// Steps (`op % 6`): 0 and 1 pool stream bytes (one length byte, then the bytes; every
/// complete frame that decodes goes to the session), 2 a share to forward (its argument
/// shapes the share, its extranonce `arg % 40` bytes, its high bit the channel), 3 a
/// hashrate update (4 bytes, any `f32`; the low bit of the first picks the channel), 4 time
/// passes (`arg` seconds) and the deadline is checked, 5 the connection ends. The session
/// asks for two channels (request ids 1 and 2). An error ends the connection as the
/// connection task does ([`UpstreamSession::close`]).
pub fn upstream_session(data: &[u8]) {
    let mut now = Instant::now();
    let mut s = UpstreamSession::new(UpConfig {
        user_identity: "farm".into(),
        nominal_hashrate: 1e15,
        channels: 2,
        ..UpConfig::default()
    });
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut out: Vec<UpAction> = Vec::new();
    let mut shares = Shares::default();
    let mut submitted = 0u32;
    let mut ended = false;
    s.start(now, &mut out);
    shares.check(&mut out, ended);
    let mut i = 0;
    while i < data.len() {
        let op = next(data, &mut i);
        match op % 6 {
            0 | 1 => {
                for msg in decode_all(&mut decoder, &mut buf, chunk(data, &mut i)) {
                    let r = s.on_message(msg, now, &mut out);
                    if ended {
                        assert!(r.is_err(), "a message accepted after the end");
                        assert!(out.is_empty(), "output after the end: {out:?}");
                    }
                    shares.check(&mut out, ended);
                    if r.is_err() && !ended {
                        s.close(&mut out);
                        ended = true;
                        shares.check(&mut out, ended);
                    }
                }
            }
            2 => {
                submitted += 1;
                shares.submitted.insert(submitted, false);
                s.submit(share(submitted, next(data, &mut i)), &mut out);
                if ended {
                    assert!(
                        matches!(
                            out.as_slice(),
                            [UpAction::ShareResult { accepted: false, code: Some(c), .. }]
                                if c == CODE_STALE_UPSTREAM
                        ),
                        "a share after the end: {out:?}"
                    );
                }
                shares.check(&mut out, ended);
            }
            3 => {
                let b = [
                    next(data, &mut i),
                    next(data, &mut i),
                    next(data, &mut i),
                    next(data, &mut i),
                ];
                s.update_hashrate(usize::from(b[0] & 1), f32::from_le_bytes(b), &mut out);
                shares.check(&mut out, ended);
            }
            4 => {
                now += Duration::from_secs(u64::from(next(data, &mut i)));
                let r = s.check_timeout(now);
                if ended {
                    assert!(r.is_ok(), "a timeout after the end");
                } else if r.is_err() {
                    s.close(&mut out);
                    ended = true;
                    shares.check(&mut out, ended);
                }
            }
            _ => {
                s.close(&mut out);
                if ended {
                    assert!(out.is_empty(), "output of a second close: {out:?}");
                }
                ended = true;
                shares.check(&mut out, ended);
            }
        }
        if ended {
            assert_eq!(s.pending_shares(), 0, "shares pending after the end");
        }
    }
}

/// The shares an upstream script submitted (by nonce) and whether each came back.
#[derive(Default)]
struct Shares {
    submitted: HashMap<u32, bool>,
}

impl Shares {
    /// Checks the actions of one input: messages round-trip, nothing but share results
    /// after the end, each share answered at most once (and all of them once ended).
    fn check(&mut self, out: &mut Vec<UpAction>, ended: bool) {
        for a in out.drain(..) {
            match a {
                UpAction::Send { msg, .. } => {
                    assert!(!ended, "sent {} after the end", msg.name());
                    check_round_trip(&msg);
                }
                UpAction::ShareResult { share, .. } => {
                    let back = self
                        .submitted
                        .get_mut(&share.nonce)
                        .unwrap_or_else(|| panic!("result for a share never submitted"));
                    assert!(!*back, "share {} came back twice", share.nonce);
                    *back = true;
                }
                other => assert!(!ended, "{other:?} after the end"),
            }
        }
        if ended {
            assert!(
                self.submitted.values().all(|b| *b),
                "a share never came back"
            );
        }
    }
}

/// Drives the failover core ([`crate::upstream::failover::Failover`]) with a script of
/// connection events, hub commands and time steps (`proxy_failover` target).
///
/// The first byte sets up: `1 + b % 4` pools, bit 2 turns `return_to_preferred` off. Then
/// each step is one control byte `op`, its low 3 bits choosing:
///
/// | op % 8 | step (arguments: following bytes) |
/// |---|---|
/// | 0 | connection `c` opens channel `x % 4` |
/// | 1 | connection `c` gets work on channel `x % 4` |
/// | 2 | connection `c`'s pool refuses channel `x % 4` |
/// | 3 | connection `c` gets a new extranonce prefix on channel `x % 4` |
/// | 4 | connection `c` ends (`x` bit 0: with a redirect; jitter `x / 256`) |
/// | 5 | the hub: `x` even, UpdateHashrate(channel `x >> 1 & 3`, `y * 1e9` h/s, or NaN for `y == 255`); odd, Channels(`x >> 1 & 7`) |
/// | 6 | `x * 2^(y % 12)` ms pass; the timer fires if due |
/// | 7 | time jumps to the next wake-up, which fires |
///
/// `c` (a byte) picks a live connection (`c % (live + 1)`; the extra choice is an id the
/// core never handed out).
///
/// Invariants checked after every step: no panic; at most one connection is active or the
/// candidate for it, at most one probes; the core's active connection is the one the hub
/// last heard of (an `Activate` not followed by its `Down`), so the hub never has two active
/// pools; epochs grow by one per `Activate`; work and channel events carry the current epoch;
/// actions only name connections the shell holds, `Connect` ids are new and name a pool that
/// exists; `next_wake` is later than `now`.
pub fn failover(data: &[u8]) {
    use crate::upstream::failover::{Action as FAction, ConnEvent, Failover, Role};
    use crate::upstream::session::ChannelInfo;
    use crate::upstream::{PoolUrl, UpstreamCommand, UpstreamConfig, UpstreamEvent};

    let mut i = 0;
    let setup = next(data, &mut i);
    let pools = 1 + usize::from(setup % 4);
    static AUTHORITY: std::sync::OnceLock<strata_noise::PublicKey> = std::sync::OnceLock::new();
    let authority =
        *AUTHORITY.get_or_init(|| strata_noise::AuthorityKeypair::generate().public_key());
    let cfg = UpstreamConfig {
        pools: (0..pools)
            .map(|p| PoolUrl {
                host: "10.0.0.1".into(),
                port: 3000 + p as u16,
                authority,
            })
            .collect(),
        return_to_preferred: setup & 4 == 0,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        probe_interval: Duration::from_secs(1),
        stable_for: Duration::from_secs(3),
        drain_timeout: Duration::from_secs(1),
        ..UpstreamConfig::default()
    };
    let mut now = Instant::now();
    let mut core = Failover::new(&cfg, now);
    let mut out = Vec::new();
    // the shell's view: live connection ids, every id ever handed out, the hub's active one
    let mut live: Vec<u64> = Vec::new();
    let mut handed: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut hub_active: Option<(u64, usize)> = None;
    let mut epoch = 0u64;
    let mut channels = cfg.channels.max(1);
    core.on_timer(now, &mut out);
    let mut check = |core: &Failover, out: &mut Vec<FAction>, now: Instant| {
        for a in out.drain(..) {
            match a {
                FAction::Connect {
                    id,
                    pool,
                    role,
                    channels: n,
                    ..
                } => {
                    assert!(handed.insert(id), "connection id {id} handed out twice");
                    assert!(pool < pools, "pool {pool} of {pools}");
                    assert!(matches!(role, Role::Candidate | Role::Probe), "{role:?}");
                    assert_eq!(n, channels, "a connection opening the wrong channel count");
                    live.push(id);
                }
                FAction::Activate {
                    id, epoch: e, pool, ..
                } => {
                    assert!(live.contains(&id), "activating unknown connection {id}");
                    assert_eq!(e, epoch + 1, "epochs grow by one");
                    epoch = e;
                    hub_active = Some((id, pool));
                }
                FAction::Emit(ev) => match ev {
                    UpstreamEvent::Active { .. } => panic!("Active emitted without a route"),
                    UpstreamEvent::Down {
                        pool, was_active, ..
                    } => {
                        if was_active {
                            let (_, p) = hub_active.take().expect("Down of an active pool");
                            assert_eq!(p, pool, "Down(was_active) of another pool");
                        }
                    }
                    UpstreamEvent::Work { work, .. } => {
                        assert!(hub_active.is_some(), "work without an active pool");
                        assert_eq!(work.epoch, epoch, "work of another epoch");
                    }
                    UpstreamEvent::CustomJob { .. } => {}
                    UpstreamEvent::ChannelOpened { epoch: e, .. }
                    | UpstreamEvent::ChannelRefused { epoch: e, .. }
                    | UpstreamEvent::ExtranoncePrefix { epoch: e, .. } => {
                        assert!(hub_active.is_some(), "channel event without an active pool");
                        assert_eq!(e, epoch, "channel event of another epoch");
                    }
                    UpstreamEvent::ShareResult { .. } => panic!("share results are not the core's"),
                },
                FAction::UpdateHashrate { id, .. }
                | FAction::Drain { id, .. }
                | FAction::SetCustomJob { id, .. } => {
                    assert!(live.contains(&id), "command for unknown connection {id}");
                }
                FAction::Channels(n) => {
                    assert!(n > channels, "channels never shrink");
                    channels = n;
                }
                FAction::Release { id } => {
                    let at = live
                        .iter()
                        .position(|l| *l == id)
                        .expect("release of a live id");
                    live.swap_remove(at);
                }
            }
        }
        let roles: Vec<Role> = core.connections().map(|c| c.2).collect();
        let count = |r: Role| roles.iter().filter(|x| **x == r).count();
        assert!(
            count(Role::Active) + count(Role::Candidate) <= 1,
            "two active or connecting: {roles:?}"
        );
        assert!(count(Role::Probe) <= 1, "two probes: {roles:?}");
        assert_eq!(
            core.active().map(|a| a.0),
            hub_active.map(|a| a.0),
            "the core's active connection is not the hub's"
        );
        assert_eq!(core.epoch(), epoch);
        let mut ids: Vec<u64> = core.connections().map(|c| c.0).collect();
        let mut held = live.clone();
        ids.sort_unstable();
        held.sort_unstable();
        assert_eq!(ids, held, "the core's connections and the shell's differ");
        if let Some(t) = core.next_wake() {
            assert!(t > now, "next wake-up not after now");
        }
    };
    check(&core, &mut out, now);
    let mut n = 0u32;
    while i < data.len() {
        let op = next(data, &mut i);
        let pick = |live: &[u64], b: u8| -> u64 {
            let k = usize::from(b) % (live.len() + 1);
            live.get(k).copied().unwrap_or(1_000_000 + u64::from(b))
        };
        let ids: Vec<u64> = core.connections().map(|c| c.0).collect();
        n += 1;
        match op % 8 {
            0..=4 => {
                let id = pick(&ids, next(data, &mut i));
                let x = next(data, &mut i);
                let channel = usize::from(x % 4);
                let ev = match op % 8 {
                    0 => ConnEvent::Opened(ChannelInfo {
                        index: channel,
                        channel_id: n,
                        extranonce_prefix: Bytes::from(vec![x; 6]),
                        extranonce_size: 10,
                        target: Target::MAX,
                        group_channel_id: 0,
                    }),
                    1 => {
                        let mut g = WorkGen::new();
                        g.seq = u64::from(n);
                        g.epoch = 0;
                        ConnEvent::Work {
                            channel,
                            work: UpstreamWork::clone(&g.build(x & 4 != 0)),
                        }
                    }
                    2 => ConnEvent::Refused {
                        channel,
                        code: "refused".into(),
                    },
                    3 => ConnEvent::ExtranoncePrefix {
                        channel,
                        prefix: Bytes::from(vec![x; 6]),
                    },
                    _ => ConnEvent::Ended {
                        reason: "ended".into(),
                        redirect: (x & 1 == 1).then(|| ("10.0.0.2".to_string(), u16::from(x))),
                    },
                };
                core.on_conn_event(id, ev, now, f64::from(x) / 256.0, &mut out);
            }
            5 => {
                let x = next(data, &mut i);
                let y = next(data, &mut i);
                let cmd = if x.is_multiple_of(2) {
                    UpstreamCommand::UpdateHashrate {
                        channel: usize::from(x >> 1 & 3),
                        hashrate: if y == 255 {
                            f64::NAN
                        } else {
                            f64::from(y) * 1e9
                        },
                    }
                } else {
                    UpstreamCommand::Channels(usize::from(x >> 1 & 7))
                };
                core.on_command(cmd, now, &mut out);
            }
            6 => {
                let x = u64::from(next(data, &mut i));
                let y = next(data, &mut i) % 12;
                now += Duration::from_millis(x << y);
                if core.next_wake().is_some_and(|t| t <= now) {
                    core.on_timer(now, &mut out);
                }
            }
            _ => {
                if let Some(t) = core.next_wake() {
                    now = now.max(t);
                    core.on_timer(now, &mut out);
                }
            }
        }
        check(&core, &mut out, now);
    }
}
