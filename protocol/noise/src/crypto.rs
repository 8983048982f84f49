//! Primitives behind the `noise-protocol` traits: ChaCha20-Poly1305 from `ring`, SHA-256 from
//! `sha2`, zeroizing fixed-size arrays, one shared secp256k1 context, role-ordered EllSwift ECDH.

use std::sync::OnceLock;

use core::marker::PhantomData;

use noise_protocol::{Cipher, Hash, U8Array, DH};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use secp256k1::{
    ellswift::{ElligatorSwift, ElligatorSwiftParty},
    All, Secp256k1, SecretKey,
};
use sha2::Digest;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// AEAD tag length.
pub(crate) const MAC_LEN: usize = 16;

/// The process-wide secp256k1 context (randomized once; creating one costs ~20 us).
pub(crate) fn secp() -> &'static Secp256k1<All> {
    static CTX: OnceLock<Secp256k1<All>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::new)
}

macro_rules! zeroizing_array {
    ($name:ident, $len:expr) => {
        /// A fixed-size byte array wiped on drop (used for keys, hashes and HMAC pads).
        #[derive(Zeroize, ZeroizeOnDrop)]
        pub(crate) struct $name(pub(crate) [u8; $len]);

        impl U8Array for $name {
            fn new() -> Self {
                Self([0; $len])
            }
            fn new_with(x: u8) -> Self {
                Self([x; $len])
            }
            fn from_slice(s: &[u8]) -> Self {
                let mut a = [0; $len];
                a.copy_from_slice(s);
                Self(a)
            }
            fn len() -> usize {
                $len
            }
            fn as_slice(&self) -> &[u8] {
                &self.0
            }
            fn as_mut(&mut self) -> &mut [u8] {
                &mut self.0
            }
        }
    };
}

zeroizing_array!(Secret32, 32);
zeroizing_array!(Block64, 64);
zeroizing_array!(KeyPair96, 96);

/// SHA-256 for `noise_protocol::Hash` (sha2 uses SHA-NI when the CPU has it).
#[derive(Default, Clone)]
pub(crate) struct Sha256(sha2::Sha256);

impl Hash for Sha256 {
    fn name() -> &'static str {
        "SHA256"
    }
    type Block = Block64;
    type Output = Secret32;

    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn result(&mut self) -> Secret32 {
        Secret32(self.0.finalize_reset().into())
    }
}

/// The 96-bit nonce: 4 zero bytes then the 64-bit counter, little-endian.
fn nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn ring_key(k: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&CHACHA20_POLY1305, k)
        .ok()
        .map(LessSafeKey::new)
}

/// Encrypts `in_out[..pt_len]` in place and writes the tag to `in_out[pt_len..pt_len + 16]`.
///
/// Returns `false` (leaving `in_out` zeroed, so nothing is ever sent in clear) only if `ring`
/// refuses, which it does for impossible inputs (wrong key size, > 256 GiB messages) or if
/// `in_out` is shorter than `pt_len + 16`.
pub(crate) fn seal_in_place(
    k: &[u8; 32],
    n: u64,
    ad: &[u8],
    in_out: &mut [u8],
    pt_len: usize,
) -> bool {
    let ok = match (ring_key(k), in_out.len().checked_sub(MAC_LEN)) {
        (Some(key), Some(max)) if pt_len <= max => {
            let (data, rest) = in_out.split_at_mut(pt_len);
            match key.seal_in_place_separate_tag(nonce(n), Aad::from(ad), data) {
                Ok(tag) => {
                    rest[..MAC_LEN].copy_from_slice(tag.as_ref());
                    true
                }
                Err(_) => false,
            }
        }
        _ => false,
    };
    if !ok {
        in_out.zeroize();
    }
    ok
}

/// Decrypts `in_out` (ciphertext followed by its tag) in place; on success the plaintext is
/// `in_out[..in_out.len() - 16]`.
pub(crate) fn open_in_place(k: &[u8; 32], n: u64, ad: &[u8], in_out: &mut [u8]) -> bool {
    match ring_key(k) {
        Some(key) if in_out.len() >= MAC_LEN => {
            key.open_in_place(nonce(n), Aad::from(ad), in_out).is_ok()
        }
        _ => false,
    }
}

/// ChaCha20-Poly1305 (IETF) for `noise_protocol::Cipher`, backed by `ring`.
pub(crate) struct ChaChaPoly;

