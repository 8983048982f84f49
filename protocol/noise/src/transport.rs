//! Encrypted SV2 framing after the handshake
//! ([spec 4.6](https://github.com/stratum-mining/sv2-spec/blob/main/04-Protocol-Security.md#46-encrypted-stratum-message-framing)).
//!
//! ```text
//!  plaintext  | ext_type u16 | msg_type u8 | msg_length u24 | payload (msg_length bytes) ...    |
//!  ciphertext | header ct (6) + MAC (16)   | chunk 1 ct (<=65519) + MAC | chunk 2 ... + MAC   |
//! ```
//!
//! Each AEAD message uses the next nonce of the direction's cipher state; the header is one
//! message, each payload chunk another. An empty payload has no chunk at all.

use bytes::{Buf, BytesMut};
use noise_protocol::CipherState;
use strata_protocol::frame::{Header, HEADER_LEN};

use crate::{
    crypto::{open_in_place, seal_in_place, ChaChaPoly, Secret32, MAC_LEN},
    NoiseError, PublicKey,
};

/// Encrypted SV2 frame header length: the plaintext header
/// ([`strata_protocol::frame::HEADER_LEN`]) plus its MAC.
pub const ENCRYPTED_HEADER_LEN: usize = HEADER_LEN + MAC_LEN;
/// Largest ciphertext of one Noise transport message.
pub const MAX_CHUNK_CIPHERTEXT_LEN: usize = 65535;
/// Largest plaintext of one payload chunk.
pub const MAX_CHUNK_PLAINTEXT_LEN: usize = MAX_CHUNK_CIPHERTEXT_LEN - MAC_LEN;
/// Default cap on the plaintext payload an [`Opener`] accepts: 4 MiB, enough for a full block's
/// transactions in Job Declaration. Mining-only connections can set far less.
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 4 << 20;

/// Bytes on the wire for a frame whose plaintext payload is `payload_len` bytes:
/// the 22-byte encrypted header plus each chunk's ciphertext and MAC.
pub const fn encrypted_len(payload_len: usize) -> usize {
    ENCRYPTED_HEADER_LEN + encrypted_payload_len(payload_len)
}

const fn encrypted_payload_len(payload_len: usize) -> usize {
    payload_len + payload_len.div_ceil(MAX_CHUNK_PLAINTEXT_LEN) * MAC_LEN
}

/// One direction's cipher state: key and 64-bit nonce. The key is wiped on drop.
struct DirectionCipher {
    key: Secret32,
    n: u64,
}

impl DirectionCipher {
    fn from_state(c: CipherState<ChaChaPoly>) -> Self {
        let (key, n) = c.extract();
        Self { key, n }
    }

    /// Fails unless `count` more nonces are available. Nonce `u64::MAX` is reserved (Noise).
    fn reserve(&self, count: u64) -> Result<(), NoiseError> {
        if u64::MAX - self.n < count {
            return Err(NoiseError::NonceExhausted);
        }
        Ok(())
    }

    fn next(&mut self) -> Result<u64, NoiseError> {
        self.reserve(1)?;
        let n = self.n;
        self.n += 1;
        Ok(n)
    }
}

/// The result of a completed handshake: both directions' cipher states.
///
/// Use it whole from one task, or [`split`](Self::split) it into a [`Sealer`] and an [`Opener`]
/// for a writer task and a reader task.
pub struct Transport {
    sealer: Sealer,
    opener: Opener,
    remote_static: Option<PublicKey>,
}

impl core::fmt::Debug for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transport")
            .field("sealer", &self.sealer)
            .field("opener", &self.opener)
            .field("remote_static", &self.remote_static)
            .finish()
    }
}

impl Transport {
    pub(crate) fn from_cipher_states(
        send: CipherState<ChaChaPoly>,
        recv: CipherState<ChaChaPoly>,
        remote_static: Option<PublicKey>,
    ) -> Self {
        Self {
            sealer: Sealer {
                cipher: DirectionCipher::from_state(send),
            },
            opener: Opener {
                cipher: DirectionCipher::from_state(recv),
                max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
                pending_header: None,
                closed: false,
            },
            remote_static,
        }
    }

    /// The server's static key, authenticated by its certificate (initiator side only).
    pub fn remote_static(&self) -> Option<&PublicKey> {
        self.remote_static.as_ref()
    }

