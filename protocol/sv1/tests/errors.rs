//! Every class of bad input gives its typed error, never a panic.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use strata_sv1::{
    ClientMessage, ConfigureResult, FieldError, Id, ParseError, RawJson, ServerMessage,
    SubscribeResult,
};

fn client_err(line: &[u8]) -> ParseError {
    strata_sv1::fuzzing::parse_client_line(line);
    match ClientMessage::parse_slice(line) {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
            e
        }
        Ok(m) => panic!("{:?} parsed: {m:?}", String::from_utf8_lossy(line)),
    }
}

fn server_err(line: &[u8]) -> ParseError {
    strata_sv1::fuzzing::parse_server_line(line);
    match ServerMessage::parse_slice(line) {
        Err(e) => e,
        Ok(m) => panic!("{:?} parsed: {m:?}", String::from_utf8_lossy(line)),
    }
}

/// The field error of a `mining.submit` with these params.
fn submit_err(params: &str) -> (&'static str, FieldError) {
    let line = format!("{{\"id\":7,\"method\":\"mining.submit\",\"params\":{params}}}");
    match client_err(line.as_bytes()) {
        ParseError::InvalidParams {
            id,
            method,
            field,
            kind,
        } => {
            assert_eq!(id, Id::from(7u64));
            assert_eq!(method, "mining.submit");
            (field, kind)
        }
        e => panic!("{params}: {e:?}"),
    }
}

fn server_field_err(method: &str, params: &str) -> (&'static str, FieldError) {
    let line = format!("{{\"id\":null,\"method\":\"{method}\",\"params\":{params}}}");
    match server_err(line.as_bytes()) {
        ParseError::InvalidParams { field, kind, .. } => (field, kind),
        e => panic!("{params}: {e:?}"),
    }
}

#[test]
fn framing_level_errors() {
    assert!(matches!(
        client_err(b"{\"id\":1,\"method\":\"m\xff\"}"),
        ParseError::NotUtf8 { offset: 19 }
    ));
    assert!(matches!(client_err(b""), ParseError::Empty));
    assert!(matches!(client_err(b" \r\n\t"), ParseError::Empty));
    assert!(matches!(client_err(b"hello"), ParseError::NotAnObject));
    assert!(matches!(client_err(b"[1,2,3]"), ParseError::NotAnObject));
    assert!(matches!(client_err(b"42"), ParseError::NotAnObject));
    assert!(matches!(client_err(b"{\"id\":1"), ParseError::Json { .. }));
    assert!(matches!(
        client_err(b"{\"id\":1} trailing"),
        ParseError::Json { .. }
    ));
    assert!(matches!(
        client_err(b"{\"id\":1,\"method\":5}"),
        ParseError::Json { .. }
    ));
    assert!(matches!(
        client_err(b"{\"id\":1,\"id\":2,\"method\":\"x\"}"),
        ParseError::Json { .. }
    ));
    assert!(matches!(
        client_err(b"{\"id\":1,\"method\":\"mining.authorize\",\"params\":[\"a\"]}\n{\"id\":2}"),
        ParseError::MultipleLines
    ));
    assert!(matches!(client_err(b"{\"id\":1}"), ParseError::NotAMessage));
    assert!(matches!(client_err(b"{}"), ParseError::NotAMessage));
    assert!(matches!(
        client_err(b"{\"id\":[1],\"method\":\"x\"}"),
        ParseError::InvalidId
    ));
    assert!(matches!(
        client_err(b"{\"id\":true,\"method\":\"x\"}"),
        ParseError::InvalidId
    ));
    assert!(matches!(
        client_err(b"{\"id\":{},\"method\":\"x\"}"),
        ParseError::InvalidId
    ));
}

#[test]
fn trailing_cr_and_whitespace_are_fine() {
    let line = b"  {\"id\":1,\"method\":\"mining.extranonce.subscribe\",\"params\":[]} \r\n";
    assert!(ClientMessage::parse_slice(line).is_ok());
}

