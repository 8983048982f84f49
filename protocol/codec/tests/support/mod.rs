//! Shared harness of the codec's conformance tests: round trips through our codec and
//! differential round trips through SRI's published crates (parsers_sv2 / binary_sv2).
#![allow(dead_code, unreachable_pub)]

use binary_sv2::GetSize;
use parsers_sv2::AnyMessage;
use proptest::prelude::*;
use strata_protocol::{Header, Message, Seq0_64K, Sv2Message, B0_16M};

/// Encode `m` with our codec and decode it back, through the typed struct and through
/// [`Message`] (frame header included); both must give `m` back.
pub fn roundtrip<M>(m: &M)
where
    M: Sv2Message + Clone + std::fmt::Debug + PartialEq + Into<Message>,
{
    let payload = m.to_vec();
    assert_eq!(payload.len(), m.encoded_len(), "encoded_len of {}", M::NAME);
    assert_eq!(&M::from_bytes(&payload).expect("decode our own bytes"), m);
    let mut frame = Vec::new();
    m.encode_frame(&mut frame);
    let (header, any) = Message::from_frame_bytes(&frame).expect("decode our own frame");
    assert_eq!(header, m.header());
    assert_eq!(any, m.clone().into());
    assert_eq!(any.to_frame_vec(), frame);
    // Every strict prefix is truncated input: a typed error, never a panic or a success.
    for cut in 0..payload.len() {
        assert!(
            M::from_bytes(&payload[..cut]).is_err(),
            "{} accepted a {cut}-byte prefix",
            M::NAME
        );
    }
}

/// Differential check against SRI: our bytes must decode in SRI (parsers_sv2) to a value that
/// SRI re-encodes to exactly our bytes, with the same header; and our decoder must read SRI's
/// bytes back to `m`. Equal bytes through both codecs means both read every field the same
/// way.
pub fn sri_roundtrip<M>(m: &M)
where
    M: Sv2Message + Clone + std::fmt::Debug + PartialEq + Into<Message>,
{
    let mut frame = Vec::new();
    m.encode_frame(&mut frame);
    let sri_header = framing_sv2::header::Header::from_bytes(&frame[..6])
        .unwrap_or_else(|e| panic!("SRI rejects our header for {}: {e:?}", M::NAME));
    let mut payload = frame[6..].to_vec();
    let any: AnyMessage<'_> = (sri_header, payload.as_mut_slice())
        .try_into()
        .unwrap_or_else(|e| panic!("SRI rejects our {} ({m:?}): {e:?}", M::NAME));
    let size = any.get_size();
    let sri_bytes = binary_sv2::to_bytes(any).expect("SRI re-encodes");
    assert_eq!(size, sri_bytes.len());
    assert_eq!(
        hex::encode(&sri_bytes),
        hex::encode(&frame[6..]),
        "SRI re-encodes {} differently",
        M::NAME
    );
    assert_eq!(
        &M::from_bytes(&sri_bytes).expect("we decode SRI's bytes"),
        m
    );
}

/// Our decoder must read bytes that SRI produced from its own value to `expected`.
pub fn sri_bytes_decode_to<M>(sri_payload: &[u8], expected: &M)
where
    M: Sv2Message + std::fmt::Debug + PartialEq,
{
    assert_eq!(
        &M::from_bytes(sri_payload).expect("we decode SRI's bytes"),
        expected
    );
}

/// A plaintext header for a base-protocol (`extension_type` 0) message of `len` bytes.
pub fn header_for(msg_type: u8, len: usize) -> Header {
    header(0, msg_type, len)
}

/// A plaintext header without the channel_msg bit.
pub fn header(extension_type: u16, msg_type: u8, len: usize) -> Header {
    Header {
        extension_type,
        channel_msg: false,
        msg_type,
        msg_length: len as u32,
    }
}

/// Lists of small transactions: the default strategy may give 16 transactions of 70 kB each,
/// and `roundtrip` decodes every prefix of the payload (quadratic in its size).
pub fn small_tx_list() -> impl Strategy<Value = Seq0_64K<B0_16M>> {
    let tx = proptest::collection::vec(any::<u8>(), 0..300)
        .prop_map(|t| B0_16M::new(t).expect("short transaction"));
    proptest::collection::vec(tx, 0..8).prop_map(|v| Seq0_64K::new(v).expect("few transactions"))
}
