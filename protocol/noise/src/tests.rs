//! Whole-crate tests: handshake, framing, error paths. Differential tests against SRI live in
//! `tests/sri.rs`.

use bytes::BytesMut;

use crate::*;

const NOW: u32 = 1_700_000_000;

fn pair_with(valid_from: u32, not_valid_after: u32) -> (AuthorityKeypair, Responder) {
    let authority = AuthorityKeypair::generate();
    let keys = StaticKeypair::generate();
    let cert = Certificate::issue(&authority, &keys.public_key(), valid_from, not_valid_after);
    (authority, Responder::new(keys, cert))
}

fn handshake() -> (Transport, Transport) {
    let (authority, responder) = pair_with(NOW - 60, NOW + 3600);
    let (waiting, act1) = Initiator::new(authority.public_key());
    let (server, act2) = responder.respond(&act1).unwrap();
    let client = waiting.read_act2(&act2, NOW).unwrap();
    assert_eq!(client.remote_static(), Some(&responder.public_key()));
    (client, server)
}

fn plain_frame(ext: u16, msg_type: u8, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::with_capacity(encrypted_len(payload.len()));
    b.extend_from_slice(&ext.to_le_bytes());
    b.extend_from_slice(&[msg_type]);
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    b.extend_from_slice(payload);
    b
}

