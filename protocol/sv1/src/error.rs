//! Error types: one per operation (parsing a line, framing a stream).

use crate::text::Id;

/// Why a line could not be parsed into a message.
///
/// Every variant is a property of the peer's input; none is a bug on our side. A server answers
/// [`ParseError::InvalidParams`] with an error response (the request's id is in the error, see
/// [`ParseError::id`]) and may close the connection on the others.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The line is not UTF-8.
    #[error("line is not valid utf-8 (first bad byte at offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The line is empty or only whitespace.
    #[error("empty line")]
    Empty,
    /// The line contains a newline before its end (one message per line).
    #[error("message spans more than one line")]
    MultipleLines,
    /// The line is not a JSON object.
    #[error("message is not a json object")]
    NotAnObject,
    /// The line is not valid JSON, or too deeply nested (serde_json stops at depth 128), or a
    /// top-level member has the wrong JSON type (e.g. a numeric `method`).
    #[error("invalid json: {source}")]
    Json {
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The object has neither a `method` nor a `result`/`error` member.
    #[error("object is neither a request nor a response")]
    NotAMessage,
    /// The `id` is an object, array or boolean.
    #[error("invalid id: expected a number, a string or null")]
    InvalidId,
    /// A parameter of a known method (or a field of a typed result) is missing or malformed.
    #[error("invalid {field} in {method}: {kind}")]
    InvalidParams {
        /// The request's id (`null` for results and notifications).
        id: Id,
        /// The method (or result type) being parsed, e.g. `mining.submit`.
        method: &'static str,
        /// The parameter, e.g. `nonce`.
        field: &'static str,
        /// What is wrong with it.
        kind: FieldError,
    },
}

impl ParseError {
    /// The id of the offending request, when the line got far enough to have one; a server uses
    /// it to answer with an error response instead of dropping the line.
    pub fn id(&self) -> Option<&Id> {
        match self {
            ParseError::InvalidParams { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A required field is absent or `null`.
    #[error("missing")]
    Missing,
    /// The field has the wrong JSON type.
    #[error("expected {expected}")]
    WrongType {
        /// What was expected, e.g. `a hex string`.
        expected: &'static str,
    },
    /// The field contains a character that is not a hex digit.
    #[error("not hex")]
    InvalidHex,
    /// A hex field has the wrong number of digits.
    #[error("expected {expected} hex digits, got {actual}")]
    HexLength {
        /// The required number of digits (an odd count means "an even number" when 0).
        expected: usize,
        /// The number of digits received.
        actual: usize,
    },
    /// A byte string is longer than allowed.
    #[error("{len} bytes, at most {max} allowed")]
    TooLong {
        /// Bytes received.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A number does not fit the field's range (e.g. a port above 65535, a negative count).
    #[error("number out of range")]
    OutOfRange,
    /// A difficulty is zero, negative, not finite or not a number.
    #[error("difficulty must be a finite number greater than zero")]
    InvalidDifficulty,
}

/// Why the line framer gave up on a stream. The stream is dead after any error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// A line (without its terminator) is longer than the configured maximum; detected as soon as
    /// the buffer holds more than the maximum without a newline.
    #[error("line longer than {max_line_len} bytes (at least {len})")]
    TooLong {
        /// The configured maximum.
        max_line_len: usize,
        /// The length seen so far.
        len: usize,
    },
    /// The stream's first line does not start like a JSON-RPC message: its first byte other
    /// than whitespace is not `{` (only checked when asked for,
    /// [`crate::LineDecoder::json_first_line`]); detected as soon as that byte arrives.
    #[error("not JSON-RPC: the first line starts with byte {byte:#04x}")]
    NotJson {
        /// The offending byte.
        byte: u8,
    },
}
