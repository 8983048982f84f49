//! The one error type of this crate.

use core::fmt;

/// Which encrypted part of handshake act 2 failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Act2Part {
    /// The responder's encrypted static key (64 + 16 bytes).
    StaticKey,
    /// The encrypted `SIGNATURE_NOISE_MESSAGE` (74 + 16 bytes).
    SignatureNoiseMessage,
}

impl fmt::Display for Act2Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StaticKey => "static key",
            Self::SignatureNoiseMessage => "signature noise message",
        })
    }
}

/// Everything that can go wrong in the Noise layer.
///
/// Any error returned by the handshake or by [`Opener::decode`](crate::Opener::decode) means the
/// connection must be closed: the cipher states are no longer in step with the peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// An encrypted part of handshake act 2 did not authenticate (wrong keys or tampering).
    #[error("handshake act 2 failed authentication in the {part}")]
    HandshakeAuthentication {
        /// Which part failed.
        part: Act2Part,
    },
    /// The certificate's version is not one this crate knows (only 0 exists).
    #[error("unsupported certificate version {version}")]
    UnsupportedCertificateVersion {
        /// The version found in the signature noise message.
        version: u16,
    },
    /// The certificate's validity starts in the future, beyond the clock tolerance.
    #[error("certificate not valid before {valid_from} (now {now}, tolerance {tolerance}s)")]
    CertificateNotYetValid {
        /// Start of validity (unix seconds).
        valid_from: u32,
        /// The local clock passed in (unix seconds).
        now: u32,
        /// The clock tolerance applied (seconds).
        tolerance: u32,
    },
    /// The certificate's validity ended, beyond the clock tolerance.
    #[error("certificate expired at {not_valid_after} (now {now}, tolerance {tolerance}s)")]
    CertificateExpired {
        /// End of validity (unix seconds).
        not_valid_after: u32,
        /// The local clock passed in (unix seconds).
        now: u32,
        /// The clock tolerance applied (seconds).
        tolerance: u32,
    },
    /// The certificate signature does not verify under the expected authority key.
    #[error("certificate signature does not verify under the authority key")]
    CertificateBadSignature,
    /// An encrypted frame header did not authenticate.
    #[error("encrypted frame header failed authentication")]
    FrameHeaderAuthentication,
    /// An encrypted payload chunk did not authenticate.
    #[error("encrypted frame payload chunk {chunk} failed authentication")]
    FramePayloadAuthentication {
        /// Index of the chunk (0-based) within the frame.
        chunk: usize,
    },
    /// A decrypted frame header announces a payload larger than this opener accepts.
    #[error("frame payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge {
        /// The plaintext payload length announced by the header.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A plaintext frame handed to the sealer is shorter than the 6-byte header.
    #[error("plaintext frame of {len} bytes is shorter than the 6-byte header")]
    FrameTooShort {
        /// Length of the buffer.
        len: usize,
    },
    /// A plaintext frame's header disagrees with the length of the payload that follows it.
    #[error("frame header declares {declared} payload bytes but {actual} follow")]
    FrameLengthMismatch {
        /// `msg_length` from the header.
        declared: usize,
        /// Bytes actually present after the header.
        actual: usize,
    },
    /// The 64-bit nonce of a cipher state would wrap; the session must be re-established.
    #[error("transport nonce space exhausted")]
    NonceExhausted,
    /// The opener was used again after it returned an error.
    #[error("decoder used after a previous error closed the stream")]
    StreamClosed,
    /// A key string is not valid base58check.
    #[error("invalid base58check key encoding")]
    KeyBase58 {
        /// The underlying decoding error.
        #[source]
        source: bs58::decode::Error,
    },
    /// A secret key string is neither 64 hex characters nor valid base58check.
    #[error("invalid hex key encoding")]
    KeyHex {
        /// The underlying decoding error.
        #[source]
        source: hex::FromHexError,
    },
    /// A decoded key has the wrong number of bytes.
    #[error("key has {len} bytes, expected {expected}")]
    KeyLength {
        /// Bytes found.
        len: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// A public key string carries an unknown version prefix (only 1 is defined).
    #[error("unknown public key version {version}")]
    KeyVersion {
        /// The little-endian u16 prefix found.
        version: u16,
    },
    /// The bytes are not a valid secp256k1 key (scalar out of range, or x not on the curve).
    #[error("not a valid secp256k1 key")]
    InvalidKey,
}
