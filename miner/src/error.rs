//! Why a miner stopped.

use strata_net::NetError;
use strata_protocol::DecodeError;
use strata_work::channel::ChannelError;

/// Exit code for a protocol error (the server refused us or sent garbage).
pub const EXIT_PROTOCOL: i32 = 1;
/// Exit code for a lost or failed connection.
pub const EXIT_CONNECTION: i32 = 2;

/// Why a miner stopped. [`exit_code`](Self::exit_code) maps it to the process exit code:
/// [`EXIT_PROTOCOL`] or [`EXIT_CONNECTION`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinerError {
    /// SV2 `SetupConnection.Error`.
    #[error("setup connection refused: {code} (unsupported flags {flags:#x})")]
    SetupRejected {
        /// The error code.
        code: String,
        /// Flags the server does not support.
        flags: u32,
    },
    /// SV2 `OpenMiningChannel.Error`.
    #[error("open mining channel refused: {code}")]
    ChannelRejected {
        /// The error code.
        code: String,
    },
    /// The server granted a channel the miner cannot use (e.g. an extranonce over 32 bytes).
    #[error("unusable channel {channel_id}: {source}")]
    BadChannel {
        /// The channel id.
        channel_id: u32,
        /// Why.
        source: ChannelError,
    },
    /// An SV1 request the miner cannot mine without was refused.
    #[error("sv1 {request} refused: {reason}")]
    Sv1Refused {
        /// `mining.subscribe` or `mining.authorize`.
        request: &'static str,
        /// The error or result.
        reason: String,
    },
    /// A frame did not decode as the message its header names.
    #[error("malformed message: {source}")]
    Malformed {
        /// The decode error.
        source: DecodeError,
    },
    /// A user identity longer than 255 bytes.
    #[error("user identity of {} bytes is longer than 255", user.len())]
    InvalidUser {
        /// The user.
        user: String,
    },
    /// An address that is not `host:port`.
    #[error("invalid address {addr:?}")]
    BadAddress {
        /// The address.
        addr: String,
    },
    /// TCP connect failed.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The connection failed (socket, Noise, framing).
    #[error("connection failed: {source}")]
    Net {
        /// The error.
        source: NetError,
    },
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
}

impl MinerError {
    /// The process exit code for this error: [`EXIT_CONNECTION`] for a lost or failed
    /// connection, [`EXIT_PROTOCOL`] for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            MinerError::Connect { .. }
            | MinerError::Closed
            | MinerError::Net {
                source:
                    NetError::Io(_)
                    | NetError::HandshakeEof
                    | NetError::HandshakeTimeout { .. }
                    | NetError::UnexpectedEof { .. },
            } => EXIT_CONNECTION,
            _ => EXIT_PROTOCOL,
        }
    }

    /// A short stable name of the error kind (the load generator counts errors by it).
    pub fn kind(&self) -> &'static str {
        match self {
            MinerError::SetupRejected { .. } => "setup-rejected",
            MinerError::ChannelRejected { .. } => "channel-rejected",
            MinerError::BadChannel { .. } => "bad-channel",
            MinerError::Sv1Refused { .. } => "sv1-refused",
            MinerError::Malformed { .. } => "malformed-message",
            MinerError::InvalidUser { .. } => "invalid-user",
            MinerError::BadAddress { .. } => "bad-address",
            MinerError::Connect { .. } => "connect-failed",
            MinerError::Net { source } => match source {
                NetError::Io(_) => "io",
                NetError::HandshakeTimeout { .. } => "handshake-timeout",
                NetError::HandshakeEof => "handshake-eof",
                NetError::Noise(_) => "noise",
                NetError::UnexpectedEof { .. } => "unexpected-eof",
                NetError::Line(_) => "line",
                _ => "net",
            },
            MinerError::Closed => "closed",
        }
    }
}

impl From<NetError> for MinerError {
    fn from(source: NetError) -> Self {
        MinerError::Net { source }
    }
}
