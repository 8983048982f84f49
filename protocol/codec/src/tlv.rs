//! TLV fields of negotiated extensions
//! ([spec 3.4.3](https://github.com/stratum-mining/sv2-spec/blob/main/03-Protocol-Overview.md#343-stratum-v2-tlv-encoding-model)).
//!
//! An extension that adds fields to an existing message appends them after the message's own
//! fields as TLVs; the frame keeps the message's `extension_type` and `msg_length` counts the
//! TLVs too. [`crate::Message::decode_with_tlvs`] returns those trailing bytes; this module
//! reads and writes them.
//!
//! ```text
//! +----------------+------------+--------------+-------------------+
//! | extension_type | field_type | length       | value             |
//! | U16 (LE)       | U8         | U16 (LE)     | `length` bytes    |
//! +----------------+------------+--------------+-------------------+
//! ```
//!
//! # Differences between the spec text and SRI
//!
//! * **Byte order** (docs/spec-notes.md §3): the spec's examples write the type and length
//!   big-endian (`00 02 01 00 0A` for extension 0x0002, field 0x01, length 10); SRI's
//!   parsers_sv2 0.6 writes both little-endian (`02 00 01 0A 00`), like every other SV2
//!   integer. We interoperate with SRI: little-endian.
//! * **Malformed lists**: SRI's `TlvIter` silently stops at a trailing fragment shorter than a
//!   TLV header, and `TlvList::to_vec` skips undecodable TLVs. Here a list that does not parse
//!   exactly is a [`DecodeError`] (spec: a receiver MUST reject a message whose TLV breaks its
//!   length rules).
//! * **Value length**: SRI's `Tlv::new` truncates a longer value's length to 16 bits without
//!   complaint; [`Tlv::new`] refuses values over [`MAX_VALUE_LEN`].
//! * **Order**: the spec says TLVs MUST be ordered by `extension_type`; neither SRI nor this
//!   decoder enforces it (receivers look TLVs up by type). Senders should order them.

use crate::error::{DecodeError, LengthError};
use crate::frame::{Header, MAX_PAYLOAD_LEN};
use crate::message::Sv2Message;
use crate::wire::{Decode, Encode, Reader};
use bytes::{BufMut, Bytes};
use std::fmt;

/// Size of a TLV header: extension_type (2) + field_type (1) + length (2).
pub const HEADER_LEN: usize = 5;
/// Largest TLV value (the length is a U16).
pub const MAX_VALUE_LEN: usize = 65_535;
/// Most TLVs [`decode_list`] accepts after one message, so that a frame of empty TLVs cannot
/// make it allocate many times its own size. The borrowed [`iter`] has no such limit.
pub const MAX_TLVS: usize = 255;

/// One TLV field, owning its value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tlv {
    /// The extension that defines the field (without any channel_msg bit).
    pub extension_type: u16,
    /// The field within the extension.
    pub field_type: u8,
    value: Bytes,
}

impl Tlv {
    /// Build a TLV, or fail if `value` is longer than [`MAX_VALUE_LEN`].
    pub fn new(
        extension_type: u16,
        field_type: u8,
        value: impl Into<Bytes>,
    ) -> Result<Self, LengthError> {
        let value = value.into();
        if value.len() > MAX_VALUE_LEN {
            return Err(LengthError {
                kind: "TLV value",
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        Ok(Tlv {
            extension_type,
            field_type,
            value,
        })
    }

    /// The value bytes.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// Take the value out.
    pub fn into_value(self) -> Bytes {
        self.value
    }

    /// The borrowed form.
    pub fn as_tlv_ref(&self) -> TlvRef<'_> {
        TlvRef {
            extension_type: self.extension_type,
            field_type: self.field_type,
            value: &self.value,
        }
    }
}

impl fmt::Debug for Tlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_tlv_ref(), f)
    }
}

impl Encode for Tlv {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + self.value.len()
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.as_tlv_ref().encode(buf);
    }
}

impl Decode for Tlv {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        TlvRef::decode(r).map(|t| t.to_tlv())
    }
}

impl From<TlvRef<'_>> for Tlv {
    fn from(t: TlvRef<'_>) -> Self {
        t.to_tlv()
    }
}

/// One TLV field borrowing its value from the input (no allocation: for the share
/// submission path).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlvRef<'a> {
    /// The extension that defines the field.
    pub extension_type: u16,
    /// The field within the extension.
    pub field_type: u8,
    value: &'a [u8],
}

impl<'a> TlvRef<'a> {
    /// Build a borrowed TLV, or fail if `value` is longer than [`MAX_VALUE_LEN`].
    pub fn new(extension_type: u16, field_type: u8, value: &'a [u8]) -> Result<Self, LengthError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(LengthError {
                kind: "TLV value",
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        Ok(TlvRef {
            extension_type,
            field_type,
            value,
        })
    }

