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
