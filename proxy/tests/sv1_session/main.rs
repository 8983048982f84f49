//! The sans-IO SV1 session driven by scripted firmware lines: handshakes as cgminer / bmminer
//! send them, real shares mined for the notified job (and re-validated on an upstream-side
//! strata-work channel from the forwarded share), every rejection code, epoch changes,
//! vardiff, malformed input.
#![allow(clippy::unwrap_used)]

#[path = "../upstream_view/mod.rs"]
mod upstream_view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use strata_protocol::mining::SubmitSharesExtended;
use strata_protocol::B0_32;
use strata_proxy::downstream::sv1::{Now, Sv1Action, Sv1Config, Sv1Session};
use strata_proxy::hub::{JoinError, Slot, ESTIMATE_MIN_SHARES};
use strata_proxy::work::{ForwardShare, RejectReason, UpstreamWork};
use strata_sv1::{Notify, ServerMessage, ServerMethod};
use strata_work::channel::ExtendedWork;
use strata_work::coinbase::txid_from_parts;
use strata_work::extranonce::MinerId;
use strata_work::merkle::merkle_root_from_path;
use strata_work::sha256d::hash_header;
use strata_work::share::validate_extended;
use strata_work::target::{hashrate_from_target, Target};
use upstream_view::upstream_channel;

mod difficulty;
mod handshake;
mod shares;
mod work;

const T0: u32 = 1_700_000_000;
const PREFIX: [u8; 4] = [0xaa, 0xbb, 0xcc, 0xdd];
const MINER: MinerId = MinerId(5);

fn now0() -> Now {
    Now {
        mono: Instant::now(),
        unix_ms: u64::from(T0) * 1000,
    }
}

fn peer() -> SocketAddr {
    "10.0.0.7:4028".parse().unwrap()
}

/// An easy-ish share difficulty (about 4300 hashes per share).
const EASY: f64 = 1e-6;

fn config() -> Arc<Sv1Config> {
    Arc::new(Sv1Config {
        initial_difficulty: EASY,
        ..Sv1Config::default()
    })
}

/// A coinbase split like a pool's: version, input with BIP34 height, then (after the
/// extranonce) sequence, one output and locktime.
fn work(epoch: u64, seq: u64, prev: u8, clean: bool) -> Arc<UpstreamWork> {
    let prefix = hex::decode(
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff\
         1703a08601",
    )
    .unwrap();
    let suffix = hex::decode(
        "ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000",
    )
    .unwrap();
    Arc::new(UpstreamWork {
        epoch,
        seq,
        job_id: 100 + seq as u32,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        version_mask: 0x1fff_e000,
        prev_hash: [prev; 32],
        nbits: 0x1d00_ffff,
        min_ntime: T0,
        extended: ExtendedWork::new(
            Bytes::from(prefix.clone()),
            Bytes::from(suffix.clone()),
            Arc::from(vec![[0x11; 32], [0x22; 32]]),
        ),
        coinbase_prefix: Bytes::from(prefix),
        coinbase_suffix: Bytes::from(suffix),
        merkle_path: Arc::from(vec![[0x11; 32], [0x22; 32]]),
        extranonce_prefix: Bytes::from_static(&PREFIX),
        extranonce_size: 8,
        id_width: 2,
        extranonce2_size: 6,
        upstream_target: Target::MAX,
        clean,
        route: None,
    })
}

/// The session's lines parsed as JSON; panics on any non-Send action.
fn lines(out: &mut Vec<Sv1Action>) -> Vec<Value> {
    out.drain(..)
        .map(|a| match a {
            Sv1Action::Send(l) => {
                assert!(!l.contains('\n'), "one line: {l}");
                serde_json::from_str(&l).unwrap()
            }
            other => panic!("unexpected action {other:?}"),
        })
        .collect()
}

fn method(v: &Value) -> &str {
    v["method"].as_str().unwrap_or("")
}

fn notify_of(v: &Value) -> Notify {
    match ServerMessage::parse_slice(v.to_string().as_bytes()).unwrap() {
        ServerMessage::Request(r) => match r.method {
            ServerMethod::Notify(n) => n,
            other => panic!("not a notify: {other:?}"),
        },
        other => panic!("not a request: {other:?}"),
    }
}

