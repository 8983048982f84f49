//! Zero-copy string types: [`Text`], [`RawJson`] and the JSON-RPC [`Id`].
//!
//! A parsed line is held in a reference-counted [`Bytes`]; every string field of a parsed message
//! is a slice of that buffer (no copy, no allocation) unless the peer used JSON escapes in it, in
//! which case the unescaped string is allocated. The types carry no lifetime.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

use crate::error::ParseError;

/// An immutable UTF-8 string backed by [`Bytes`]: cheap to clone, usually a slice of the line it
/// was parsed from (which it keeps alive). A `Text` built from a `String` allocates once more on
/// its first clone (`bytes` promotes the buffer to shared); parsed ones never do.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(Bytes); // invariant: valid UTF-8

impl Text {
    /// A `Text` pointing at a static string (no allocation).
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // The invariant makes the fallback unreachable; `forbid(unsafe_code)` rules out
        // `from_utf8_unchecked`, and validating a short ASCII string is a few nanoseconds.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The underlying bytes, borrowed.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// `s` as a slice of `line` when it points into it, else a copy of `s`.
    pub(crate) fn from_cow_in(line: &Bytes, s: Cow<'_, str>) -> Self {
        match s {
            Cow::Borrowed(b) => Self::from_str_in(line, b),
            Cow::Owned(o) => Self::from(o),
        }
    }

    /// `s` as a slice of `line` when it points into it, else a copy of `s`.
    pub(crate) fn from_str_in(line: &Bytes, s: &str) -> Self {
        let start = line.as_ptr() as usize;
        let p = s.as_ptr() as usize;
        if p >= start && p + s.len() <= start + line.len() {
            Self(line.slice_ref(s.as_bytes()))
        } else {
            Self::from(s)
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must agree with `str`'s hash because of `Borrow<str>`.
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One JSON value kept as its text, exactly as received (or as built): used for `params` of
/// unknown methods, the `result` of responses, extension parameters nobody here understands.
///
/// Invariant: the text is one valid JSON value with no newline, so writing it raw keeps a message
/// on one line.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Text);

impl RawJson {
    /// `null`.
    pub const NULL: RawJson = RawJson(Text::from_static("null"));
    /// `true`.
    pub const TRUE: RawJson = RawJson(Text::from_static("true"));
    /// `false`.
    pub const FALSE: RawJson = RawJson(Text::from_static("false"));
    /// `[]`.
    pub const EMPTY_ARRAY: RawJson = RawJson(Text::from_static("[]"));

    /// Checks that `text` is exactly one JSON value on one line.
    pub fn new(text: impl Into<Text>) -> Result<Self, ParseError> {
        let text = text.into();
        if text.as_bytes().contains(&b'\n') {
            return Err(ParseError::MultipleLines);
        }
        serde_json::from_str::<serde::de::IgnoredAny>(text.as_str())
            .map_err(|source| ParseError::Json { source })?;
        Ok(Self(text))
    }

    /// Serializes a `serde_json::Value` (compact, so on one line).
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(Text::from(value.to_string()))
    }

    /// Parses the text into a `serde_json::Value` (off the hot path: for inspection and tests).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.as_str()).unwrap_or(serde_json::Value::Null)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        self.as_str() == "null"
    }

    /// The underlying buffer (typed results are parsed as slices of it).
    pub(crate) fn bytes(&self) -> &Bytes {
        self.0.bytes()
    }

    /// Built from text the parser or our own encoder produced (already a valid single-line value).
    pub(crate) fn trusted(text: Text) -> Self {
        Self(text)
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawJson({})", self.as_str())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JSON-RPC request id, kept verbatim so a response echoes exactly what the peer sent.
///
/// Firmware sends numbers (cgminer, bmminer), strings (some Braiins OS and NiceHash clients) and
/// `null` (notifications). A number keeps its original text, so `1.0`, `-3` or a 30-digit id are
/// echoed byte for byte. Objects, arrays and booleans are rejected ([`ParseError::InvalidId`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Id {
    /// `null` or absent.
    #[default]
    Null,
    /// A JSON number, as its original text.
    Number(IdNumber),
    /// A JSON string (unescaped).
    String(Text),
}

/// The text of a JSON number used as an [`Id`]; always a valid JSON number token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdNumber(Text);

impl IdNumber {
    /// The number's JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The value if it is a plain non-negative integer that fits `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_str().parse().ok()
    }
}

impl Id {
    /// The id as `u64` when it is a non-negative integer number (how our own miner numbers
    /// requests).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Id::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Id::Null)
    }

    /// Parses the raw JSON text of an id.
    pub(crate) fn from_raw(line: &Bytes, raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        match raw.as_bytes().first() {
            Some(b'n') => Ok(Id::Null),
            Some(b'-' | b'0'..=b'9') => Ok(Id::Number(IdNumber(Text::from_str_in(line, raw)))),
            Some(b'"') => {
                let s: Cow<'_, str> =
                    serde_json::from_str(raw).map_err(|source| ParseError::Json { source })?;
                Ok(Id::String(Text::from_cow_in(line, s)))
            }
            _ => Err(ParseError::InvalidId),
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Self {
        Id::Number(IdNumber(Text::from(n.to_string())))
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Number(IdNumber(Text::from(n.to_string())))
    }
}

impl From<u32> for Id {
    fn from(n: u32) -> Self {
        Id::from(u64::from(n))
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::String(Text::from(s))
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::String(Text::from(s))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Null => f.write_str("null"),
            Id::Number(n) => f.write_str(n.as_str()),
            Id::String(s) => write!(f, "{s:?}"),
        }
    }
}