    /// Sets the opener's payload cap (see [`Opener::set_max_payload_len`]).
    pub fn set_max_payload_len(&mut self, max: usize) {
        self.opener.set_max_payload_len(max);
    }

    /// Encrypts a frame in place (see [`Sealer::seal_frame`]).
    pub fn seal_frame(&mut self, frame: &mut BytesMut) -> Result<(), NoiseError> {
        self.sealer.seal_frame(frame)
    }

    /// Decodes the next frame (see [`Opener::decode`]).
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<PlainFrame>, NoiseError> {
        self.opener.decode(src)
    }

    /// Splits into the sending and receiving halves; each owns only its own key.
    pub fn split(self) -> (Sealer, Opener) {
        (self.sealer, self.opener)
    }
}

/// The sending half: encrypts plaintext SV2 frames.
pub struct Sealer {
    cipher: DirectionCipher,
}

impl core::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sealer")
            .field("nonce", &self.cipher.n)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Encrypts one SV2 frame in place.
    ///
    /// `frame` holds the plaintext 6-byte header followed by exactly `msg_length` payload bytes;
    /// on success it holds the ciphertext ([`encrypted_len`] of the payload length). Only the
    /// buffer's growth by the MACs may allocate, and not at all if the caller left capacity
    /// (16 bytes per chunk + 16 for the header). On error the buffer is unchanged unless the
    /// error is impossible-by-construction (then it is zeroed: nothing leaves in clear).
    pub fn seal_frame(&mut self, frame: &mut BytesMut) -> Result<(), NoiseError> {
        let Some(header) = frame.first_chunk::<HEADER_LEN>() else {
            return Err(NoiseError::FrameTooShort { len: frame.len() });
        };
        let declared = Header::from_bytes(*header).msg_length as usize;
        let payload_len = frame.len() - HEADER_LEN;
        if declared != payload_len {
            return Err(NoiseError::FrameLengthMismatch {
                declared,
                actual: payload_len,
            });
        }
        let chunks = payload_len.div_ceil(MAX_CHUNK_PLAINTEXT_LEN);
        self.cipher.reserve(1 + chunks as u64)?;

        frame.resize(encrypted_len(payload_len), 0);
        // Move the payload chunks to their ciphertext offsets, last first (targets lie after
        // sources, so nothing unread is overwritten).
        for i in (0..chunks).rev() {
            let start = i * MAX_CHUNK_PLAINTEXT_LEN;
            let len = (payload_len - start).min(MAX_CHUNK_PLAINTEXT_LEN);
            let src = HEADER_LEN + start;
            let dst = ENCRYPTED_HEADER_LEN + i * MAX_CHUNK_CIPHERTEXT_LEN;
            frame.copy_within(src..src + len, dst);
        }
        let n = self.cipher.next()?;
        seal_in_place(
            &self.cipher.key.0,
            n,
            &[],
            &mut frame[..ENCRYPTED_HEADER_LEN],
            HEADER_LEN,
        );
        for i in 0..chunks {
            let start = i * MAX_CHUNK_PLAINTEXT_LEN;
            let len = (payload_len - start).min(MAX_CHUNK_PLAINTEXT_LEN);
            let dst = ENCRYPTED_HEADER_LEN + i * MAX_CHUNK_CIPHERTEXT_LEN;
            let n = self.cipher.next()?;
            seal_in_place(
                &self.cipher.key.0,
                n,
                &[],
                &mut frame[dst..dst + len + MAC_LEN],
                len,
            );
        }
        Ok(())
    }

    /// The nonce the next AEAD message will use.
    pub fn nonce(&self) -> u64 {
        self.cipher.n
    }
}

/// A decrypted SV2 frame: the plaintext header and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainFrame {
    /// The decrypted header (the codec's: channel_msg kept apart from `extension_type`).
    pub header: Header,
    /// The plaintext payload, `header.msg_length` bytes, split off the receive buffer without
    /// copying.
    pub payload: BytesMut,
}

/// The receiving half: a sans-IO incremental decoder of encrypted SV2 frames.
pub struct Opener {
    cipher: DirectionCipher,
    max_payload_len: usize,
    /// Header already decrypted (its nonce spent) while the payload is still arriving.
    pending_header: Option<Header>,
    closed: bool,
}

