//! Common messages ([spec 3.6](https://github.com/stratum-mining/sv2-spec/blob/main/03-Protocol-Overview.md#36-common-protocol-messages)),
//! shared by every sub-protocol: message types 0x00-0x04.

use crate::message::{protocol_enum, sv2_message};
use crate::wire::Str0_255;

/// `SetupConnection.protocol` value for the Mining Protocol.
pub const PROTOCOL_MINING: u8 = 0;
/// `SetupConnection.protocol` value for the Job Declaration Protocol.
pub const PROTOCOL_JOB_DECLARATION: u8 = 1;
/// `SetupConnection.protocol` value for the Template Distribution Protocol.
pub const PROTOCOL_TEMPLATE_DISTRIBUTION: u8 = 2;
/// `SetupConnection.protocol` value for the Job Distribution Protocol.
pub const PROTOCOL_JOB_DISTRIBUTION: u8 = 3;

sv2_message! {
    /// Client -> Server: the first message on a connection (spec 3.6.1).
    SetupConnection = (0, 0x00, channel_msg = false, "SetupConnection") {
        /// 0 = Mining, 1 = Job Declaration, 2 = Template Distribution, 3 = Job Distribution.
        protocol: u8,
        /// Minimum protocol version the client supports (currently 2).
        min_version: u16,
        /// Maximum protocol version the client supports (currently 2).
        max_version: u16,
        /// Optional features the client supports (meaning depends on `protocol`).
        flags: u32,
        /// Host name or IP address the client connected to.
        endpoint_host: Str0_255,
        /// Port the client connected to.
        endpoint_port: u16,
        /// Device manufacturer / firmware developer.
        vendor: Str0_255,
        /// Hardware version.
        hardware_version: Str0_255,
        /// Firmware version.
        firmware: Str0_255,
        /// Device id (empty when not providing telemetry).
        device_id: Str0_255,
    }
}

sv2_message! {
    /// Server -> Client: the connection is accepted (spec 3.6.2).
    SetupConnectionSuccess = (0, 0x01, channel_msg = false, "SetupConnection.Success") {
        /// Version chosen for the life of the connection.
        used_version: u16,
        /// Optional features the server supports.
        flags: u32,
    }
}

sv2_message! {
    /// Server -> Client: the connection is refused (spec 3.6.3); the server then closes it.
    SetupConnectionError = (0, 0x02, channel_msg = false, "SetupConnection.Error") {
        /// Flags the server does not support (0 when the error is about something else).
        flags: u32,
        /// `unsupported-feature-flags`, `unsupported-protocol`, `protocol-version-mismatch`...
        error_code: Str0_255,
    }
}

sv2_message! {
    /// Server -> Client: a channel's endpoint changed; reset extension state (spec 3.6.4).
    ChannelEndpointChanged = (0, 0x03, channel_msg = true, "ChannelEndpointChanged") {
        /// The channel whose endpoint changed.
        channel_id: u32,
    }
}

sv2_message! {
    /// Server -> Client: reconnect to another host of the same pool (spec 3.6.5).
    Reconnect = (0, 0x04, channel_msg = false, "Reconnect") {
        /// New host; empty = the present one.
        new_host: Str0_255,
        /// New port; 0 = the present one.
        new_port: u16,
    }
}

protocol_enum! {
    /// A Common message.
    CommonMessage => Common {
        SetupConnection(SetupConnection),
        SetupConnectionSuccess(SetupConnectionSuccess),
        SetupConnectionError(SetupConnectionError),
        ChannelEndpointChanged(ChannelEndpointChanged),
        Reconnect(Reconnect),
    }
}
