//! Extensions: the 0x0001 negotiation messages (round trips, differential against SRI's
//! extensions_sv2 0.3.0 through parsers_sv2's extension path), the TLV codec (differential
//! against parsers_sv2 0.6's `Tlv` / `TlvList`), and the 0x0002 `user_identity` TLV after a
//! SubmitSharesExtended, both ways between SRI and us.

mod support;

use proptest::prelude::*;
use strata_protocol::extensions::*;
use strata_protocol::mining::SubmitSharesExtended;
use strata_protocol::tlv::{self, Tlv, TlvError, TlvField, TlvRef};
use strata_protocol::{Decode, DecodeError, Encode, Header, Message, Seq0_64K, Sv2Message, B0_32};
use support::{header, roundtrip, sri_roundtrip};

proptest! {
    #[test]
    fn request_extensions(m in any::<RequestExtensions>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn request_extensions_success(m in any::<RequestExtensionsSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn request_extensions_error(m in any::<RequestExtensionsError>()) { roundtrip(&m); sri_roundtrip(&m); }

    /// One TLV: our encoding equals SRI's, each side decodes the other's.
    #[test]
    fn tlv_vs_sri(t in any::<Tlv>()) {
        let ours = t.to_vec();
        prop_assert_eq!(ours.len(), t.encoded_len());
        prop_assert_eq!(Tlv::from_bytes(&ours).unwrap(), t.clone());
        let sri = parsers_sv2::Tlv::new(t.extension_type, t.field_type, t.value().to_vec());
        prop_assert_eq!(&sri.encode().unwrap(), &ours);
        let back = parsers_sv2::Tlv::decode(&ours).unwrap();
        prop_assert_eq!(back.r#type.extension_type, t.extension_type);
        prop_assert_eq!(back.r#type.field_type, t.field_type);
        prop_assert_eq!(&back.value[..], &t.value()[..]);
        for cut in 0..ours.len() {
            prop_assert!(Tlv::from_bytes(&ours[..cut]).is_err());
        }
    }

    /// A list of TLVs: ours and SRI's `TlvList` give the same bytes, and read each other's.
    #[test]
    fn tlv_list_vs_sri(ts in proptest::collection::vec(any::<Tlv>(), 0..8)) {
        let mut ours = Vec::new();
        tlv::encode_list(&ts, &mut ours);
        prop_assert_eq!(ours.len(), tlv::list_len(&ts));
        prop_assert_eq!(&tlv::decode_list(&ours).unwrap(), &ts);
        let sri_tlvs: Vec<_> = ts
            .iter()
            .map(|t| parsers_sv2::Tlv::new(t.extension_type, t.field_type, t.value().to_vec()))
            .collect();
        let parsers_sv2::TlvList::Owned(sri_bytes) = parsers_sv2::TlvList::from_slice(&sri_tlvs).unwrap() else {
            unreachable!("from_slice builds an owned list")
        };
        prop_assert_eq!(&sri_bytes, &ours);
        prop_assert_eq!(parsers_sv2::TlvList::from_bytes(&ours).to_vec(), sri_tlvs);
        // a strict prefix that cuts a TLV is an error for us (SRI would drop the tail silently)
        if let Some(last) = ts.last() {
            let cut = ours.len() - 1;
            prop_assert!(tlv::decode_list(&ours[..cut]).is_err(), "{:?}", last);
            prop_assert!(tlv::iter(&ours[..cut]).any(|r| r.is_err()));
        }
    }

    /// user_identity TLVs agree with SRI's `UserIdentity` as a `TlvField`.
    #[test]
    fn user_identity_vs_sri(id in any::<UserIdentity>()) {
        use parsers_sv2::TlvField as _;
        let ours = id.to_tlv().to_vec();
        let sri = extensions_sv2::UserIdentity::new(id.as_str()).unwrap();
        prop_assert_eq!(&sri.to_bytes().unwrap(), &ours);
        let sri_back = extensions_sv2::UserIdentity::from_tlv(&parsers_sv2::Tlv::decode(&ours).unwrap()).unwrap();
        prop_assert_eq!(sri_back.as_str(), Some(id.as_str()));
        prop_assert_eq!(UserIdentity::find_in(&ours).unwrap(), Some(id.clone()));
        let t = Tlv::from_bytes(&ours).unwrap();
        prop_assert_eq!(UserIdentity::from_tlv(t.as_tlv_ref()).unwrap(), id);
    }

    /// SubmitSharesExtended + user_identity TLV: framed by us, read by SRI's
    /// `parse_message_frame_with_tlvs` and by `Message::decode_with_tlvs`.
    #[test]
    fn submit_shares_extended_with_user_identity(
        m in any::<SubmitSharesExtended>(),
        id in any::<UserIdentity>(),
    ) {
        let mut frame = Vec::new();
        tlv::encode_frame_with_tlvs(&m, &[id.to_tlv()], &mut frame).unwrap();
        let header = Header::from_bytes(frame[..6].try_into().unwrap());
        prop_assert_eq!(header.msg_length as usize, m.encoded_len() + 5 + id.as_str().len());
        let (msg, rest) = Message::decode_with_tlvs(&header, &frame[6..]).unwrap();
        prop_assert_eq!(msg, Message::from(m.clone()));
        prop_assert_eq!(UserIdentity::find_in(rest).unwrap(), Some(id.clone()));

        let sri_header = framing_sv2::header::Header::from_bytes(&frame[..6]).unwrap();
        let mut payload = frame[6..].to_vec();
        let (any, tlvs) =
            parsers_sv2::parse_message_frame_with_tlvs(sri_header, &mut payload, &[0x0002]).unwrap();
        prop_assert!(matches!(
            any,
            parsers_sv2::AnyMessage::Mining(parsers_sv2::Mining::SubmitSharesExtended(_))
        ));
        let tlvs = tlvs.expect("SRI finds the TLV");
        prop_assert_eq!(tlvs.len(), 1);
        prop_assert_eq!(tlvs[0].r#type.extension_type, 0x0002);
        prop_assert_eq!(tlvs[0].r#type.field_type, 0x01);
        prop_assert_eq!(&tlvs[0].value[..], id.as_str().as_bytes());
    }
}

/// SRI frames a SubmitSharesExtended with a user_identity TLV; we decode both parts.
#[test]
fn submit_shares_extended_with_user_identity_from_sri() {
    use parsers_sv2::TlvField as _;
    let extranonce = [0x01u8, 0x02, 0x03, 0x04];
    let sri_msg = mining_sv2::SubmitSharesExtended {
        channel_id: 7,
        sequence_number: 42,
        job_id: 3,
        nonce: 0xdead_beef,
        ntime: 1_700_000_000,
        version: 0x2000_0000,
        extranonce: extranonce.as_slice().try_into().unwrap(),
    };
    let id = extensions_sv2::UserIdentity::new("Worker_001").unwrap();
    let list = parsers_sv2::TlvList::from_slice(&[id.to_tlv().unwrap()]).unwrap();
    let frame = list
        .build_frame_bytes_with_tlvs(parsers_sv2::Mining::SubmitSharesExtended(sri_msg))
        .unwrap();

    let header = Header::from_bytes(frame[..6].try_into().unwrap());
    assert_eq!(header.extension_type, 0);
    assert!(header.channel_msg);
    let (msg, rest) = Message::decode_with_tlvs(&header, &frame[6..]).unwrap();
    assert_eq!(
        msg,
        Message::from(SubmitSharesExtended {
            channel_id: 7,
            sequence_number: 42,
            job_id: 3,
            nonce: 0xdead_beef,
            ntime: 1_700_000_000,
            version: 0x2000_0000,
            extranonce: B0_32::new(&extranonce).unwrap(),
        })
    );
    // SRI's little-endian layout (the spec's example has 00 02 01 00 0a)
    assert_eq!(&rest[..5], &[0x02, 0x00, 0x01, 0x0a, 0x00]);
    assert_eq!(
        UserIdentity::find_in(rest).unwrap(),
        Some(UserIdentity::new("Worker_001").unwrap())
    );
    assert_eq!(
        tlv::decode_list(rest).unwrap(),
        vec![Tlv::new(0x0002, 0x01, &b"Worker_001"[..]).unwrap()]
    );
    // strict decoding refuses the TLV bytes as trailing garbage
    assert_eq!(
        Message::decode(&header, &frame[6..]).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "SubmitSharesExtended",
            trailing: 15
        }
    );
}

/// RequestExtensions as a whole frame from the 0x0001 spec table: extension_type 0x0001 in
/// the header, channel_msg 0, msg_type 0x00.
#[test]
fn request_extensions_wire_vector() {
    let m = RequestExtensions {
        request_id: 0x0102,
        requested_extensions: Seq0_64K::new(vec![0x0002, 0x0003]).unwrap(),
    };
    let frame = [
        0x01, 0x00, // extension_type 0x0001
        0x00, // msg_type
        0x08, 0x00, 0x00, // msg_length 8
        0x02, 0x01, // request_id U16
        0x02, 0x00, // SEQ0_64K count
        0x02, 0x00, 0x03, 0x00, // 0x0002, 0x0003
    ];
    let mut ours = Vec::new();
    m.encode_frame(&mut ours);
    assert_eq!(ours, frame);
    let (header, msg) = Message::from_frame_bytes(&frame).unwrap();
    assert_eq!(header.extension_type, EXTENSION_TYPE_NEGOTIATION);
    assert_eq!(msg.extension_type(), 0x0001);
    assert_eq!(msg, Message::from(m));
}

#[test]
fn numbers_and_names_follow_sri() {
    fn check<M: Sv2Message>(t: u8, name: &str) {
        assert_eq!(
            (M::EXTENSION_TYPE, M::MSG_TYPE, M::CHANNEL_MSG, M::NAME),
            (1, t, false, name)
        );
    }
    use extensions_sv2 as sri;
    check::<RequestExtensions>(sri::MESSAGE_TYPE_REQUEST_EXTENSIONS, "RequestExtensions");
    check::<RequestExtensionsSuccess>(
        sri::MESSAGE_TYPE_REQUEST_EXTENSIONS_SUCCESS,
        "RequestExtensions.Success",
    );
    check::<RequestExtensionsError>(
        sri::MESSAGE_TYPE_REQUEST_EXTENSIONS_ERROR,
        "RequestExtensions.Error",
    );
    assert_eq!(
        EXTENSION_TYPE_NEGOTIATION,
        sri::EXTENSION_TYPE_EXTENSIONS_NEGOTIATION
    );
    assert_eq!(
        EXTENSION_TYPE_WORKER_HASHRATE,
        sri::EXTENSION_TYPE_WORKER_HASHRATE_TRACKING
    );
    assert_eq!(FIELD_TYPE_USER_IDENTITY, sri::TLV_FIELD_TYPE_USER_IDENTITY);
    assert_eq!(MAX_USER_IDENTITY_LEN, sri::MAX_USER_IDENTITY_LENGTH);
    assert_eq!(<UserIdentity as TlvField>::EXTENSION_TYPE, 0x0002);
}

#[test]
fn unknown_extension_messages_are_unknown() {
    let payload = [0u8; 4];
    for t in 0x03..=0xff_u8 {
        assert_eq!(
            Message::decode(&header(0x0001, t, 4), &payload).unwrap_err(),
            DecodeError::UnknownMessage {
                extension_type: 0x0001,
                msg_type: t
            }
        );
    }
    // 0x0002 defines no message of its own
    assert_eq!(
        Message::decode(&header(0x0002, 0x00, 4), &payload).unwrap_err(),
        DecodeError::UnknownMessage {
            extension_type: 0x0002,
            msg_type: 0
        }
    );
}

#[test]
fn bad_extension_messages_are_rejected() {
    // count of 3 U16s with only one present: fails at the second
    assert!(matches!(
        RequestExtensions::from_bytes(&[1, 0, 3, 0, 2, 0]).unwrap_err(),
        DecodeError::Truncated {
            field: "RequestExtensions.requested_extensions",
            needed: 2
        }
    ));
    let m = RequestExtensionsError {
        request_id: 1,
        unsupported_extensions: Seq0_64K::default(),
        required_extensions: Seq0_64K::new(vec![5]).unwrap(),
    };
    let mut b = m.to_vec();
    b.push(9);
    assert_eq!(
        RequestExtensionsError::from_bytes(&b).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "RequestExtensions.Error",
            trailing: 1
        }
    );
}

#[test]
fn user_identity_limits() {
    assert!(UserIdentity::new("x".repeat(32)).is_ok());
    assert!(UserIdentity::new("x".repeat(33)).is_err());

    // a 33-byte value: the spec says the recipient MUST reject it
    let long = Tlv::new(0x0002, 0x01, vec![b'x'; 33]).unwrap();
    assert_eq!(
        UserIdentity::from_tlv(long.as_tlv_ref()).unwrap_err(),
        TlvError::Value(DecodeError::LengthOutOfRange {
            field: "UserIdentity",
            len: 33,
            max: 32
        })
    );
    assert!(UserIdentity::find_in(&long.to_vec()).is_err());

    // not UTF-8
    let bad = TlvRef::new(0x0002, 0x01, &[0xff, 0xfe]).unwrap();
    assert_eq!(
        UserIdentity::from_tlv(bad).unwrap_err(),
        TlvError::Value(DecodeError::InvalidUtf8 {
            field: "UserIdentity"
        })
    );

    // another field
    let other = TlvRef::new(0x0003, 0x01, b"abc").unwrap();
    assert_eq!(
        UserIdentity::from_tlv(other).unwrap_err(),
        TlvError::UnexpectedType {
            extension_type: 0x0003,
            field_type: 0x01,
            expected_extension_type: 0x0002,
            expected_field_type: 0x01
        }
    );
}

#[test]
fn user_identity_lookup_skips_other_fields_and_checks_the_whole_list() {
    let id = UserIdentity::new("rig-7").unwrap();
    let tlvs = [
        Tlv::new(0x0002, 0x02, &b"other field"[..]).unwrap(),
        id.to_tlv(),
        Tlv::new(0x0005, 0x01, &b""[..]).unwrap(),
    ];
    let mut b = Vec::new();
    tlv::encode_list(&tlvs, &mut b);
    assert_eq!(UserIdentity::find_in(&b).unwrap(), Some(id));
    assert_eq!(UserIdentity::find_in(&b[..5 + 11]).unwrap(), None);
    assert_eq!(UserIdentity::find_in(&[]).unwrap(), None);
    // the match is there, but the list ends in a fragment: the whole list is malformed
    b.extend_from_slice(&[0x06, 0x00]);
    assert!(matches!(
        UserIdentity::find_in(&b).unwrap_err(),
        DecodeError::Truncated {
            field: "TLV.type",
            ..
        }
    ));
}

#[test]
fn frame_with_tlvs_checks_the_payload_limit() {
    let m = RequestExtensions {
        request_id: 1,
        requested_extensions: Seq0_64K::default(),
    };
    let big = Tlv::new(0x0009, 0x01, vec![0u8; 65_535]).unwrap();
    let many = vec![big; 257]; // 257 * 65540 bytes > 2^24 - 1
    let mut buf = Vec::new();
    assert!(tlv::encode_frame_with_tlvs(&m, &many, &mut buf).is_err());
    assert!(buf.is_empty());
}