impl core::fmt::Debug for Opener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opener")
            .field("nonce", &self.cipher.n)
            .field("max_payload_len", &self.max_payload_len)
            .field("pending_header", &self.pending_header.is_some())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Caps the plaintext payload length accepted from the peer. Checked against the decrypted
    /// header before the buffer grows for the payload. Default [`DEFAULT_MAX_PAYLOAD_LEN`].
    pub fn set_max_payload_len(&mut self, max: usize) {
        self.max_payload_len = max;
    }

    /// Builder form of [`set_max_payload_len`](Self::set_max_payload_len).
    pub fn with_max_payload_len(mut self, max: usize) -> Self {
        self.max_payload_len = max;
        self
    }

    /// The nonce the next AEAD message is expected under.
    pub fn nonce(&self) -> u64 {
        self.cipher.n
    }

    /// Decodes the next frame from `src` (the tokio-util `Decoder` contract).
    ///
    /// `Ok(None)`: more bytes are needed (the buffer has been reserved for them). `Ok(Some)`:
    /// one frame, whose bytes were consumed from `src`. `Err`: the stream is dead and every later
    /// call returns [`NoiseError::StreamClosed`]. Decryption happens in place; the payload is
    /// split off `src` without copying.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<PlainFrame>, NoiseError> {
        if self.closed {
            return Err(NoiseError::StreamClosed);
        }
        let r = self.decode_inner(src);
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    fn decode_inner(&mut self, src: &mut BytesMut) -> Result<Option<PlainFrame>, NoiseError> {
        let header = match self.pending_header {
            Some(h) => h,
            None => {
                let Some(ct) = src.get_mut(..ENCRYPTED_HEADER_LEN) else {
                    src.reserve(ENCRYPTED_HEADER_LEN - src.len());
                    return Ok(None);
                };
                let n = self.cipher.next()?;
                if !open_in_place(&self.cipher.key.0, n, &[], ct) {
                    return Err(NoiseError::FrameHeaderAuthentication);
                }
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&ct[..HEADER_LEN]);
                src.advance(ENCRYPTED_HEADER_LEN);
                let h = Header::from_bytes(h);
                let len = h.msg_length as usize;
                if len > self.max_payload_len {
                    return Err(NoiseError::PayloadTooLarge {
                        len,
                        max: self.max_payload_len,
                    });
                }
                self.pending_header = Some(h);
                h
            }
        };
        let payload_len = header.msg_length as usize;
        let ct_len = encrypted_payload_len(payload_len);
        if src.len() < ct_len {
            src.reserve(ct_len - src.len());
            return Ok(None);
        }
        let chunks = payload_len.div_ceil(MAX_CHUNK_PLAINTEXT_LEN);
        self.cipher.reserve(chunks as u64)?;
        let mut payload = src.split_to(ct_len);
        for i in 0..chunks {
            let start = i * MAX_CHUNK_CIPHERTEXT_LEN;
            let end = (start + MAX_CHUNK_CIPHERTEXT_LEN).min(ct_len);
            let n = self.cipher.next()?;
            if !open_in_place(&self.cipher.key.0, n, &[], &mut payload[start..end]) {
                return Err(NoiseError::FramePayloadAuthentication { chunk: i });
            }
            if i > 0 {
                // Close the gap left by the previous chunks' MACs (targets lie before sources).
                payload.copy_within(start..end - MAC_LEN, i * MAX_CHUNK_PLAINTEXT_LEN);
            }
        }
        payload.truncate(payload_len);
        self.pending_header = None;
        Ok(Some(PlainFrame { header, payload }))
    }

    #[cfg(test)]
    pub(crate) fn set_nonce_for_test(&mut self, n: u64) {
        self.cipher.n = n;
    }

    /// A copy in the same state, so a test can replay one stream many ways.
    #[cfg(test)]
    pub(crate) fn clone_for_test(&self) -> Self {
        Self {
            cipher: DirectionCipher {
                key: Secret32(self.cipher.key.0),
                n: self.cipher.n,
            },
            max_payload_len: self.max_payload_len,
            pending_header: self.pending_header,
            closed: self.closed,
        }
    }
}

#[cfg(test)]
impl Sealer {
    pub(crate) fn set_nonce_for_test(&mut self, n: u64) {
        self.cipher.n = n;
    }
}
