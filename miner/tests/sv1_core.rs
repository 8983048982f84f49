//! The SV1 miner core driven by hand-built lines: shares are checked by rebuilding the header
//! from the notify, the extranonces and the submit, as a server does.

mod common;

use bytes::Bytes;
use common::*;
use strata_miner::sv1::{Sv1Config, Sv1Miner, Sv1Output};
use strata_miner::{Event, MinerError};
use strata_sv1::{
    ClientMessage, ClientMethod, ConfigureResult, Id, Notify, Request, Response, ServerMethod,
    Submit, SubscribeResult, Text,
};
use strata_work::coinbase::txid_from_parts;
use strata_work::merkle::merkle_root_from_path;
use strata_work::sha256d::sha256d;
use strata_work::target::Target;

const EN1: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

fn drain(m: &mut Sv1Miner) -> (Vec<ClientMessage>, Vec<Event>, Vec<Sv1Output>) {
    let (mut sent, mut events, mut other) = (vec![], vec![], vec![]);
    while let Some(o) = m.poll_output() {
        match o {
            Sv1Output::Send(line) => {
                assert_eq!(line.last(), Some(&b'\n'));
                sent.push(ClientMessage::parse_slice(&line).expect("our lines parse"));
            }
            Sv1Output::Event(e) => events.push(e),
            o => other.push(o),
        }
    }
    (sent, events, other)
}

fn respond(m: &mut Sv1Miner, r: Response) {
    m.handle_line(line(|b| r.encode(b)), now())
        .expect("handled");
}

fn notify_line(m: &mut Sv1Miner, method: ServerMethod) {
    m.handle_line(line(|b| method.encode(&Id::Null, b)), now())
        .expect("handled");
}

fn notify(job: &str, clean: bool) -> Notify {
    Notify {
        job_id: Text::from(job.to_owned()),
        prev_hash: [0x77; 32],
        coinb1: Bytes::from_static(&[1, 0, 0, 0, 1, 0xaa]),
        coinb2: Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]),
        merkle_branch: vec![[0x12; 32], [0x34; 32]],
        version: 0x2000_0000,
        nbits: HARD_NBITS,
        ntime: MIN_NTIME,
        clean_jobs: clean,
    }
}

/// Connects and answers configure / subscribe / authorize.
fn session(rolling: bool) -> Sv1Miner {
    let mut m = Sv1Miner::new(Sv1Config {
        minimum_difficulty: Some(0.001),
        ..Sv1Config::new(0, "bcrt1qtest.sim0")
    });
    m.connect();
    let (sent, _, _) = drain(&mut m);
    let ids: Vec<(Id, String)> = sent
        .iter()
        .map(|c| match c {
            ClientMessage::Request(r) => (r.id.clone(), r.method.name().to_owned()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids.iter().map(|i| i.1.as_str()).collect::<Vec<_>>(),
        ["mining.configure", "mining.subscribe", "mining.authorize"]
    );
    match &sent[0] {
        ClientMessage::Request(Request {
            method: ClientMethod::Configure(c),
            ..
        }) => {
            assert_eq!(c.version_rolling(), Some((0x1fff_e000, 2)));
            assert!(c.minimum_difficulty.is_some());
        }
        other => panic!("{other:?}"),
    }
    let cfg = ConfigureResult {
        version_rolling: Some(rolling),
        version_rolling_mask: rolling.then_some(0x1fff_e000),
        minimum_difficulty: Some(true),
        ..Default::default()
    };
    respond(&mut m, Response::configure(ids[0].0.clone(), &cfg));
    let sub = SubscribeResult::new(Text::from("s1"), Bytes::from_static(&EN1), 4);
    respond(&mut m, Response::subscribe(ids[1].0.clone(), &sub));
    respond(&mut m, Response::bool(ids[2].0.clone(), true));
    notify_line(
        &mut m,
        ServerMethod::SetDifficulty(
            strata_sv1::Difficulty::new(easy_target().difficulty()).expect("diff"),
        ),
    );
    m
}

fn mine_submit(m: &mut Sv1Miner) -> (Id, Submit) {
    for _ in 0..10_000 {
        if m.mine(4096, now()).share {
            let (sent, _, _) = drain(m);
            for c in sent {
                if let ClientMessage::Request(Request {
                    id,
                    method: ClientMethod::Submit(s),
                }) = c
                {
                    return (id, s);
                }
            }
        }
    }
    panic!("no share");
}

/// The header hash of a submit, rebuilt as a server does.
fn share_hash(n: &Notify, s: &Submit, mask: u32) -> [u8; 32] {
    let txid = txid_from_parts(&n.coinb1, &[&EN1, s.extranonce2.as_bytes()], &n.coinb2);
    let root = merkle_root_from_path(txid, n.merkle_branch.iter());
    let version = strata_sv1::rolled_version(n.version, s.version_bits.unwrap_or(0), mask);
    let mut h = Vec::with_capacity(80);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&n.prev_hash);
    h.extend_from_slice(&root);
    h.extend_from_slice(&s.ntime.to_le_bytes());
    h.extend_from_slice(&n.nbits.to_le_bytes());
    h.extend_from_slice(&s.nonce.to_le_bytes());
    sha256d(&h)
}

#[test]
fn notify_and_difficulty_give_valid_rolled_shares() {
    let mut m = session(true);
    assert_eq!(m.version_mask(), Some(0x1fff_e000));
    let n = notify("j1", true);
    notify_line(&mut m, ServerMethod::Notify(n.clone()));
    assert_eq!(m.current_job(), Some("j1"));
    let mut rolled = false;
    for _ in 0..4 {
        let (id, s) = mine_submit(&mut m);
        assert_eq!(s.job_id.as_str(), "j1");
        assert_eq!(s.worker_name.as_str(), "bcrt1qtest.sim0");
        assert_eq!(s.extranonce2.len(), 4);
        let bits = s.version_bits.expect("rolling negotiated: 6th param");
        assert_eq!(bits & !0x1fff_e000, 0);
        rolled |= bits != 0;
        assert!(easy_target().is_met_by(&share_hash(&n, &s, 0x1fff_e000)));
        respond(&mut m, Response::bool(id, true));
    }
    assert!(rolled);
    assert_eq!(m.stats().acknowledged, 4);
    let (_, events, _) = drain(&mut m);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ShareAccepted { acked: 4, .. })));
}

