//! Common messages: property round trips and differential tests against SRI.

mod support;

use proptest::prelude::*;
use strata_protocol::common::*;
use strata_protocol::Str0_255;
use support::{roundtrip, sri_bytes_decode_to, sri_roundtrip};

fn s(x: &str) -> Str0_255 {
    Str0_255::new(x).expect("short string")
}

proptest! {
    #[test]
    fn setup_connection(m in any::<SetupConnection>()) { roundtrip(&m); }
    #[test]
    fn setup_connection_success(m in any::<SetupConnectionSuccess>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn setup_connection_error(m in any::<SetupConnectionError>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn channel_endpoint_changed(m in any::<ChannelEndpointChanged>()) { roundtrip(&m); sri_roundtrip(&m); }
    #[test]
    fn reconnect(m in any::<Reconnect>()) { roundtrip(&m); sri_roundtrip(&m); }

    /// SRI's SetupConnection.protocol is an enum of 0..=2 (it refuses 3, Job Distribution,
    /// which the spec lists but nobody implements): compare on the values SRI can hold.
    #[test]
    fn setup_connection_vs_sri(mut m in any::<SetupConnection>(), p in 0u8..=2) {
        m.protocol = p;
        sri_roundtrip(&m);
    }
}

#[test]
fn setup_connection_from_sri_value() {
    use common_messages_sv2::{Protocol, SetupConnection as Sri};
    let sri = Sri {
        protocol: Protocol::MiningProtocol,
        min_version: 2,
        max_version: 2,
        flags: 0b101,
        endpoint_host: b"pool.example".as_slice().try_into().unwrap(),
        endpoint_port: 34254,
        vendor: b"Bitmain".as_slice().try_into().unwrap(),
        hardware_version: b"S19".as_slice().try_into().unwrap(),
        firmware: b"braiins-os-2024".as_slice().try_into().unwrap(),
        device_id: b"".as_slice().try_into().unwrap(),
    };
    let bytes = binary_sv2::to_bytes(sri).unwrap();
    sri_bytes_decode_to(
        &bytes,
        &SetupConnection {
            protocol: PROTOCOL_MINING,
            min_version: 2,
            max_version: 2,
            flags: 0b101,
            endpoint_host: s("pool.example"),
            endpoint_port: 34254,
            vendor: s("Bitmain"),
            hardware_version: s("S19"),
            firmware: s("braiins-os-2024"),
            device_id: s(""),
        },
    );
}

#[test]
fn setup_connection_rejects_bad_utf8_with_field_name() {
    use strata_protocol::{Decode, DecodeError, Encode};
    let m = SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: s("ab"),
        endpoint_port: 1,
        vendor: s(""),
        hardware_version: s(""),
        firmware: s(""),
        device_id: s(""),
    };
    let mut b = m.to_vec();
    b[10] = 0xff; // first byte of endpoint_host
    assert_eq!(
        SetupConnection::from_bytes(&b).unwrap_err(),
        DecodeError::InvalidUtf8 {
            field: "SetupConnection.endpoint_host"
        }
    );
    b = m.to_vec();
    b.push(0);
    assert!(matches!(
        SetupConnection::from_bytes(&b).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "SetupConnection",
            trailing: 1
        }
    ));
}

/// 0, 1 and 2 are the spec's sub-protocols; every other value, 3 ("Job Distribution", a
/// sub-protocol the spec leaves "to a future document" and never defines) included, names none.
#[test]
fn protocol_values_outside_0_to_2_name_no_sub_protocol() {
    assert_eq!(Protocol::try_from(PROTOCOL_MINING), Ok(Protocol::Mining));
    assert_eq!(
        Protocol::try_from(PROTOCOL_JOB_DECLARATION),
        Ok(Protocol::JobDeclaration)
    );
    assert_eq!(
        Protocol::try_from(PROTOCOL_TEMPLATE_DISTRIBUTION),
        Ok(Protocol::TemplateDistribution)
    );
    for p in [
        Protocol::Mining,
        Protocol::JobDeclaration,
        Protocol::TemplateDistribution,
    ] {
        assert_eq!(Protocol::try_from(u8::from(p)), Ok(p));
    }
    for v in 3..=u8::MAX {
        assert_eq!(Protocol::try_from(v), Err(UnknownProtocol(v)));
    }
    let msg = UnknownProtocol(3).to_string();
    assert!(msg.contains("protocol 3"), "{msg}");
}

/// A SetupConnection asking for protocol 3 still decodes (a server must be able to answer it
/// with `unsupported-protocol`) and names no sub-protocol; SRI refuses to decode it.
#[test]
fn setup_connection_protocol_3_decodes_and_names_no_sub_protocol() {
    use strata_protocol::{Decode, Encode};
    let m = SetupConnection {
        protocol: 3,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: s("pool.example"),
        endpoint_port: 34254,
        vendor: s("v"),
        hardware_version: s(""),
        firmware: s(""),
        device_id: s(""),
    };
    let bytes = m.to_vec();
    let back = SetupConnection::from_bytes(&bytes).expect("3 is a u8 like any other");
    assert_eq!(back, m);
    assert_eq!(back.sub_protocol(), Err(UnknownProtocol(3)));
    let mut sri = bytes.clone();
    assert!(
        binary_sv2::from_bytes::<common_messages_sv2::SetupConnection<'_>>(&mut sri).is_err(),
        "SRI's Protocol enum is 0..=2"
    );
    let mut mining = m.clone();
    mining.protocol = PROTOCOL_MINING;
    assert_eq!(mining.sub_protocol(), Ok(Protocol::Mining));
}
