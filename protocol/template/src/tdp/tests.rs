//! Tests of the `tdp` source's core: transaction-count bounds, template assembly and
//! verification against the transactions the TP lists.

use strata_protocol::template_distribution::{
    NewTemplate, RequestTransactionDataError, RequestTransactionDataSuccess, SetNewPrevHash,
    TemplateDistributionMessage,
};
use strata_work::merkle::merkle_path_for_coinbase;

use super::core::*;
use super::*;

#[test]
fn tx_count_bound_matches_tree_depth() {
    for tx_count in 0u32..200 {
        let path = merkle_path_for_coinbase(&vec![[7u8; 32]; tx_count as usize]);
        let bound = tx_count_lower_bound(path.len());
        assert!(
            bound <= tx_count,
            "{tx_count} txs, path {}, bound {bound}",
            path.len()
        );
        // the bound is tight: it is itself a count with a path of the same length
        let tight = merkle_path_for_coinbase(&vec![[7u8; 32]; bound as usize]);
        assert_eq!(tight.len(), path.len());
    }
    assert_eq!(tx_count_lower_bound(255), u32::MAX);
}

#[test]
fn endpoints() {
    assert_eq!(endpoint("127.0.0.1:8442").ok(), Some(("127.0.0.1", 8442)));
    assert_eq!(endpoint("[::1]:8442").ok(), Some(("::1", 8442)));
    assert_eq!(endpoint("tp.example:1").ok(), Some(("tp.example", 1)));
    assert!(endpoint("nope").is_err());
    assert!(endpoint("h:99999").is_err());
}

fn new_template(id: u64, future: bool) -> NewTemplate {
    NewTemplate {
        template_id: id,
        future_template: future,
        version: 0x2000_0000,
        coinbase_tx_version: 2,
        coinbase_prefix: strata_protocol::B0_255::new(strata_work::coinbase::bip34_height_push(
            100,
        ))
        .expect("prefix"),
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: 5_000_000_000,
        coinbase_tx_outputs_count: 0,
        coinbase_tx_outputs: B0_64K::new(Vec::new()).expect("outputs"),
        coinbase_tx_locktime: 0,
        merkle_path: strata_protocol::Seq0_255::new(Vec::new()).expect("path"),
    }
}

fn prev_hash(id: u64, tip: u8) -> SetNewPrevHash {
    SetNewPrevHash {
        template_id: id,
        prev_hash: strata_protocol::U256([tip; 32]),
        header_timestamp: 1_700_000_000,
        n_bits: 0x207f_ffff,
        target: strata_protocol::U256([0xff; 32]),
    }
}

fn feed(core: &mut TdpCore, m: impl Into<TemplateDistributionMessage>) -> Result<(), SourceError> {
    core.handle(m.into())
}

#[test]
fn peers_breaking_the_order_are_protocol_errors() {
    let mut core = TdpCore::new(false);
    let err = feed(&mut core, new_template(1, false)).expect_err("no tip yet");
    assert!(matches!(err, SourceError::Protocol(m) if m.contains("no SetNewPrevHash")));

    let mut core = TdpCore::new(false);
    let err = feed(&mut core, prev_hash(7, 1)).expect_err("unknown template");
    assert!(matches!(err, SourceError::Protocol(m) if m.contains("template 7")));

    let mut core = TdpCore::new(false);
    feed(&mut core, new_template(5, true)).expect("first");
    let err = feed(&mut core, new_template(5, true)).expect_err("same id");
    assert!(matches!(err, SourceError::Protocol(m) if m.contains("must increase")));

    let mut core = TdpCore::new(false);
    let mut bad = new_template(1, true);
    bad.coinbase_prefix = strata_protocol::B0_255::new(vec![0x6a]).expect("prefix");
    let err = feed(&mut core, bad).expect_err("no height");
    assert!(matches!(err, SourceError::Protocol(m) if m.contains("BIP34")));
}

#[test]
fn templates_come_out_once_in_order_and_stale_ones_are_dropped() {
    let mut core = TdpCore::new(true);
    feed(&mut core, new_template(1, true)).expect("nt");
    assert_eq!(core.pop_ready(), None, "future template waits");
    feed(&mut core, prev_hash(1, 0xaa)).expect("snph");
    feed(&mut core, new_template(2, false)).expect("nt");
    assert_eq!(core.take_requests(), vec![1, 2]);
    assert_eq!(core.pop_ready(), None, "waiting for transaction data");
    let empty = RequestTransactionDataSuccess {
        template_id: 1,
        excess_data: B0_64K::new(Vec::new()).expect("excess"),
        transaction_list: strata_protocol::Seq0_64K::new(Vec::new()).expect("list"),
    };
    feed(&mut core, empty.clone()).expect("data 1");
    let t = core.pop_ready().expect("template 1");
    assert_eq!(
        (t.id, t.prev_hash, t.height, t.tx_count),
        (1, [0xaa; 32], 100, 0)
    );
    assert!(core.is_submittable(1));
    assert_eq!(core.pop_ready(), None);

    // a new tip before template 2 was verified: 2 is stale and never comes out
    feed(&mut core, new_template(3, true)).expect("nt");
    feed(&mut core, prev_hash(3, 0xbb)).expect("snph");
    let data_3 = RequestTransactionDataSuccess {
        template_id: 3,
        ..empty.clone()
    };
    let data_2 = RequestTransactionDataSuccess {
        template_id: 2,
        ..empty
    };
    feed(&mut core, data_2).expect("late data for a dropped template is ignored");
    feed(&mut core, data_3.clone()).expect("data 3");
    assert_eq!(core.pop_ready().map(|t| t.id), Some(3));
    assert_eq!(core.pop_ready(), None);
    // a repeated answer does not bring it back
    feed(&mut core, data_3).expect("duplicate");
    assert_eq!(core.pop_ready(), None);

    // solutions: the current tip and the one before are accepted, older ones are not
    assert!(core.is_submittable(1) && core.is_submittable(3));
    assert!(!core.is_submittable(2), "never returned");
    feed(&mut core, new_template(4, true)).expect("nt");
    feed(&mut core, prev_hash(4, 0xcc)).expect("snph");
    assert!(!core.is_submittable(1), "two tips ago");
    assert!(core.is_submittable(3));
}

#[test]
fn transaction_data_error_drops_only_that_template() {
    let mut core = TdpCore::new(true);
    feed(&mut core, new_template(1, true)).expect("nt");
    feed(&mut core, prev_hash(1, 0xaa)).expect("snph");
    feed(&mut core, new_template(2, false)).expect("nt");
    feed(
        &mut core,
        RequestTransactionDataError {
            template_id: 1,
            error_code: Str0_255::new("stale-template-id").expect("code"),
        },
    )
    .expect("not fatal");
    feed(
        &mut core,
        RequestTransactionDataSuccess {
            template_id: 2,
            excess_data: B0_64K::new(Vec::new()).expect("excess"),
            transaction_list: strata_protocol::Seq0_64K::new(Vec::new()).expect("list"),
        },
    )
    .expect("data 2");
    assert_eq!(core.pop_ready().map(|t| t.id), Some(2));
}