    /// The value bytes.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Read one TLV from `r`, borrowing its value.
    pub fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let t = r.take(3, "TLV.type")?;
        let extension_type = u16::from_le_bytes([t[0], t[1]]);
        let field_type = t[2];
        let l = r.take(2, "TLV.length")?;
        let len = usize::from(u16::from_le_bytes([l[0], l[1]]));
        let value = r.take(len, "TLV.value")?;
        Ok(TlvRef {
            extension_type,
            field_type,
            value,
        })
    }

    /// Copy into an owned [`Tlv`].
    pub fn to_tlv(&self) -> Tlv {
        Tlv {
            extension_type: self.extension_type,
            field_type: self.field_type,
            value: Bytes::copy_from_slice(self.value),
        }
    }

    /// True when this is field `field_type` of extension `extension_type`.
    pub fn is(&self, extension_type: u16, field_type: u8) -> bool {
        self.extension_type == extension_type && self.field_type == field_type
    }
}

impl fmt::Debug for TlvRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tlv({:#06x}/{:#04x}, ",
            self.extension_type, self.field_type
        )?;
        for b in self.value {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Encode for TlvRef<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + self.value.len()
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(&self.extension_type.to_le_bytes());
        buf.put_u8(self.field_type);
        // the constructors checked the value fits the U16 length
        buf.put_slice(&(self.value.len() as u16).to_le_bytes());
        buf.put_slice(self.value);
    }
}

/// Iterator over the TLVs in the bytes after a message, borrowing their values. It yields an
/// error (and then stops) if the bytes do not split exactly into TLVs.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<TlvRef<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.remaining() == 0 {
            return None;
        }
        let t = TlvRef::decode(&mut self.r);
        self.failed = t.is_err();
        Some(t)
    }
}

/// Iterate over the TLVs in `bytes` (the tail [`crate::Message::decode_with_tlvs`] returns).
pub fn iter(bytes: &[u8]) -> TlvIter<'_> {
    TlvIter {
        r: Reader::new(bytes),
        failed: false,
    }
}

/// Decode all of `bytes` as a list of TLVs (empty input = empty list). Fails if the bytes do
/// not split exactly into TLVs or hold more than [`MAX_TLVS`] of them.
pub fn decode_list(bytes: &[u8]) -> Result<Vec<Tlv>, DecodeError> {
    let mut out = Vec::new();
    for t in iter(bytes) {
        if out.len() == MAX_TLVS {
            return Err(DecodeError::LengthOutOfRange {
                field: "TLV list",
                len: out.len() + 1,
                max: MAX_TLVS,
            });
        }
        out.push(t?.to_tlv());
    }
    Ok(out)
}

/// The first TLV of field `field_type` of extension `extension_type` in `bytes`. The whole of
/// `bytes` must be a well-formed TLV list, even after the match.
pub fn find(
    bytes: &[u8],
    extension_type: u16,
    field_type: u8,
) -> Result<Option<TlvRef<'_>>, DecodeError> {
    let mut found = None;
    for t in iter(bytes) {
        let t = t?;
        if found.is_none() && t.is(extension_type, field_type) {
            found = Some(t);
        }
    }
    Ok(found)
}

/// Encoded size of a list of TLVs.
pub fn list_len(tlvs: &[Tlv]) -> usize {
    tlvs.iter().map(Encode::encoded_len).sum()
}

/// Append a list of TLVs to `buf`, in the order given (the spec wants them ordered by
/// `extension_type`).
pub fn encode_list<B: BufMut>(tlvs: &[Tlv], buf: &mut B) {
    for t in tlvs {
        t.encode(buf);
    }
}

/// Append a whole frame to `buf`: `msg` followed by `tlvs`, with `msg_length` counting both.
/// Fails (writing nothing) if the payload would exceed the U24 `msg_length`.
pub fn encode_frame_with_tlvs<M: Sv2Message, B: BufMut>(
    msg: &M,
    tlvs: &[Tlv],
    buf: &mut B,
) -> Result<(), LengthError> {
    header_with_tlvs(msg.header(), msg.encoded_len(), tlvs)?.encode(buf);
    msg.encode(buf);
    encode_list(tlvs, buf);
    Ok(())
}

/// The header of a frame carrying a `msg_len`-byte message followed by `tlvs`.
pub(crate) fn header_with_tlvs(
    header: Header,
    msg_len: usize,
    tlvs: &[Tlv],
) -> Result<Header, LengthError> {
    let len = msg_len + list_len(tlvs);
    if len > MAX_PAYLOAD_LEN {
        return Err(LengthError {
            kind: "frame payload",
            len,
            max: MAX_PAYLOAD_LEN,
        });
    }
    Ok(Header {
        msg_length: len as u32,
        ..header
    })
}

