//! The sans-IO SV1 session driven by scripted firmware lines: handshakes as cgminer / bmminer
//! send them, real shares mined for the notified job (and re-validated on an upstream-side
//! strata-work channel from the forwarded share), every rejection code, epoch changes,
//! vardiff, malformed input.
#![allow(clippy::unwrap_used)]

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

#[test]
fn reports_carry_the_implied_hashrate_until_vardiff_has_evidence_then_the_estimate() {
    let t0 = now0();
    let at = |ms: u64| Now {
        mono: t0.mono + Duration::from_millis(ms),
        unix_ms: t0.unix_ms,
    };
    let cfg = config();
    let w = work(1, 1, 0x42, true);
    let mut idle = Sv1Session::new(cfg.clone(), peer(), t0).unwrap();
    assert_eq!(idle.take_early_report(t0), None, "not mining yet");
    let (mut s, notify) = handshake_at(cfg.clone(), &w, t0);

    // mining started: the hub gets the hashrate its difficulty implies at the configured
    // share rate (difficulty x 2^32 x shares_per_minute / 60), at once
    let target = Target::from_difficulty(EASY).unwrap();
    let implied = hashrate_from_target(&target, cfg.vardiff.shares_per_minute).unwrap();
    let expected = EASY * 2f64.powi(32) * cfg.vardiff.shares_per_minute / 60.0;
    assert!(
        (implied - expected).abs() < 1e-3 * expected,
        "{implied} vs {expected}"
    );
    let first = s
        .take_early_report(t0)
        .expect("an early report when mining starts");
    assert_eq!(first.hashrate, implied);
    assert_eq!(first.difficulty, EASY);
    assert!(first.connected);
    assert_eq!(s.take_early_report(t0), None, "once");
    assert_eq!(
        s.report(t0).unwrap().hashrate,
        implied,
        "periodic ones alike"
    );

    // real shares, one every 100 ms (far more than the 6 a minute the difficulty is for)
    let en1 = hex::decode("0005").unwrap();
    let n = ESTIMATE_MIN_SHARES;
    let mut nonce = 0;
    let mut out = vec![];
    for k in 1..=n {
        let en2 = [0, 0, 0, 0, 0, k as u8];
        nonce = mine(&notify, &en1, &en2, 0x2000_0000, target, true, nonce);
        let line = submit_line(10 + k, "user.s9", &notify.job_id, &en2, T0, nonce, None);
        s.handle_line(line.as_bytes(), at(100 * k), &mut out);
        assert!(
            out.iter()
                .any(|a| matches!(a, Sv1Action::Send(l) if l.contains("\"result\":true"))),
            "share {k}: {out:?}"
        );
        out.clear();
        if k < n {
            assert_eq!(s.take_early_report(at(100 * k)), None);
            assert_eq!(
                s.report(at(100 * k)).unwrap().hashrate,
                implied,
                "share {k}"
            );
        }
    }
    // the window holds enough shares: the estimate takes over, and the hub hears of it now
    let r = s
        .take_early_report(at(100 * n))
        .expect("an early report when the estimate takes over");
    // n shares of `work` hashes each in n / 10 seconds
    let estimate = 10.0 * target.work();
    assert!(
        (r.hashrate - estimate).abs() < 1e-6 * estimate,
        "{} vs {estimate}",
        r.hashrate
    );
    assert!(
        r.hashrate > 50.0 * implied,
        "the difficulty was far too easy"
    );
    assert_eq!(r.accepted, n);
    assert_eq!(s.take_early_report(at(100 * n)), None);
}

