//! Lines as deployed firmware and pools send them.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use strata_sv1::{
    ClientMessage, ClientMethod, ConfigureResult, Difficulty, Id, ServerMessage, ServerMethod,
    StratumError, SubscribeResult, VERSION_MASK_BIP320,
};

fn client(line: &str) -> (Id, ClientMethod) {
    match ClientMessage::parse_slice(line.as_bytes()) {
        Ok(ClientMessage::Request(r)) => {
            strata_sv1::fuzzing::parse_client_line(line.as_bytes());
            (r.id, r.method)
        }
        other => panic!("{line}: {other:?}"),
    }
}

fn server(line: &str) -> (Id, ServerMethod) {
    match ServerMessage::parse_slice(line.as_bytes()) {
        Ok(ServerMessage::Request(r)) => {
            strata_sv1::fuzzing::parse_server_line(line.as_bytes());
            (r.id, r.method)
        }
        other => panic!("{line}: {other:?}"),
    }
}

fn response(line: &str) -> strata_sv1::Response {
    match ServerMessage::parse_slice(line.as_bytes()) {
        Ok(ServerMessage::Response(r)) => {
            strata_sv1::fuzzing::parse_server_line(line.as_bytes());
            r
        }
        other => panic!("{line}: {other:?}"),
    }
}

