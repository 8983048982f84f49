//! # strata-protocol
//!
//! Stratum V2 on the wire, with no I/O: the data types of
//! [spec 3.1](https://github.com/stratum-mining/sv2-spec/blob/main/03-Protocol-Overview.md),
//! plaintext framing with the channel_msg bit, TLV fields, and every message of the Common,
//! Mining, Job Declaration and Template Distribution protocols plus extensions 0x0001 and
//! 0x0002, numbered as in `08-Message-Types.md`.
//!
//! * Decoding is single pass over a borrowed slice ([`wire::Reader`]); trailing bytes are
//!   rejected; every length is checked before anything is allocated. The hot messages
//!   (SubmitSharesStandard, SubmitSharesExtended, NewMiningJob, SetTarget,
//!   SubmitShares.Success) are fixed-size structs (a B0_32 is stored inline) and decode without
//!   allocating.
//! * Encoding is infallible (`Encode::encode`): lengths are checked when a value is built.
//! * [`Message`] dispatches on `(extension_type, msg_type)`; each sub-protocol also has its
//!   own enum for roles that speak only one.
//! * [`tlv`]: the TLV fields negotiated extensions append after a message
//!   ([`Message::decode_with_tlvs`] returns them), e.g. the 0x0002 [`UserIdentity`].
//!
//! Where the spec text and SRI (the reference implementation) disagree on the wire, we
//! interoperate with SRI; each case is documented on the item and in `docs/spec-vs-sri.md`.
//!
//! ```
//! use strata_protocol::{mining::SubmitSharesStandard, FrameDecoder, Message, Sv2Message};
//! use bytes::BytesMut;
//!
//! let share = SubmitSharesStandard {
//!     channel_id: 7, sequence_number: 1, job_id: 42, nonce: 0xdead_beef,
//!     ntime: 1_700_000_000, version: 0x2000_0000,
//! };
//! let mut wire = BytesMut::new();
//! share.encode_frame(&mut wire);
//!
//! let frame = FrameDecoder::default().decode(&mut wire).unwrap().expect("whole frame");
//! let msg = Message::decode(&frame.header, &frame.payload).unwrap();
//! assert_eq!(msg, Message::from(share));
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "json")]
pub mod json;
pub(crate) mod message;
pub mod wire;

pub mod common;
pub mod extensions;
pub mod job_declaration;
pub mod mining;
pub mod template_distribution;
pub mod tlv;

mod any;

pub use any::{Message, EXTENSION_BASE, EXTENSION_NEGOTIATION, EXTENSION_WORKER_HASHRATE};
pub use error::{DecodeError, LengthError};
pub use extensions::UserIdentity;
pub use frame::{Frame, FrameDecoder, FrameError, Header};
pub use message::Sv2Message;
pub use tlv::{Tlv, TlvField, TlvRef};
pub use wire::{
    Decode, Encode, LenBytes, PubKey, Reader, Seq, Seq0_255, Seq0_64K, Signature, Str0_255, B0_16M,
    B0_255, B0_32, B0_64K, U24, U256,
};
