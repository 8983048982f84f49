//! The `Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256` handshake
//! ([spec 4.5](https://github.com/stratum-mining/sv2-spec/blob/main/04-Protocol-Security.md#45-authenticated-key-agreement-handshake)).
//!
//! Driven by `noise-protocol`'s `HandshakeState` with the NX pattern, over our `DH` (one type
//! per role, so BIP324's role-ordered ECDH comes out right), `Cipher` (ring) and `Hash` (sha2).
//! The name it builds, `Noise_NX_` + `Secp256k1+EllSwift` + `_ChaChaPoly_SHA256`, is hashed into
//! `h` and `ck`; the empty prologue's `MixHash` is the spec's extra `h = HASH(h)`.

use noise_protocol::{patterns::noise_nx, HandshakeState};

use crate::{
    certificate::{DEFAULT_CLOCK_TOLERANCE_SECS, SIGNATURE_NOISE_MESSAGE_LEN},
    crypto::{AsInitiator, AsResponder, ChaChaPoly, EllSwiftDh, KeyPair96, Sha256, MAC_LEN},
    error::Act2Part,
    transport::Transport,
    Certificate, NoiseError, PublicKey, StaticKeypair,
};

/// Length of handshake act 1: the initiator's EllSwift-encoded ephemeral key.
pub const ACT1_LEN: usize = 64;
/// Length of handshake act 2: ephemeral key (64) + encrypted static key (64 + 16) + encrypted
/// signature noise message (74 + 16). The spec text still says 170; the wire says 234.
pub const ACT2_LEN: usize = 64 + 64 + MAC_LEN + SIGNATURE_NOISE_MESSAGE_LEN + MAC_LEN;

type InitiatorState = HandshakeState<EllSwiftDh<AsInitiator>, ChaChaPoly, Sha256>;
type ResponderState = HandshakeState<EllSwiftDh<AsResponder>, ChaChaPoly, Sha256>;

/// The client side of the handshake. [`Initiator::new`] makes act 1; act 2 goes to
/// [`InitiatorWaiting::read_act2`].
///
/// ```text
///  Initiator::new(authority) ──► (InitiatorWaiting, act1: [u8; 64]) ── send act1
///  InitiatorWaiting::read_act2(&act2: [u8; 234], now) ──► Transport   (or NoiseError: close)
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Initiator;

impl Initiator {
    /// Starts a handshake that will only accept a server certified by `authority`.
    /// Returns the waiting state and act 1 (`-> e`) to send.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(authority: PublicKey) -> (InitiatorWaiting, [u8; ACT1_LEN]) {
        let mut hs = InitiatorState::new(noise_nx(), true, [], None, None, None, None);
        let mut act1 = [0u8; ACT1_LEN];
        // Cannot fail: no DH in `-> e`, and the empty payload is not encrypted (no key yet).
        let ok = hs.write_message(&[], &mut act1).is_ok();
        debug_assert!(ok);
        (
            InitiatorWaiting {
                hs,
                authority,
                tolerance: DEFAULT_CLOCK_TOLERANCE_SECS,
            },
            act1,
        )
    }
}

/// The initiator after sending act 1, waiting for act 2.
pub struct InitiatorWaiting {
    hs: InitiatorState,
    authority: PublicKey,
    tolerance: u32,
}

impl core::fmt::Debug for InitiatorWaiting {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InitiatorWaiting")
            .field("authority", &self.authority)
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl InitiatorWaiting {
    /// Sets the clock tolerance (seconds) applied to both ends of the certificate's validity
    /// window (default [`DEFAULT_CLOCK_TOLERANCE_SECS`]).
    pub fn with_clock_tolerance(mut self, secs: u32) -> Self {
        self.tolerance = secs;
        self
    }

    /// Processes act 2 (`<- e, ee, s, es, SIGNATURE_NOISE_MESSAGE`), authenticates the server
    /// against the pinned authority key at time `now_unix` (unix seconds), and yields the
    /// transport.
    pub fn read_act2(
        mut self,
        act2: &[u8; ACT2_LEN],
        now_unix: u32,
    ) -> Result<Transport, NoiseError> {
        let mut cert = [0u8; SIGNATURE_NOISE_MESSAGE_LEN];
        if self.hs.read_message(act2, &mut cert).is_err() {
            // `rs` is set once the static key has decrypted: then the payload failed.
            let part = match self.hs.get_rs() {
                None => Act2Part::StaticKey,
                Some(_) => Act2Part::SignatureNoiseMessage,
            };
            return Err(NoiseError::HandshakeAuthentication { part });
        }
        let Some(rs) = self.hs.get_rs() else {
            return Err(NoiseError::HandshakeAuthentication {
                part: Act2Part::StaticKey,
            });
        };
        let server = PublicKey::from_ellswift(&rs);
        Certificate::from_bytes(&cert).verify(
            &self.authority,
            &server,
            now_unix,
            self.tolerance,
        )?;
        let (c1, c2) = self.hs.get_ciphers();
        Ok(Transport::from_cipher_states(c1, c2, Some(server)))
    }
}

/// The server side of the handshake: the static keypair and the certificate signed for it once;
/// answers any number of act 1 messages (`&self`, shareable across connection tasks).
///
/// ```text
///  Responder::new(keys, certificate)
///  Responder::respond(&self, &act1: [u8; 64]) ──► (Transport, act2: [u8; 234]) ── send act2
/// ```
pub struct Responder {
    keys: StaticKeypair,
    s: KeyPair96,
    certificate: [u8; SIGNATURE_NOISE_MESSAGE_LEN],
}

impl core::fmt::Debug for Responder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Responder")
            .field("keys", &self.keys)
            .field("certificate", &Certificate::from_bytes(&self.certificate))
            .finish()
    }
}

impl Responder {
    /// A responder presenting `certificate`, which must certify `keys.public_key()` (see
    /// [`Certificate::issue`]); this is not checked here (no authority key at hand) but every
    /// initiator will.
    pub fn new(keys: StaticKeypair, certificate: Certificate) -> Self {
        let s = keys.noise_key();
        Self {
            keys,
            s,
            certificate: certificate.to_bytes(),
        }
    }

    /// The static public key this responder proves possession of.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The certificate presented in act 2.
    pub fn certificate(&self) -> Certificate {
        Certificate::from_bytes(&self.certificate)
    }

    /// Answers act 1 (`-> e`) with act 2 (`<- e, ee, s, es, SIGNATURE_NOISE_MESSAGE`).
    ///
    /// Every 64-byte string is a valid EllSwift encoding, so any act 1 gets an answer; a bogus
    /// one only yields a transport whose keys the peer does not have.
    pub fn respond(
        &self,
        act1: &[u8; ACT1_LEN],
    ) -> Result<(Transport, [u8; ACT2_LEN]), NoiseError> {
        let s = KeyPair96(self.s.0);
        let mut hs = ResponderState::new(noise_nx(), false, [], Some(s), None, None, None);
        hs.read_message(act1, &mut [])
            .map_err(|_| NoiseError::HandshakeAuthentication {
                part: Act2Part::StaticKey,
            })?;
        let mut act2 = [0u8; ACT2_LEN];
        hs.write_message(&self.certificate, &mut act2)
            .map_err(|_| NoiseError::HandshakeAuthentication {
                part: Act2Part::StaticKey,
            })?;
        let (c1, c2) = hs.get_ciphers();
        Ok((Transport::from_cipher_states(c2, c1, None), act2))
    }
}