fn submit(line: &str) -> (Id, strata_sv1::Submit) {
    match client(line) {
        (id, ClientMethod::Submit(s)) => (id, s),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------ client lines

#[test]
fn cgminer_bmminer_antminer_s9() {
    // cgminer writes "params" first, numeric ids, spaces after separators, CRLF.
    let (id, m) = client(
        "{\"id\": 0, \"method\": \"mining.subscribe\", \"params\": [\"bmminer/2.0.0\"]}\r\n",
    );
    assert_eq!(id.as_u64(), Some(0));
    let ClientMethod::Subscribe(s) = m else {
        panic!()
    };
    assert_eq!(s.user_agent.as_deref(), Some("bmminer/2.0.0"));
    assert_eq!(s.session_id, None);

    // Resuming a session with the previous notify subscription id.
    let (_, m) = client(
        "{\"id\": 0, \"method\": \"mining.subscribe\", \"params\": [\"cgminer/4.9.0\", \"ae6812eb4cd7735a302a8a9dd95cf71f\"]}",
    );
    let ClientMethod::Subscribe(s) = m else {
        panic!()
    };
    assert_eq!(
        s.session_id.as_deref(),
        Some("ae6812eb4cd7735a302a8a9dd95cf71f")
    );

    let (id, m) =
        client("{\"id\": 2, \"method\": \"mining.authorize\", \"params\": [\"slush.s9\", \"x\"]}");
    assert_eq!(id.as_u64(), Some(2));
    let ClientMethod::Authorize(a) = m else {
        panic!()
    };
    assert_eq!(a.user, "slush.s9");
    assert_eq!(a.password.as_deref(), Some("x"));

    let (id, s) = submit(
        "{\"params\": [\"slush.s9\", \"2b4f\", \"00000000\", \"5b8e7f0a\", \"b2957c02\"], \"id\": 4, \"method\": \"mining.submit\"}",
    );
    assert_eq!(id.as_u64(), Some(4));
    assert_eq!(s.worker_name, "slush.s9");
    assert_eq!(s.job_id, "2b4f");
    assert_eq!(s.extranonce2.as_bytes(), &[0, 0, 0, 0]);
    assert_eq!(s.ntime, 0x5b8e7f0a);
    assert_eq!(s.nonce, 0xb2957c02);
    assert_eq!(s.version_bits, None);

    // AsicBoost S9: mining.configure then 6-param submits.
    let (_, m) = client(
        "{\"id\": 1, \"method\": \"mining.configure\", \"params\": [[\"version-rolling\"], {\"version-rolling.mask\": \"1fffe000\", \"version-rolling.min-bit-count\": 2}]}",
    );
    let ClientMethod::Configure(c) = m else {
        panic!()
    };
    assert_eq!(c.version_rolling(), Some((VERSION_MASK_BIP320, 2)));
    let (_, s) = submit(
        "{\"params\": [\"slush.s9\", \"2b50\", \"01000000\", \"5b8e7f0a\", \"4f0a8c2e\", \"00c00000\"], \"id\": 7, \"method\": \"mining.submit\"}",
    );
    assert_eq!(s.version_bits, Some(0x00c0_0000));

    // bmminer's proprietary call: kept as Unknown, answered with an error.
    let (_, m) = client("{\"id\": 3, \"method\": \"mining.multi_version\", \"params\": [1]}");
    let ClientMethod::Unknown { method, params } = m else {
        panic!()
    };
    assert_eq!(method, "mining.multi_version");
    assert_eq!(params.as_str(), "[1]");
}

#[test]
fn whatsminer() {
    let (_, m) =
        client("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"btminer/3.0.0\",null]}");
    let ClientMethod::Subscribe(s) = m else {
        panic!()
    };
    assert_eq!(s.user_agent.as_deref(), Some("btminer/3.0.0"));
    assert_eq!(s.session_id, None);
    // Upper-case hex and version bits without leading zeros.
    let (_, s) = submit(
        "{\"id\":6,\"method\":\"mining.submit\",\"params\":[\"acc.m30s\",\"1b7\",\"A1000000\",\"62E0F1A3\",\"7BC1D2E3\",\"2a58000\"]}",
    );
    assert_eq!(s.extranonce2.as_bytes(), &[0xa1, 0, 0, 0]);
    assert_eq!(s.ntime, 0x62e0_f1a3);
    assert_eq!(s.nonce, 0x7bc1_d2e3);
    assert_eq!(s.version_bits, Some(0x02a5_8000));
}

#[test]
fn braiins_os_string_ids_and_full_configure() {
    let (id, m) = client(
        "{\"id\":\"1\",\"method\":\"mining.configure\",\"params\":[[\"version-rolling\",\"minimum-difficulty\",\"subscribe-extranonce\"],{\"version-rolling.mask\":\"1fffffe0\",\"version-rolling.min-bit-count\":16,\"minimum-difficulty.value\":2048}]}",
    );
    assert_eq!(id, Id::from("1"));
    let ClientMethod::Configure(c) = m else {
        panic!()
    };
    assert_eq!(c.extensions.len(), 3);
    assert!(c.requests("subscribe-extranonce"));
    assert_eq!(c.version_rolling(), Some((0x1fff_ffe0, 16)));
    assert_eq!(c.minimum_difficulty, Difficulty::new(2048.0));
    assert!(c.other_params.is_empty());

    let (id, s) = submit(
        "{\"id\":\"17\",\"method\":\"mining.submit\",\"params\":[\"braiins.worker1\",\"6\",\"0000000000000001\",\"64a1b2c3\",\"0d0c0b0a\",\"1fffe000\"]}",
    );
    assert_eq!(id, Id::from("17"));
    assert_eq!(s.extranonce2.len(), 8);
}

#[test]
fn bip310_example_with_unknown_extension() {
    let (_, m) = client(
        "{\"method\": \"mining.configure\",\"id\": 1,\"params\": [[\"minimum-difficulty\", \"version-rolling\", \"info\"],{\"minimum-difficulty.value\": \"0.5\",\"version-rolling.mask\": \"00fff000\", \"version-rolling.min-bit-count\": \"2\", \"info.connection-url\": \"mine.pool.example:3333\", \"info.hw-version\": \"s9\"}]}",
    );
    let ClientMethod::Configure(c) = m else {
        panic!()
    };
    assert_eq!(c.minimum_difficulty, Difficulty::new(0.5));
    assert_eq!(c.version_rolling_mask, Some(0x00ff_f000));
    assert_eq!(c.version_rolling_min_bit_count, Some(2));
    assert_eq!(c.other_params.len(), 2);
    assert_eq!(c.other_params[0].0, "info.connection-url");
    assert_eq!(c.other_params[0].1.as_str(), "\"mine.pool.example:3333\"");
}

#[test]
fn nicehash_style() {
    let (_, m) = client("{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"NiceHash/1.0.0\", \"08000002\", \"stratum.example\", 3333]}");
    let ClientMethod::Subscribe(s) = m else {
        panic!()
    };
    assert_eq!(s.session_id.as_deref(), Some("08000002"));
    let (_, m) = client("{\"id\": 3, \"method\": \"mining.extranonce.subscribe\", \"params\": []}");
    assert_eq!(m, ClientMethod::ExtranonceSubscribe);
    // No params member at all, null id.
    let (id, m) = client("{\"id\":null,\"method\":\"mining.extranonce.subscribe\"}");
    assert_eq!((id, m), (Id::Null, ClientMethod::ExtranonceSubscribe));
    // JSON-RPC 2.0 envelope members are ignored.
    let (_, m) = client(
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"mining.authorize\",\"params\":[\"acct\"]}",
    );
    let ClientMethod::Authorize(a) = m else {
        panic!()
    };
    assert_eq!(a.password, None);
}

#[test]
fn avalon_and_suggest_difficulty_forms() {
    let (_, m) =
        client("{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cgminer/4.11.1\"]}");
    assert!(matches!(m, ClientMethod::Subscribe(_)));
    for (p, d) in [
        ("512", 512.0),
        ("512.0", 512.0),
        ("\"512\"", 512.0),
        ("0.001", 0.001),
    ] {
        let (_, m) = client(&format!(
            "{{\"id\": 2, \"method\": \"mining.suggest_difficulty\", \"params\": [{p}]}}"
        ));
        assert_eq!(
            m,
            ClientMethod::SuggestDifficulty(Difficulty::new(d).unwrap())
        );
    }
}

#[test]
fn ids_are_echoed_verbatim() {
    for id in [
        "0",
        "18446744073709551616123",
        "-5",
        "1.5",
        "\"abc\"",
        "\"\\u0041\"",
        "null",
    ] {
        let line = format!("{{\"id\":{id},\"method\":\"mining.submit\",\"params\":[\"w\",\"j\",\"\",\"00000000\",\"00000000\"]}}");
        let (id_parsed, _) = client(&line);
        let mut out = Vec::new();
        strata_sv1::Response::bool(id_parsed, true).encode(&mut out);
        let expected_id = if id == "\"\\u0041\"" { "\"A\"" } else { id };
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{{\"id\":{expected_id},\"result\":true,\"error\":null}}\n")
        );
    }
}

#[test]
fn parsed_strings_borrow_from_the_line() {
    let line = bytes::Bytes::from_static(
        b"{\"id\":4,\"method\":\"mining.submit\",\"params\":[\"user.w\",\"2b4f\",\"00000000\",\"5b8e7f0a\",\"b2957c02\"]}",
    );
    let Ok(ClientMessage::Request(r)) = ClientMessage::parse(line.clone()) else {
        panic!()
    };
    let ClientMethod::Submit(s) = r.method else {
        panic!()
    };
    let range = line.as_ptr() as usize..line.as_ptr() as usize + line.len();
    assert!(range.contains(&(s.worker_name.as_ptr() as usize)));
    assert!(range.contains(&(s.job_id.as_ptr() as usize)));
}

// ------------------------------------------------------------------ server lines

const SLUSH_NOTIFY: &str = "{\"params\": [\"bf\", \"4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000\", \"01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008\", \"072f736c757368506f6f6c2f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000\", [], \"00000002\", \"1c2ac4af\", \"504e86b9\", false], \"id\": null, \"method\": \"mining.notify\"}";

#[test]
fn notify_as_documented_by_slush() {
    let (id, m) = server(SLUSH_NOTIFY);
    assert_eq!(id, Id::Null);
    let ServerMethod::Notify(n) = m else { panic!() };
    assert_eq!(n.job_id, "bf");
    let mut explorer = n.prev_hash;
    explorer.reverse();
    assert_eq!(
        hex::encode(explorer),
        "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8"
    );
    assert_eq!(n.coinb1.len(), 58);
    assert!(n.merkle_branch.is_empty());
    assert_eq!((n.version, n.nbits, n.ntime), (2, 0x1c2a_c4af, 0x504e_86b9));
    assert!(!n.clean_jobs);
    let mut out = Vec::new();
    n.encode(&mut out);
    let compact: String = SLUSH_NOTIFY.split(", ").collect::<Vec<_>>().join(",");
    let compact = compact.replace("\": ", "\":");
    // Same content; our member order is id, method, params.
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
        serde_json::from_str::<serde_json::Value>(&compact).unwrap()
    );
}

#[test]
fn notify_with_merkle_branch_and_clean_jobs() {
    let line = "{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"1a2\",\"a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5000000000000000000000000\",\"01000000\",\"ffffffff\",[\"4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000\",\"0000000000000000000000000000000000000000000000000000000000000001\"],\"20000000\",\"17034219\",\"64a1b2c3\",true]}";
    let (_, m) = server(line);
    let ServerMethod::Notify(n) = m else { panic!() };
    assert_eq!(n.merkle_branch.len(), 2);
    assert_eq!(
        n.merkle_branch[1][31], 1,
        "merkle hashes are not word-swapped"
    );
    assert!(n.clean_jobs);
    let mut out = Vec::new();
    n.encode(&mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), format!("{line}\n"));
}