/// Why a TLV is not the typed field asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The TLV belongs to another extension or field.
    #[error(
        "tlv {extension_type:#06x}/{field_type:#04x} is not {expected_extension_type:#06x}/{expected_field_type:#04x}"
    )]
    UnexpectedType {
        /// The TLV's extension_type.
        extension_type: u16,
        /// The TLV's field_type.
        field_type: u8,
        /// The extension_type of the typed field.
        expected_extension_type: u16,
        /// The field_type of the typed field.
        expected_field_type: u8,
    },
    /// The value is not valid for the field (too long, not UTF-8...).
    #[error(transparent)]
    Value(#[from] DecodeError),
}

/// A typed TLV field of a known extension (e.g. [`crate::extensions::UserIdentity`]).
pub trait TlvField: Sized {
    /// The extension that defines the field.
    const EXTENSION_TYPE: u16;
    /// The field within the extension.
    const FIELD_TYPE: u8;

    /// Parse the value bytes (enforcing the extension's length limits).
    fn decode_value(value: &[u8]) -> Result<Self, DecodeError>;

    /// The value bytes (at most [`MAX_VALUE_LEN`]; implementations enforce their own, smaller
    /// limit at construction).
    fn value_bytes(&self) -> Bytes;

    /// This field as a [`Tlv`].
    fn to_tlv(&self) -> Tlv {
        Tlv::new(Self::EXTENSION_TYPE, Self::FIELD_TYPE, self.value_bytes())
            .expect("typed TLV values are within the U16 length")
    }

    /// Parse a TLV that must be this field.
    fn from_tlv(t: TlvRef<'_>) -> Result<Self, TlvError> {
        if !t.is(Self::EXTENSION_TYPE, Self::FIELD_TYPE) {
            return Err(TlvError::UnexpectedType {
                extension_type: t.extension_type,
                field_type: t.field_type,
                expected_extension_type: Self::EXTENSION_TYPE,
                expected_field_type: Self::FIELD_TYPE,
            });
        }
        Ok(Self::decode_value(t.value)?)
    }

    /// Find and parse this field in the TLV bytes after a message; `Ok(None)` when it is not
    /// there. Fails if the list is malformed or the field's value is invalid.
    fn find_in(tlv_bytes: &[u8]) -> Result<Option<Self>, DecodeError> {
        find(tlv_bytes, Self::EXTENSION_TYPE, Self::FIELD_TYPE)?
            .map(|t| Self::decode_value(t.value))
            .transpose()
    }
}

#[cfg(feature = "proptest")]
impl proptest::arbitrary::Arbitrary for Tlv {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        (
            any::<u16>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..=64),
        )
            .prop_map(|(e, f, v)| Tlv::new(e, f, v).expect("short value"))
            .boxed()
    }
}

#[cfg(feature = "json")]
impl crate::json::ToJson for Tlv {
    /// `{"extension_type", "field_type", "value"}` with the value as hex.
    fn to_json(&self) -> serde_json::Value {
        let hex: String = self.value.iter().map(|b| format!("{b:02x}")).collect();
        serde_json::json!({
            "extension_type": self.extension_type,
            "field_type": self.field_type,
            "value": hex,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_layout_is_little_endian() {
        let t = Tlv::new(0x0002, 0x01, &b"Worker_001"[..]).unwrap();
        let mut v = Vec::new();
        t.encode(&mut v);
        assert_eq!(&v[..5], &[0x02, 0x00, 0x01, 0x0a, 0x00]);
        assert_eq!(&v[5..], b"Worker_001");
        assert_eq!(Tlv::from_bytes(&v).unwrap(), t);
    }

    #[test]
    fn value_length_is_bounded() {
        assert!(Tlv::new(1, 1, vec![0u8; MAX_VALUE_LEN]).is_ok());
        assert!(Tlv::new(1, 1, vec![0u8; MAX_VALUE_LEN + 1]).is_err());
    }

    #[test]
    fn list_must_parse_exactly() {
        assert_eq!(decode_list(&[]).unwrap(), vec![]);
        assert!(matches!(
            decode_list(&[2, 0, 1]).unwrap_err(),
            DecodeError::Truncated {
                field: "TLV.length",
                ..
            }
        ));
        assert!(matches!(
            decode_list(&[2, 0, 1, 3, 0, b'a']).unwrap_err(),
            DecodeError::Truncated {
                field: "TLV.value",
                needed: 2
            }
        ));
    }

    #[test]
    fn list_count_is_bounded() {
        let ok = vec![0u8; HEADER_LEN * MAX_TLVS];
        assert_eq!(decode_list(&ok).unwrap().len(), MAX_TLVS);
        let too_many = vec![0u8; HEADER_LEN * (MAX_TLVS + 1)];
        assert!(matches!(
            decode_list(&too_many).unwrap_err(),
            DecodeError::LengthOutOfRange {
                field: "TLV list",
                ..
            }
        ));
        // the borrowed iterator does not allocate and has no limit
        assert_eq!(iter(&too_many).count(), MAX_TLVS + 1);
    }
}
