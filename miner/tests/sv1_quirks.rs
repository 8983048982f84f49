//! The SV1 miner's firmware-quirk knobs ([`Sv1Config`]), each driven by hand-built lines:
//! extranonce limits, rolled-bit overrides, no `mining.configure`, id styles,
//! `mining.extranonce.subscribe` and `mining.suggest_difficulty`, and what the miner records
//! of the server's answers ([`strata_miner::sv1::Sv1Observed`]).

mod common;

use bytes::Bytes;
use common::*;
use strata_miner::sv1::{IdCounts, IdStyle, SuggestAt, Sv1Config, Sv1Miner, Sv1Output};
use strata_miner::MinerError;
use strata_sv1::{
    ClientMessage, ClientMethod, ConfigureResult, Difficulty, Id, Notify, Request, Response,
    ServerMethod, SetExtranonce, Submit, SubscribeResult, Text,
};

const MASK: u32 = 0x1fff_e000;

fn sent(m: &mut Sv1Miner) -> Vec<Request<ClientMethod>> {
    let mut out = vec![];
    while let Some(o) = m.poll_output() {
        if let Sv1Output::Send(line) = o {
            match ClientMessage::parse_slice(&line).expect("our lines parse") {
                ClientMessage::Request(r) => out.push(r),
                other => panic!("{other:?}"),
            }
        }
    }
    out
}

fn names(reqs: &[Request<ClientMethod>]) -> Vec<&str> {
    reqs.iter().map(|r| r.method.name()).collect()
}

fn respond(m: &mut Sv1Miner, r: Response) -> Result<(), MinerError> {
    m.handle_line(line(|b| r.encode(b)), now())
}

fn server(m: &mut Sv1Miner, method: ServerMethod) -> Result<(), MinerError> {
    m.handle_line(line(|b| method.encode(&Id::Null, b)), now())
}

fn id_of<'a>(reqs: &'a [Request<ClientMethod>], name: &str) -> &'a Id {
    &reqs
        .iter()
        .find(|r| r.method.name() == name)
        .unwrap_or_else(|| panic!("{name} not sent"))
        .id
}

fn notify(job: &str) -> Notify {
    Notify {
        job_id: Text::from(job.to_owned()),
        prev_hash: [0x77; 32],
        coinb1: Bytes::from_static(&[1, 0, 0, 0, 1, 0xaa]),
        coinb2: Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]),
        merkle_branch: vec![[0x12; 32]],
        version: 0x2000_0000,
        nbits: HARD_NBITS,
        ntime: MIN_NTIME,
        clean_jobs: true,
    }
}

fn easy() -> Difficulty {
    Difficulty::new(easy_target().difficulty()).expect("difficulty")
}

/// Connects `cfg`, answers every request positively (the subscribe with `en1` / `en2_size`,
/// a configure with `MASK`) and returns the miner and the result of the subscribe answer.
fn start(cfg: Sv1Config, en1: &[u8], en2_size: u32) -> (Sv1Miner, Result<(), MinerError>) {
    let mut m = Sv1Miner::new(cfg);
    m.connect();
    let reqs = sent(&mut m);
    let mut sub_result = Ok(());
    for r in &reqs {
        let answer = match &r.method {
            ClientMethod::Configure(_) => Response::configure(
                r.id.clone(),
                &ConfigureResult {
                    version_rolling: Some(true),
                    version_rolling_mask: Some(MASK),
                    ..Default::default()
                },
            ),
            ClientMethod::Subscribe(_) => Response::subscribe(
                r.id.clone(),
                &SubscribeResult::new(Text::from("s1"), Bytes::copy_from_slice(en1), en2_size),
            ),
            _ => Response::bool(r.id.clone(), true),
        };
        let res = respond(&mut m, answer);
        if matches!(r.method, ClientMethod::Subscribe(_)) {
            sub_result = res;
        } else {
            res.expect("answer handled");
        }
    }
    (m, sub_result)
}

/// Mines until a share goes out (`None` if the miner has no work).
fn mine_submit(m: &mut Sv1Miner) -> Option<(Id, Submit)> {
    for _ in 0..10_000 {
        if m.mine(4096, now()).share {
            return sent(m).into_iter().find_map(|r| match r.method {
                ClientMethod::Submit(s) => Some((r.id, s)),
                _ => None,
            });
        }
        if !m.has_work() {
            return None;
        }
    }
    panic!("no share");
}