#[test]
fn set_difficulty_forms() {
    for (p, d) in [
        ("2048", 2048.0),
        ("1024.0", 1024.0),
        ("0.5", 0.5),
        ("\"65536\"", 65536.0),
        ("1e3", 1000.0),
    ] {
        let (_, m) = server(&format!(
            "{{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[{p}]}}"
        ));
        assert_eq!(m, ServerMethod::SetDifficulty(Difficulty::new(d).unwrap()));
    }
    // Written as an integer when integral.
    let mut out = Vec::new();
    ServerMethod::SetDifficulty(Difficulty::new(1024.0).unwrap()).encode(&Id::Null, &mut out);
    assert_eq!(
        out,
        b"{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1024]}\n"
    );
}

#[test]
fn set_extranonce_version_mask_reconnect_show_message() {
    let (_, m) =
        server("{\"id\":null,\"method\":\"mining.set_extranonce\",\"params\":[\"08000002\",4]}");
    let ServerMethod::SetExtranonce(s) = m else {
        panic!()
    };
    assert_eq!(
        (&s.extranonce1[..], s.extranonce2_size),
        (&[8, 0, 0, 2][..], 4)
    );

    let (_, m) =
        server("{\"id\":null,\"method\":\"mining.set_version_mask\",\"params\":[\"1fffe000\"]}");
    assert_eq!(m, ServerMethod::SetVersionMask(VERSION_MASK_BIP320));

    let (_, m) = server(
        "{\"id\":null,\"method\":\"client.reconnect\",\"params\":[\"stratum.example.com\",3333,0]}",
    );
    let ServerMethod::Reconnect(r) = m else {
        panic!()
    };
    assert_eq!(
        (r.host.as_deref(), r.port, r.wait),
        (Some("stratum.example.com"), Some(3333), Some(0))
    );
    let (_, m) = server("{\"id\":null,\"method\":\"client.reconnect\",\"params\":[\"stratum.example.com\",\"3334\"]}");
    let ServerMethod::Reconnect(r) = m else {
        panic!()
    };
    assert_eq!((r.port, r.wait), (Some(3334), None));
    let (_, m) = server("{\"id\":null,\"method\":\"client.reconnect\",\"params\":[]}");
    assert_eq!(m, ServerMethod::Reconnect(Default::default()));

    let (_, m) = server("{\"id\":null,\"method\":\"client.show_message\",\"params\":[\"Pool maintenance at 12:00 UTC\"]}");
    let ServerMethod::ShowMessage(t) = m else {
        panic!()
    };
    assert_eq!(t, "Pool maintenance at 12:00 UTC");

    // A server request the miner does not know, with an id to answer.
    let (id, m) = server("{\"id\":50,\"method\":\"client.get_version\",\"params\":[]}");
    assert_eq!(id.as_u64(), Some(50));
    assert!(matches!(m, ServerMethod::Unknown { .. }));
}