#[test]
fn no_version_bits_without_negotiated_rolling_and_rejections_are_counted() {
    let mut m = session(false);
    assert_eq!(m.version_mask(), None);
    let n = notify("j2", true);
    notify_line(&mut m, ServerMethod::Notify(n.clone()));
    let (id, s) = mine_submit(&mut m);
    assert_eq!(s.version_bits, None);
    assert!(easy_target().is_met_by(&share_hash(&n, &s, 0)));
    respond(
        &mut m,
        Response::error(
            id,
            strata_sv1::StratumError::new(23, Text::from("Low difficulty share")),
        ),
    );
    let (id, _) = mine_submit(&mut m);
    respond(&mut m, Response::bool(id, false));
    assert_eq!(m.stats().rejected.get("low-difficulty"), Some(&1));
    assert_eq!(m.stats().rejected.get("rejected"), Some(&1));
}

#[test]
fn survives_non_json_and_malformed_lines() {
    let mut m = session(true);
    for bad in [
        &b"this is not json"[..],
        b"{\"id\":1,",
        b"\x00\xff\xfe",
        b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[1,2]}",
        b"[]",
    ] {
        m.handle_line(Bytes::copy_from_slice(bad), now())
            .expect("skipped, not fatal");
    }
    assert_eq!(m.stats().malformed_lines, 5);
    let n = notify("j3", false);
    notify_line(&mut m, ServerMethod::Notify(n.clone()));
    let (_, s) = mine_submit(&mut m);
    assert!(easy_target().is_met_by(&share_hash(&n, &s, 0x1fff_e000)));
}

#[test]
fn server_requests_are_handled() {
    let mut m = session(true);
    drain(&mut m);
    notify_line(
        &mut m,
        ServerMethod::ShowMessage(Text::from("hello miners")),
    );
    // an unknown request with an id gets a JSON-RPC error back
    m.handle_line(
        Bytes::from_static(b"{\"id\":77,\"method\":\"client.get_version\",\"params\":[]}"),
        now(),
    )
    .expect("handled");
    notify_line(
        &mut m,
        ServerMethod::Reconnect(strata_sv1::Reconnect {
            host: Some(Text::from("proxy2")),
            port: Some(3334),
            wait: Some(1),
        }),
    );
    let (sent, events, other) = drain(&mut m);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ServerMessage { text } if text == "hello miners")));
    match &sent[..] {
        [ClientMessage::Response(r)] => {
            assert_eq!(r.id, Id::from(77u64));
            assert_eq!(r.error.as_ref().map(|e| e.code), Some(-32601));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        other,
        vec![Sv1Output::Reconnect {
            host: Some("proxy2".into()),
            port: Some(3334),
            wait_secs: 1
        }]
    );
}

#[test]
fn harder_difficulty_applies_to_the_current_job_and_set_extranonce_to_the_next() {
    let mut m = session(true);
    let n = notify("j4", true);
    notify_line(&mut m, ServerMethod::Notify(n));
    assert_eq!(m.current_target(), Some(easy_target()));
    let harder = Target::from_difficulty(1.0 / 1_048_576.0).expect("difficulty");
    notify_line(
        &mut m,
        ServerMethod::SetDifficulty(strata_sv1::Difficulty::new(harder.difficulty()).expect("d")),
    );
    let t = m.current_target().expect("work");
    assert!((t.difficulty() / harder.difficulty() - 1.0).abs() < 1e-9);
    notify_line(
        &mut m,
        ServerMethod::SetExtranonce(strata_sv1::SetExtranonce {
            extranonce1: Bytes::from_static(&[1, 2]),
            extranonce2_size: 6,
        }),
    );
    assert_eq!(m.current_job(), Some("j4"));
    notify_line(&mut m, ServerMethod::Notify(notify("j5", true)));
    let (_, s) = mine_submit(&mut m);
    assert_eq!(s.job_id.as_str(), "j5");
    assert_eq!(s.extranonce2.len(), 6);
}

#[test]
fn refused_authorization_is_fatal() {
    let mut m = Sv1Miner::new(Sv1Config::new(0, "nobody"));
    m.connect();
    let (sent, _, _) = drain(&mut m);
    let auth = sent
        .iter()
        .find_map(|c| match c {
            ClientMessage::Request(Request {
                id,
                method: ClientMethod::Authorize(_),
            }) => Some(id.clone()),
            _ => None,
        })
        .expect("authorize sent");
    let err = m
        .handle_line(line(|b| Response::bool(auth, false).encode(b)), now())
        .expect_err("fatal");
    assert!(matches!(
        err,
        MinerError::Sv1Refused {
            request: "mining.authorize",
            ..
        }
    ));
    assert_eq!(err.exit_code(), 1);
}
