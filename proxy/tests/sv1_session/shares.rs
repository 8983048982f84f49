//! Shares: rejections and their codes, what is forwarded, version rolling the upstream
//! refuses.

use super::*;

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
