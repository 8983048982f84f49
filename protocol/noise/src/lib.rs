//! Stratum V2 Noise layer: the `Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256` handshake,
//! server certificates, and the encrypted SV2 frame transport
//! ([spec chapter 4](https://github.com/stratum-mining/sv2-spec/blob/main/04-Protocol-Security.md)).
//!
//! Sans-IO: bytes in, bytes out, time passed in as a value. Handshake messages carry no SV2
//! frame header: act 1 is 64 bytes, act 2 is 234 bytes.
//!
//! ```text
//!        initiator (client)                                  responder (server)
//!   Initiator::new(authority_pk)                         Responder::new(static_keys, cert)
//!     -> (InitiatorWaiting, act1) ---- act1 (64 B) ---->  respond(&act1)
//!                                  <--- act2 (234 B) ---   -> (Transport, act2)
//!   InitiatorWaiting::read_act2(act2, now)
//!     -> Transport (certificate checked)
//!
//!   Transport --split()--> Sealer (send key) + Opener (receive key)
//!   Sealer::seal_frame(&mut BytesMut)           in-place encryption of one SV2 frame
//!   Opener::decode(&mut BytesMut) -> Option<PlainFrame>   incremental, in-place decryption
//! ```
//!
//! Each handshake step consumes its state, so an out-of-order step does not compile. Any error
//! means: close the connection.
//!
//! The plaintext frame header is `strata-protocol`'s ([`strata_protocol::frame::Header`],
//! [`strata_protocol::frame::HEADER_LEN`]): a [`PlainFrame`] carries it decoded, and the sealer
//! reads `msg_length` through it.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use strata_noise::{AuthorityKeypair, Certificate, Initiator, Responder, StaticKeypair};
//!
//! // Server setup, once: the authority certifies the server's static key.
//! let authority = AuthorityKeypair::generate();
//! let server_keys = StaticKeypair::generate();
//! let now = 1_700_000_000;
//! let cert = Certificate::issue(&authority, &server_keys.public_key(), now, now + 86_400);
//! let responder = Responder::new(server_keys, cert);
//!
//! // One connection. The client pins the authority's public key.
//! let (waiting, act1) = Initiator::new(authority.public_key());
//! let (server, act2) = responder.respond(&act1)?;
//! let client = waiting.read_act2(&act2, now + 5)?;
//!
//! // One frame, client to server: header (ext 0, msg_type 0x1a, len 3) + payload.
//! let (mut sealer, _) = client.split();
//! let (_, mut opener) = server.split();
//! let mut buf = BytesMut::from(&[0, 0, 0x1a, 3, 0, 0, b'a', b'b', b'c'][..]);
//! sealer.seal_frame(&mut buf)?;
//! assert_eq!(buf.len(), strata_noise::encrypted_len(3));
//! let frame = opener.decode(&mut buf)?.expect("a whole frame");
//! assert_eq!((frame.header.msg_type, &frame.payload[..]), (0x1a, &b"abc"[..]));
//! # Ok::<(), strata_noise::NoiseError>(())
//! ```
//!
//! # What comes from `noise-protocol`, what is ours
//!
//! The handshake runs on `noise-protocol`'s `HandshakeState` with its NX pattern (and, inside
//! it, its SymmetricState: MixHash, MixKey, EncryptAndHash, DecryptAndHash, Split, HKDF). We
//! supply its three primitive traits:
//! - `DH`: secp256k1 with 64-byte EllSwift public keys. BIP324's ECDH hashes both parties'
//!   encodings in *role* order, which the trait's `dh(key, their_pubkey)` cannot see, so there
//!   is one DH type per role (`EllSwiftDh<AsInitiator>` / `EllSwiftDh<AsResponder>`), and a key
//!   is `secret || own EllSwift encoding`, the encoding computed once (for the server's static
//!   key: once per process). `noise-protocol` builds the name
//!   `Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256` from the three trait names.
//! - `Cipher`: ChaCha20-Poly1305 from `ring`. `Hash`: SHA-256 from `sha2` (SHA-NI when
//!   present). Keys, hashes and HMAC pads are types that wipe themselves on drop.
//!
//! Ours: the consuming state types, certificate issue/verify, key encodings, and the transport.
//! The transport takes the two keys `Split` derives but not `noise-protocol`'s `CipherState`,
//! whose nonce overflow is a panic: here exhaustion is [`NoiseError::NonceExhausted`], and SV2
//! frames (header and payload chunks as separate AEAD messages) are sealed and opened in place.
//!
//! # Differences between the spec text and SRI (we interoperate with SRI)
//!
//! - Act 2 is 234 bytes (the spec text still says 170).
//! - Certificate validity: SRI allows 10 s of clock leeway on both ends of the window and
//!   rejects versions other than 0; the spec names no leeway. We take the tolerance as a
//!   parameter ([`DEFAULT_CLOCK_TOLERANCE_SECS`]).
//! - SRI's responder signs a new certificate (valid from "now") on every handshake and makes a
//!   new static key per responder; the spec does not say. We sign once per server start.
//! - SRI's initiator accepts any server when built without an authority key; we have no such
//!   mode.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod certificate;
mod crypto;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod keys;
mod transport;

pub use certificate::{
    Certificate, CERTIFICATE_VERSION, DEFAULT_CLOCK_TOLERANCE_SECS, SIGNATURE_NOISE_MESSAGE_LEN,
};
pub use error::{Act2Part, NoiseError};
pub use handshake::{Initiator, InitiatorWaiting, Responder, ACT1_LEN, ACT2_LEN};
pub use keys::{AuthorityKeypair, PublicKey, SecretKey, StaticKeypair};
pub use transport::{
    encrypted_len, Opener, PlainFrame, Sealer, Transport, DEFAULT_MAX_PAYLOAD_LEN,
    ENCRYPTED_HEADER_LEN, MAX_CHUNK_CIPHERTEXT_LEN, MAX_CHUNK_PLAINTEXT_LEN,
};

/// The Noise protocol name, hashed into the initial handshake state.
pub const PROTOCOL_NAME: &[u8] = b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256";

/// AEAD tag length (Poly1305).
pub const MAC_LEN: usize = crypto::MAC_LEN;

#[cfg(test)]
mod tests;
