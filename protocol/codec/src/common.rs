//! Common messages ([spec 3.6](https://github.com/stratum-mining/sv2-spec/blob/main/03-Protocol-Overview.md#36-common-protocol-messages)),
//! shared by every sub-protocol: message types 0x00-0x04.

use crate::message::{protocol_enum, sv2_message};
use crate::wire::Str0_255;

/// `SetupConnection.protocol` value for the Mining Protocol.
pub const PROTOCOL_MINING: u8 = Protocol::Mining as u8;
/// `SetupConnection.protocol` value for the Job Declaration Protocol.
pub const PROTOCOL_JOB_DECLARATION: u8 = Protocol::JobDeclaration as u8;
/// `SetupConnection.protocol` value for the Template Distribution Protocol.
pub const PROTOCOL_TEMPLATE_DISTRIBUTION: u8 = Protocol::TemplateDistribution as u8;

/// SetupConnection.Error: the server does not support a flag the client requires (the
/// unsupported bits are in `flags`).
pub const ERROR_UNSUPPORTED_FEATURE_FLAGS: &str = "unsupported-feature-flags";
/// SetupConnection.Error: the server does not serve the requested sub-protocol, or the
/// `protocol` value names none ([`SetupConnection::sub_protocol`]).
pub const ERROR_UNSUPPORTED_PROTOCOL: &str = "unsupported-protocol";
/// SetupConnection.Error: no version in `min_version..=max_version` is one the server speaks.
pub const ERROR_PROTOCOL_VERSION_MISMATCH: &str = "protocol-version-mismatch";

/// A sub-protocol a client can ask for in `SetupConnection.protocol`: the three the spec
/// defines (chapters 5, 6 and 7).
///
/// The spec's 3.6.1 table also lists "3 = Job Distribution Protocol", which its chapter 3
/// announces as "left to be specified in a future document" and no chapter defines (no
/// message, no flag); SRI removed it as legacy (its `Protocol` enum is 0..=2 and refuses 3
/// when decoding). Here 3 is an unknown value like 4..=255: [`SetupConnection`] still decodes
/// it (the field is a plain `u8`, so a server can answer), and
/// [`SetupConnection::sub_protocol`] says it is none, which servers answer with
/// `SetupConnection.Error` [`ERROR_UNSUPPORTED_PROTOCOL`] (`docs/spec-vs-sri.md`, row 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Protocol {
    /// 0: the Mining Protocol (spec chapter 5).
    Mining = 0,
    /// 1: the Job Declaration Protocol (spec chapter 6).
    JobDeclaration = 1,
    /// 2: the Template Distribution Protocol (spec chapter 7).
    TemplateDistribution = 2,
}

impl Protocol {
    /// The protocol's name as the spec writes it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Mining => "Mining",
            Protocol::JobDeclaration => "Job Declaration",
            Protocol::TemplateDistribution => "Template Distribution",
        }
    }
}

impl TryFrom<u8> for Protocol {
    type Error = UnknownProtocol;

    fn try_from(value: u8) -> Result<Self, UnknownProtocol> {
        match value {
            0 => Ok(Protocol::Mining),
            1 => Ok(Protocol::JobDeclaration),
            2 => Ok(Protocol::TemplateDistribution),
            other => Err(UnknownProtocol(other)),
        }
    }
}

impl From<Protocol> for u8 {
    fn from(p: Protocol) -> u8 {
        p as u8
    }
}

/// A `SetupConnection.protocol` value that names no sub-protocol (3..=255); a server answers
/// it with `SetupConnection.Error` [`ERROR_UNSUPPORTED_PROTOCOL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "SetupConnection.protocol {0} names no sub-protocol \
     (0 Mining, 1 Job Declaration, 2 Template Distribution)"
)]
pub struct UnknownProtocol(pub u8);

sv2_message! {
    /// Client -> Server: the first message on a connection (spec 3.6.1).
    SetupConnection = (0, 0x00, channel_msg = false, "SetupConnection") {
        /// 0 = Mining, 1 = Job Declaration, 2 = Template Distribution; any other value is
        /// decoded and names no sub-protocol ([`SetupConnection::sub_protocol`]).
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
        /// [`ERROR_UNSUPPORTED_FEATURE_FLAGS`], [`ERROR_UNSUPPORTED_PROTOCOL`],
        /// [`ERROR_PROTOCOL_VERSION_MISMATCH`]...
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

impl SetupConnection {
    /// The sub-protocol the client asks for, or the unknown value (3 included: see
    /// [`Protocol`]).
    pub fn sub_protocol(&self) -> Result<Protocol, UnknownProtocol> {
        Protocol::try_from(self.protocol)
    }

    /// How a server of `protocol` (version 2, the only one) refuses this request, if it
    /// must: the `SetupConnection.Error` to send ([`ERROR_UNSUPPORTED_PROTOCOL`],
    /// [`ERROR_PROTOCOL_VERSION_MISMATCH`]) and the reason to log. Flags are each role's.
    pub fn refusal(&self, protocol: Protocol) -> Option<(SetupConnectionError, String)> {
        let refuse = |code: &str, reason: String| {
            let error = SetupConnectionError {
                flags: 0,
                error_code: Str0_255::truncated(code),
            };
            Some((error, reason))
        };
        if self.sub_protocol() != Ok(protocol) {
            return refuse(
                ERROR_UNSUPPORTED_PROTOCOL,
                format!("unsupported protocol {}", self.protocol),
            );
        }
        if self.min_version > 2 || self.max_version < 2 {
            return refuse(
                ERROR_PROTOCOL_VERSION_MISMATCH,
                format!(
                    "versions {}..={} exclude 2",
                    self.min_version, self.max_version
                ),
            );
        }
        None
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

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(protocol: u8, min: u16, max: u16) -> SetupConnection {
        SetupConnection {
            protocol,
            min_version: min,
            max_version: max,
            flags: 0,
            endpoint_host: Str0_255::default(),
            endpoint_port: 0,
            vendor: Str0_255::default(),
            hardware_version: Str0_255::default(),
            firmware: Str0_255::default(),
            device_id: Str0_255::default(),
        }
    }

    #[test]
    fn a_server_refuses_other_protocols_and_versions() {
        assert!(setup(PROTOCOL_MINING, 2, 2)
            .refusal(Protocol::Mining)
            .is_none());
        assert!(setup(PROTOCOL_MINING, 1, 3)
            .refusal(Protocol::Mining)
            .is_none());
        let (error, reason) = setup(PROTOCOL_JOB_DECLARATION, 2, 2)
            .refusal(Protocol::Mining)
            .unwrap();
        assert_eq!(error.error_code.as_str(), ERROR_UNSUPPORTED_PROTOCOL);
        assert_eq!(reason, "unsupported protocol 1");
        // 3 names no sub-protocol
        assert!(setup(3, 2, 2).refusal(Protocol::Mining).is_some());
        let (error, reason) = setup(PROTOCOL_MINING, 3, 4)
            .refusal(Protocol::Mining)
            .unwrap();
        assert_eq!(error.error_code.as_str(), ERROR_PROTOCOL_VERSION_MISMATCH);
        assert_eq!(reason, "versions 3..=4 exclude 2");
    }
}
