//! Work: prevhash word order, epoch changes, non-clean work.

use super::*;

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