#[test]
fn antminer_handshake_then_a_real_share_is_accepted_and_forwarded() {
    let now = now0();
    let w = work(1, 1, 0x42, true);
    let mut s = Sv1Session::new(config(), peer(), now).unwrap();
    let mut out = vec![];
    s.on_work(Some(&w), now, &mut out);

    // configure before subscribe, as bmminer does: 1fffffe0 ∩ 1fffe000 = 1fffe000
    s.handle_line(
        br#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffffe0","version-rolling.min-bit-count":2}]}"#,
        now,
        &mut out,
    );
    let l = lines(&mut out);
    assert_eq!(
        l,
        vec![
            json!({"id":1,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null})
        ]
    );

    s.handle_line(
        b"{\"id\": 2, \"method\": \"mining.subscribe\", \"params\": [\"bmminer/2.0.0\"]}",
        now,
        &mut out,
    );
    assert_eq!(out, vec![Sv1Action::Join]);
    out.clear();
    assert_eq!(s.miner(), None);
    s.on_slot(Ok(Slot { miner: MINER }), now, &mut out);
    assert_eq!(s.miner(), Some(MINER));
    let l = lines(&mut out);
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(
        l[0],
        json!({"id":2,"result":[[["mining.set_difficulty","00000005"],["mining.notify","00000005"]],"0005",6],"error":null})
    );
    assert_eq!(method(&l[1]), "mining.set_difficulty");
    assert_eq!(l[1]["params"][0].as_f64(), Some(EASY));
    assert_eq!(method(&l[2]), "mining.notify");
    let p = l[2]["params"].as_array().unwrap();
    assert_eq!(p[0], json!("1"));
    // SV1 word order of the prevhash: each 4-byte word swapped (all bytes equal here, so
    // check with the library helper on a recognisable pattern below)
    assert_eq!(p[1], json!(hex::encode([0x42u8; 32])));
    // coinbase1 = the job's coinbase prefix ‖ the upstream channel's extranonce prefix
    assert_eq!(
        p[2],
        json!(format!(
            "{}{}",
            hex::encode(&w.coinbase_prefix),
            hex::encode(&w.extranonce_prefix)
        ))
    );
    assert_eq!(p[3], json!(hex::encode(&w.coinbase_suffix)));
    assert_eq!(
        p[4],
        json!([hex::encode([0x11u8; 32]), hex::encode([0x22u8; 32])])
    );
    assert_eq!(p[5], json!("20000000"));
    assert_eq!(p[6], json!("1d00ffff"));
    assert_eq!(p[7], json!(format!("{T0:08x}")));
    assert_eq!(p[8], json!(true));
    let notify = notify_of(&l[2]);

    s.handle_line(
        br#"{"params": ["user.s9", "123"], "id": 3, "method": "mining.authorize"}"#,
        now,
        &mut out,
    );
    assert_eq!(
        lines(&mut out),
        vec![json!({"id":3,"result":true,"error":null})]
    );

    // mine a real share with rolled version bits
    let en1 = hex::decode("0005").unwrap();
    let en2 = [1, 2, 3, 4, 5, 6];
    let bits = 0x0000_6000;
    let version = 0x2000_0000 | bits;
    let target = Target::from_difficulty(EASY).unwrap();
    let nonce = mine(&notify, &en1, &en2, version, target, true, 0);
    s.handle_line(
        submit_line(4, "user.s9", "1", &en2, T0, nonce, Some(bits)).as_bytes(),
        now,
        &mut out,
    );
    assert_eq!(out.len(), 2, "{out:?}");
    let Sv1Action::Forward(f) = out.remove(0) else {
        panic!("no forward: {out:?}");
    };
    assert_eq!(
        lines(&mut out),
        vec![json!({"id":4,"result":true,"error":null})]
    );
    assert_eq!(f.miner, MINER);
    assert_eq!(f.worker, "user.s9");
    assert_eq!(f.version, version);
    assert_eq!(&f.extranonce[..], &[0, 5, 1, 2, 3, 4, 5, 6]);
    assert!((f.difficulty - EASY).abs() < 1e-12);
    validate_upstream(&w, &f);
    assert_eq!(s.accepted(), 1);
    let r = s.report(now).unwrap();
    assert_eq!(
        (r.accepted, r.worker.as_str(), r.protocol),
        (1, "user.s9", "sv1")
    );
    assert_eq!(r.user_agent, "bmminer/2.0.0");
    assert_eq!(r.address, "10.0.0.7:4028");
}