#[test]
fn defaults_keep_the_well_behaved_miner() {
    let c = Sv1Config::new(0, "w");
    assert!(c.send_configure);
    assert_eq!(c.roll_mask_override, None);
    assert_eq!(c.max_extranonce2_size, None);
    assert_eq!(c.max_extranonce1_len, None);
    assert_eq!(c.id_style, IdStyle::Number);
    assert!(!c.extranonce_subscribe);
    assert_eq!(c.suggest_difficulty, None);
    assert_eq!(c.suggest_at, SuggestAt::BeforeSubscribe);
    let mut m = Sv1Miner::new(c);
    m.connect();
    let reqs = sent(&mut m);
    assert_eq!(
        names(&reqs),
        ["mining.configure", "mining.subscribe", "mining.authorize"]
    );
    let ids: Vec<Id> = reqs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [Id::from(1u64), Id::from(2u64), Id::from(3u64)]);
    // a null-id answer (a server's parse error) is not taken for one of ours
    let mut m = Sv1Miner::new(Sv1Config::new(0, "w"));
    m.connect();
    let reqs = sent(&mut m);
    let parse_error = Response::error(
        Id::Null,
        strata_sv1::StratumError::new(-32700, Text::from("parse error")),
    );
    respond(&mut m, parse_error).expect("not fatal");
    assert_eq!(m.stats().protocol_warnings, 1);
    respond(
        &mut m,
        Response::bool(id_of(&reqs, "mining.authorize").clone(), true),
    )
    .expect("authorize still outstanding");
    assert_eq!(m.stats().protocol_warnings, 1);
    // a large extranonce2_size is fine without a device limit
    let (m, r) = start(Sv1Config::new(0, "w"), &[0; 20], 12);
    r.expect("no device limits by default");
    assert_eq!(m.observed().subscribe, Some((vec![0; 20], 12)));
}

