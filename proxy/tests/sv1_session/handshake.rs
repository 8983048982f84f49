//! The handshake: firmware scripts, waiting for work, a full proxy, garbage, timeouts.

use super::*;

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