#[test]
fn deep_nesting_and_huge_numbers_do_not_panic() {
    let depth = 200_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // Under an unknown method the params are kept raw (skipping is iterative in serde_json).
    let line = format!("{{\"id\":1,\"method\":\"x.y\",\"params\":{nested}}}");
    strata_sv1::fuzzing::parse_client_line(line.as_bytes());
    // Under a known method it is a typed error.
    let line = format!("{{\"id\":1,\"method\":\"mining.submit\",\"params\":[{nested}]}}");
    let e = client_err(line.as_bytes());
    assert!(
        matches!(
            e,
            ParseError::InvalidParams {
                kind: FieldError::WrongType { .. },
                ..
            }
        ),
        "{e:?}"
    );
    // Unclosed nesting.
    let line = format!("{{\"id\":1,\"params\":{}", "[".repeat(depth));
    assert!(matches!(
        client_err(line.as_bytes()),
        ParseError::Json { .. }
    ));
    let line = format!("{{\"id\":1,\"result\":{}}}", "{\"a\":".repeat(depth));
    assert!(matches!(
        server_err(line.as_bytes()),
        ParseError::Json { .. }
    ));
    // Typed results built from such input.
    let deep = RawJson::new(format!("[{nested},\"00\",1]")).unwrap();
    assert!(SubscribeResult::from_json(&deep).is_err());
    assert!(ConfigureResult::from_json(&deep).is_err());

    // A huge numeric id is kept verbatim.
    let line = b"{\"id\":1e999999,\"method\":\"mining.extranonce.subscribe\"}";
    let Ok(ClientMessage::Request(r)) = ClientMessage::parse_slice(line) else {
        panic!()
    };
    assert_eq!(r.id.to_string(), "1e999999");
    assert_eq!(
        server_field_err("mining.set_extranonce", "[\"00\",1e30]"),
        ("extranonce2_size", FieldError::OutOfRange)
    );
    assert_eq!(
        server_field_err("mining.set_difficulty", "[1e400]"),
        ("difficulty", FieldError::InvalidDifficulty)
    );
    assert_eq!(
        server_field_err("client.reconnect", "[\"h\",70000]"),
        ("port", FieldError::OutOfRange)
    );
}

#[test]
fn submit_field_errors() {
    use FieldError::*;
    let ok = "[\"w\",\"j\",\"00\",\"00000000\",\"00000000\"";
    assert!(ClientMessage::parse_slice(
        format!("{{\"id\":7,\"method\":\"mining.submit\",\"params\":{ok}]}}").as_bytes()
    )
    .is_ok());
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"00000000\"]"),
        ("nonce", Missing)
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"00000000\",null]"),
        ("nonce", Missing)
    );
    assert_eq!(submit_err("[]"), ("worker_name", Missing));
    assert_eq!(submit_err("[\"w\"]"), ("job_id", Missing));
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"00000000\",\"123\"]"),
        (
            "nonce",
            HexLength {
                expected: 8,
                actual: 3
            }
        )
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"000000000\",\"00000000\"]"),
        (
            "ntime",
            HexLength {
                expected: 8,
                actual: 9
            }
        )
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"00000000\",\"zzzzzzzz\"]"),
        ("nonce", InvalidHex)
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"00000000\",12345678]"),
        (
            "nonce",
            WrongType {
                expected: "a hex string"
            }
        )
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"000\",\"00000000\",\"00000000\"]"),
        (
            "extranonce2",
            HexLength {
                expected: 4,
                actual: 3
            }
        )
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"0g\",\"00000000\",\"00000000\"]"),
        ("extranonce2", InvalidHex)
    );
    assert_eq!(
        submit_err(&format!(
            "[\"w\",\"j\",\"{}\",\"00000000\",\"00000000\"]",
            "00".repeat(33)
        )),
        ("extranonce2", TooLong { len: 33, max: 32 })
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"00000000\",\"00000000\",\"100000000\"]"),
        ("version_bits", OutOfRange)
    );
    assert_eq!(
        submit_err("[\"w\",\"j\",\"00\",\"00000000\",\"00000000\",\"\"]"),
        (
            "version_bits",
            HexLength {
                expected: 8,
                actual: 0
            }
        )
    );
    assert_eq!(
        submit_err("{\"worker\":\"w\"}"),
        (
            "params",
            WrongType {
                expected: "an array"
            }
        )
    );
    assert_eq!(
        submit_err("[{},\"j\"]"),
        (
            "worker_name",
            WrongType {
                expected: "a string"
            }
        )
    );
    // The error carries the id for the error response.
    let e = client_err(b"{\"id\":\"s1\",\"method\":\"mining.submit\",\"params\":[]}");
    assert_eq!(e.id(), Some(&Id::from("s1")));
}

