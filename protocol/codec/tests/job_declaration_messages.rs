//! Job Declaration messages: property round trips, differential tests against SRI
//! (job_declaration_sv2 10.0.0 through parsers_sv2 0.6), a wire vector built by hand from the
//! spec's table, and bad input.

mod support;

use proptest::prelude::*;
use strata_protocol::job_declaration::*;
use strata_protocol::{
    Decode, DecodeError, Encode, Message, Seq0_64K, Str0_255, Sv2Message, B0_16M, B0_255, B0_32,
    B0_64K, U256,
};
use support::{header_for, roundtrip, small_tx_list, sri_bytes_decode_to, sri_roundtrip};

proptest! {
    #[test]
    fn allocate_mining_job_token(m in any::<AllocateMiningJobToken>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn allocate_mining_job_token_success(m in any::<AllocateMiningJobTokenSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn provide_missing_transactions(m in any::<ProvideMissingTransactions>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn provide_missing_transactions_success(
        mut m in any::<ProvideMissingTransactionsSuccess>(),
        txs in small_tx_list(),
    ) {
        m.transaction_list = txs;
        roundtrip(&m);
        sri_roundtrip(&m);
    }
    #[test]
    fn declare_mining_job(m in any::<DeclareMiningJob>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn declare_mining_job_success(m in any::<DeclareMiningJobSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn declare_mining_job_error(m in any::<DeclareMiningJobError>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn push_solution(m in any::<PushSolution>()) { roundtrip(&m); sri_roundtrip(&m); }
}

/// Transactions above 64 KiB (B0_16M's 3-byte length) through both codecs.
#[test]
fn provide_missing_transactions_success_with_big_transactions() {
    let m = ProvideMissingTransactionsSuccess {
        request_id: 4,
        transaction_list: Seq0_64K::new(vec![
            B0_16M::new(vec![7u8; 100_000]).unwrap(),
            B0_16M::new(vec![8u8; 65_536]).unwrap(),
        ])
        .unwrap(),
    };
    assert_eq!(
        ProvideMissingTransactionsSuccess::from_bytes(&m.to_vec()).unwrap(),
        m
    );
    sri_roundtrip(&m);
}

/// PushSolution as a whole frame, byte by byte from the table of spec 6.4.9 and the header of
/// spec 3.2. Sent with channel_msg = 0 as SRI does (the message table says 1).
#[test]
fn push_solution_wire_vector() {
    let mut payload = Vec::new();
    payload.push(0x08); // extranonce B0_32: 8 bytes
    payload.extend_from_slice(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]);
    payload.extend_from_slice(&[0xab; 32]); // prev_hash U256
    payload.extend_from_slice(&[0xef, 0xbe, 0xad, 0xde]); // nonce U32 = 0xdeadbeef
    payload.extend_from_slice(&[0x00, 0xf1, 0x53, 0x65]); // ntime U32 = 1700000000
    payload.extend_from_slice(&[0x19, 0x42, 0x03, 0x17]); // nbits U32 = 0x17034219
    payload.extend_from_slice(&[0x00, 0x00, 0x00, 0x20]); // version U32 = 0x20000000
    assert_eq!(payload.len(), 57);
    let mut frame = vec![0x00, 0x00, 0x60, 57, 0x00, 0x00]; // ext 0, no channel bit, 0x60, U24 57
    frame.extend_from_slice(&payload);

    let m = PushSolution {
        extranonce: B0_32::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        prev_hash: U256([0xab; 32]),
        nonce: 0xdead_beef,
        ntime: 1_700_000_000,
        nbits: 0x1703_4219,
        version: 0x2000_0000,
    };
    let mut ours = Vec::new();
    m.encode_frame(&mut ours);
    assert_eq!(hex::encode(&ours), hex::encode(&frame));
    let (header, msg) = Message::from_frame_bytes(&frame).unwrap();
    assert_eq!(header.msg_type, 0x60);
    assert_eq!(msg, Message::from(m.clone()));
    sri_roundtrip(&m);

    // the same bytes with the channel_msg bit set (as the table has it) decode too
    frame[1] = 0x80;
    assert_eq!(
        Message::from_frame_bytes(&frame).unwrap().1,
        Message::from(m)
    );
}

/// AllocateMiningJobToken.Success carries the pool's outputs as a CompactSize-prefixed array
/// inside its B0_64K (docs/spec-notes.md §4), unlike NewTemplate: the codec keeps the bytes as
/// they are.
#[test]
fn allocate_mining_job_token_success_from_sri_value() {
    use job_declaration_sv2::AllocateMiningJobTokenSuccess as Sri;
    // CompactSize 1, then one output: 0 sats, P2WPKH script (0x0014 + 20 bytes)
    let mut outputs = vec![0x01];
    outputs.extend_from_slice(&[0u8; 8]);
    outputs.push(22);
    outputs.extend_from_slice(&[0x00, 0x14]);
    outputs.extend_from_slice(&[0x77; 20]);
    let sri = Sri {
        request_id: 0x0102_0304,
        mining_job_token: [0xaau8, 0xbb].as_slice().try_into().unwrap(),
        coinbase_outputs: outputs.as_slice().try_into().unwrap(),
    };
    let bytes = binary_sv2::to_bytes(sri).unwrap();
    assert_eq!(&bytes[..8], &[0x04, 0x03, 0x02, 0x01, 0x02, 0xaa, 0xbb, 32]);
    sri_bytes_decode_to(
        &bytes,
        &AllocateMiningJobTokenSuccess {
            request_id: 0x0102_0304,
            mining_job_token: B0_255::new(vec![0xaa, 0xbb]).unwrap(),
            coinbase_tx_outputs: B0_64K::new(outputs).unwrap(),
        },
    );
}

/// The JD range is 0x50-0x6f; the types neither the current spec nor SRI defines (0x52,
/// IdentifyTransactions 0x53 / 0x54 of an earlier table, 0x5a-0x5f, 0x61-0x6f) are unknown.
#[test]
fn unknown_types_in_the_jd_range_are_unknown_messages() {
    let payload = [0u8; 64];
    let unknown = [0x52_u8, 0x53, 0x54]
        .into_iter()
        .chain(0x5a..=0x5f)
        .chain(0x61..=0x6f);
    for t in unknown {
        assert_eq!(
            Message::decode(&header_for(t, payload.len()), &payload).unwrap_err(),
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
    let m = DeclareMiningJobSuccess {
        request_id: 1,
        new_mining_job_token: B0_255::new(vec![1, 2, 3]).unwrap(),
    };
    let mut payload = m.to_vec();
    payload.extend_from_slice(&[0, 0]);
    assert_eq!(
        Message::decode(&header_for(0x58, payload.len()), &payload).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "DeclareMiningJob.Success",
            trailing: 2
        }
    );
    assert_eq!(
        DeclareMiningJobSuccess::from_bytes(&payload).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "DeclareMiningJob.Success",
            trailing: 2
        }
    );
}

#[test]
fn truncated_input_names_the_field() {
    let m = DeclareMiningJob {
        request_id: 1,
        mining_job_token: B0_255::new(vec![1]).unwrap(),
        version: 2,
        coinbase_tx_prefix: B0_64K::new(vec![3; 4]).unwrap(),
        coinbase_tx_suffix: B0_64K::new(vec![4; 4]).unwrap(),
        wtxid_list: Seq0_64K::new(vec![U256([5; 32]), U256([6; 32])]).unwrap(),
        excess_data: B0_64K::default(),
    };
    let b = m.to_vec();
    // cut inside the second wtxid
    let cut = b.len() - 2 - 10;
    assert_eq!(
        DeclareMiningJob::from_bytes(&b[..cut]).unwrap_err(),
        DecodeError::Truncated {
            field: "DeclareMiningJob.wtxid_list",
            needed: 10
        }
    );
    assert_eq!(
        DeclareMiningJob::from_bytes(&b[..b.len() - 1]).unwrap_err(),
        DecodeError::Truncated {
            field: "DeclareMiningJob.excess_data",
            needed: 1
        }
    );
}

#[test]
fn out_of_range_lengths_are_rejected() {
    // PushSolution.extranonce is a B0_32: a length byte of 33 is out of range
    let mut b = vec![33u8];
    b.extend_from_slice(&[0; 33 + 32 + 16]);
    assert_eq!(
        PushSolution::from_bytes(&b).unwrap_err(),
        DecodeError::LengthOutOfRange {
            field: "PushSolution.extranonce",
            len: 33,
            max: 32
        }
    );
    // a position list announcing 65535 U16s with two present
    let mut b = 9u32.to_le_bytes().to_vec();
    b.extend_from_slice(&[0xff, 0xff, 1, 0, 2, 0]);
    assert!(matches!(
        ProvideMissingTransactions::from_bytes(&b).unwrap_err(),
        DecodeError::Truncated {
            field: "ProvideMissingTransactions.unknown_tx_position_list",
            ..
        }
    ));
    assert!(B0_32::new(&[0; 33]).is_err());
}

#[test]
fn invalid_utf8_is_rejected() {
    let m = AllocateMiningJobToken {
        user_identifier: Str0_255::new("miner").unwrap(),
        request_id: 3,
    };
    let mut b = m.to_vec();
    b[1] = 0xff;
    assert_eq!(
        AllocateMiningJobToken::from_bytes(&b).unwrap_err(),
        DecodeError::InvalidUtf8 {
            field: "AllocateMiningJobToken.user_identifier"
        }
    );
    let m = DeclareMiningJobError {
        request_id: 3,
        error_code: Str0_255::new(ERROR_MISSING_TXS).unwrap(),
        error_details: B0_64K::new(vec![0xff, 0xfe]).unwrap(), // opaque bytes: no UTF-8 check
    };
    let mut b = m.to_vec();
    assert_eq!(DeclareMiningJobError::from_bytes(&b).unwrap(), m);
    b[5] = 0x80; // a continuation byte first
    assert_eq!(
        DeclareMiningJobError::from_bytes(&b).unwrap_err(),
        DecodeError::InvalidUtf8 {
            field: "DeclareMiningJob.Error.error_code"
        }
    );
}

#[test]
fn numbers_names_and_channel_bits_follow_sri() {
    fn check<M: Sv2Message>(t: u8, name: &str) {
        assert_eq!(
            (M::EXTENSION_TYPE, M::MSG_TYPE, M::CHANNEL_MSG, M::NAME),
            (0, t, false, name)
        );
    }
    use job_declaration_sv2 as sri;
    check::<AllocateMiningJobToken>(
        sri::MESSAGE_TYPE_ALLOCATE_MINING_JOB_TOKEN,
        "AllocateMiningJobToken",
    );
    check::<AllocateMiningJobTokenSuccess>(
        sri::MESSAGE_TYPE_ALLOCATE_MINING_JOB_TOKEN_SUCCESS,
        "AllocateMiningJobToken.Success",
    );
    check::<ProvideMissingTransactions>(
        sri::MESSAGE_TYPE_PROVIDE_MISSING_TRANSACTIONS,
        "ProvideMissingTransactions",
    );
    check::<ProvideMissingTransactionsSuccess>(
        sri::MESSAGE_TYPE_PROVIDE_MISSING_TRANSACTIONS_SUCCESS,
        "ProvideMissingTransactions.Success",
    );
    check::<DeclareMiningJob>(sri::MESSAGE_TYPE_DECLARE_MINING_JOB, "DeclareMiningJob");
    check::<DeclareMiningJobSuccess>(
        sri::MESSAGE_TYPE_DECLARE_MINING_JOB_SUCCESS,
        "DeclareMiningJob.Success",
    );
    check::<DeclareMiningJobError>(
        sri::MESSAGE_TYPE_DECLARE_MINING_JOB_ERROR,
        "DeclareMiningJob.Error",
    );
    check::<PushSolution>(sri::MESSAGE_TYPE_PUSH_SOLUTION, "PushSolution");
    assert_eq!(PushSolution::CHANNEL_MSG, sri::CHANNEL_BIT_PUSH_SOLUTION);

    assert_eq!(
        ERROR_INVALID_MINING_JOB_TOKEN,
        sri::ERROR_CODE_DECLARE_MINING_JOB_INVALID_MINING_JOB_TOKEN
    );
    assert_eq!(
        ERROR_MISSING_TXS,
        sri::ERROR_CODE_DECLARE_MINING_JOB_MISSING_TXS
    );
    assert_eq!(
        ERROR_INVALID_COINBASE_TX,
        sri::ERROR_CODE_DECLARE_MINING_JOB_INVALID_COINBASE_TX
    );
    assert_eq!(
        ERROR_INVALID_COINBASE_TX_INPUT,
        sri::ERROR_CODE_DECLARE_MINING_JOB_INVALID_COINBASE_TX_INPUT
    );
    assert_eq!(
        ERROR_INTERNAL_ERROR,
        sri::ERROR_CODE_DECLARE_MINING_JOB_INTERNAL_ERROR
    );
    assert_eq!(
        ERROR_STALE_CHAIN_TIP,
        sri::ERROR_CODE_DECLARE_MINING_JOB_STALE_CHAIN_TIP
    );
    assert_eq!(
        ERROR_INVALID_JOB,
        sri::ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB
    );
    assert_eq!(
        ERROR_MISSING_DECLARE_TX_DATA_FLAG,
        common_messages_sv2::ERROR_CODE_SETUP_CONNECTION_MISSING_DECLARE_TX_DATA_FLAG
    );
    assert_eq!(DECLARE_TX_DATA, 1);
}
