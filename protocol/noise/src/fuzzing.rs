//! Fuzz harnesses (the `fuzz/` crate's targets are three-line shims over these). Each must
//! never panic on any input, except on a real bug.

use std::sync::OnceLock;

use bytes::BytesMut;
use strata_protocol::frame::{Header, HEADER_LEN};

use crate::{
    AuthorityKeypair, Certificate, Initiator, Opener, Responder, StaticKeypair, Transport,
    ACT1_LEN, ACT2_LEN,
};

const NOW: u32 = 1_700_000_000;

struct Fixture {
    authority: AuthorityKeypair,
    responder: Responder,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let authority = AuthorityKeypair::generate();
        let keys = StaticKeypair::generate();
        let cert = Certificate::issue(&authority, &keys.public_key(), NOW - 3600, NOW + 3600);
        Fixture {
            authority,
            responder: Responder::new(keys, cert),
        }
    })
}

fn handshake() -> (Transport, Transport) {
    let f = fixture();
    let (waiting, act1) = Initiator::new(f.authority.public_key());
    let Ok((server, act2)) = f.responder.respond(&act1) else {
        panic!("in-memory handshake: respond failed");
    };
    let Ok(client) = waiting.read_act2(&act2, NOW) else {
        panic!("in-memory handshake: read_act2 failed");
    };
    (client, server)
}

/// Feeds `stream` to `opener` in pieces whose sizes come from `splits` (cycled), draining frames.
fn feed(opener: &mut Opener, stream: &[u8], splits: &[u8]) -> Vec<crate::PlainFrame> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let step = splits
            .get(i % splits.len().max(1))
            .map_or(stream.len(), |s| *s as usize * 7 + 1);
        i += 1;
        let end = (pos + step).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        loop {
            match opener.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => return frames,
            }
        }
    }
    frames
}

/// A fresh initiator fed `data` as act 2 (zero-padded or truncated to 234 bytes).
pub fn initiator_act2(data: &[u8]) {
    let (waiting, _) = Initiator::new(fixture().authority.public_key());
    let mut act2 = [0u8; ACT2_LEN];
    let n = data.len().min(ACT2_LEN);
    act2[..n].copy_from_slice(&data[..n]);
    let now = data
        .get(ACT2_LEN..ACT2_LEN + 4)
        .map_or(NOW, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    // Forging act 2 without the server's keys would be a real bug.
    assert!(
        waiting.read_act2(&act2, now).is_err(),
        "forged act 2 accepted"
    );
}

/// The responder fed `data[..64]` as act 1 (zero-padded). Every 64-byte string is a valid
/// EllSwift key, so it answers; the rest of `data` then goes to its opener as transport bytes.
pub fn responder_act1(data: &[u8]) {
    let mut act1 = [0u8; ACT1_LEN];
    let n = data.len().min(ACT1_LEN);
    act1[..n].copy_from_slice(&data[..n]);
    if let Ok((server, _act2)) = fixture().responder.respond(&act1) {
        let (_, mut opener) = server.split();
        let rest = data.get(ACT1_LEN..).unwrap_or_default();
        let frames = feed(&mut opener, rest, rest);
        assert!(frames.is_empty(), "forged transport frame accepted");
    }
}

/// After a real in-memory handshake: (1) seal frames whose payloads come from `data` and check
/// they open to the same bytes when fed in split points taken from `data`; (2) feed `data`
/// itself as ciphertext, which must never decode to a frame.
pub fn transport_open(data: &[u8]) {
    let (client, server) = handshake();
    let (mut sealer, _) = client.split();
    let (_, mut opener) = server.split();

    // (1) Round trip. First byte picks how many frames; payloads are slices of `data`.
    let count = data.first().map_or(1, |b| (*b % 4) as usize + 1);
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for k in 0..count {
        let start = (k * 31) % (data.len() + 1);
        let mut len = data.len() - start;
        if k == 1 {
            // Stretch one payload past a chunk boundary now and then.
            len = data
                .get(1)
                .map_or(len, |b| len + (*b as usize % 3) * 40_000);
        }
        let payload: Vec<u8> = data.iter().cycle().skip(start).take(len).copied().collect();
        let len = payload.len();
        let mut frame = BytesMut::with_capacity(crate::encrypted_len(len));
        frame.extend_from_slice(&[k as u8, 0x80, 0x15]);
        frame.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
        frame.extend_from_slice(&payload);
        let header = match frame.first_chunk::<HEADER_LEN>() {
            Some(h) => Header::from_bytes(*h),
            None => return,
        };
        if sealer.seal_frame(&mut frame).is_err() {
            panic!("seal_frame failed on a well-formed frame");
        }
        stream.extend_from_slice(&frame);
        expected.push((header, payload));
    }
    let frames = feed(&mut opener, &stream, data);
    assert_eq!(
        frames.len(),
        expected.len(),
        "sealed frames did not all open"
    );
    for (f, (h, p)) in frames.iter().zip(&expected) {
        assert_eq!(&f.header, h);
        assert_eq!(&f.payload[..], &p[..]);
    }

    // (2) Arbitrary bytes continue the same stream: no forged frame may come out.
    let forged = feed(&mut opener, data, data.get(2..).unwrap_or_default());
    assert!(forged.is_empty(), "forged transport frame accepted");
}