#[test]
fn responses() {
    let r = response("{\"id\":4,\"result\":true,\"error\":null}");
    assert_eq!((r.result_bool(), r.is_ok()), (Some(true), true));

    let r = response("{\"id\":4,\"result\":null,\"error\":[21,\"Job not found\",null]}");
    let e = r.error.unwrap();
    assert_eq!(
        (e.code, e.message.as_str()),
        (StratumError::JOB_NOT_FOUND, "Job not found")
    );

    let r = response(
        "{\"id\":5,\"result\":false,\"error\":[23,\"Low difficulty share\",\"Traceback...\"]}",
    );
    assert!(!r.is_ok());
    assert_eq!(r.error.unwrap().data.unwrap().as_str(), "\"Traceback...\"");

    let r = response("{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":null,\"error\":{\"code\":24,\"message\":\"Unauthorized worker\"}}");
    assert_eq!(r.error.unwrap().code, StratumError::UNAUTHORIZED);

    let r = response("{\"id\":2,\"error\":\"Unauthorized\"}");
    assert_eq!(r.error.unwrap().message, "Unauthorized");

    // "result": null and "error": null together is still a response.
    let r = response("{\"id\":9,\"result\":null,\"error\":null}");
    assert!(r.result.is_null() && r.error.is_none());
}