#[test]
fn prevhash_goes_out_in_sv1_word_order() {
    let mut w = (*work(1, 1, 0, true)).clone();
    for (i, b) in w.prev_hash.iter_mut().enumerate() {
        *b = i as u8;
    }
    let w = Arc::new(w);
    let now = now0();
    let mut s = Sv1Session::new(config(), peer(), now).unwrap();
    let mut out = vec![];
    s.on_work(Some(&w), now, &mut out);
    s.handle_line(
        br#"{"id":1,"method":"mining.subscribe","params":[]}"#,
        now,
        &mut out,
    );
    out.clear();
    s.on_slot(Ok(Slot { miner: MINER }), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(
        l[2]["params"][1],
        json!(hex::encode(strata_sv1::sv1_prevhash_from_header(
            w.prev_hash
        )))
    );
    assert_eq!(
        l[2]["params"][1].as_str().unwrap()[..16],
        *"0302010007060504"
    );
}

#[test]
fn subscribe_without_user_agent_waits_for_the_first_work_and_ids_are_echoed() {
    let now = now0();
    let mut s = Sv1Session::new(config(), peer(), now).unwrap();
    let mut out = vec![];
    s.on_work(None, now, &mut out);
    // cgminer's authorize before the subscribe answer, with a string id
    s.handle_line(
        br#"{"id":"sub","method":"mining.subscribe","params":[]}"#,
        now,
        &mut out,
    );
    assert_eq!(out, vec![Sv1Action::Join]);
    out.clear();
    s.on_slot(
        Ok(Slot {
            miner: MinerId(0x0102),
        }),
        now,
        &mut out,
    );
    assert!(out.is_empty(), "no work yet: no answer: {out:?}");
    s.handle_line(
        br#"{"id":null,"method":"mining.authorize","params":["w1","x"]}"#,
        now,
        &mut out,
    );
    s.handle_line(
        br#"{"id":7.0,"method":"mining.extranonce.subscribe","params":[]}"#,
        now,
        &mut out,
    );
    s.handle_line(
        br#"{"id":"s","method":"mining.suggest_difficulty","params":[0.5]}"#,
        now,
        &mut out,
    );
    let l = lines(&mut out);
    assert_eq!(
        l,
        vec![
            json!({"id":null,"result":true,"error":null}),
            json!({"id":7.0,"result":true,"error":null}),
            json!({"id":"s","result":true,"error":null}),
        ]
    );
    let w = work(1, 1, 9, true);
    s.on_work(Some(&w), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(l[0]["id"], json!("sub"));
    assert_eq!(l[0]["result"][1], json!("0102"));
    assert_eq!(l[0]["result"][2], json!(6));
    assert_eq!(method(&l[1]), "mining.set_difficulty");
    assert_eq!(l[1]["params"][0], json!(0.5), "the suggested difficulty");
    assert_eq!(method(&l[2]), "mining.notify");
    // the id 7.0 was echoed byte for byte
    let mut out2 = vec![];
    s.handle_line(
        br#"{"id":7.0,"method":"mining.extranonce.subscribe","params":[]}"#,
        now,
        &mut out2,
    );
    let Sv1Action::Send(raw) = &out2[0] else {
        panic!()
    };
    assert!(raw.starts_with("{\"id\":7.0,"), "{raw}");
}

#[test]
fn every_rejection_gets_its_code_and_is_counted() {
    let w = work(1, 1, 0x42, true);
    let (mut s, n) = handshake(config(), &w);
    let now = now0();
    let mut out = vec![];
    let en1 = hex::decode("0005").unwrap();
    let en2 = [9u8; 6];
    let target = Target::from_difficulty(EASY).unwrap();
    let v = 0x2000_0000;
    let submit = |s: &mut Sv1Session, line: String| -> Value {
        let mut out = vec![];
        s.handle_line(line.as_bytes(), now, &mut out);
        let last = out.pop().unwrap();
        match last {
            Sv1Action::Send(l) => serde_json::from_str(&l).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let code = |v: &Value| v["error"][0].as_i64();

    let good = mine(&n, &en1, &en2, v, target, true, 0);
    let r = submit(
        &mut s,
        submit_line(10, "user.s9", "1", &en2, T0, good, None),
    );
    assert_eq!(r["result"], json!(true));
    // duplicate
    let r = submit(
        &mut s,
        submit_line(11, "user.s9", "1", &en2, T0, good, None),
    );
    assert_eq!((code(&r), r["id"].clone()), (Some(22), json!(11)));
    // low difficulty
    let bad = mine(&n, &en1, &en2, v, target, false, 0);
    let r = submit(&mut s, submit_line(12, "user.s9", "1", &en2, T0, bad, None));
    assert_eq!(code(&r), Some(23));
    // extranonce2 of the wrong size
    let r = submit(
        &mut s,
        submit_line(13, "user.s9", "1", &[1, 2, 3, 4], T0, good, None),
    );
    assert_eq!(code(&r), Some(20));
    // unknown job
    let r = submit(
        &mut s,
        submit_line(14, "user.s9", "77", &en2, T0, good, None),
    );
    assert_eq!(code(&r), Some(21));
    let r = submit(
        &mut s,
        submit_line(15, "user.s9", "zz", &en2, T0, good, None),
    );
    assert_eq!(code(&r), Some(21));
    // version bits outside the negotiated mask (bit 4 is in 1fffffe0 but not 1fffe000)
    let r = submit(
        &mut s,
        submit_line(16, "user.s9", "1", &en2, T0, good, Some(0x0000_0010)),
    );
    assert_eq!(code(&r), Some(20));
    // ntime far in the future
    let r = submit(
        &mut s,
        submit_line(17, "user.s9", "1", &en2, T0 + 3 * 3600, good, None),
    );
    assert_eq!(code(&r), Some(20));
    // a worker that was never authorized
    let r = submit(&mut s, submit_line(18, "other", "1", &en2, T0, good, None));
    assert_eq!(code(&r), Some(24));
    // malformed params (7-digit nonce)
    let r = submit(
        &mut s,
        r#"{"id":19,"method":"mining.submit","params":["user.s9","1","090909090909","6553f100","1234567"]}"#.into(),
    );
    assert_eq!(code(&r), Some(20));

    // a clean job (new prevhash) makes job 1 stale
    let w2 = work(1, 2, 0x43, true);
    s.on_work(Some(&w2), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["params"][0], json!("2"));
    assert_eq!(l[0]["params"][8], json!(true));
    let en2b = [8u8; 6];
    let other = mine(&n, &en1, &en2b, v, target, true, 0);
    let r = submit(
        &mut s,
        submit_line(20, "user.s9", "1", &en2b, T0, other, None),
    );
    assert_eq!(code(&r), Some(21));

    let rep = s.report(now).unwrap();
    assert_eq!(rep.accepted, 1);
    let get = |k: &str| rep.rejected.get(k).copied().unwrap_or(0);
    assert_eq!(get("duplicate"), 1);
    assert_eq!(get("low-difficulty"), 1);
    assert_eq!(get("malformed"), 2);
    assert_eq!(get("unknown-job"), 2);
    assert_eq!(get("bad-version"), 1);
    assert_eq!(get("bad-ntime"), 1);
    assert_eq!(get("unauthorized"), 1);
    assert_eq!(get("stale"), 1);
    assert_eq!(rep.stale, 1);
    assert_eq!(rep.rejected.values().sum::<u64>(), 10);
}

#[test]
fn submit_before_subscribe_and_without_upstream_are_refused() {
    let now = now0();
    let mut s = Sv1Session::new(config(), peer(), now).unwrap();
    let mut out = vec![];
    s.handle_line(
        submit_line(1, "w", "1", &[0; 6], T0, 0, None).as_bytes(),
        now,
        &mut out,
    );
    let l = lines(&mut out);
    assert_eq!(l[0]["error"][0], json!(25));

    let w = work(1, 1, 0x42, true);
    let (mut s, n) = handshake(config(), &w);
    s.on_work(None, now, &mut out);
    assert!(out.is_empty(), "no jobs without upstream");
    let en1 = hex::decode("0005").unwrap();
    let target = Target::from_difficulty(EASY).unwrap();
    let nonce = mine(&n, &en1, &[0; 6], 0x2000_0000, target, true, 0);
    s.handle_line(
        submit_line(2, "user.s9", "1", &[0; 6], T0, nonce, None).as_bytes(),
        now,
        &mut out,
    );
    let l = lines(&mut out);
    assert_eq!(
        l[0]["error"][0],
        json!(21),
        "not true: there is nobody to forward to"
    );
    assert_eq!(s.rejected(RejectReason::NoUpstream), 1);
    assert!(!s.is_closed());
}

#[test]
fn epoch_change_sends_set_extranonce_to_subscribed_miners_and_reconnects_the_others() {
    let now = now0();
    let w = work(1, 1, 0x42, true);
    let mut moved = (*work(2, 2, 0x42, true)).clone();
    moved.extranonce_prefix = Bytes::from_static(&[1, 2, 3]);
    moved.id_width = 3;
    moved.extranonce2_size = 5;
    let moved = Arc::new(moved);

    // a miner that subscribed to extranonce (through mining.configure)
    let (mut s, n) = handshake(config(), &w);
    let mut out = vec![];
    s.handle_line(
        br#"{"id":9,"method":"mining.configure","params":[["subscribe-extranonce"],{}]}"#,
        now,
        &mut out,
    );
    assert_eq!(
        lines(&mut out),
        vec![json!({"id":9,"result":{"subscribe-extranonce":true},"error":null})]
    );
    s.on_work(Some(&moved), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(
        l[0],
        json!({"id":null,"method":"mining.set_extranonce","params":["000005",5]})
    );
    assert_eq!(method(&l[1]), "mining.notify");
    assert_eq!(l[1]["params"][8], json!(true));
    let n2 = notify_of(&l[1]);
    // the old job is stale now
    let target = Target::from_difficulty(EASY).unwrap();
    let en1 = hex::decode("0005").unwrap();
    let nonce = mine(&n, &en1, &[0; 6], 0x2000_0000, target, true, 0);
    s.handle_line(
        submit_line(10, "user.s9", "1", &[0; 6], T0, nonce, None).as_bytes(),
        now,
        &mut out,
    );
    assert_eq!(lines(&mut out)[0]["error"][0], json!(21));
    assert_eq!(s.rejected(RejectReason::Stale), 1);
    // and a share on the new extranonce is accepted, forwarded with the new layout
    let en1b = hex::decode("000005").unwrap();
    let en2 = [7u8; 5];
    let nonce = mine(&n2, &en1b, &en2, 0x2000_0000, target, true, 0);
    let job = n2.job_id.to_string();
    s.handle_line(
        submit_line(11, "user.s9", &job, &en2, T0, nonce, None).as_bytes(),
        now,
        &mut out,
    );
    let Sv1Action::Forward(f) = out.remove(0) else {
        panic!("{out:?}")
    };
    assert_eq!(&f.extranonce[..], &[0, 0, 5, 7, 7, 7, 7, 7]);
    validate_upstream(&moved, &f);
    out.clear();

    // a miner that did not: client.reconnect, then close
    let (mut s, _) = handshake(config(), &w);
    s.on_work(Some(&moved), now, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        Sv1Action::Send(r#"{"id":null,"method":"client.reconnect","params":[]}"#.into())
    );
    assert!(matches!(out[1], Sv1Action::Close { .. }));
    assert!(s.is_closed());

    // another pool with an extranonce space of the same size: the upstream prefix moves into
    // coinbase1, extranonce1 stays, so even a miner that did not subscribe keeps its
    // connection and gets a clean job
    let mut other = (*work(4, 1, 0x42, true)).clone();
    other.extranonce_prefix = Bytes::from_static(&[9, 9, 9, 9]);
    let other = Arc::new(other);
    let (mut s, _) = handshake(config(), &w);
    let mut out = vec![];
    s.on_work(Some(&other), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(method(&l[0]), "mining.notify");
    assert_eq!(l[0]["params"][8], json!(true));
    assert!(l[0]["params"][2].as_str().unwrap().ends_with("09090909"));
    assert!(!s.is_closed());
    let n3 = notify_of(&l[0]);
    let nonce = mine(&n3, &en1, &[1; 6], 0x2000_0000, target, true, 0);
    s.handle_line(
        submit_line(12, "user.s9", n3.job_id.as_ref(), &[1; 6], T0, nonce, None).as_bytes(),
        now,
        &mut out,
    );
    let Sv1Action::Forward(f) = out.remove(0) else {
        panic!("{out:?}")
    };
    validate_upstream(&other, &f);
    out.clear();

    // same extranonce, new epoch: no reconnect, a clean job, old jobs stale
    let (mut s, _) = handshake(config(), &w);
    let mut out = vec![];
    s.on_work(Some(&work(3, 1, 0x42, false)), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(l.len(), 1);
    assert_eq!(
        l[0]["params"][8],
        json!(true),
        "a new epoch is always clean"
    );
}

#[test]
fn non_clean_work_extends_the_job_list_and_duplicate_works_are_not_resent() {
    let now = now0();
    let w = work(1, 1, 0x42, true);
    let (mut s, n1) = handshake(config(), &w);
    let mut out = vec![];
    let w2 = work(1, 2, 0x42, false);
    s.on_work(Some(&w2), now, &mut out);
    s.on_work(Some(&w2), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(l.len(), 1, "one notify per work");
    assert_eq!(l[0]["params"][0], json!("2"));
    assert_eq!(l[0]["params"][8], json!(false));
    // job 1 is still valid and forwards under its own upstream job id
    let en1 = hex::decode("0005").unwrap();
    let target = Target::from_difficulty(EASY).unwrap();
    let nonce = mine(&n1, &en1, &[3; 6], 0x2000_0000, target, true, 0);
    s.handle_line(
        submit_line(5, "user.s9", "1", &[3; 6], T0, nonce, None).as_bytes(),
        now,
        &mut out,
    );
    let Sv1Action::Forward(f) = out.remove(0) else {
        panic!("{out:?}")
    };
    assert_eq!(f.job_id, w.job_id);
    // a missed clean work (the watch keeps only the newest) is detected from the prevhash
    let w4 = work(1, 4, 0x44, false);
    out.clear();
    s.on_work(Some(&w4), now, &mut out);
    assert_eq!(lines(&mut out)[0]["params"][8], json!(true));
}

#[test]
fn vardiff_retarget_sends_difficulty_then_the_job_again_and_old_jobs_keep_their_target() {
    let now = now0();
    let w = work(1, 1, 0x42, true);
    let (mut s, n1) = handshake(config(), &w);
    let en1 = hex::decode("0005").unwrap();
    let easy = Target::from_difficulty(EASY).unwrap();
    let mut out = vec![];
    // 40 shares in 16 s at 6 shares/min expected: far too easy
    let mut start = 0;
    for i in 0..40u64 {
        let nonce = mine(&n1, &en1, &[1; 6], 0x2000_0000, easy, true, start);
        start = nonce + 1;
        s.handle_line(
            submit_line(100 + i, "user.s9", "1", &[1; 6], T0, nonce, None).as_bytes(),
            now.after(Duration::from_millis(400 * i)),
            &mut out,
        );
    }
    assert_eq!(s.accepted(), 40);
    out.clear();
    s.on_tick(now.after(Duration::from_secs(16)), &mut out);
    let l = lines(&mut out);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(method(&l[0]), "mining.set_difficulty");
    let d = l[0]["params"][0].as_f64().unwrap();
    assert!(d > EASY * 4.0, "raised: {d}");
    assert!((s.difficulty() - d).abs() < 1e-15);
    assert_eq!(method(&l[1]), "mining.notify");
    assert_eq!(l[1]["params"][0], json!("2"));
    assert_eq!(
        l[1]["params"][8],
        json!(false),
        "not clean: job 1 stays valid"
    );
    let n2 = notify_of(&l[1]);
    let hard = Target::from_difficulty(d).unwrap();
    // job 1 keeps the old target: an easy share is still accepted there
    let nonce = mine(&n1, &en1, &[1; 6], 0x2000_0000, easy, true, start);
    let later = now.after(Duration::from_secs(17));
    s.handle_line(
        submit_line(200, "user.s9", "1", &[1; 6], T0, nonce, None).as_bytes(),
        later,
        &mut out,
    );
    assert_eq!(
        out.pop(),
        Some(Sv1Action::Send(
            r#"{"id":200,"result":true,"error":null}"#.into()
        ))
    );
    out.clear();
    // job 2 needs the new target
    let weak = (0..)
        .find(|&k| {
            let h = header_hash(&n2, &en1, &[2; 6], 0x2000_0000, k);
            easy.is_met_by(&h) && !hard.is_met_by(&h)
        })
        .unwrap();
    s.handle_line(
        submit_line(201, "user.s9", "2", &[2; 6], T0, weak, None).as_bytes(),
        later,
        &mut out,
    );
    assert_eq!(lines(&mut out)[0]["error"][0], json!(23));
    let strong = mine(&n2, &en1, &[2; 6], 0x2000_0000, hard, true, 0);
    s.handle_line(
        submit_line(202, "user.s9", "2", &[2; 6], T0, strong, None).as_bytes(),
        later,
        &mut out,
    );
    assert!(matches!(out[0], Sv1Action::Forward(_)));
}

#[test]
fn power_of_two_mode_sends_integer_difficulties() {
    let cfg = Arc::new(Sv1Config {
        initial_difficulty: 3000.0,
        vardiff: strata_work::vardiff::VardiffConfig {
            power_of_two: true,
            ..Sv1Config::default().vardiff
        },
        ..Sv1Config::default()
    });
    let now = now0();
    let w = work(1, 1, 0x42, true);
    let mut s = Sv1Session::new(cfg, peer(), now).unwrap();
    let mut out = vec![];
    s.on_work(Some(&w), now, &mut out);
    s.handle_line(
        br#"{"id":1,"method":"mining.subscribe","params":[]}"#,
        now,
        &mut out,
    );
    out.clear();
    s.on_slot(Ok(Slot { miner: MINER }), now, &mut out);
    let Sv1Action::Send(l) = &out[1] else {
        panic!()
    };
    assert!(
        l == r#"{"id":null,"method":"mining.set_difficulty","params":[2048]}"#
            || l == r#"{"id":null,"method":"mining.set_difficulty","params":[4096]}"#,
        "{l}"
    );
}

#[test]
fn garbage_is_answered_and_closes_only_after_the_budget() {
    let now = now0();
    let cfg = Arc::new(Sv1Config {
        max_malformed_lines: 2,
        ..Sv1Config::default()
    });
    let mut s = Sv1Session::new(cfg, peer(), now).unwrap();
    let mut out = vec![];
    s.handle_line(
        br#"{"id":5,"method":"mining.get_transactions","params":[]}"#,
        now,
        &mut out,
    );
    assert_eq!(
        lines(&mut out),
        vec![json!({"id":5,"result":null,"error":[-32601,"Method not found",null]})]
    );
    s.handle_line(b"GET / HTTP/1.1", now, &mut out);
    s.handle_line(b"{\"id\":1,", now, &mut out);
    let l = lines(&mut out);
    assert_eq!(l.len(), 2);
    assert!(l
        .iter()
        .all(|v| v["id"].is_null() && v["error"][0] == json!(-32700)));
    assert!(!s.is_closed());
    s.handle_line(b"\xff\xfe", now, &mut out);
    assert!(matches!(out.last(), Some(Sv1Action::Close { .. })));
    assert!(s.is_closed());
}

#[test]
fn a_full_proxy_refuses_the_subscribe_and_closes() {
    let now = now0();
    let mut s = Sv1Session::new(config(), peer(), now).unwrap();
    let mut out = vec![];
    s.on_work(Some(&work(1, 1, 1, true)), now, &mut out);
    s.handle_line(
        br#"{"id":1,"method":"mining.subscribe","params":[]}"#,
        now,
        &mut out,
    );
    out.clear();
    s.on_slot(Err(JoinError::Full), now, &mut out);
    assert_eq!(out.len(), 2);
    let Sv1Action::Send(l) = &out[0] else {
        panic!()
    };
    let v: Value = serde_json::from_str(l).unwrap();
    assert_eq!(
        (v["id"].clone(), v["error"][0].clone()),
        (json!(1), json!(20))
    );
    assert!(matches!(out[1], Sv1Action::Close { .. }));
    assert_eq!(s.miner(), None);
    assert!(s.report(now).is_none());
}

#[test]
fn rolling_refused_by_the_upstream_and_a_narrower_upstream_mask_is_announced() {
    let now = now0();
    // configure before any work: the proxy mask alone
    let mut s = Sv1Session::new(config(), peer(), now).unwrap();
    let mut out = vec![];
    s.handle_line(
        br#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"ffffffff","minimum-difficulty.value":0.001}]}"#,
        now,
        &mut out,
    );
    assert_eq!(
        lines(&mut out),
        vec![
            json!({"id":1,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000","minimum-difficulty":true},"error":null})
        ]
    );
    assert!(s.difficulty() >= 0.001, "minimum difficulty honoured");
    // the upstream then allows fewer bits: the miner is told
    let mut narrow = (*work(1, 1, 1, true)).clone();
    narrow.version_mask = 0x0000_e000;
    s.on_work(Some(&Arc::new(narrow)), now, &mut out);
    s.handle_line(
        br#"{"id":2,"method":"mining.subscribe","params":[]}"#,
        now,
        &mut out,
    );
    out.clear();
    s.on_slot(Ok(Slot { miner: MINER }), now, &mut out);
    let l = lines(&mut out);
    assert_eq!(
        l[1],
        json!({"id":null,"method":"mining.set_version_mask","params":["0000e000"]})
    );
    assert_eq!(s.version_mask(), 0xe000);

    // an upstream without rolling: configure answers false
    let mut fixed = (*work(1, 1, 1, true)).clone();
    fixed.version_rolling_allowed = false;
    let mut s = Sv1Session::new(config(), peer(), now).unwrap();
    s.on_work(Some(&Arc::new(fixed)), now, &mut out);
    s.handle_line(
        br#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000"}]}"#,
        now,
        &mut out,
    );
    assert_eq!(
        lines(&mut out),
        vec![json!({"id":1,"result":{"version-rolling":false},"error":null})]
    );
}

#[test]
fn only_shares_meeting_the_upstream_target_are_forwarded_and_shutdown_reconnects() {
    let now = now0();
    let mut hard = (*work(1, 1, 0x42, true)).clone();
    hard.upstream_target = Target::from_difficulty(1e6).unwrap();
    let hard = Arc::new(hard);
    let (mut s, n) = handshake(config(), &hard);
    let en1 = hex::decode("0005").unwrap();
    let target = Target::from_difficulty(EASY).unwrap();
    let nonce = mine(&n, &en1, &[4; 6], 0x2000_0000, target, true, 0);
    let mut out = vec![];
    s.handle_line(
        submit_line(1, "user.s9", "1", &[4; 6], T0, nonce, None).as_bytes(),
        now,
        &mut out,
    );
    assert_eq!(
        out,
        vec![Sv1Action::Send(
            r#"{"id":1,"result":true,"error":null}"#.into()
        )],
        "accepted locally, not forwarded"
    );
    out.clear();
    s.shutdown(&mut out);
    assert_eq!(
        out[0],
        Sv1Action::Send(r#"{"id":null,"method":"client.reconnect","params":[]}"#.into())
    );
    assert!(matches!(out[1], Sv1Action::Close { .. }));
}

#[test]
fn a_connection_that_does_not_subscribe_and_authorize_in_time_is_closed() {
    let t0 = now0();
    let at = |secs: u64| Now {
        mono: t0.mono + Duration::from_secs(secs),
        unix_ms: t0.unix_ms + secs * 1000,
    };
    let cfg = Arc::new(Sv1Config {
        handshake_timeout: Duration::from_secs(30),
        ..(*config()).clone()
    });
    // silent: the timer is due at the timeout, and then the session closes
    let mut s = Sv1Session::new(cfg.clone(), peer(), t0).unwrap();
    assert!(s.next_tick() <= at(30).mono);
    let mut out = vec![];
    s.on_tick(at(29), &mut out);
    assert!(!s.is_closed());
    s.on_tick(at(30), &mut out);
    assert!(
        matches!(out.last(), Some(Sv1Action::Close { reason }) if reason.contains("authorize"))
    );
    assert!(s.is_closed());
    // subscribed but never authorized: the same
    let w = work(1, 1, 0x11, true);
    let mut s = Sv1Session::new(cfg.clone(), peer(), t0).unwrap();
    let mut out = vec![];
    s.on_work(Some(&w), t0, &mut out);
    s.handle_line(
        br#"{"id":1,"method":"mining.subscribe","params":[]}"#,
        t0,
        &mut out,
    );
    s.on_slot(Ok(Slot { miner: MINER }), t0, &mut out);
    out.clear();
    s.on_tick(at(31), &mut out);
    assert!(s.is_closed());
    // subscribed and authorized in time: no timeout, whatever comes later
    let (mut s, _) = handshake_at(cfg, &w, at(10));
    let mut out = vec![];
    s.on_tick(at(3600), &mut out);
    assert!(!s.is_closed(), "{out:?}");
}