/// A header for `n` with this extranonce and version; its hash.
fn header_hash(n: &Notify, en1: &[u8], en2: &[u8], version: u32, nonce: u32) -> [u8; 32] {
    let txid = txid_from_parts(&n.coinb1, &[en1, en2], &n.coinb2);
    let root = merkle_root_from_path(txid, n.merkle_branch.iter());
    let mut h = [0u8; 80];
    h[0..4].copy_from_slice(&version.to_le_bytes());
    h[4..36].copy_from_slice(&n.prev_hash);
    h[36..68].copy_from_slice(&root);
    h[68..72].copy_from_slice(&n.ntime.to_le_bytes());
    h[72..76].copy_from_slice(&n.nbits.to_le_bytes());
    h[76..80].copy_from_slice(&nonce.to_le_bytes());
    hash_header(&h)
}

/// The first nonce from `start` whose hash meets (or, with `meet = false`, misses) `target`.
fn mine(
    n: &Notify,
    en1: &[u8],
    en2: &[u8],
    version: u32,
    target: Target,
    meet: bool,
    start: u32,
) -> u32 {
    (start..)
        .find(|&nonce| target.is_met_by(&header_hash(n, en1, en2, version, nonce)) == meet)
        .unwrap()
}

fn submit_line(
    id: u64,
    worker: &str,
    job: &str,
    en2: &[u8],
    ntime: u32,
    nonce: u32,
    vbits: Option<u32>,
) -> String {
    let mut params = vec![
        json!(worker),
        json!(job),
        json!(hex::encode(en2)),
        json!(format!("{ntime:08x}")),
        json!(format!("{nonce:08x}")),
    ];
    if let Some(v) = vbits {
        params.push(json!(format!("{v:08x}")));
    }
    json!({"id": id, "method": "mining.submit", "params": params}).to_string()
}

/// The upstream-side check: the forwarded share on an extended channel with the upstream's
/// prefix and size, fed the job `w` stands for.
fn validate_upstream(w: &UpstreamWork, f: &ForwardShare) {
    let mut ch = upstream_channel(w, 7);
    assert_eq!(f.job_id, w.job_id);
    assert_eq!(f.epoch, w.epoch);
    assert_eq!(f.extranonce.len(), usize::from(w.extranonce_size));
    let accepted = validate_extended(
        &mut ch,
        &SubmitSharesExtended {
            channel_id: 7,
            sequence_number: 1,
            job_id: f.job_id,
            nonce: f.nonce,
            ntime: f.ntime,
            version: f.version,
            extranonce: B0_32::new(&f.extranonce).unwrap(),
        },
        u64::from(T0) * 1000,
    );
    assert!(
        accepted.is_ok(),
        "upstream rejects the forwarded share: {accepted:?}"
    );
}

/// A session through configure (mask `1fffffe0`), subscribe, slot, authorize: returns it
/// with the first notify.
fn handshake(cfg: Arc<Sv1Config>, w: &Arc<UpstreamWork>) -> (Sv1Session, Notify) {
    handshake_at(cfg, w, now0())
}

/// [`handshake`], all of it at `now`.
fn handshake_at(cfg: Arc<Sv1Config>, w: &Arc<UpstreamWork>, now: Now) -> (Sv1Session, Notify) {
    let mut s = Sv1Session::new(cfg, peer(), now).unwrap();
    let mut out = vec![];
    s.on_work(Some(w), now, &mut out);
    assert!(out.is_empty());
    s.handle_line(
        br#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffffe0","version-rolling.min-bit-count":2}]}"#,
        now,
        &mut out,
    );
    s.handle_line(
        br#"{"id":2,"method":"mining.subscribe","params":["bmminer/2.0.0"]}"#,
        now,
        &mut out,
    );
    assert_eq!(out.pop(), Some(Sv1Action::Join));
    s.on_slot(Ok(Slot { miner: MINER }), now, &mut out);
    s.handle_line(
        br#"{"params":["user.s9","123"],"id":3,"method":"mining.authorize"}"#,
        now,
        &mut out,
    );
    let l = lines(&mut out);
    let notify = notify_of(l.iter().find(|v| method(v) == "mining.notify").unwrap());
    (s, notify)
}
