//! Property tests: for every typed message, encode then parse gives the same value, and the
//! encoding is one line.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use proptest::prelude::*;
use strata_sv1::{
    Authorize, ClientMessage, ClientMethod, Configure, ConfigureResult, Difficulty, Extranonce2,
    Id, Notify, RawJson, Reconnect, Request, Response, ServerMessage, ServerMethod, SetExtranonce,
    StratumError, Submit, Subscribe, SubscribeResult, Text,
};

fn text() -> impl Strategy<Value = Text> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,24}",
        any::<String>(),
        "[\\x00-\\x1f\"\\\\/é😀]{0,8}",
    ]
    .prop_map(Text::from)
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        Just(Id::Null),
        any::<u64>().prop_map(Id::from),
        any::<i64>().prop_map(Id::from),
        text().prop_map(Id::String),
    ]
}

fn raw_json() -> impl Strategy<Value = RawJson> {
    prop_oneof![
        Just(RawJson::NULL),
        Just(RawJson::TRUE),
        Just(RawJson::EMPTY_ARRAY),
        any::<i64>().prop_map(|n| RawJson::new(n.to_string()).unwrap()),
        any::<String>().prop_map(|s| RawJson::from_value(&serde_json::Value::String(s))),
        Just(RawJson::new("{\"a\":[1,2.5,{\"b\":null}],\"c\":\"\\n\"}").unwrap()),
        Just(RawJson::new("[[],[[]],{}]").unwrap()),
    ]
}

fn non_null_raw_json() -> impl Strategy<Value = RawJson> {
    raw_json().prop_filter("not null", |r| !r.is_null())
}

fn difficulty() -> impl Strategy<Value = Difficulty> {
    prop_oneof![
        (1u64..1 << 53).prop_map(|n| n as f64),
        (0u32..64).prop_map(|p| 2f64.powi(p as i32)),
        1e-12f64..1e20,
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
    ]
    .prop_map(|d| Difficulty::new(d).unwrap())
}

fn bytes(max: usize) -> impl Strategy<Value = bytes::Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(bytes::Bytes::from)
}

fn extranonce2() -> impl Strategy<Value = Extranonce2> {
    proptest::collection::vec(any::<u8>(), 0..=32)
        .prop_map(|v| Extranonce2::from_slice(&v).unwrap())
}

fn key_except(known: &'static [&'static str]) -> impl Strategy<Value = Text> {
    text().prop_filter("not a known key", move |t| !known.contains(&t.as_str()))
}

const CLIENT_METHODS: &[&str] = &[
    "mining.subscribe",
    "mining.authorize",
    "mining.configure",
    "mining.extranonce.subscribe",
    "mining.suggest_difficulty",
    "mining.submit",
];
const SERVER_METHODS: &[&str] = &[
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "client.reconnect",
    "client.show_message",
];

fn submit() -> impl Strategy<Value = Submit> {
    (
        text(),
        text(),
        extranonce2(),
        any::<u32>(),
        any::<u32>(),
        any::<Option<u32>>(),
    )
        .prop_map(
            |(worker_name, job_id, extranonce2, ntime, nonce, version_bits)| Submit {
                worker_name,
                job_id,
                extranonce2,
                ntime,
                nonce,
                version_bits,
            },
        )
}

