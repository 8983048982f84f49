//! Extensions ([spec 9](https://github.com/stratum-mining/sv2-spec/blob/main/09-Extensions.md)):
//! the messages of extension 0x0001 (Extensions Negotiation,
//! `extensions/0x0001-extensions-negotiation.md`) and the TLV field of extension 0x0002
//! (Worker-Specific Hashrate Tracking, `extensions/0x0002-worker-specific-hashrate-tracking.md`).
//!
//! ```text
//!   Client                                       Server
//!     SetupConnection                    ---->
//!                                        <----  SetupConnection.Success
//!     RequestExtensions [0x0002]         ---->
//!                                        <----  RequestExtensions.Success [0x0002]
//!                                               (or RequestExtensions.Error)
//!     SubmitSharesExtended + TLV(0x0002/0x01 user_identity)  ---->
//! ```
//!
//! The 0x0001 messages are framed with `extension_type = 0x0001` and channel_msg = 0; the
//! 0x0002 field travels as a TLV after a base `SubmitSharesExtended` (whose frame keeps
//! `extension_type = 0`): see [`UserIdentity`] and [`crate::tlv`].
//!
//! # Differences between the spec text and SRI
//!
//! The 0x0001 messages agree field for field with SRI (extensions_sv2 0.3.0). For 0x0002:
//!
//! * **TLV byte order**: the spec's example is big-endian, SRI little-endian; we follow SRI
//!   (see [`crate::tlv`], docs/spec-notes.md §3).
//! * **UTF-8**: the spec says the value is UTF-8; SRI accepts any bytes on receipt. We reject
//!   a value that is not UTF-8 ([`crate::DecodeError::InvalidUtf8`]); SRI senders build it from
//!   a `&str`.
//! * **Spec typo**: 0x0001's implementation notes name the server's list `requested_extensions`
//!   in RequestExtensions.Error; the message table (and SRI) call it `required_extensions`.

use crate::error::{DecodeError, LengthError};
use crate::message::{protocol_enum, sv2_message};
use crate::tlv::TlvField;
use crate::wire::Seq0_64K;
use bytes::Bytes;
use std::fmt;

/// Extension id of Extensions Negotiation (the `extension_type` of its messages).
pub const EXTENSION_TYPE_NEGOTIATION: u16 = crate::EXTENSION_NEGOTIATION;
/// Extension id of Worker-Specific Hashrate Tracking.
pub const EXTENSION_TYPE_WORKER_HASHRATE: u16 = crate::EXTENSION_WORKER_HASHRATE;
/// field_type of the `user_identity` TLV of extension 0x0002.
pub const FIELD_TYPE_USER_IDENTITY: u8 = 0x01;
/// Longest `user_identity` TLV value, in bytes.
pub const MAX_USER_IDENTITY_LEN: usize = 32;

sv2_message! {
    /// Client -> Server: the extensions the client wants to use; sent right after
    /// SetupConnection.Success (0x0001 spec 2).
    RequestExtensions = (crate::EXTENSION_NEGOTIATION, 0x00, channel_msg = false, "RequestExtensions") {
        /// Client-chosen id, echoed in the response.
        request_id: u16,
        /// Extension ids requested (e.g. 0x0002).
        requested_extensions: Seq0_64K<u16>,
    }
}

sv2_message! {
    /// Server -> Client: the requested extensions the server supports and enables (0x0001
    /// spec 2).
    RequestExtensionsSuccess = (crate::EXTENSION_NEGOTIATION, 0x01, channel_msg = false, "RequestExtensions.Success") {
        /// `request_id` of the RequestExtensions this answers.
        request_id: u16,
        /// Extension ids supported (a subset of those requested).
        supported_extensions: Seq0_64K<u16>,
    }
}

sv2_message! {
    /// Server -> Client: none of the requested extensions is supported, or the server requires
    /// others (0x0001 spec 2).
    RequestExtensionsError = (crate::EXTENSION_NEGOTIATION, 0x02, channel_msg = false, "RequestExtensions.Error") {
        /// `request_id` of the RequestExtensions this answers.
        request_id: u16,
        /// Requested extension ids the server does not support.
        unsupported_extensions: Seq0_64K<u16>,
        /// Extension ids the server requires that were not requested (it disconnects a client
        /// that does not retry with them).
        required_extensions: Seq0_64K<u16>,
    }
}

protocol_enum! {
    /// A message of extension 0x0001 (Extensions Negotiation).
    ExtensionsMessage => Extensions {
        RequestExtensions(RequestExtensions),
        RequestExtensionsSuccess(RequestExtensionsSuccess),
        RequestExtensionsError(RequestExtensionsError),
    }
}

/// The `user_identity` TLV of extension 0x0002 (Worker-Specific Hashrate Tracking): the worker
/// name appended to every SubmitSharesExtended once the extension is negotiated. UTF-8, at
/// most [`MAX_USER_IDENTITY_LEN`] bytes, not padded.
///
/// ```
/// use strata_protocol::extensions::UserIdentity;
/// use strata_protocol::tlv::{self, TlvField};
///
/// let id = UserIdentity::new("Worker_001").unwrap();
/// let mut tail = Vec::new();
/// tlv::encode_list(&[id.to_tlv()], &mut tail);
/// assert_eq!(&tail[..5], &[0x02, 0x00, 0x01, 0x0a, 0x00]); // SRI's little-endian layout
/// assert_eq!(UserIdentity::find_in(&tail).unwrap(), Some(id));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct UserIdentity(String);

impl UserIdentity {
    /// Wrap `s`, or fail if it is longer than [`MAX_USER_IDENTITY_LEN`] bytes.
    pub fn new(s: impl Into<String>) -> Result<Self, LengthError> {
        let s = s.into();
        if s.len() > MAX_USER_IDENTITY_LEN {
            return Err(LengthError {
                kind: "UserIdentity",
                len: s.len(),
                max: MAX_USER_IDENTITY_LEN,
            });
        }
        Ok(UserIdentity(s))
    }

    /// The worker name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserIdentity({:?})", self.0)
    }
}

impl fmt::Display for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TlvField for UserIdentity {
    const EXTENSION_TYPE: u16 = EXTENSION_TYPE_WORKER_HASHRATE;
    const FIELD_TYPE: u8 = FIELD_TYPE_USER_IDENTITY;

    fn decode_value(value: &[u8]) -> Result<Self, DecodeError> {
        if value.len() > MAX_USER_IDENTITY_LEN {
            return Err(DecodeError::LengthOutOfRange {
                field: "UserIdentity",
                len: value.len(),
                max: MAX_USER_IDENTITY_LEN,
            });
        }
        let s = std::str::from_utf8(value).map_err(|_| DecodeError::InvalidUtf8 {
            field: "UserIdentity",
        })?;
        Ok(UserIdentity(s.to_owned()))
    }

    fn value_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.0.as_bytes())
    }
}

#[cfg(feature = "proptest")]
impl proptest::arbitrary::Arbitrary for UserIdentity {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        "\\PC{0,32}"
            .prop_map(|mut s: String| {
                while s.len() > MAX_USER_IDENTITY_LEN {
                    s.pop();
                }
                UserIdentity(s)
            })
            .boxed()
    }
}
