//! The server certificate carried in handshake act 2 as the `SIGNATURE_NOISE_MESSAGE`
//! ([spec 4.5.2, 4.5.3](https://github.com/stratum-mining/sv2-spec/blob/main/04-Protocol-Security.md#453-server-authentication)).

use secp256k1::{schnorr::Signature, Message};
use sha2::{Digest, Sha256};

use crate::{crypto::secp, AuthorityKeypair, NoiseError, PublicKey};

/// Length of the serialized signature noise message.
pub const SIGNATURE_NOISE_MESSAGE_LEN: usize = 74;

/// The only certificate format version defined.
pub const CERTIFICATE_VERSION: u16 = 0;

/// Default tolerance, in seconds, for clock disagreement when checking a validity window.
///
/// SRI's verifier uses 10 s; SRI's responder also signs a fresh certificate starting "now" on
/// every handshake, so an initiator whose clock runs more than the tolerance behind rejects it.
/// Clock drift is the most common "invalid certificate" report, so we default to a minute.
pub const DEFAULT_CLOCK_TOLERANCE_SECS: u32 = 60;

/// A server certificate: the authority's BIP340 signature over
/// `SHA-256(version || valid_from || not_valid_after || server x-only key)` (integers LE).
///
/// On the wire (encrypted inside act 2) it is the 74-byte `SIGNATURE_NOISE_MESSAGE`:
/// version (u16), valid_from (u32), not_valid_after (u32), signature (64 bytes). The server key it
/// certifies travels separately (the responder's static key in act 2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Certificate {
    version: u16,
    valid_from: u32,
    not_valid_after: u32,
    signature: [u8; 64],
}

impl Certificate {
    /// Signs a certificate for `server` valid from `valid_from` to `not_valid_after` (unix
    /// seconds, inclusive). Done once when a server starts, not per handshake.
    pub fn issue(
        authority: &AuthorityKeypair,
        server: &PublicKey,
        valid_from: u32,
        not_valid_after: u32,
    ) -> Self {
        let msg = signed_message(CERTIFICATE_VERSION, valid_from, not_valid_after, server);
        let mut keypair = authority.secret_key().keypair();
        let signature = secp().sign_schnorr(&msg, &keypair).serialize();
        keypair.non_secure_erase();
        Self {
            version: CERTIFICATE_VERSION,
            valid_from,
            not_valid_after,
            signature,
        }
    }

    /// Checks the certificate: version, validity window against `now` (unix seconds) with
    /// `tolerance` seconds of slack on both ends, and the signature by `authority` over
    /// `server_static`.
    pub fn verify(
        &self,
        authority: &PublicKey,
        server_static: &PublicKey,
        now: u32,
        tolerance: u32,
    ) -> Result<(), NoiseError> {
        if self.version != CERTIFICATE_VERSION {
            return Err(NoiseError::UnsupportedCertificateVersion {
                version: self.version,
            });
        }
        if now < self.valid_from.saturating_sub(tolerance) {
            return Err(NoiseError::CertificateNotYetValid {
                valid_from: self.valid_from,
                now,
                tolerance,
            });
        }
        if now > self.not_valid_after.saturating_add(tolerance) {
            return Err(NoiseError::CertificateExpired {
                not_valid_after: self.not_valid_after,
                now,
                tolerance,
            });
        }
        let msg = signed_message(
            self.version,
            self.valid_from,
            self.not_valid_after,
            server_static,
        );
        let sig = Signature::from_slice(&self.signature)
            .map_err(|_| NoiseError::CertificateBadSignature)?;
        secp()
            .verify_schnorr(&sig, &msg, authority.as_xonly())
            .map_err(|_| NoiseError::CertificateBadSignature)
    }

