//! Mining Protocol messages: property round trips, differential tests against SRI
//! (mining_sv2 12.0.0 through parsers_sv2), hand-written wire vectors from the spec's field
//! tables, and malformed input.
//!
//! No generated value needs restricting for SRI: every SRI field type is at least as wide as
//! ours (SRI's Str0255 holds any bytes, ours only UTF-8). The only restriction is on F32
//! fields, which the messages' own proptest strategy keeps finite (NaN != NaN would break the
//! equality checks, in either codec).

mod support;

use proptest::prelude::*;
use strata_protocol::mining::*;
use strata_protocol::{
    Decode, DecodeError, Encode, Header, Message, Seq0_255, Seq0_64K, Str0_255, Sv2Message, B0_255,
    B0_32, B0_64K, U256,
};
use support::{roundtrip, sri_bytes_decode_to, sri_roundtrip};

proptest! {
    #[test]
    fn open_standard_mining_channel(m in any::<OpenStandardMiningChannel>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn open_standard_mining_channel_success(m in any::<OpenStandardMiningChannelSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn open_mining_channel_error(m in any::<OpenMiningChannelError>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn open_extended_mining_channel(m in any::<OpenExtendedMiningChannel>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn open_extended_mining_channel_success(m in any::<OpenExtendedMiningChannelSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn new_mining_job(m in any::<NewMiningJob>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn update_channel(m in any::<UpdateChannel>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn update_channel_error(m in any::<UpdateChannelError>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn close_channel(m in any::<CloseChannel>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_extranonce_prefix(m in any::<SetExtranoncePrefix>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn submit_shares_standard(m in any::<SubmitSharesStandard>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn submit_shares_extended(m in any::<SubmitSharesExtended>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn submit_shares_success(m in any::<SubmitSharesSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn submit_shares_error(m in any::<SubmitSharesError>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn new_extended_mining_job(m in any::<NewExtendedMiningJob>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_new_prev_hash(m in any::<SetNewPrevHash>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_target(m in any::<SetTarget>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_custom_mining_job(m in any::<SetCustomMiningJob>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_custom_mining_job_success(m in any::<SetCustomMiningJobSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_custom_mining_job_error(m in any::<SetCustomMiningJobError>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn set_group_channel(m in any::<SetGroupChannel>()) { roundtrip(&m); sri_roundtrip(&m); }

    /// Every bit pattern of an F32 (NaN included) travels unchanged: compare the bytes, since
    /// NaN never equals itself.
    #[test]
    fn f32_bits_survive(bits in any::<u32>()) {
        let m = UpdateChannel { channel_id: 1, nominal_hash_rate: f32::from_bits(bits), maximum_target: U256::default() };
        let enc = m.to_vec();
        prop_assert_eq!(&enc[4..8], &bits.to_le_bytes());
        prop_assert_eq!(UpdateChannel::from_bytes(&enc).unwrap().nominal_hash_rate.to_bits(), bits);
    }
}

// ---------------------------------------------------------------------------------------------
// message numbers and channel_msg bits against SRI's constants
// ---------------------------------------------------------------------------------------------

#[test]
fn msg_types_and_channel_bits_match_sri() {
    use mining_sv2 as s;
    macro_rules! check {
        ($($ty:ty => $t:ident, $b:ident;)*) => {$(
            assert_eq!(<$ty>::MSG_TYPE, s::$t, "msg_type of {}", <$ty>::NAME);
            assert_eq!(<$ty>::CHANNEL_MSG, s::$b, "channel_msg of {}", <$ty>::NAME);
            assert_eq!(<$ty>::EXTENSION_TYPE, 0);
        )*};
    }
    check! {
        OpenStandardMiningChannel => MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL, CHANNEL_BIT_OPEN_STANDARD_MINING_CHANNEL;
        OpenStandardMiningChannelSuccess => MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS, CHANNEL_BIT_OPEN_STANDARD_MINING_CHANNEL_SUCCESS;
        OpenMiningChannelError => MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR, CHANNEL_BIT_OPEN_MINING_CHANNEL_ERROR;
        OpenExtendedMiningChannel => MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL, CHANNEL_BIT_OPEN_EXTENDED_MINING_CHANNEL;
        OpenExtendedMiningChannelSuccess => MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS, CHANNEL_BIT_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS;
        NewMiningJob => MESSAGE_TYPE_NEW_MINING_JOB, CHANNEL_BIT_NEW_MINING_JOB;
        UpdateChannel => MESSAGE_TYPE_UPDATE_CHANNEL, CHANNEL_BIT_UPDATE_CHANNEL;
        UpdateChannelError => MESSAGE_TYPE_UPDATE_CHANNEL_ERROR, CHANNEL_BIT_UPDATE_CHANNEL_ERROR;
        CloseChannel => MESSAGE_TYPE_CLOSE_CHANNEL, CHANNEL_BIT_CLOSE_CHANNEL;
        SetExtranoncePrefix => MESSAGE_TYPE_SET_EXTRANONCE_PREFIX, CHANNEL_BIT_SET_EXTRANONCE_PREFIX;
        SubmitSharesStandard => MESSAGE_TYPE_SUBMIT_SHARES_STANDARD, CHANNEL_BIT_SUBMIT_SHARES_STANDARD;
        SubmitSharesExtended => MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED, CHANNEL_BIT_SUBMIT_SHARES_EXTENDED;
        SubmitSharesSuccess => MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS, CHANNEL_BIT_SUBMIT_SHARES_SUCCESS;
        SubmitSharesError => MESSAGE_TYPE_SUBMIT_SHARES_ERROR, CHANNEL_BIT_SUBMIT_SHARES_ERROR;
        NewExtendedMiningJob => MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, CHANNEL_BIT_NEW_EXTENDED_MINING_JOB;
        SetNewPrevHash => MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH, CHANNEL_BIT_MINING_SET_NEW_PREV_HASH;
        SetTarget => MESSAGE_TYPE_SET_TARGET, CHANNEL_BIT_SET_TARGET;
        SetCustomMiningJob => MESSAGE_TYPE_SET_CUSTOM_MINING_JOB, CHANNEL_BIT_SET_CUSTOM_MINING_JOB;
        SetCustomMiningJobSuccess => MESSAGE_TYPE_SET_CUSTOM_MINING_JOB_SUCCESS, CHANNEL_BIT_SET_CUSTOM_MINING_JOB_SUCCESS;
        SetCustomMiningJobError => MESSAGE_TYPE_SET_CUSTOM_MINING_JOB_ERROR, CHANNEL_BIT_SET_CUSTOM_MINING_JOB_ERROR;
        SetGroupChannel => MESSAGE_TYPE_SET_GROUP_CHANNEL, CHANNEL_BIT_SET_GROUP_CHANNEL;
    }
}

#[test]
fn constants_match_spec_and_sri() {
    assert_eq!(REQUIRES_STANDARD_JOBS, 0b001);
    assert_eq!(REQUIRES_WORK_SELECTION, 0b010);
    assert_eq!(REQUIRES_VERSION_ROLLING, 0b100);
    assert_eq!(REQUIRES_FIXED_VERSION, 0b01);
    assert_eq!(REQUIRES_EXTENDED_CHANNELS, 0b10);
    use mining_sv2 as s;
    assert_eq!(
        ERROR_INVALID_CHANNEL_ID,
        s::ERROR_CODE_SUBMIT_SHARES_INVALID_CHANNEL_ID
    );
    assert_eq!(ERROR_STALE_SHARE, s::ERROR_CODE_SUBMIT_SHARES_STALE_SHARE);
    assert_eq!(
        ERROR_DIFFICULTY_TOO_LOW,
        s::ERROR_CODE_SUBMIT_SHARES_DIFFICULTY_TOO_LOW
    );
    assert_eq!(
        ERROR_INVALID_JOB_ID,
        s::ERROR_CODE_SUBMIT_SHARES_INVALID_JOB_ID
    );
    assert_eq!(
        ERROR_UNKNOWN_USER,
        s::ERROR_CODE_OPEN_MINING_CHANNEL_UNKNOWN_USER
    );
    assert_eq!(
        ERROR_MAX_TARGET_OUT_OF_RANGE,
        s::ERROR_CODE_OPEN_MINING_CHANNEL_MAX_TARGET_OUT_OF_RANGE
    );
    assert_eq!(
        ERROR_INVALID_MINING_JOB_TOKEN,
        s::ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MINING_JOB_TOKEN
    );
    assert_eq!(
        ERROR_BAD_EXTRANONCE_SIZE,
        s::ERROR_CODE_SUBMIT_SHARES_BAD_EXTRANONCE_SIZE
    );
    assert_eq!(
        ERROR_STALE_CHAIN_TIP,
        s::ERROR_CODE_SET_CUSTOM_MINING_JOB_STALE_CHAIN_TIP
    );
}

// ---------------------------------------------------------------------------------------------
// SRI's own values, encoded by SRI, decoded by us
// ---------------------------------------------------------------------------------------------

fn h(i: u8) -> [u8; 32] {
    let mut a = [0u8; 32];
    for (j, b) in a.iter_mut().enumerate() {
        *b = i.wrapping_mul(31).wrapping_add(j as u8);
    }
    a
}

#[test]
fn submit_shares_extended_from_sri_value() {
    let xn = [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];
    let sri = mining_sv2::SubmitSharesExtended {
        channel_id: 7,
        sequence_number: 1234,
        job_id: 99,
        nonce: 0xdead_beef,
        ntime: 1_700_000_000,
        version: 0x2000_0000,
        extranonce: xn.as_slice().try_into().unwrap(),
    };
    let bytes = binary_sv2::to_bytes(sri).unwrap();
    sri_bytes_decode_to(
        &bytes,
        &SubmitSharesExtended {
            channel_id: 7,
            sequence_number: 1234,
            job_id: 99,
            nonce: 0xdead_beef,
            ntime: 1_700_000_000,
            version: 0x2000_0000,
            extranonce: B0_32::new(&xn).unwrap(),
        },
    );
}

#[test]
fn new_extended_mining_job_from_sri_value() {
    let path: Vec<[u8; 32]> = (0..12).map(h).collect();
    let prefix: Vec<u8> = (0..41).collect();
    let suffix: Vec<u8> = (100..160).collect();
    let sri = mining_sv2::NewExtendedMiningJob {
        channel_id: 3,
        job_id: 17,
        min_ntime: binary_sv2::Sv2Option::new(Some(1_700_000_123)),
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: binary_sv2::Seq0255::new(path.iter().map(binary_sv2::U256::from).collect())
            .unwrap(),
        coinbase_tx_prefix: prefix.as_slice().try_into().unwrap(),
        coinbase_tx_suffix: suffix.as_slice().try_into().unwrap(),
    };
    let bytes = binary_sv2::to_bytes(sri).unwrap();
    assert_eq!(
        bytes.len(),
        4 + 4 + 5 + 4 + 1 + 1 + 12 * 32 + 2 + 41 + 2 + 60
    );
    sri_bytes_decode_to(
        &bytes,
        &NewExtendedMiningJob {
            channel_id: 3,
            job_id: 17,
            min_ntime: Some(1_700_000_123),
            version: 0x2000_0000,
            version_rolling_allowed: true,
            merkle_path: Seq0_255::new(path.into_iter().map(U256).collect()).unwrap(),
            coinbase_tx_prefix: B0_64K::new(prefix).unwrap(),
            coinbase_tx_suffix: B0_64K::new(suffix).unwrap(),
        },
    );
}

#[test]
fn open_extended_mining_channel_success_from_sri_value() {
    let target = h(9);
    let sri = mining_sv2::OpenExtendedMiningChannelSuccess {
        request_id: 42,
        channel_id: 1,
        target: binary_sv2::U256::from(&target),
        extranonce_size: 8,
        extranonce_prefix: [0, 0, 0, 1].as_slice().try_into().unwrap(),
        group_channel_id: 0x8000_0000,
    };
    let bytes = binary_sv2::to_bytes(sri).unwrap();
    sri_bytes_decode_to(
        &bytes,
        &OpenExtendedMiningChannelSuccess {
            request_id: 42,
            channel_id: 1,
            target: U256(target),
            extranonce_size: 8,
            extranonce_prefix: B0_32::new(&[0, 0, 0, 1]).unwrap(),
            group_channel_id: 0x8000_0000,
        },
    );
}

#[test]
fn set_new_prev_hash_from_sri_value() {
    let prev = h(200);
    let sri = mining_sv2::SetNewPrevHash {
        channel_id: 5,
        job_id: 77,
        prev_hash: binary_sv2::U256::from(&prev),
        min_ntime: 1_700_000_456,
        nbits: 0x1703_4219,
    };
    let bytes = binary_sv2::to_bytes(sri).unwrap();
    sri_bytes_decode_to(
        &bytes,
        &SetNewPrevHash {
            channel_id: 5,
            job_id: 77,
            prev_hash: U256(prev),
            min_ntime: 1_700_000_456,
            nbits: 0x1703_4219,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// hand-written wire vectors (from the spec's field tables, independent of both codecs)
// ---------------------------------------------------------------------------------------------

/// Check both directions: `m` encodes to `wire`, and `wire` decodes to `m`.
fn vector<M: Sv2Message + PartialEq + std::fmt::Debug>(m: &M, wire: &[u8]) {
    assert_eq!(
        hex::encode(m.to_vec()),
        hex::encode(wire),
        "{} encoding",
        M::NAME
    );
    assert_eq!(
        &M::from_bytes(wire).expect("vector decodes"),
        m,
        "{} decoding",
        M::NAME
    );
}

#[test]
fn wire_submit_shares_standard_frame() {
    let m = SubmitSharesStandard {
        channel_id: 1,
        sequence_number: 2,
        job_id: 3,
        nonce: 0xdead_beef,
        ntime: 0x6553_f100,
        version: 0x2000_0004,
    };
    #[rustfmt::skip]
    let payload = [
        0x01, 0x00, 0x00, 0x00, // channel_id U32
        0x02, 0x00, 0x00, 0x00, // sequence_number U32
        0x03, 0x00, 0x00, 0x00, // job_id U32
        0xef, 0xbe, 0xad, 0xde, // nonce U32
        0x00, 0xf1, 0x53, 0x65, // ntime U32
        0x04, 0x00, 0x00, 0x20, // version U32
    ];
    vector(&m, &payload);
    // Frame: extension_type 0x0000 with the channel_msg bit (0x8000), msg_type 0x1a, U24 length 24.
    let mut frame = Vec::new();
    m.encode_frame(&mut frame);
    assert_eq!(&frame[..6], &[0x00, 0x80, 0x1a, 24, 0, 0]);
    assert_eq!(&frame[6..], &payload);
    let (header, msg) = Message::from_frame_bytes(&frame).unwrap();
    assert!(header.channel_msg);
    assert_eq!(msg, Message::from(m));
}

#[test]
fn wire_submit_shares_extended() {
    let m = SubmitSharesExtended {
        channel_id: 0x0102_0304,
        sequence_number: 0,
        job_id: 0xffff_ffff,
        nonce: 1,
        ntime: 2,
        version: 3,
        extranonce: B0_32::new(&[0xaa, 0xbb, 0xcc]).unwrap(),
    };
    #[rustfmt::skip]
    let payload = [
        0x04, 0x03, 0x02, 0x01, // channel_id
        0x00, 0x00, 0x00, 0x00, // sequence_number
        0xff, 0xff, 0xff, 0xff, // job_id
        0x01, 0x00, 0x00, 0x00, // nonce
        0x02, 0x00, 0x00, 0x00, // ntime
        0x03, 0x00, 0x00, 0x00, // version
        0x03, 0xaa, 0xbb, 0xcc, // extranonce B0_32: 1-byte length, bytes
    ];
    vector(&m, &payload);
}

#[test]
fn wire_new_mining_job_with_and_without_min_ntime() {
    let mut root = [0u8; 32];
    root[0] = 0x11;
    root[31] = 0xff;
    let mut m = NewMiningJob {
        channel_id: 9,
        job_id: 10,
        min_ntime: Some(0x6553_f100),
        version: 0x2000_0000,
        merkle_root: U256(root),
    };
    let mut payload = vec![
        0x09, 0x00, 0x00, 0x00, // channel_id
        0x0a, 0x00, 0x00, 0x00, // job_id
        0x01, 0x00, 0xf1, 0x53, 0x65, // min_ntime OPTION[U32]: count 1, value
        0x00, 0x00, 0x00, 0x20, // version
    ];
    payload.extend_from_slice(&root); // merkle_root U256, as is
    vector(&m, &payload);

    m.min_ntime = None;
    payload[8] = 0x00; // count 0 ...
    payload.drain(9..13); // ... and no value
    vector(&m, &payload);
}

#[test]
fn wire_open_standard_mining_channel_f32_is_le_binary32() {
    let m = OpenStandardMiningChannel {
        request_id: 1,
        user_identity: Str0_255::new("ab").unwrap(),
        nominal_hash_rate: 1.0,
        max_target: U256([0xff; 32]),
    };
    let mut payload = vec![
        0x01, 0x00, 0x00, 0x00, // request_id
        0x02, b'a', b'b', // user_identity STR0_255
        0x00, 0x00, 0x80, 0x3f, // nominal_hash_rate F32 1.0 = 0x3f800000, little-endian
    ];
    payload.extend_from_slice(&[0xff; 32]);
    vector(&m, &payload);
}

#[test]
fn wire_submit_shares_success_u64() {
    let m = SubmitSharesSuccess {
        channel_id: 1,
        last_sequence_number: 10,
        new_submits_accepted_count: 10,
        new_shares_sum: 0x0102_0304_0506_0708,
    };
    #[rustfmt::skip]
    let payload = [
        1, 0, 0, 0,
        10, 0, 0, 0,
        10, 0, 0, 0,
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
    ];
    vector(&m, &payload);
}

// ---------------------------------------------------------------------------------------------
// malformed input
// ---------------------------------------------------------------------------------------------

fn share_ext() -> SubmitSharesExtended {
    SubmitSharesExtended {
        channel_id: 1,
        sequence_number: 2,
        job_id: 3,
        nonce: 4,
        ntime: 5,
        version: 6,
        extranonce: B0_32::new(&[7; 8]).expect("8 bytes fit"),
    }
}

fn header_for<M: Sv2Message>(m: &M, len: usize) -> Header {
    let mut h = m.header();
    h.msg_length = len as u32;
    h
}

#[test]
fn extranonce_longer_than_32_is_rejected_with_field_name() {
    let mut b = share_ext().to_vec();
    b.truncate(24);
    b.push(33);
    b.extend_from_slice(&[0; 33]);
    assert_eq!(
        SubmitSharesExtended::from_bytes(&b).unwrap_err(),
        DecodeError::LengthOutOfRange {
            field: "SubmitSharesExtended.extranonce",
            len: 33,
            max: 32
        }
    );
    let h = header_for(&share_ext(), b.len());
    assert_eq!(
        Message::decode(&h, &b).unwrap_err(),
        DecodeError::LengthOutOfRange {
            field: "SubmitSharesExtended.extranonce",
            len: 33,
            max: 32
        }
    );
}

#[test]
fn option_count_2_is_rejected() {
    let m = NewMiningJob {
        channel_id: 1,
        job_id: 2,
        min_ntime: Some(3),
        version: 4,
        merkle_root: U256::default(),
    };
    let mut b = m.to_vec();
    b[8] = 2;
    assert_eq!(
        NewMiningJob::from_bytes(&b).unwrap_err(),
        DecodeError::LengthOutOfRange {
            field: "NewMiningJob.min_ntime",
            len: 2,
            max: 1
        }
    );
}

#[test]
fn truncated_input_names_the_field() {
    let b = share_ext().to_vec();
    assert_eq!(
        SubmitSharesExtended::from_bytes(&b[..22]).unwrap_err(),
        DecodeError::Truncated {
            field: "SubmitSharesExtended.version",
            needed: 2
        }
    );
    // The extranonce announces 8 bytes, 5 are there.
    assert_eq!(
        SubmitSharesExtended::from_bytes(&b[..b.len() - 3]).unwrap_err(),
        DecodeError::Truncated {
            field: "SubmitSharesExtended.extranonce",
            needed: 3
        }
    );
    // A merkle path announcing 255 hashes with none present fails without reserving 8 KiB.
    let job = NewExtendedMiningJob {
        channel_id: 1,
        job_id: 2,
        min_ntime: None,
        version: 3,
        version_rolling_allowed: false,
        merkle_path: Seq0_255::default(),
        coinbase_tx_prefix: B0_64K::default(),
        coinbase_tx_suffix: B0_64K::default(),
    };
    let mut b = job.to_vec();
    b[14] = 255;
    assert!(matches!(
        NewExtendedMiningJob::from_bytes(&b).unwrap_err(),
        DecodeError::Truncated {
            field: "NewExtendedMiningJob.merkle_path",
            ..
        }
    ));
    // SetGroupChannel announcing 65535 ids with none present.
    assert!(matches!(
        SetGroupChannel::from_bytes(&[1, 0, 0, 0, 0xff, 0xff]).unwrap_err(),
        DecodeError::Truncated {
            field: "SetGroupChannel.channel_ids",
            ..
        }
    ));
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut b = share_ext().to_vec();
    b.push(0);
    assert_eq!(
        SubmitSharesExtended::from_bytes(&b).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "SubmitSharesExtended",
            trailing: 1
        }
    );
    let h = header_for(&share_ext(), b.len());
    assert_eq!(
        Message::decode(&h, &b).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "SubmitSharesExtended",
            trailing: 1
        }
    );
    // ... but decode_with_tlvs hands them back (extension TLVs live there).
    let (m, rest) = Message::decode_with_tlvs(&h, &b).unwrap();
    assert_eq!(m, Message::from(share_ext()));
    assert_eq!(rest, &[0]);
}

#[test]
fn unknown_mining_msg_types_are_unknown_messages() {
    // 0x1e is reserved; 0x26..=0x4f are in the Mining range but unassigned.
    for t in [0x1e_u8, 0x26, 0x4f] {
        let h = Header {
            extension_type: 0,
            channel_msg: true,
            msg_type: t,
            msg_length: 4,
        };
        assert_eq!(
            Message::decode(&h, &[0; 4]).unwrap_err(),
            DecodeError::UnknownMessage {
                extension_type: 0,
                msg_type: t
            }
        );
    }
}

#[test]
fn bad_utf8_in_error_code_is_rejected() {
    let m = SubmitSharesError {
        channel_id: 1,
        sequence_number: 2,
        error_code: Str0_255::new(ERROR_STALE_SHARE).unwrap(),
    };
    let mut b = m.to_vec();
    b[9] = 0xff;
    assert_eq!(
        SubmitSharesError::from_bytes(&b).unwrap_err(),
        DecodeError::InvalidUtf8 {
            field: "SubmitShares.Error.error_code"
        }
    );
}

// ---------------------------------------------------------------------------------------------
// enum, names, JSON
// ---------------------------------------------------------------------------------------------

#[test]
fn names_and_enum_dispatch() {
    let m = SetCustomMiningJob {
        channel_id: 1,
        request_id: 2,
        mining_job_token: B0_255::new(vec![1, 2, 3]).unwrap(),
        version: 0x2000_0000,
        prev_hash: U256([1; 32]),
        min_ntime: 3,
        nbits: 4,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(vec![0x03, 0x01, 0x02, 0x03]).unwrap(),
        coinbase_tx_input_n_sequence: 0xffff_ffff,
        coinbase_tx_outputs: B0_64K::new(vec![0]).unwrap(),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0_255::new(vec![U256([2; 32])]).unwrap(),
    };
    let any = Message::from(m.clone());
    assert_eq!(any.name(), "SetCustomMiningJob");
    assert_eq!(any.msg_type(), 0x22);
    assert!(any.channel_msg());
    let json = any.fields_json();
    assert_eq!(json["mining_job_token"], "010203");
    assert_eq!(json["coinbase_tx_input_n_sequence"], 0xffff_ffffu32);
    assert_eq!(json["merkle_path"].as_array().unwrap().len(), 1);

    let enc = m.to_vec();
    assert_eq!(
        MiningMessage::decode(0x22, &enc).unwrap(),
        Some(MiningMessage::SetCustomMiningJob(m))
    );
    assert_eq!(MiningMessage::decode(0x1e, &enc).unwrap(), None);

    assert_eq!(
        Message::from(SubmitSharesSuccess {
            channel_id: 0,
            last_sequence_number: 0,
            new_submits_accepted_count: 0,
            new_shares_sum: 0
        })
        .name(),
        "SubmitShares.Success"
    );
    assert_eq!(
        Message::from(SetGroupChannel {
            group_channel_id: 1,
            channel_ids: Seq0_64K::new(vec![2, 3]).unwrap()
        })
        .fields_json()["channel_ids"]
            .to_string(),
        "[2,3]"
    );
}
