//! Template Distribution messages: property round trips, differential tests against SRI
//! (template_distribution_sv2 7.0.0 through parsers_sv2 0.6), a wire vector built by hand from
//! the spec's table, and bad input.

mod support;

use proptest::prelude::*;
use strata_protocol::template_distribution::*;
use strata_protocol::{
    Decode, DecodeError, Encode, Message, Seq0_255, Seq0_64K, Str0_255, Sv2Message, B0_16M, B0_255,
    B0_64K, U256,
};
use support::{header_for, roundtrip, small_tx_list, sri_bytes_decode_to, sri_roundtrip};

proptest! {
    #[test]
    fn coinbase_output_constraints(m in any::<CoinbaseOutputConstraints>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn new_template(m in any::<NewTemplate>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_new_prev_hash(m in any::<SetNewPrevHash>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn request_transaction_data(m in any::<RequestTransactionData>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn request_transaction_data_success(
        mut m in any::<RequestTransactionDataSuccess>(),
        txs in small_tx_list(),
    ) {
        m.transaction_list = txs;
        roundtrip(&m);
        sri_roundtrip(&m);
    }
    #[test]
    fn request_transaction_data_error(m in any::<RequestTransactionDataError>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn submit_solution(m in any::<SubmitSolution>()) { roundtrip(&m); sri_roundtrip(&m); }
}

/// The default strategy's large transactions (up to 70 kB: B0_16M's 3-byte length prefix above
/// 64 KiB) through both codecs, without the quadratic prefix check.
#[test]
fn request_transaction_data_success_with_big_transactions() {
    let m = RequestTransactionDataSuccess {
        template_id: 9,
        excess_data: B0_64K::new(vec![0xee; 65_535]).unwrap(),
        transaction_list: Seq0_64K::new(vec![
            B0_16M::new(vec![1u8; 70_000]).unwrap(),
            B0_16M::new(vec![]).unwrap(),
            B0_16M::new(vec![2u8; 300_000]).unwrap(),
        ])
        .unwrap(),
    };
    let bytes = m.to_vec();
    assert_eq!(&bytes[8 + 2 + 65_535..][..5], &[3, 0, 0x70, 0x11, 0x01]);
    assert_eq!(
        RequestTransactionDataSuccess::from_bytes(&bytes).unwrap(),
        m
    );
    sri_roundtrip(&m);
}

fn u256(b: u8) -> U256 {
    U256([b; 32])
}

/// NewTemplate, byte by byte from the table of spec 7.2. `coinbase_tx_outputs` holds one
/// output (a SegWit commitment) with no CompactSize count in front (docs/spec-notes.md §4).
#[test]
fn new_template_wire_vector() {
    // output: value 0 (8 bytes), script length 38, OP_RETURN OP_PUSHBYTES_36 aa21a9ed + 32 bytes
    let mut output = vec![0u8; 8];
    output.push(38);
    output.extend_from_slice(&[0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed]);
    output.extend_from_slice(&[0x5a; 32]);
    assert_eq!(output.len(), 47);

    let mut wire = Vec::new();
    wire.extend_from_slice(&[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]); // template_id U64
    wire.push(0x01); // future_template BOOL
    wire.extend_from_slice(&[0x00, 0x00, 0x00, 0x20]); // version U32 = 0x20000000
    wire.extend_from_slice(&[0x02, 0x00, 0x00, 0x00]); // coinbase_tx_version U32 = 2
    wire.extend_from_slice(&[0x04, 0x03, 0xa0, 0xbb, 0x0d]); // coinbase_prefix B0_255 (BIP34 height)
    wire.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // coinbase_tx_input_sequence U32
    wire.extend_from_slice(&[0x20, 0x5f, 0xa0, 0x12, 0, 0, 0, 0]); // value_remaining U64 = 312500000
    wire.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]); // coinbase_tx_outputs_count U32 = 1
    wire.extend_from_slice(&[0x2f, 0x00]); // coinbase_tx_outputs B0_64K: U16 length 47 ...
    wire.extend_from_slice(&output); // ... then the output itself, no CompactSize count
    wire.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // coinbase_tx_locktime U32
    wire.push(0x02); // merkle_path SEQ0_255: 2 elements
    wire.extend_from_slice(&[0x11; 32]);
    wire.extend_from_slice(&[0x22; 32]);

    let m = NewTemplate {
        template_id: 0x0102_0304_0506_0708,
        future_template: true,
        version: 0x2000_0000,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(vec![0x03, 0xa0, 0xbb, 0x0d]).unwrap(),
        coinbase_tx_input_sequence: 0xffff_ffff,
        coinbase_tx_value_remaining: 312_500_000,
        coinbase_tx_outputs_count: 1,
        coinbase_tx_outputs: B0_64K::new(output).unwrap(),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0_255::new(vec![u256(0x11), u256(0x22)]).unwrap(),
    };
    assert_eq!(hex::encode(m.to_vec()), hex::encode(&wire));
    assert_eq!(NewTemplate::from_bytes(&wire).unwrap(), m);

    // the frame: extension_type 0, msg_type 0x71, U24 length
    let mut frame = Vec::new();
    m.encode_frame(&mut frame);
    assert_eq!(
        &frame[..6],
        &[0x00, 0x00, 0x71, wire.len() as u8, 0x00, 0x00]
    );
    sri_roundtrip(&m);
}

/// SRI's own NewTemplate value, encoded by SRI, reads back to ours.
#[test]
fn new_template_from_sri_value() {
    use template_distribution_sv2::NewTemplate as Sri;
    let hash = [0x33u8; 32];
    let sri = Sri {
        template_id: 77,
        future_template: false,
        version: 0x2000_0004,
        coinbase_tx_version: 2,
        coinbase_prefix: [0x03u8, 0x01, 0x02, 0x03].as_slice().try_into().unwrap(),
        coinbase_tx_input_sequence: 0xffff_fffe,
        coinbase_tx_value_remaining: 625_000_000,
        coinbase_tx_outputs_count: 0,
        coinbase_tx_outputs: [0u8; 0].as_slice().try_into().unwrap(),
        coinbase_tx_locktime: 840_000,
        merkle_path: vec![binary_sv2::U256::from(&hash)].try_into().unwrap(),
    };
    let bytes = binary_sv2::to_bytes(sri).unwrap();
    sri_bytes_decode_to(
        &bytes,
        &NewTemplate {
            template_id: 77,
            future_template: false,
            version: 0x2000_0004,
            coinbase_tx_version: 2,
            coinbase_prefix: B0_255::new(vec![0x03, 0x01, 0x02, 0x03]).unwrap(),
            coinbase_tx_input_sequence: 0xffff_fffe,
            coinbase_tx_value_remaining: 625_000_000,
            coinbase_tx_outputs_count: 0,
            coinbase_tx_outputs: B0_64K::default(),
            coinbase_tx_locktime: 840_000,
            merkle_path: Seq0_255::new(vec![u256(0x33)]).unwrap(),
        },
    );
}

#[test]
fn unknown_types_in_the_td_range_are_unknown_messages() {
    for t in 0x77..=0x7f_u8 {
        let payload = [0u8; 8];
        assert_eq!(
            Message::decode(&header_for(t, 8), &payload).unwrap_err(),
            DecodeError::UnknownMessage {
                extension_type: 0,
                msg_type: t
            },
            "msg_type {t:#04x}"
        );
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let m = RequestTransactionData { template_id: 5 };
    let mut payload = m.to_vec();
    payload.push(0);
    assert_eq!(
        Message::decode(&header_for(0x73, payload.len()), &payload).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "RequestTransactionData",
            trailing: 1
        }
    );
    assert!(matches!(
        RequestTransactionData::from_bytes(&payload).unwrap_err(),
        DecodeError::TrailingBytes { trailing: 1, .. }
    ));
    // decode_with_tlvs hands the extra byte back instead
    let (msg, rest) =
        Message::decode_with_tlvs(&header_for(0x73, payload.len()), &payload).unwrap();
    assert_eq!(msg, Message::from(m));
    assert_eq!(rest, &[0]);
}

#[test]
fn truncated_input_names_the_field() {
    let m = SubmitSolution {
        template_id: 1,
        version: 2,
        header_timestamp: 3,
        header_nonce: 4,
        coinbase_tx: B0_64K::new(vec![9u8; 10]).unwrap(),
    };
    let b = m.to_vec();
    assert_eq!(
        SubmitSolution::from_bytes(&b[..b.len() - 1]).unwrap_err(),
        DecodeError::Truncated {
            field: "SubmitSolution.coinbase_tx",
            needed: 1
        }
    );
    assert_eq!(
        CoinbaseOutputConstraints::from_bytes(&[1, 0, 0, 0, 7]).unwrap_err(),
        DecodeError::Truncated {
            field: "CoinbaseOutputConstraints.coinbase_output_max_additional_sigops",
            needed: 1
        }
    );
}

/// A length prefix announcing more than the payload holds, and a sequence count beyond what
/// follows: typed errors, and nothing is reserved for the announced size.
#[test]
fn lengths_beyond_the_input_are_rejected() {
    let mut b = 5u64.to_le_bytes().to_vec();
    b.extend_from_slice(&[0xff, 0xff]); // excess_data: 65535 bytes announced, none present
    assert_eq!(
        RequestTransactionDataSuccess::from_bytes(&b).unwrap_err(),
        DecodeError::Truncated {
            field: "RequestTransactionData.Success.excess_data",
            needed: 65_535
        }
    );
    let mut b = 5u64.to_le_bytes().to_vec();
    b.extend_from_slice(&[0x00, 0x00]); // excess_data empty
    b.extend_from_slice(&[0xff, 0xff]); // 65535 transactions announced
    b.extend_from_slice(&[0xff, 0xff, 0xff]); // the first one 16 MiB long
    assert!(matches!(
        RequestTransactionDataSuccess::from_bytes(&b).unwrap_err(),
        DecodeError::Truncated {
            field: "RequestTransactionData.Success.transaction_list",
            ..
        }
    ));
}

#[test]
fn invalid_utf8_error_code_is_rejected() {
    let m = RequestTransactionDataError {
        template_id: 1,
        error_code: Str0_255::new(ERROR_STALE_TEMPLATE_ID).unwrap(),
    };
    let mut b = m.to_vec();
    b[9] = 0xc3; // first byte of error_code: a lone UTF-8 lead byte followed by 't'
    assert_eq!(
        RequestTransactionDataError::from_bytes(&b).unwrap_err(),
        DecodeError::InvalidUtf8 {
            field: "RequestTransactionData.Error.error_code"
        }
    );
}

#[test]
fn numbers_names_and_channel_bits_follow_the_message_table() {
    fn check<M: Sv2Message>(t: u8, name: &str) {
        assert_eq!(
            (M::EXTENSION_TYPE, M::MSG_TYPE, M::CHANNEL_MSG, M::NAME),
            (0, t, false, name)
        );
    }
    check::<CoinbaseOutputConstraints>(0x70, "CoinbaseOutputConstraints");
    check::<NewTemplate>(0x71, "NewTemplate");
    check::<SetNewPrevHash>(0x72, "SetNewPrevHash");
    check::<RequestTransactionData>(0x73, "RequestTransactionData");
    check::<RequestTransactionDataSuccess>(0x74, "RequestTransactionData.Success");
    check::<RequestTransactionDataError>(0x75, "RequestTransactionData.Error");
    check::<SubmitSolution>(0x76, "SubmitSolution");
    assert_eq!(ERROR_TEMPLATE_ID_NOT_FOUND, "template-id-not-found");
    assert_eq!(
        template_distribution_sv2::ERROR_CODE_REQUEST_TRANSACTION_DATA_STALE_TEMPLATE_ID,
        ERROR_STALE_TEMPLATE_ID
    );
}

#[test]
fn json_names_fields_as_the_spec() {
    let m = SetNewPrevHash {
        template_id: 3,
        prev_hash: u256(0xab),
        header_timestamp: 1_700_000_000,
        n_bits: 0x1703_4219,
        target: u256(0),
    };
    let j = Message::from(m).fields_json();
    assert_eq!(j["template_id"], 3);
    assert_eq!(j["n_bits"], 0x1703_4219);
    assert_eq!(j["prev_hash"], "ab".repeat(32));
}
