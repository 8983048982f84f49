//! Keys and their text encodings, compatible with SRI's `key-utils` configs.
//!
//! - Public keys (authority and server): base58check of `[0x01, 0x00] || x-only key (32 bytes)`
//!   ([spec 4.7](https://github.com/stratum-mining/sv2-spec/blob/main/04-Protocol-Security.md#47-url-scheme-and-pool-authority-key)).
//! - Secret keys: base58check of the 32 raw bytes (SRI's format, which [`SecretKey::encode`]
//!   prints), or 64 hex characters.

use core::{fmt, str::FromStr};

use secp256k1::{ellswift::ElligatorSwift, Keypair, XOnlyPublicKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{crypto::secp, NoiseError};

/// Version prefix of encoded public keys: little-endian u16 `1`.
const PUBKEY_VERSION: [u8; 2] = [1, 0];

/// An x-only secp256k1 public key: an authority key, or a server's static key.
///
/// `Display`/`FromStr` use the spec's (and SRI's) base58check encoding with the `[1, 0]` prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(XOnlyPublicKey);

impl PublicKey {
    /// Parses the 32-byte x-only (BIP340) serialization.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, NoiseError> {
        XOnlyPublicKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| NoiseError::InvalidKey)
    }

    /// The 32-byte x-only (BIP340) serialization.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.serialize()
    }

    /// The underlying `secp256k1` key.
    pub fn as_xonly(&self) -> &XOnlyPublicKey {
        &self.0
    }

    /// The x coordinate of a 64-byte EllSwift-encoded point (every 64-byte string decodes).
    pub(crate) fn from_ellswift(ell: &[u8; 64]) -> Self {
        let pk = secp256k1::PublicKey::from_ellswift(ElligatorSwift::from_array(*ell));
        Self(pk.x_only_public_key().0)
    }
}

impl From<XOnlyPublicKey> for PublicKey {
    fn from(k: XOnlyPublicKey) -> Self {
        Self(k)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 34];
        raw[..2].copy_from_slice(&PUBKEY_VERSION);
        raw[2..].copy_from_slice(&self.0.serialize());
        f.write_str(&bs58::encode(raw).with_check().into_string())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = NoiseError;

    fn from_str(s: &str) -> Result<Self, NoiseError> {
        let raw = bs58::decode(s.trim())
            .with_check(None)
            .into_vec()
            .map_err(|source| NoiseError::KeyBase58 { source })?;
        if raw.len() != 34 {
            return Err(NoiseError::KeyLength {
                len: raw.len(),
                expected: 34,
            });
        }
        let version = u16::from_le_bytes([raw[0], raw[1]]);
        if version != 1 {
            return Err(NoiseError::KeyVersion { version });
        }
        let mut x = [0u8; 32];
        x.copy_from_slice(&raw[2..]);
        Self::from_bytes(&x)
    }
}

/// A secp256k1 secret key, wiped on drop, never printed by `Debug`.
///
/// `FromStr` accepts SRI's base58check form or 64 hex characters; [`SecretKey::encode`] prints
/// SRI's form. (No `Display`, so a secret cannot slip into a log line through `{}`.)
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A fresh random key (OS-seeded CSPRNG).
    pub fn generate() -> Self {
        let mut sk = secp256k1::SecretKey::new(&mut rand::thread_rng());
        let key = Self(sk.secret_bytes());
        sk.non_secure_erase();
        key
    }

    /// Parses 32 raw bytes (must be in `1..n`).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, NoiseError> {
        secp256k1::SecretKey::from_slice(bytes).map_err(|_| NoiseError::InvalidKey)?;
        Ok(Self(*bytes))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0)
    }

    /// SRI's text form: base58check of the 32 raw bytes.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(bs58::encode(self.0).with_check().into_string())
    }

    /// The x-only public key of this secret.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.keypair().x_only_public_key().0)
    }

    pub(crate) fn secp_key(&self) -> secp256k1::SecretKey {
        // Valid by construction; `from_slice` only re-checks the range.
        match secp256k1::SecretKey::from_slice(&self.0) {
            Ok(k) => k,
            Err(_) => unreachable_key(),
        }
    }

    pub(crate) fn keypair(&self) -> Keypair {
        Keypair::from_secret_key(secp(), &self.secp_key())
    }
}

#[cold]
fn unreachable_key() -> ! {
    // A `SecretKey` is only built from bytes `secp256k1` accepted.
    panic!("secret key invariant violated")
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl FromStr for SecretKey {
    type Err = NoiseError;

    fn from_str(s: &str) -> Result<Self, NoiseError> {
        let s = s.trim();
        let mut bytes = Zeroizing::new([0u8; 32]);
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode_to_slice(s, &mut bytes[..])
                .map_err(|source| NoiseError::KeyHex { source })?;
        } else {
            let raw = Zeroizing::new(
                bs58::decode(s)
                    .with_check(None)
                    .into_vec()
                    .map_err(|source| NoiseError::KeyBase58 { source })?,
            );
            if raw.len() != 32 {
                return Err(NoiseError::KeyLength {
                    len: raw.len(),
                    expected: 32,
                });
            }
            bytes.copy_from_slice(&raw);
        }
        Self::from_bytes(&bytes)
    }
}

/// The certificate authority's keypair: signs [`Certificate`](crate::Certificate)s for servers.
///
/// Its [`PublicKey`] is what miners configure (and put in `stratum2+tcp://host:port/KEY` URLs).
#[derive(Clone)]
pub struct AuthorityKeypair {
    secret: SecretKey,
    public: PublicKey,
}