fn configure() -> impl Strategy<Value = Configure> {
    (
        proptest::collection::vec(text(), 0..4),
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        proptest::option::of(difficulty()),
        proptest::collection::vec(
            (
                key_except(&[
                    "version-rolling.mask",
                    "version-rolling.min-bit-count",
                    "minimum-difficulty.value",
                ]),
                raw_json(),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(extensions, mask, bits, min_diff, other_params)| Configure {
                extensions,
                version_rolling_mask: mask,
                version_rolling_min_bit_count: bits,
                minimum_difficulty: min_diff,
                other_params,
            },
        )
}

fn client_method() -> impl Strategy<Value = ClientMethod> {
    prop_oneof![
        (proptest::option::of(text()), proptest::option::of(text())).prop_map(|(u, s)| {
            ClientMethod::Subscribe(Subscribe {
                user_agent: u,
                session_id: s,
            })
        }),
        (text(), proptest::option::of(text()))
            .prop_map(|(user, password)| ClientMethod::Authorize(Authorize { user, password })),
        configure().prop_map(ClientMethod::Configure),
        Just(ClientMethod::ExtranonceSubscribe),
        difficulty().prop_map(ClientMethod::SuggestDifficulty),
        submit().prop_map(ClientMethod::Submit),
        (key_except(CLIENT_METHODS), raw_json())
            .prop_map(|(method, params)| ClientMethod::Unknown { method, params }),
    ]
}

fn stratum_error() -> impl Strategy<Value = StratumError> {
    (
        any::<i64>(),
        text(),
        proptest::option::of(non_null_raw_json()),
    )
        .prop_map(|(code, message, data)| StratumError {
            code,
            message,
            data,
        })
}

fn response() -> impl Strategy<Value = Response> {
    (id(), raw_json(), proptest::option::of(stratum_error()))
        .prop_map(|(id, result, error)| Response { id, result, error })
}

fn notify() -> impl Strategy<Value = Notify> {
    (
        text(),
        any::<[u8; 32]>(),
        bytes(200),
        bytes(200),
        proptest::collection::vec(any::<[u8; 32]>(), 0..=32),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                job_id,
                prev_hash,
                coinb1,
                coinb2,
                merkle_branch,
                version,
                nbits,
                ntime,
                clean_jobs,
            )| {
                Notify {
                    job_id,
                    prev_hash,
                    coinb1,
                    coinb2,
                    merkle_branch,
                    version,
                    nbits,
                    ntime,
                    clean_jobs,
                }
            },
        )
}

fn server_method() -> impl Strategy<Value = ServerMethod> {
    prop_oneof![
        notify().prop_map(ServerMethod::Notify),
        difficulty().prop_map(ServerMethod::SetDifficulty),
        (bytes(64), any::<u32>()).prop_map(|(extranonce1, extranonce2_size)| {
            ServerMethod::SetExtranonce(SetExtranonce {
                extranonce1,
                extranonce2_size,
            })
        }),
        any::<u32>().prop_map(ServerMethod::SetVersionMask),
        (
            proptest::option::of(text()),
            any::<Option<u16>>(),
            any::<Option<u32>>()
        )
            .prop_map(|(host, port, wait)| ServerMethod::Reconnect(Reconnect {
                host,
                port,
                wait
            })),
        text().prop_map(ServerMethod::ShowMessage),
        (key_except(SERVER_METHODS), raw_json())
            .prop_map(|(method, params)| ServerMethod::Unknown { method, params }),
    ]
}

fn one_line(buf: &[u8]) -> bool {
    buf.last() == Some(&b'\n') && buf.iter().filter(|&&b| b == b'\n').count() == 1
}

proptest! {
    #[test]
    fn client_messages_round_trip(
        msg in prop_oneof![
            (id(), client_method()).prop_map(|(id, method)| ClientMessage::Request(Request { id, method })),
            response().prop_map(ClientMessage::Response),
        ]
    ) {
        let mut buf = Vec::new();
        msg.encode(&mut buf);
        prop_assert!(one_line(&buf));
        prop_assert_eq!(ClientMessage::parse(buf).unwrap(), msg);
    }

    #[test]
    fn server_messages_round_trip(
        msg in prop_oneof![
            (id(), server_method()).prop_map(|(id, method)| ServerMessage::Request(Request { id, method })),
            response().prop_map(ServerMessage::Response),
        ]
    ) {
        let mut buf = bytes::BytesMut::new();
        msg.encode(&mut buf);
        prop_assert!(one_line(&buf));
        // With a trailing \r, as a CRLF peer would send it.
        let mut with_cr = buf.to_vec();
        with_cr.insert(with_cr.len() - 1, b'\r');
        prop_assert_eq!(ServerMessage::parse_slice(&with_cr).unwrap(), msg.clone());
        prop_assert_eq!(ServerMessage::parse(buf).unwrap(), msg);
    }

    #[test]
    fn submit_round_trips(id in id(), s in submit()) {
        let mut buf = Vec::new();
        s.encode(&id, &mut buf);
        let want = ClientMessage::Request(Request { id, method: ClientMethod::Submit(s) });
        prop_assert_eq!(ClientMessage::parse(buf).unwrap(), want);
    }

    #[test]
    fn subscribe_result_round_trips(
        subscriptions in proptest::collection::vec((text(), text()), 0..4),
        extranonce1 in bytes(64),
        extranonce2_size in any::<u32>(),
    ) {
        let r = SubscribeResult { subscriptions, extranonce1, extranonce2_size };
        prop_assert_eq!(SubscribeResult::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn configure_result_round_trips(
        version_rolling in any::<Option<bool>>(),
        version_rolling_mask in any::<Option<u32>>(),
        minimum_difficulty in any::<Option<bool>>(),
        subscribe_extranonce in any::<Option<bool>>(),
        other in proptest::collection::vec(
            (key_except(&["version-rolling", "version-rolling.mask", "minimum-difficulty", "subscribe-extranonce"]), raw_json()),
            0..3,
        ),
    ) {
        let r = ConfigureResult { version_rolling, version_rolling_mask, minimum_difficulty, subscribe_extranonce, other };
        prop_assert_eq!(ConfigureResult::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn prevhash_swap_is_an_involution(h in any::<[u8; 32]>()) {
        prop_assert_eq!(strata_sv1::swap_prevhash_words(strata_sv1::swap_prevhash_words(h)), h);
    }

    #[test]
    fn harnesses_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        strata_sv1::fuzzing::parse_client_line(&data);
        strata_sv1::fuzzing::parse_server_line(&data);
        strata_sv1::fuzzing::line_decoder(&data);
    }

    #[test]
    fn harnesses_on_mutated_real_lines(
        which in 0usize..4,
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let lines: [&[u8]; 4] = [
            b"{\"params\": [\"slush.s9\", \"2b50\", \"01000000\", \"5b8e7f0a\", \"4f0a8c2e\", \"00c00000\"], \"id\": 7, \"method\": \"mining.submit\"}",
            b"{\"id\":1,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\",\"minimum-difficulty\"],{\"version-rolling.mask\":\"1fffe000\",\"version-rolling.min-bit-count\":2,\"minimum-difficulty.value\":2048}]}",
            b"{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"b4\"],[\"mining.notify\",\"ae\"]],\"08000002\",4],\"error\":null}",
            b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"bf\",\"4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000\",\"0100\",\"ff\",[],\"00000002\",\"1c2ac4af\",\"504e86b9\",false]}",
        ];
        let mut line = lines[which].to_vec();
        let i = pos.index(line.len());
        line[i] = byte;
        strata_sv1::fuzzing::parse_client_line(&line);
        strata_sv1::fuzzing::parse_server_line(&line);
        line.push(b'\n');
        strata_sv1::fuzzing::line_decoder(&[7].iter().chain(&line).copied().collect::<Vec<_>>());
    }
}