#[test]
fn other_method_field_errors() {
    use FieldError::*;
    let e = client_err(b"{\"id\":2,\"method\":\"mining.authorize\",\"params\":[]}");
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            field: "user",
            kind: Missing,
            ..
        }
    ));
    for d in ["0", "-1", "\"abc\"", "null", "[]"] {
        let line =
            format!("{{\"id\":3,\"method\":\"mining.suggest_difficulty\",\"params\":[{d}]}}");
        assert!(matches!(
            client_err(line.as_bytes()),
            ParseError::InvalidParams {
                field: "difficulty",
                ..
            }
        ));
    }
    let e = client_err(b"{\"id\":1,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],{\"version-rolling.mask\":\"xyz\"}]}");
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            field: "version-rolling.mask",
            kind: InvalidHex,
            ..
        }
    ));
    let e = client_err(
        b"{\"id\":1,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],[1]]}",
    );
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            field: "extension_params",
            ..
        }
    ));
    let e = client_err(b"{\"id\":1,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],{\"version-rolling.min-bit-count\":-2}]}");
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            kind: OutOfRange,
            ..
        }
    ));

    let notify = |prev: &str, branch: &str, coinb1: &str| {
        format!("[\"j\",\"{prev}\",\"{coinb1}\",\"00\",{branch},\"20000000\",\"1d00ffff\",\"4966bc61\",true]")
    };
    let zero = "00".repeat(32);
    assert_eq!(
        server_field_err("mining.notify", &notify("00", "[]", "00")),
        (
            "prevhash",
            HexLength {
                expected: 64,
                actual: 2
            }
        )
    );
    assert_eq!(
        server_field_err("mining.notify", &notify(&zero, "[]", "0")),
        (
            "coinb1",
            HexLength {
                expected: 2,
                actual: 1
            }
        )
    );
    let long_branch = format!("[{}]", vec![format!("\"{zero}\""); 33].join(","));
    assert_eq!(
        server_field_err("mining.notify", &notify(&zero, &long_branch, "00")),
        ("merkle_branch", TooLong { len: 33, max: 32 })
    );
    assert_eq!(
        server_field_err("mining.notify", &notify(&zero, "[\"00\"]", "00")),
        (
            "merkle_branch",
            HexLength {
                expected: 64,
                actual: 2
            }
        )
    );
    assert_eq!(
        server_field_err("mining.notify", "[\"j\"]"),
        ("merkle_branch", Missing)
    );
    assert_eq!(
        server_field_err("mining.set_extranonce", "[\"0800\"]"),
        ("extranonce2_size", Missing)
    );
    assert_eq!(
        server_field_err(
            "mining.set_extranonce",
            &format!("[\"{}\",4]", "00".repeat(65))
        ),
        ("extranonce1", TooLong { len: 65, max: 64 })
    );
    assert_eq!(
        server_field_err("mining.set_version_mask", "[true]"),
        (
            "mask",
            WrongType {
                expected: "a hex string"
            }
        )
    );
    assert_eq!(
        server_field_err("client.show_message", "[]"),
        ("message", Missing)
    );
}

#[test]
fn response_errors() {
    let e = server_err(b"{\"id\":1,\"result\":null,\"error\":[\"x\"]}");
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            method: "response",
            field: "error",
            ..
        }
    ));
    let e = server_err(b"{\"id\":1,\"result\":null,\"error\":42}");
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            method: "response",
            ..
        }
    ));

    let bad =
        |s: &str| SubscribeResult::from_json(&RawJson::new(s.to_owned()).unwrap()).unwrap_err();
    assert!(matches!(
        bad("true"),
        ParseError::InvalidParams {
            field: "result",
            ..
        }
    ));
    assert!(matches!(
        bad("[[],\"0\",4]"),
        ParseError::InvalidParams {
            field: "extranonce1",
            ..
        }
    ));
    assert!(matches!(
        bad("[[],\"00\",-4]"),
        ParseError::InvalidParams {
            field: "extranonce2_size",
            ..
        }
    ));
    assert!(matches!(
        bad("[[[\"a\"]],\"00\",4]"),
        ParseError::InvalidParams {
            field: "subscriptions",
            ..
        }
    ));
    let e = ConfigureResult::from_json(&RawJson::new("[1]").unwrap()).unwrap_err();
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            field: "result",
            ..
        }
    ));
    let e =
        ConfigureResult::from_json(&RawJson::new("{\"version-rolling\":5}").unwrap()).unwrap_err();
    assert!(matches!(
        e,
        ParseError::InvalidParams {
            field: "version-rolling",
            ..
        }
    ));
}

#[test]
fn raw_json_is_checked() {
    assert!(matches!(RawJson::new("[1,"), Err(ParseError::Json { .. })));
    assert!(matches!(
        RawJson::new("[1,\n2]"),
        Err(ParseError::MultipleLines)
    ));
    assert!(RawJson::new("{\"a\":[1,2]}").is_ok());
}