impl AuthorityKeypair {
    /// A fresh random authority keypair.
    pub fn generate() -> Self {
        Self::from_secret(SecretKey::generate())
    }

    /// The keypair of a known secret key.
    pub fn from_secret(secret: SecretKey) -> Self {
        let public = secret.public_key();
        Self { secret, public }
    }

    /// The authority public key that initiators pin.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The secret key (to store it, e.g. with [`SecretKey::encode`]).
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }
}

impl fmt::Debug for AuthorityKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityKeypair")
            .field("public", &self.public)
            .field("secret", &self.secret)
            .finish()
    }
}

/// A server's static Noise keypair, with its EllSwift encoding computed once.
#[derive(Clone)]
pub struct StaticKeypair {
    secret: SecretKey,
    public: PublicKey,
    ellswift: [u8; 64],
}

impl StaticKeypair {
    /// A fresh random static keypair.
    pub fn generate() -> Self {
        Self::from_secret(SecretKey::generate())
    }

    /// The keypair of a known secret key.
    pub fn from_secret(secret: SecretKey) -> Self {
        let public = secret.public_key();
        let ellswift = ElligatorSwift::from_seckey(secp(), secret.secp_key(), None).to_array();
        Self {
            secret,
            public,
            ellswift,
        }
    }

    /// The x-only public key, the one a [`Certificate`](crate::Certificate) signs.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The secret key.
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }

    /// `secret || EllSwift encoding`, the form the handshake's DH uses.
    pub(crate) fn noise_key(&self) -> crate::crypto::KeyPair96 {
        let mut k = crate::crypto::KeyPair96([0; 96]);
        k.0[..32].copy_from_slice(&self.secret.0);
        k.0[32..].copy_from_slice(&self.ellswift);
        k
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the spec, section 4.7.1.
    const SPEC_RAW: [u8; 32] = [
        118, 99, 112, 0, 151, 156, 28, 17, 175, 12, 48, 11, 205, 140, 127, 228, 134, 16, 252, 233,
        185, 193, 30, 61, 174, 227, 90, 224, 176, 138, 116, 85,
    ];
    const SPEC_B58: &str = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh";

    #[test]
    fn spec_authority_key_vector() {
        let k = PublicKey::from_bytes(&SPEC_RAW).unwrap();
        assert_eq!(k.to_string(), SPEC_B58);
        assert_eq!(SPEC_B58.parse::<PublicKey>().unwrap(), k);
    }

    #[test]
    fn sri_key_utils_vectors() {
        // key-utils' own test pair.
        let sk: SecretKey = "zmBEmPhqo3A92FkiLVvyCz6htc3e53ph3ZbD4ASqGaLjwnFLi"
            .parse()
            .unwrap();
        assert_eq!(
            sk.public_key().to_string(),
            "9bDuixKmZqAJnrmP746n8zU1wyAQRrus7th9dxnkPg6RzQvCnan"
        );
        assert_eq!(
            &*sk.encode(),
            "zmBEmPhqo3A92FkiLVvyCz6htc3e53ph3ZbD4ASqGaLjwnFLi"
        );
        // The pair SRI's codec_sv2 tests (and example configs) use.
        let sk: SecretKey = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"
            .parse()
            .unwrap();
        assert_eq!(
            sk.public_key().to_string(),
            "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
        );
        // Hex form of the same secret parses to the same key.
        let hex_form = hex::encode(*sk.to_bytes());
        let again: SecretKey = hex_form.parse().unwrap();
        assert_eq!(*again.to_bytes(), *sk.to_bytes());
    }

    #[test]
    fn bad_public_keys_are_typed_errors() {
        // key-utils' negative vectors: checksum, version 12, one byte short.
        assert!(matches!(
            "9bDuixKmZqAJnrmP746n8zU1wyAQRrus7th9dxnkPg6RzQvCnam".parse::<PublicKey>(),
            Err(NoiseError::KeyBase58 { .. })
        ));
        assert!(matches!(
            "2myPhc5vkPzuC5FXNK5tee79WmP7uoLh55SxezoF8iqwF3E3rnPY".parse::<PublicKey>(),
            Err(NoiseError::KeyVersion { version: 12 })
        ));
        assert!(matches!(
            "2wmHTKZkLg2QzXyEXGMBXzKP7JXDUt8yy9SA5hoQwERc92qR6c".parse::<PublicKey>(),
            Err(NoiseError::KeyLength { len: 33, .. })
        ));
        assert!(matches!(
            PublicKey::from_bytes(&[0xff; 32]),
            Err(NoiseError::InvalidKey)
        ));
        assert!(matches!(
            SecretKey::from_bytes(&[0; 32]),
            Err(NoiseError::InvalidKey)
        ));
        assert!(matches!(
            "zz".repeat(32).parse::<SecretKey>(),
            Err(NoiseError::KeyBase58 { .. })
        ));
    }

    #[test]
    fn round_trips_and_redaction() {
        for _ in 0..16 {
            let a = AuthorityKeypair::generate();
            let s: SecretKey = a.secret_key().encode().parse().unwrap();
            assert_eq!(*s.to_bytes(), *a.secret_key().to_bytes());
            let p: PublicKey = a.public_key().to_string().parse().unwrap();
            assert_eq!(p, a.public_key());
            let dbg = format!("{a:?}");
            assert!(dbg.contains("redacted"));
            assert!(!dbg.contains(&hex::encode(*a.secret_key().to_bytes())));
        }
    }
}
