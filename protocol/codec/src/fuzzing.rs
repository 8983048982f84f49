//! Harnesses for the cargo-fuzz targets in `fuzz/` (kept here so that the targets are
//! three-line shims and the committed seed corpus is replayed by an ordinary test).
//!
//! They panic only on a real bug: a decoded message that does not survive re-encoding.

use crate::{frame::FrameDecoder, Message};
use bytes::BytesMut;

/// Feed `data` to a [`FrameDecoder`] in chunks whose sizes come from the data itself, decode
/// every complete frame's message (with TLV tail), and check that whatever decodes re-encodes
/// to a frame that decodes to the same message.
pub fn frames(data: &[u8]) {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut dec = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::new();
    for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => check_message(&frame.header, &frame.payload),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// Decode `data` as one whole frame (header + payload) and check the re-encoding.
pub fn message(data: &[u8]) {
    if let Ok((header, payload)) = crate::frame::parse_frame(data) {
        check_message(&header, payload);
    }
}

fn check_message(header: &crate::Header, payload: &[u8]) {
    let Ok((msg, tlvs)) = Message::decode_with_tlvs(header, payload) else {
        return;
    };
    let strict = Message::decode(header, payload);
    assert_eq!(
        strict.is_ok(),
        tlvs.is_empty(),
        "strict decode disagrees on trailing bytes"
    );
    // Whatever trails the message must parse as a TLV list or be refused; a list that parses
    // must re-encode to the same bytes (TLV encoding is canonical).
    if let Ok(list) = crate::tlv::decode_list(tlvs) {
        let mut again = Vec::new();
        crate::tlv::encode_list(&list, &mut again);
        assert_eq!(again, tlvs, "tlv list changed through decode/encode");
    }
    // Compare encodings, not values: an F32 may be NaN, which is not equal to itself.
    let frame = msg.to_frame_vec();
    let (h2, again) = Message::from_frame_bytes(&frame).expect("re-encoded message must decode");
    assert_eq!(
        again.to_frame_vec(),
        frame,
        "message changed through encode/decode"
    );
    assert_eq!(h2.msg_type, header.msg_type);
    assert_eq!(h2.extension_type, header.extension_type);
    #[cfg(feature = "json")]
    let _ = msg.fields_json();
}