#[test]
fn extranonce2_size_above_the_device_limit_is_refused() {
    let cfg = Sv1Config {
        max_extranonce2_size: Some(8),
        ..Sv1Config::new(0, "s9")
    };
    let (m, r) = start(cfg.clone(), &[1, 2, 3, 4], 9);
    match r {
        Err(MinerError::Sv1Refused { request, reason }) => {
            assert_eq!(request, "mining.subscribe");
            assert!(reason.contains("extranonce2_size 9"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.observed().subscribe, Some((vec![1, 2, 3, 4], 9)));
    let (mut m, r) = start(cfg, &[1, 2, 3, 4], 8);
    r.expect("8 is within the limit");
    server(&mut m, ServerMethod::SetDifficulty(easy())).expect("difficulty");
    server(&mut m, ServerMethod::Notify(notify("1"))).expect("notify");
    let (_, s) = mine_submit(&mut m).expect("work");
    assert_eq!(s.extranonce2.len(), 8);
    // a later set_extranonce beyond the limit breaks the device too
    let err = server(
        &mut m,
        ServerMethod::SetExtranonce(SetExtranonce {
            extranonce1: Bytes::from_static(&[9]),
            extranonce2_size: 10,
        }),
    )
    .expect_err("beyond the limit");
    assert!(matches!(
        err,
        MinerError::Sv1Refused {
            request: "mining.set_extranonce",
            ..
        }
    ));
}

#[test]
fn extranonce1_longer_than_the_device_limit_is_refused() {
    let cfg = Sv1Config {
        max_extranonce1_len: Some(16),
        ..Sv1Config::new(0, "cap16")
    };
    let (_, r) = start(cfg.clone(), &[7; 17], 4);
    match r {
        Err(MinerError::Sv1Refused { request, reason }) => {
            assert_eq!(request, "mining.subscribe");
            assert!(reason.contains("extranonce1 of 17 bytes"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let (m, r) = start(cfg, &[7; 16], 4);
    r.expect("16 bytes are within the limit");
    assert_eq!(m.observed().subscribe, Some((vec![7; 16], 4)));
}

/// The version bits of the shares of `jobs` consecutive jobs (one share each).
fn rolled_bits(cfg: Sv1Config, jobs: usize) -> Vec<u32> {
    let (mut m, r) = start(cfg, &[1, 2, 3, 4], 4);
    r.expect("subscribed");
    server(&mut m, ServerMethod::SetDifficulty(easy())).expect("difficulty");
    (0..jobs)
        .map(|j| {
            server(&mut m, ServerMethod::Notify(notify(&format!("{j:x}")))).expect("notify");
            let (_, s) = mine_submit(&mut m).expect("work");
            s.version_bits.expect("version bits submitted")
        })
        .collect()
}

#[test]
fn a_subset_override_rolls_only_those_bits() {
    let cfg = Sv1Config {
        roll_mask_override: Some(0x0000_6000),
        ..Sv1Config::new(0, "subset")
    };
    let bits = rolled_bits(cfg, 8);
    assert!(bits.iter().all(|b| b & !0x6000 == 0), "{bits:x?}");
    assert!(bits.iter().any(|&b| b != 0), "{bits:x?}");
    // the default rolls within the negotiated mask
    let bits = rolled_bits(Sv1Config::new(0, "full"), 8);
    assert!(bits.iter().all(|b| b & !MASK == 0), "{bits:x?}");
}

#[test]
fn an_override_outside_the_mask_submits_those_bits() {
    let cfg = Sv1Config {
        roll_mask_override: Some(MASK | 0x1000),
        ..Sv1Config::new(0, "rogue")
    };
    let bits = rolled_bits(cfg, 4);
    assert!(bits.iter().any(|b| b & 0x1000 != 0), "{bits:x?}");
}

#[test]
fn without_configure_there_is_no_version_rolling() {
    let cfg = Sv1Config {
        send_configure: false,
        minimum_difficulty: Some(0.01),
        ..Sv1Config::new(0, "old")
    };
    let mut m = Sv1Miner::new(cfg.clone());
    m.connect();
    assert_eq!(
        names(&sent(&mut m)),
        ["mining.subscribe", "mining.authorize"]
    );
    let (mut m, r) = start(cfg, &[1, 2, 3, 4], 4);
    r.expect("subscribed");
    assert_eq!(m.version_mask(), None);
    assert_eq!(m.observed().configure_mask, None);
    server(&mut m, ServerMethod::SetDifficulty(easy())).expect("difficulty");
    server(&mut m, ServerMethod::Notify(notify("1"))).expect("notify");
    let (_, s) = mine_submit(&mut m).expect("work");
    assert_eq!(s.version_bits, None);
}

#[test]
fn string_ids_are_sent_and_matched() {
    let cfg = Sv1Config {
        id_style: IdStyle::String,
        ..Sv1Config::new(0, "str")
    };
    let (mut m, r) = start(cfg, &[1, 2, 3, 4], 4);
    r.expect("subscribed");
    assert_eq!(
        m.observed().response_ids,
        IdCounts {
            number: 0,
            string: 3,
            null: 0
        }
    );
    server(&mut m, ServerMethod::SetDifficulty(easy())).expect("difficulty");
    server(&mut m, ServerMethod::Notify(notify("1"))).expect("notify");
    let (id, _) = mine_submit(&mut m).expect("work");
    assert_eq!(id, Id::from("4"));
    // an answer that changed the id's type is not ours
    respond(&mut m, Response::bool(Id::from(4u64), true)).expect("not fatal");
    assert_eq!(m.stats().acknowledged, 0);
    assert_eq!(m.stats().protocol_warnings, 1);
    respond(&mut m, Response::bool(id, true)).expect("ack");
    assert_eq!(m.stats().acknowledged, 1);
}

#[test]
fn null_ids_are_matched_by_order_and_shape() {
    let cfg = Sv1Config {
        id_style: IdStyle::Null,
        ..Sv1Config::new(0, "null")
    };
    let mut m = Sv1Miner::new(cfg);
    m.connect();
    let reqs = sent(&mut m);
    assert!(reqs.iter().all(|r| r.id.is_null()));
    // cgminer-style servers answer the authorize before the subscribe: the shapes tell
    respond(&mut m, Response::bool(Id::Null, true)).expect("authorize");
    let cfg = ConfigureResult {
        version_rolling: Some(true),
        version_rolling_mask: Some(MASK),
        ..Default::default()
    };
    respond(&mut m, Response::configure(Id::Null, &cfg)).expect("configure");
    let sub = SubscribeResult::new(Text::from("s"), Bytes::from_static(&[1, 2, 3, 4]), 4);
    respond(&mut m, Response::subscribe(Id::Null, &sub)).expect("subscribe");
    assert_eq!(m.version_mask(), Some(MASK));
    assert_eq!(m.stats().protocol_warnings, 0);
    server(&mut m, ServerMethod::SetDifficulty(easy())).expect("difficulty");
    server(&mut m, ServerMethod::Notify(notify("1"))).expect("notify");
    let (id, _) = mine_submit(&mut m).expect("subscribed and authorized: work");
    assert!(id.is_null());
    respond(&mut m, Response::bool(Id::Null, true)).expect("ack");
    assert_eq!(m.stats().acknowledged, 1);
    assert_eq!(m.observed().response_ids.null, 4);
    // an answer with nothing outstanding is a warning, not a crash
    respond(&mut m, Response::bool(Id::Null, true)).expect("stray");
    assert_eq!(m.stats().protocol_warnings, 1);
}

#[test]
fn extranonce_subscribe_is_sent_and_its_answer_recorded() {
    let cfg = Sv1Config {
        extranonce_subscribe: true,
        ..Sv1Config::new(0, "nh")
    };
    let mut m = Sv1Miner::new(cfg.clone());
    m.connect();
    let reqs = sent(&mut m);
    assert_eq!(
        names(&reqs),
        [
            "mining.configure",
            "mining.subscribe",
            "mining.extranonce.subscribe",
            "mining.authorize"
        ]
    );
    respond(
        &mut m,
        Response::bool(id_of(&reqs, "mining.extranonce.subscribe").clone(), false),
    )
    .expect("answer");
    assert_eq!(m.observed().extranonce_subscribe, Some(false));
    let (m, r) = start(cfg, &[1, 2, 3, 4], 4);
    r.expect("subscribed");
    assert_eq!(m.observed().extranonce_subscribe, Some(true));
    assert_eq!(
        Sv1Miner::new(Sv1Config::new(0, "w"))
            .observed()
            .extranonce_subscribe,
        None
    );
}

#[test]
fn suggest_difficulty_goes_before_the_subscribe_and_difficulties_are_recorded() {
    let cfg = Sv1Config {
        suggest_difficulty: Some(512.0),
        ..Sv1Config::new(0, "suggest")
    };
    let mut m = Sv1Miner::new(cfg.clone());
    m.connect();
    let reqs = sent(&mut m);
    assert_eq!(
        names(&reqs),
        [
            "mining.configure",
            "mining.suggest_difficulty",
            "mining.subscribe",
            "mining.authorize"
        ]
    );
    match &reqs[1].method {
        ClientMethod::SuggestDifficulty(d) => assert_eq!(d.get(), 512.0),
        other => panic!("{other:?}"),
    }
    let (mut m, r) = start(cfg.clone(), &[1, 2, 3, 4], 4);
    r.expect("subscribed");
    assert_eq!(m.observed().suggest_difficulty, Some(true));
    for d in [512.0, 1024.0, 0.5] {
        server(
            &mut m,
            ServerMethod::SetDifficulty(Difficulty::new(d).expect("d")),
        )
        .expect("difficulty");
    }
    assert_eq!(m.observed().difficulties, [512.0, 1024.0, 0.5]);
    for (at, order) in [
        (
            SuggestAt::BeforeAuthorize,
            [
                "mining.configure",
                "mining.subscribe",
                "mining.suggest_difficulty",
                "mining.authorize",
            ],
        ),
        (
            SuggestAt::AfterAuthorize,
            [
                "mining.configure",
                "mining.subscribe",
                "mining.authorize",
                "mining.suggest_difficulty",
            ],
        ),
    ] {
        let mut m = Sv1Miner::new(Sv1Config {
            suggest_at: at,
            ..cfg.clone()
        });
        m.connect();
        assert_eq!(names(&sent(&mut m)), order, "{at:?}");
    }
}
