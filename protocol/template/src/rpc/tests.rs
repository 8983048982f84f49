//! Tests of the `rpc` source: `getblocktemplate` answers to templates, `submitblock`
//! answers to outcomes.

use super::*;

#[test]
fn submitblock_results() {
    let h = || "00".repeat(32);
    assert_eq!(
        submit_outcome(&Value::Null, h()).unwrap(),
        SubmitOutcome::Accepted { hash: h() }
    );
    assert_eq!(
        submit_outcome(&json!("duplicate"), h()).unwrap(),
        SubmitOutcome::Accepted { hash: h() }
    );
    for reason in [
        "high-hash",
        "bad-txnmrklroot",
        "inconclusive",
        "duplicate-invalid",
    ] {
        assert_eq!(
            submit_outcome(&json!(reason), h()).unwrap(),
            SubmitOutcome::Rejected {
                reason: reason.into()
            }
        );
    }
    assert!(matches!(
        submit_outcome(&json!(true), h()),
        Err(SourceError::Protocol(_))
    ));
}

#[test]
fn bad_template_fields_are_protocol_errors() {
    let base = json!({
        "version": 536870912, "previousblockhash": "00".repeat(32), "transactions": [],
        "coinbasevalue": 5000000000u64, "bits": "207fffff", "height": 1,
        "curtime": 2, "mintime": 1
    });
    let parsed = Fetched::parse(base.clone()).unwrap();
    assert_eq!(parsed.template.min_ntime, 2);
    assert!(parsed.template.coinbase_tx_outputs.is_empty());
    for (field, value) in [
        ("bits", json!("zz")),
        ("previousblockhash", json!("00")),
        ("height", json!(-1)),
        (
            "transactions",
            json!([{"data": "00", "txid": "00".repeat(32)}]),
        ),
    ] {
        let mut bad = base.clone();
        bad[field] = value;
        assert!(
            matches!(Fetched::parse(bad), Err(SourceError::Protocol(_))),
            "{field}"
        );
    }
}

#[test]
fn auth_debug_hides_the_password() {
    let auth = RpcAuth::UserPass {
        user: "u".into(),
        password: "secret".into(),
    };
    assert!(!format!("{auth:?}").contains("secret"));
}