impl Cipher for ChaChaPoly {
    fn name() -> &'static str {
        "ChaChaPoly"
    }

    type Key = Secret32;

    fn encrypt(k: &Secret32, nonce: u64, ad: &[u8], plaintext: &[u8], out: &mut [u8]) {
        let len = plaintext.len();
        if out.len() < len {
            out.zeroize();
            return;
        }
        out[..len].copy_from_slice(plaintext);
        seal_in_place(&k.0, nonce, ad, out, len);
    }

    fn encrypt_in_place(
        k: &Secret32,
        nonce: u64,
        ad: &[u8],
        in_out: &mut [u8],
        plaintext_len: usize,
    ) -> usize {
        seal_in_place(&k.0, nonce, ad, in_out, plaintext_len);
        plaintext_len + MAC_LEN
    }

    fn decrypt(
        k: &Secret32,
        nonce: u64,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<(), ()> {
        let Some(pt_len) = ciphertext.len().checked_sub(MAC_LEN) else {
            return Err(());
        };
        if out.len() != pt_len {
            return Err(());
        }
        let tag = Tag::try_from(&ciphertext[pt_len..]).map_err(|_| ())?;
        out.copy_from_slice(&ciphertext[..pt_len]);
        let key = ring_key(&k.0).ok_or(())?;
        let r = key.open_in_place_separate_tag(
            crate::crypto::nonce(nonce),
            Aad::from(ad),
            tag,
            out,
            0..,
        );
        if r.is_err() {
            out.zeroize();
            return Err(());
        }
        Ok(())
    }

    fn decrypt_in_place(
        k: &Secret32,
        nonce: u64,
        ad: &[u8],
        in_out: &mut [u8],
        ciphertext_len: usize,
    ) -> Result<usize, ()> {
        let buf = in_out.get_mut(..ciphertext_len).ok_or(())?;
        if open_in_place(&k.0, nonce, ad, buf) {
            Ok(ciphertext_len - MAC_LEN)
        } else {
            Err(())
        }
    }
}

/// Which side of the handshake a DH type computes for; BIP324's ECDH hashes both EllSwift
/// encodings in role order (initiator's first), so the role is part of the DH function.
pub(crate) trait Party {
    const PARTY: ElligatorSwiftParty;
}

/// Marker: we initiated the handshake.
pub(crate) struct AsInitiator;
/// Marker: we respond to the handshake.
pub(crate) struct AsResponder;

impl Party for AsInitiator {
    const PARTY: ElligatorSwiftParty = ElligatorSwiftParty::A;
}
impl Party for AsResponder {
    const PARTY: ElligatorSwiftParty = ElligatorSwiftParty::B;
}

/// `noise_protocol::DH` for secp256k1 with 64-byte EllSwift public keys.
///
/// A key is `secret (32) || own EllSwift encoding (64)`, the encoding computed once when the key
/// is made (it is needed by every ECDH), and wiped on drop with the secret.
/// `dh` is the spec's `ECDH(k, rk)`: BIP324 `v2_ecdh`, x-only, tagged hash over
/// `ellswift_initiator || ellswift_responder || x`.
pub(crate) struct EllSwiftDh<P>(PhantomData<P>);

impl<P: Party> DH for EllSwiftDh<P> {
    type Key = KeyPair96;
    type Pubkey = [u8; 64];
    type Output = Secret32;

    fn name() -> &'static str {
        "Secp256k1+EllSwift"
    }

    fn genkey() -> KeyPair96 {
        let mut sk = SecretKey::new(&mut rand::thread_rng());
        let key = keypair96(&sk);
        sk.non_secure_erase();
        key
    }

    fn pubkey(k: &KeyPair96) -> [u8; 64] {
        let mut p = [0u8; 64];
        p.copy_from_slice(&k.0[32..]);
        p
    }

    fn dh(k: &KeyPair96, theirs: &[u8; 64]) -> Result<Secret32, ()> {
        let mut sk = SecretKey::from_slice(&k.0[..32]).map_err(|_| ())?;
        let ours = ElligatorSwift::from_array(Self::pubkey(k));
        let theirs = ElligatorSwift::from_array(*theirs);
        let (a, b) = match P::PARTY {
            ElligatorSwiftParty::A => (ours, theirs),
            ElligatorSwiftParty::B => (theirs, ours),
        };
        let shared = ElligatorSwift::shared_secret(a, b, sk, P::PARTY, None);
        sk.non_secure_erase();
        Ok(Secret32(shared.to_secret_bytes()))
    }
}

/// `secret || EllSwift(secret)`, the encoding derived deterministically from the secret.
pub(crate) fn keypair96(sk: &SecretKey) -> KeyPair96 {
    let ell = ElligatorSwift::from_seckey(secp(), *sk, None).to_array();
    let mut k = KeyPair96([0; 96]);
    k.0[..32].copy_from_slice(&sk.secret_bytes());
    k.0[32..].copy_from_slice(&ell);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_name_hash_matches_sri_constant() {
        // noise_sv2::NOISE_HASHED_PROTOCOL_NAME_CHACHA
        let h = Sha256::hash(crate::PROTOCOL_NAME);
        assert_eq!(h.0, noise_sv2::NOISE_HASHED_PROTOCOL_NAME_CHACHA);
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let out = Sha256::hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(out.0),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn seal_open_round_trip_and_nonce_layout() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let mut buf = b"abc".to_vec();
        buf.extend_from_slice(&[0; 16]);
        assert!(seal_in_place(&key, 7, b"", &mut buf, 3));
        assert!(open_in_place(&key, 7, b"", &mut buf));
        assert_eq!(&buf[..3], b"abc");
        let mut nonce_bytes = [0u8; 12];
        nonce_bytes[4..].copy_from_slice(&7u64.to_le_bytes());
        assert_eq!(nonce(7).as_ref(), &nonce_bytes);
    }
}