    /// Parses the 74-byte signature noise message (every byte string of that length parses;
    /// [`verify`](Self::verify) judges it).
    pub fn from_bytes(b: &[u8; SIGNATURE_NOISE_MESSAGE_LEN]) -> Self {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[10..]);
        Self {
            version: u16::from_le_bytes([b[0], b[1]]),
            valid_from: u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            not_valid_after: u32::from_le_bytes([b[6], b[7], b[8], b[9]]),
            signature,
        }
    }

    /// The 74-byte signature noise message.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_NOISE_MESSAGE_LEN] {
        let mut b = [0u8; SIGNATURE_NOISE_MESSAGE_LEN];
        b[..2].copy_from_slice(&self.version.to_le_bytes());
        b[2..6].copy_from_slice(&self.valid_from.to_le_bytes());
        b[6..10].copy_from_slice(&self.not_valid_after.to_le_bytes());
        b[10..].copy_from_slice(&self.signature);
        b
    }

    /// Certificate format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Start of validity (unix seconds).
    pub fn valid_from(&self) -> u32 {
        self.valid_from
    }

    /// End of validity (unix seconds, inclusive).
    pub fn not_valid_after(&self) -> u32 {
        self.not_valid_after
    }

    /// The 64-byte BIP340 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Certificate")
            .field("version", &self.version)
            .field("valid_from", &self.valid_from)
            .field("not_valid_after", &self.not_valid_after)
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

fn signed_message(
    version: u16,
    valid_from: u32,
    not_valid_after: u32,
    server: &PublicKey,
) -> Message {
    let mut h = Sha256::new();
    h.update(version.to_le_bytes());
    h.update(valid_from.to_le_bytes());
    h.update(not_valid_after.to_le_bytes());
    h.update(server.to_bytes());
    Message::from_digest(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaticKeypair;

    fn setup() -> (AuthorityKeypair, PublicKey, Certificate) {
        let a = AuthorityKeypair::generate();
        let s = StaticKeypair::generate().public_key();
        let c = Certificate::issue(&a, &s, 1_000, 2_000);
        (a, s, c)
    }

    #[test]
    fn window_and_tolerance() {
        let (a, s, c) = setup();
        let pa = a.public_key();
        assert!(c.verify(&pa, &s, 1_000, 0).is_ok());
        assert!(c.verify(&pa, &s, 2_000, 0).is_ok());
        assert!(c.verify(&pa, &s, 990, 10).is_ok());
        assert!(c.verify(&pa, &s, 2_010, 10).is_ok());
        assert!(matches!(
            c.verify(&pa, &s, 989, 10),
            Err(NoiseError::CertificateNotYetValid {
                valid_from: 1_000,
                now: 989,
                ..
            })
        ));
        assert!(matches!(
            c.verify(&pa, &s, 2_011, 10),
            Err(NoiseError::CertificateExpired {
                not_valid_after: 2_000,
                ..
            })
        ));
    }

    #[test]
    fn wrong_authority_wrong_server_tampered() {
        let (a, s, c) = setup();
        let other = AuthorityKeypair::generate().public_key();
        assert!(matches!(
            c.verify(&other, &s, 1_500, 0),
            Err(NoiseError::CertificateBadSignature)
        ));
        let other_server = StaticKeypair::generate().public_key();
        assert!(matches!(
            c.verify(&a.public_key(), &other_server, 1_500, 0),
            Err(NoiseError::CertificateBadSignature)
        ));
        let mut b = c.to_bytes();
        b[6] ^= 1; // extend not_valid_after: signature must break
        assert!(matches!(
            Certificate::from_bytes(&b).verify(&a.public_key(), &s, 1_500, 0),
            Err(NoiseError::CertificateBadSignature)
        ));
        let mut b = c.to_bytes();
        b[0] = 1;
        assert!(matches!(
            Certificate::from_bytes(&b).verify(&a.public_key(), &s, 1_500, 0),
            Err(NoiseError::UnsupportedCertificateVersion { version: 1 })
        ));
    }

    #[test]
    fn bytes_round_trip() {
        let (_, _, c) = setup();
        assert_eq!(Certificate::from_bytes(&c.to_bytes()), c);
    }
}