fn sealed(sealer: &mut Sealer, ext: u16, msg_type: u8, payload: &[u8]) -> BytesMut {
    let mut b = plain_frame(ext, msg_type, payload);
    sealer.seal_frame(&mut b).unwrap();
    assert_eq!(b.len(), encrypted_len(payload.len()));
    b
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

#[test]
fn handshake_and_frames_both_ways() {
    let (client, server) = handshake();
    let (mut c_seal, mut c_open) = client.split();
    let (mut s_seal, mut s_open) = server.split();
    for len in [
        0,
        1,
        80,
        65518,
        65519,
        65520,
        65519 * 2,
        65519 * 2 + 1,
        200_000,
    ] {
        let p = payload(len);
        let mut wire = sealed(&mut c_seal, 0x8000, 0x1b, &p);
        let f = s_open.decode(&mut wire).unwrap().unwrap();
        assert!(wire.is_empty());
        // extension_type 0x8000 on the wire: extension 0 with the channel_msg bit
        assert_eq!(
            (
                f.header.extension_type,
                f.header.channel_msg,
                f.header.msg_type,
                f.header.msg_length as usize
            ),
            (0, true, 0x1b, len)
        );
        assert_eq!(&f.payload[..], &p[..]);

        let mut wire = sealed(&mut s_seal, 0, 0x15, &p);
        let f = c_open.decode(&mut wire).unwrap().unwrap();
        assert_eq!(&f.payload[..], &p[..]);
    }
    // Chunk count drives the nonces: header + ceil(len / 65519) per frame.
    assert_eq!(c_seal.nonce(), s_open.nonce());
    assert_eq!(s_seal.nonce(), c_open.nonce());
}

#[test]
fn one_chunk_seal_does_not_reallocate() {
    let (client, _) = handshake();
    let (mut sealer, _) = client.split();
    let mut b = plain_frame(0, 0x1a, &payload(74));
    let ptr = b.as_ptr();
    sealer.seal_frame(&mut b).unwrap();
    assert_eq!(b.as_ptr(), ptr);
}

#[test]
fn every_split_point_of_a_stream() {
    // Cut the stream at every point (in two pieces); the opener must give back every frame.
    // Each cut needs a fresh session (the opener consumes nonces). Every point is tried within
    // the small frames and around chunk edges; the bulk of the big frame is strided.
    let payloads = [payload(0), payload(80), payload(65519 + 10), payload(3)];
    let (client, server) = handshake();
    let (mut sealer, _) = client.split();
    let (_, opener) = server.split();
    let mut stream = Vec::new();
    for p in &payloads {
        stream.extend_from_slice(&sealed(&mut sealer, 0, 7, p));
    }
    let big_start = encrypted_len(0) + encrypted_len(80);
    let chunk_edge = big_start + ENCRYPTED_HEADER_LEN + MAX_CHUNK_CIPHERTEXT_LEN;
    let big_end = big_start + encrypted_len(65519 + 10);
    let mut cut = 0;
    while cut <= stream.len() {
        let mut op = opener.clone_for_test();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in [&stream[..cut], &stream[cut..]] {
            buf.extend_from_slice(piece);
            while let Some(f) = op.decode(&mut buf).unwrap() {
                got.push(f.payload.to_vec());
            }
        }
        assert_eq!(got, payloads.to_vec(), "cut at {cut}");
        let in_bulk =
            cut > big_start + 100 && cut < big_end - 100 && cut.abs_diff(chunk_edge) > 100;
        cut += if in_bulk { 997 } else { 1 };
    }
}

#[test]
fn byte_at_a_time() {
    let (client, server) = handshake();
    let (mut sealer, _) = client.split();
    let (_, mut opener) = server.split();
    let payloads = [payload(5), payload(0), payload(300)];
    let mut stream = Vec::new();
    for p in &payloads {
        stream.extend_from_slice(&sealed(&mut sealer, 0, 7, p));
    }
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in stream {
        buf.extend_from_slice(&[b]);
        while let Some(f) = opener.decode(&mut buf).unwrap() {
            got.push(f.payload.to_vec());
        }
    }
    assert_eq!(got, payloads.to_vec());
}

#[test]
fn tampering_is_a_typed_error_and_closes_the_stream() {
    for (at, expect_header) in [
        (0usize, true),
        (21, true),
        (22, false),
        (22 + 80 + 15, false),
    ] {
        let (client, server) = handshake();
        let (mut sealer, _) = client.split();
        let (_, mut opener) = server.split();
        let mut wire = sealed(&mut sealer, 0, 7, &payload(80));
        wire[at] ^= 0x40;
        let err = opener.decode(&mut wire).unwrap_err();
        if expect_header {
            assert!(
                matches!(err, NoiseError::FrameHeaderAuthentication),
                "{err}"
            );
        } else {
            assert!(
                matches!(err, NoiseError::FramePayloadAuthentication { chunk: 0 }),
                "{err}"
            );
        }
        assert!(matches!(
            opener.decode(&mut wire),
            Err(NoiseError::StreamClosed)
        ));
    }
    // Second chunk of a multi-chunk frame.
    let (client, server) = handshake();
    let (mut sealer, _) = client.split();
    let (_, mut opener) = server.split();
    let mut wire = sealed(&mut sealer, 0, 7, &payload(70_000));
    let at = wire.len() - 1;
    wire[at] ^= 1;
    assert!(matches!(
        opener.decode(&mut wire),
        Err(NoiseError::FramePayloadAuthentication { chunk: 1 })
    ));
}

#[test]
fn truncated_frame_waits_and_reserves() {
    let (client, server) = handshake();
    let (mut sealer, _) = client.split();
    let (_, mut opener) = server.split();
    let wire = sealed(&mut sealer, 0, 7, &payload(1000));
    let mut buf = BytesMut::from(&wire[..wire.len() - 1]);
    assert!(opener.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= 1000 + 16);
    buf.extend_from_slice(&wire[wire.len() - 1..]);
    assert_eq!(
        opener.decode(&mut buf).unwrap().unwrap().payload.len(),
        1000
    );
    // A dropped frame (the next one uses a later nonce) fails authentication.
    let _dropped = sealed(&mut sealer, 0, 7, &payload(3));
    let mut buf = sealed(&mut sealer, 0, 7, &payload(3));
    assert!(matches!(
        opener.decode(&mut buf),
        Err(NoiseError::FrameHeaderAuthentication)
    ));
}

#[test]
fn oversize_declared_frame_is_refused_before_growth() {
    let (client, server) = handshake();
    let (mut sealer, _) = client.split();
    let (_, opener) = server.split();
    let mut opener = opener.with_max_payload_len(1000);
    // Seal a frame announcing 1001 bytes; hand the opener only its header.
    let wire = sealed(&mut sealer, 0, 7, &payload(1001));
    let mut buf = BytesMut::with_capacity(ENCRYPTED_HEADER_LEN);
    buf.extend_from_slice(&wire[..ENCRYPTED_HEADER_LEN]);
    let cap = buf.capacity();
    assert!(matches!(
        opener.decode(&mut buf),
        Err(NoiseError::PayloadTooLarge {
            len: 1001,
            max: 1000
        })
    ));
    assert!(buf.capacity() <= cap, "buffer grew for a refused frame");
}

#[test]
fn malformed_plaintext_frames_are_refused() {
    let (client, _) = handshake();
    let (mut sealer, _) = client.split();
    let mut b = BytesMut::from(&[0u8, 0, 1][..]);
    assert!(matches!(
        sealer.seal_frame(&mut b),
        Err(NoiseError::FrameTooShort { len: 3 })
    ));
    let mut b = plain_frame(0, 1, &payload(10));
    b.truncate(b.len() - 1);
    assert!(matches!(
        sealer.seal_frame(&mut b),
        Err(NoiseError::FrameLengthMismatch {
            declared: 10,
            actual: 9
        })
    ));
    assert_eq!(sealer.nonce(), 0);
}

#[test]
fn nonce_exhaustion_is_an_error() {
    let (client, server) = handshake();
    let (mut sealer, _) = client.split();
    let (_, mut opener) = server.split();
    // u64::MAX is reserved: nonces u64::MAX - 2 and u64::MAX - 1 are the last two usable.
    sealer.set_nonce_for_test(u64::MAX - 2);
    opener.set_nonce_for_test(u64::MAX - 2);
    let mut wire = sealed(&mut sealer, 0, 1, &payload(4)); // uses 2 nonces
    assert_eq!(sealer.nonce(), u64::MAX);
    assert_eq!(opener.decode(&mut wire).unwrap().unwrap().payload.len(), 4);
    let mut b = plain_frame(0, 1, &[]);
    assert!(matches!(
        sealer.seal_frame(&mut b),
        Err(NoiseError::NonceExhausted)
    ));
    assert!(matches!(
        opener.decode(&mut BytesMut::from(&[0u8; 22][..])),
        Err(NoiseError::NonceExhausted)
    ));

    // A frame needing more nonces than remain is refused whole, buffer untouched.
    sealer.set_nonce_for_test(u64::MAX - 2);
    let mut b = plain_frame(0, 1, &payload(65520)); // needs 3
    let before = b.clone();
    assert!(matches!(
        sealer.seal_frame(&mut b),
        Err(NoiseError::NonceExhausted)
    ));
    assert_eq!(b, before);
}

#[test]
fn certificate_window_and_authority_in_handshake() {
    let (authority, responder) = pair_with(NOW, NOW + 100);
    let run = |pk: PublicKey, now: u32, tol: u32| {
        let (w, act1) = Initiator::new(pk);
        let (_, act2) = responder.respond(&act1).unwrap();
        w.with_clock_tolerance(tol).read_act2(&act2, now)
    };
    assert!(run(authority.public_key(), NOW + 50, 0).is_ok());
    assert!(matches!(
        run(authority.public_key(), NOW - 1, 0),
        Err(NoiseError::CertificateNotYetValid { .. })
    ));
    assert!(run(authority.public_key(), NOW - 1, 1).is_ok());
    assert!(matches!(
        run(authority.public_key(), NOW + 101, 0),
        Err(NoiseError::CertificateExpired { .. })
    ));
    assert!(matches!(
        run(AuthorityKeypair::generate().public_key(), NOW + 50, 0),
        Err(NoiseError::CertificateBadSignature)
    ));
    // Default tolerance applies when none is set.
    let (w, act1) = Initiator::new(authority.public_key());
    let (_, act2) = responder.respond(&act1).unwrap();
    assert!(w
        .read_act2(&act2, NOW - DEFAULT_CLOCK_TOLERANCE_SECS)
        .is_ok());
}

#[test]
fn tampered_act2_is_a_typed_error() {
    let (authority, responder) = pair_with(NOW - 60, NOW + 60);
    for (at, part) in [
        (0usize, None),
        (64, Some(Act2Part::StaticKey)),
        (64 + 79, Some(Act2Part::StaticKey)),
        (144, Some(Act2Part::SignatureNoiseMessage)),
        (233, Some(Act2Part::SignatureNoiseMessage)),
    ] {
        let (w, act1) = Initiator::new(authority.public_key());
        let (_, mut act2) = responder.respond(&act1).unwrap();
        act2[at] ^= 1;
        match (w.read_act2(&act2, NOW), part) {
            (Err(NoiseError::HandshakeAuthentication { part: got }), Some(want)) => {
                assert_eq!(got, want)
            }
            // A changed ephemeral key changes every derived key: the static key fails first.
            (Err(NoiseError::HandshakeAuthentication { part: got }), None) => {
                assert_eq!(got, Act2Part::StaticKey)
            }
            (other, _) => panic!("byte {at}: {other:?}"),
        }
    }
}

#[test]
fn handshake_with_wrong_act1_gives_mismatched_keys() {
    let (authority, responder) = pair_with(NOW - 60, NOW + 60);
    let (w, mut act1) = Initiator::new(authority.public_key());
    act1[5] ^= 1;
    let (_, act2) = responder.respond(&act1).unwrap();
    assert!(w.read_act2(&act2, NOW).is_err());
}

#[test]
fn debug_output_redacts_secrets() {
    let (authority, responder) = pair_with(NOW - 60, NOW + 60);
    let secret_hex = hex::encode(*authority.secret_key().to_bytes());
    for s in [format!("{authority:?}"), format!("{responder:?}")] {
        assert!(!s.contains(&secret_hex));
        assert!(s.contains("redacted"));
    }
    let (c, s) = handshake();
    let _ = format!("{c:?} {s:?}");
}

#[test]
fn fuzz_harnesses_smoke() {
    for data in [
        &b""[..],
        &[0u8; 1][..],
        &[0xffu8; 300][..],
        &payload(1000)[..],
    ] {
        fuzzing::initiator_act2(data);
        fuzzing::responder_act1(data);
        fuzzing::transport_open(data);
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn frames_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
                             splits in proptest::collection::vec(1usize..64, 1..8)) {
            let (client, server) = handshake();
            let (mut sealer, _) = client.split();
            let (_, mut opener) = server.split();
            let mut stream = Vec::new();
            for p in &payloads {
                stream.extend_from_slice(&sealed(&mut sealer, 3, 9, p));
            }
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut pos = 0;
            let mut i = 0;
            while pos < stream.len() {
                let end = (pos + splits[i % splits.len()]).min(stream.len());
                i += 1;
                buf.extend_from_slice(&stream[pos..end]);
                pos = end;
                while let Some(f) = opener.decode(&mut buf).unwrap() {
                    got.push(f.payload.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
        }

        #[test]
        fn fuzz_transport_open_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            fuzzing::transport_open(&data);
            fuzzing::responder_act1(&data);
            fuzzing::initiator_act2(&data);
        }
    }
}

#[test]
fn halves_and_responder_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Responder>();
    check::<InitiatorWaiting>();
    check::<Transport>();
    check::<Sealer>();
    check::<Opener>();
}
