//! The message machinery: the [`Sv2Message`] trait, the `sv2_message!` macro that defines a
//! message struct with its codec from the spec's field table, and the `protocol_enum!` macro
//! that builds one enum per sub-protocol.

use crate::frame::Header;
use crate::wire::{Decode, Encode};
use bytes::BufMut;

/// A message of the SV2 protocol: its place in the type table of `08-Message-Types.md`.
pub trait Sv2Message: Encode + Decode {
    /// Extension id (0 for Common, Mining, Job Declaration and Template Distribution).
    const EXTENSION_TYPE: u16;
    /// Message type number.
    const MSG_TYPE: u8;
    /// The channel_msg bit this message is sent with.
    const CHANNEL_MSG: bool;
    /// The spec's name, e.g. `"SubmitShares.Success"`.
    const NAME: &'static str;

    /// The frame header for this message.
    fn header(&self) -> Header {
        Header {
            extension_type: Self::EXTENSION_TYPE,
            channel_msg: Self::CHANNEL_MSG,
            msg_type: Self::MSG_TYPE,
            msg_length: self.encoded_len() as u32,
        }
    }

    /// Append header and payload to `buf`.
    fn encode_frame<B: BufMut>(&self, buf: &mut B) {
        self.header().encode(buf);
        self.encode(buf);
    }
}

/// Define a message struct, its [`Encode`]/[`Decode`]/[`Sv2Message`] impls (and `to_json` with
/// the `json` feature) from its field list, in wire order.
///
/// ```ignore
/// sv2_message! {
///     /// doc
///     SetTarget = (0, 0x21, channel_msg = true, "SetTarget") {
///         /// doc
///         channel_id: u32,
///         maximum_target: U256,
///     }
/// }
/// ```
macro_rules! sv2_message {
    (
        $(#[$meta:meta])*
        $name:ident = ($ext:expr, $ty:expr, channel_msg = $chan:expr, $label:literal) {
            $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[cfg_attr(feature = "proptest", derive(proptest_derive::Arbitrary))]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $fty, )*
        }

        impl $crate::wire::Encode for $name {
            #[inline]
            fn encoded_len(&self) -> usize {
                0 $( + $crate::wire::Encode::encoded_len(&self.$field) )*
            }
            #[inline]
            fn encode<B: ::bytes::BufMut>(&self, _buf: &mut B) {
                $( $crate::wire::Encode::encode(&self.$field, _buf); )*
            }
        }

        impl $crate::wire::Decode for $name {
            #[inline]
            fn decode(_r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::DecodeError> {
                Ok($name {
                    $( $field: <$fty as $crate::wire::Decode>::decode(_r)
                        .map_err(|e| e.at(concat!($label, ".", stringify!($field))))?, )*
                })
            }

            fn from_bytes(buf: &[u8]) -> Result<Self, $crate::DecodeError> {
                let mut r = $crate::wire::Reader::new(buf);
                let v = <Self as $crate::wire::Decode>::decode(&mut r)?;
                r.finish($label)?;
                Ok(v)
            }
        }

        impl $crate::message::Sv2Message for $name {
            const EXTENSION_TYPE: u16 = $ext;
            const MSG_TYPE: u8 = $ty;
            const CHANNEL_MSG: bool = $chan;
            const NAME: &'static str = $label;
        }

        #[cfg(feature = "json")]
        impl $crate::json::ToJson for $name {
            fn to_json(&self) -> ::serde_json::Value {
                #[allow(unused_mut)]
                let mut m = ::serde_json::Map::new();
                $( m.insert(stringify!($field).to_owned(), $crate::json::ToJson::to_json(&self.$field)); )*
                ::serde_json::Value::Object(m)
            }
        }
    };
}
pub(crate) use sv2_message;

/// Define the enum of one sub-protocol's messages, dispatching on `msg_type`.
macro_rules! protocol_enum {
    (
        $(#[$meta:meta])*
        $enum:ident => $outer:ident { $( $variant:ident($ty:ty) ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $enum {
            $( #[doc = concat!("`", stringify!($variant), "`")] $variant($ty), )*
        }

        impl $enum {
            /// Decode the payload of message `msg_type`; `Ok(None)` when this sub-protocol has
            /// no such message. The payload must be consumed exactly.
            pub fn decode(msg_type: u8, payload: &[u8]) -> Result<Option<Self>, $crate::DecodeError> {
                let _ = (msg_type, payload);
                $(
                    if msg_type == <$ty as $crate::message::Sv2Message>::MSG_TYPE {
                        return <$ty as $crate::wire::Decode>::from_bytes(payload).map(|m| Some($enum::$variant(m)));
                    }
                )*
                Ok(None)
            }

            /// Decode the message at the start of `payload` and return it with the bytes after
            /// it (where TLV fields of negotiated extensions live).
            pub fn decode_prefix(msg_type: u8, payload: &[u8]) -> Result<Option<(Self, &[u8])>, $crate::DecodeError> {
                let _ = (msg_type, payload);
                $(
                    if msg_type == <$ty as $crate::message::Sv2Message>::MSG_TYPE {
                        let mut r = $crate::wire::Reader::new(payload);
                        let m = <$ty as $crate::wire::Decode>::decode(&mut r)?;
                        return Ok(Some(($enum::$variant(m), r.rest())));
                    }
                )*
                Ok(None)
            }

            /// The message type number.
            pub fn msg_type(&self) -> u8 {
                match *self { $( $enum::$variant(_) => <$ty as $crate::message::Sv2Message>::MSG_TYPE, )* }
            }

            /// The extension id.
            pub fn extension_type(&self) -> u16 {
                match *self { $( $enum::$variant(_) => <$ty as $crate::message::Sv2Message>::EXTENSION_TYPE, )* }
            }

            /// The channel_msg bit the message is sent with.
            pub fn channel_msg(&self) -> bool {
                match *self { $( $enum::$variant(_) => <$ty as $crate::message::Sv2Message>::CHANNEL_MSG, )* }
            }

            /// The spec's name of the message.
            pub fn name(&self) -> &'static str {
                match *self { $( $enum::$variant(_) => <$ty as $crate::message::Sv2Message>::NAME, )* }
            }

            /// Frame header for the message.
            pub fn header(&self) -> $crate::frame::Header {
                match *self { $( $enum::$variant(ref m) => $crate::message::Sv2Message::header(m), )* }
            }

            /// Payload length.
            pub fn encoded_len(&self) -> usize {
                match *self { $( $enum::$variant(ref m) => $crate::wire::Encode::encoded_len(m), )* }
            }

            /// Append the payload to `buf`.
            pub fn encode<B: ::bytes::BufMut>(&self, buf: &mut B) {
                let _ = &buf;
                match *self { $( $enum::$variant(ref m) => $crate::wire::Encode::encode(m, buf), )* }
            }

            /// The fields as JSON (field names as in the spec).
            #[cfg(feature = "json")]
            pub fn fields_json(&self) -> ::serde_json::Value {
                match *self { $( $enum::$variant(ref m) => $crate::json::ToJson::to_json(m), )* }
            }
        }

        $(
            impl From<$ty> for $enum {
                fn from(m: $ty) -> Self {
                    $enum::$variant(m)
                }
            }

            impl From<$ty> for $crate::Message {
                fn from(m: $ty) -> Self {
                    $crate::Message::$outer($enum::$variant(m))
                }
            }
        )*

        impl From<$enum> for $crate::Message {
            fn from(m: $enum) -> Self {
                $crate::Message::$outer(m)
            }
        }
    };
}
pub(crate) use protocol_enum;