#[test]
fn subscribe_responses() {
    let r = response("{\"id\": 1, \"result\": [ [ [\"mining.set_difficulty\", \"b4b6693b72a50c7116db18d6497cac52\"], [\"mining.notify\", \"ae6812eb4cd7735a302a8a9dd95cf71f\"]], \"08000002\", 4], \"error\": null}");
    let s = SubscribeResult::from_json(&r.result).unwrap();
    assert_eq!(s.subscriptions.len(), 2);
    assert_eq!(s.subscriptions[1].1, "ae6812eb4cd7735a302a8a9dd95cf71f");
    assert_eq!(
        (&s.extranonce1[..], s.extranonce2_size),
        (&[8, 0, 0, 2][..], 4)
    );

    // The flat single-pair form, and an extranonce2_size as a string.
    let r = response("{\"id\":1,\"result\":[[\"mining.notify\",\"ae6812eb\"],\"F8000002\",\"8\"],\"error\":null}");
    let s = SubscribeResult::from_json(&r.result).unwrap();
    assert_eq!(
        s.subscriptions,
        vec![("mining.notify".into(), "ae6812eb".into())]
    );
    assert_eq!((s.extranonce1[0], s.extranonce2_size), (0xf8, 8));
}

#[test]
fn configure_responses() {
    let r = response("{\"id\":1,\"result\":{\"version-rolling\":true,\"version-rolling.mask\":\"1fffe000\",\"minimum-difficulty\":true},\"error\":null}");
    let c = ConfigureResult::from_json(&r.result).unwrap();
    assert_eq!(c.version_rolling, Some(true));
    assert_eq!(c.version_rolling_mask, Some(VERSION_MASK_BIP320));
    assert_eq!(c.minimum_difficulty, Some(true));
    assert_eq!(c.subscribe_extranonce, None);

    let r = response("{\"id\":1,\"result\":{\"version-rolling\":\"mask too small\",\"subscribe-extranonce\":false,\"x-custom\":[1,2]},\"error\":null}");
    let c = ConfigureResult::from_json(&r.result).unwrap();
    assert_eq!(c.version_rolling, Some(false));
    assert_eq!(c.subscribe_extranonce, Some(false));
    assert_eq!(c.other[0].1.as_str(), "[1,2]");
}

#[test]
fn server_side_encodings_are_exact() {
    let mut out = Vec::new();
    let result = SubscribeResult::new("ae68".into(), vec![8, 0, 0, 2].into(), 4);
    strata_sv1::Response::subscribe(Id::from(1u64), &result).encode(&mut out);
    strata_sv1::Response::error(
        Id::from("x"),
        StratumError::new(StratumError::DUPLICATE_SHARE, "Duplicate share"),
    )
    .encode(&mut out);
    let cfg = ConfigureResult {
        version_rolling: Some(true),
        version_rolling_mask: Some(VERSION_MASK_BIP320),
        ..Default::default()
    };
    strata_sv1::Response::configure(Id::from(2u64), &cfg).encode(&mut out);
    ServerMethod::SetVersionMask(0x1fffffe0).encode(&Id::Null, &mut out);
    ServerMethod::Reconnect(strata_sv1::Reconnect {
        host: None,
        port: Some(3333),
        wait: None,
    })
    .encode(&Id::Null, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"ae68\"],[\"mining.notify\",\"ae68\"]],\"08000002\",4],\"error\":null}\n\
         {\"id\":\"x\",\"result\":null,\"error\":[22,\"Duplicate share\",null]}\n\
         {\"id\":2,\"result\":{\"version-rolling\":true,\"version-rolling.mask\":\"1fffe000\"},\"error\":null}\n\
         {\"id\":null,\"method\":\"mining.set_version_mask\",\"params\":[\"1fffffe0\"]}\n\
         {\"id\":null,\"method\":\"client.reconnect\",\"params\":[null,3333]}\n"
    );
}

#[test]
fn client_side_encodings_are_exact() {
    let mut out = bytes::BytesMut::new();
    let sub = ClientMethod::Subscribe(strata_sv1::Subscribe {
        user_agent: Some("strata-miner/0.1".into()),
        session_id: None,
    });
    sub.encode(&Id::from(1u64), &mut out);
    let s = strata_sv1::Submit {
        worker_name: "acct.w1".into(),
        job_id: "2b4f".into(),
        extranonce2: strata_sv1::Extranonce2::from_slice(&[0, 0, 0, 1]).unwrap(),
        ntime: 0x5b8e7f0a,
        nonce: 0xb2957c02,
        version_bits: Some(0x00c00000),
    };
    s.encode(&Id::from(4u64), &mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"strata-miner/0.1\"]}\n\
         {\"id\":4,\"method\":\"mining.submit\",\"params\":[\"acct.w1\",\"2b4f\",\"00000001\",\"5b8e7f0a\",\"b2957c02\",\"00c00000\"]}\n"
    );
}
