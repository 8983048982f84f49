//! Errors of the codec layer.

/// Why a byte sequence is not a valid SV2 value, message or frame header.
///
/// Every variant names the `field` it was found in: the type name (`"B0_32"`) for a bare value,
/// `"Message.field"` once a message decoder has added context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("{field}: truncated, {needed} more bytes needed")]
    Truncated {
        /// Where the input ended.
        field: &'static str,
        /// How many more bytes the value needed at least.
        needed: usize,
    },
    /// Bytes were left over after a complete message.
    #[error("{trailing} trailing bytes after {field}")]
    TrailingBytes {
        /// The message that was complete.
        field: &'static str,
        /// How many bytes were left.
        trailing: usize,
    },
    /// A length prefix (or OPTION count) is larger than its type allows.
    #[error("{field}: length {len} out of range (max {max})")]
    LengthOutOfRange {
        /// The value with the bad length.
        field: &'static str,
        /// The length found.
        len: usize,
        /// The largest length the type allows.
        max: usize,
    },
    /// A STR0_255 is not UTF-8.
    #[error("{field}: invalid utf-8")]
    InvalidUtf8 {
        /// The string field.
        field: &'static str,
    },
    /// The (extension_type, msg_type) pair names no message we know.
    #[error("unknown message type {msg_type:#04x} for extension {extension_type:#06x}")]
    UnknownMessage {
        /// Extension type, without the channel_msg bit.
        extension_type: u16,
        /// Message type.
        msg_type: u8,
    },
    /// A frame's `msg_length` disagrees with the payload it came with.
    #[error("frame declares {declared} payload bytes but carries {actual}")]
    LengthMismatch {
        /// The header's msg_length.
        declared: usize,
        /// The payload's real length.
        actual: usize,
    },
}

impl DecodeError {
    /// Name the field the error happened in, unless a more specific name is already set
    /// (inner decoders name their type; the message decoder replaces it with `Msg.field`).
    #[must_use]
    pub fn at(mut self, name: &'static str) -> Self {
        match &mut self {
            DecodeError::Truncated { field, .. }
            | DecodeError::TrailingBytes { field, .. }
            | DecodeError::LengthOutOfRange { field, .. }
            | DecodeError::InvalidUtf8 { field } => {
                if !field.contains('.') {
                    *field = name;
                }
            }
            DecodeError::UnknownMessage { .. } | DecodeError::LengthMismatch { .. } => {}
        }
        self
    }
}

/// A value does not fit the SV2 type it is being put into (checked once, at construction, so
/// that encoding is infallible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: length {len} out of range (max {max})")]
pub struct LengthError {
    /// The SV2 type (`"B0_32"`, `"SEQ0_255"`, ...).
    pub kind: &'static str,
    /// The length offered.
    pub len: usize,
    /// The largest length the type allows.
    pub max: usize,
}
