//! Stratum V1, the line-delimited JSON-RPC dialect ASIC firmware speaks, for both ends: a pool
//! or proxy (server) parses [`ClientMessage`]s and writes [`ServerMessage`]s; a miner does the
//! reverse. Sans-IO: bytes in, typed values out, and back into a caller's buffer.
//!
//! - **Framing**: [`LineDecoder`] splits a stream into lines (`\n` or `\r\n`, blank lines
//!   skipped, bounded length) with tokio-util's `Decoder` contract.
//! - **Parsing** is tolerant where firmware is sloppy (ids of any JSON scalar kind, numbers as
//!   strings, difficulty as int/float/string, hex in either case, missing or extra optional
//!   params, unknown methods kept as [`ClientMethod::Unknown`]) and strict where a share depends
//!   on it (`ntime`/`nonce` exactly 8 hex digits, `extranonce2` valid hex). Every failure is a
//!   typed [`ParseError`]; no input panics. Parsed strings are slices of the line ([`Text`]), so
//!   a `mining.submit` parses without allocating.
//! - **Encoding** writes one JSON line plus `\n` straight into any [`bytes::BufMut`]
//!   (`Vec<u8>`, `BytesMut`), with no intermediate `serde_json::Value` or `String`.
//! - **Quirks** of deployed firmware are named constants ([`DEFAULT_MAX_EXTRANONCE2_SIZE`],
//!   [`MAX_EXTRANONCE1_SIZE`], [`VERSION_MASK_BIP320`], [`VERSION_MASK_WIDE`]) next to the
//!   BIP310 mask negotiation ([`negotiate_version_mask`]); the prevhash word order of
//!   `mining.notify` is handled inside [`Notify`] and documented in [`prevhash`].
//!
//! # Example: a server answering a miner
//!
//! ```
//! use bytes::BytesMut;
//! use strata_sv1::{
//!     ClientMessage, ClientMethod, LineDecoder, Response, StratumError, SubscribeResult, Text,
//! };
//!
//! // Bytes as an Antminer S9 sends them, arriving in one read.
//! let mut src = BytesMut::from(
//!     &b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"bmminer/2.0.0\"]}\r\n\
//!        {\"params\": [\"user.s9\", \"123\", \"00000000\", \"5b8e7f0a\", \"b2957c02\"], \
//!          \"id\": 4, \"method\": \"mining.submit\"}\n"[..],
//! );
//! let mut decoder = LineDecoder::default();
//! let mut out = Vec::new();
//! while let Some(line) = decoder.decode(&mut src)? {
//!     match ClientMessage::parse(line) {
//!         Ok(ClientMessage::Request(req)) => match req.method {
//!             ClientMethod::Subscribe(_) => {
//!                 let result =
//!                     SubscribeResult::new(Text::from("ae68"), vec![0x08, 0, 0, 2].into(), 4);
//!                 Response::subscribe(req.id, &result).encode(&mut out);
//!             }
//!             ClientMethod::Submit(share) => {
//!                 assert_eq!(share.nonce, 0xb2957c02);
//!                 Response::bool(req.id, true).encode(&mut out);
//!             }
//!             _ => Response::error(req.id, StratumError::method_not_found()).encode(&mut out),
//!         },
//!         Ok(ClientMessage::Response(_)) => {}
//!         // A malformed request with a usable id gets an error response, not a disconnect.
//!         Err(e) => match e.id() {
//!             Some(id) => Response::error(
//!                 id.clone(),
//!                 StratumError::new(StratumError::INVALID_PARAMS, e.to_string()),
//!             )
//!             .encode(&mut out),
//!             None => return Err(e.into()),
//!         },
//!     }
//! }
//! assert_eq!(
//!     String::from_utf8(out)?,
//!     "{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"ae68\"],[\"mining.notify\",\"ae68\"]],\"08000002\",4],\"error\":null}\n\
//!      {\"id\":4,\"result\":true,\"error\":null}\n"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod error;
mod framing;
mod json;
pub mod prevhash;
mod quirks;
mod server;
mod text;
mod types;

#[doc(hidden)]
pub mod fuzzing;

pub use client::{
    extensions, Authorize, ClientMessage, ClientMethod, Configure, Request, Submit, Subscribe,
};
pub use error::{FieldError, LineError, ParseError};
pub use framing::{LineDecoder, DEFAULT_MAX_LINE_LEN};
pub use prevhash::{header_prevhash_from_sv1, sv1_prevhash_from_header, swap_prevhash_words};
pub use quirks::{
    negotiate_version_mask, rolled_version, version_bits_within_mask, DEFAULT_MAX_EXTRANONCE2_SIZE,
    MAX_EXTRANONCE1_PARSE, MAX_EXTRANONCE1_SIZE, VERSION_MASK_BIP320, VERSION_MASK_UNSPECIFIED,
    VERSION_MASK_WIDE,
};
pub use server::{
    ConfigureResult, Notify, Reconnect, Response, ServerMessage, ServerMethod, SetExtranonce,
    StratumError, SubscribeResult, MAX_COINBASE_PART_LEN, MAX_MERKLE_BRANCH_LEN,
};
pub use text::{Id, IdNumber, RawJson, Text};
pub use types::{Difficulty, Extranonce2, MAX_EXTRANONCE2_LEN};

/// Method names on the wire.
pub mod methods {
    /// Client: subscribe to jobs, get extranonce1.
    pub const SUBSCRIBE: &str = "mining.subscribe";
    /// Client: authorize a worker.
    pub const AUTHORIZE: &str = "mining.authorize";
    /// Client: BIP310 extension negotiation.
    pub const CONFIGURE: &str = "mining.configure";
    /// Client: accept `mining.set_extranonce` (NiceHash).
    pub const EXTRANONCE_SUBSCRIBE: &str = "mining.extranonce.subscribe";
    /// Client: ask for a starting difficulty.
    pub const SUGGEST_DIFFICULTY: &str = "mining.suggest_difficulty";
    /// Client: submit a share.
    pub const SUBMIT: &str = "mining.submit";
    /// Server: a new job.
    pub const NOTIFY: &str = "mining.notify";
    /// Server: the share difficulty for the next jobs.
    pub const SET_DIFFICULTY: &str = "mining.set_difficulty";
    /// Server: a new extranonce1 / extranonce2 size.
    pub const SET_EXTRANONCE: &str = "mining.set_extranonce";
    /// Server: a new version-rolling mask.
    pub const SET_VERSION_MASK: &str = "mining.set_version_mask";
    /// Server: connect elsewhere.
    pub const RECONNECT: &str = "client.reconnect";
    /// Server: a message for the operator.
    pub const SHOW_MESSAGE: &str = "client.show_message";
}
