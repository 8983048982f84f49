//! Difficulty: vardiff retargets, power-of-two mode, the hashrate reports.

use super::*;

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
