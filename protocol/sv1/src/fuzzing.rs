//! Fuzz harness bodies; the `fuzz/` targets are three-line shims over these. They also run as
//! ordinary tests over the seed corpus.
//!
//! Each harness parses arbitrary bytes, and whatever parses is re-encoded and parsed again: the
//! value must come back identical, and the encoding must be exactly one line.

use bytes::BytesMut;

use crate::{ClientMessage, ConfigureResult, LineDecoder, ServerMessage, SubscribeResult};

fn check_one_line(buf: &[u8]) {
    assert_eq!(buf.last(), Some(&b'\n'), "encoding must end in a newline");
    assert_eq!(
        buf.iter().filter(|&&b| b == b'\n').count(),
        1,
        "encoding must be one line"
    );
}

/// Parses `data` as a client line; re-encodes and re-parses whatever parses.
pub fn parse_client_line(data: &[u8]) {
    let Ok(msg) = ClientMessage::parse_slice(data) else {
        return;
    };
    let mut buf = Vec::new();
    msg.encode(&mut buf);
    check_one_line(&buf);
    let again = ClientMessage::parse_slice(&buf).expect("our own encoding must parse");
    assert_eq!(msg, again);
    if let ClientMessage::Response(r) = &msg {
        check_results(r);
    }
}

/// Parses `data` as a server line; re-encodes and re-parses whatever parses, including the
/// typed results a response may carry.
pub fn parse_server_line(data: &[u8]) {
    let Ok(msg) = ServerMessage::parse_slice(data) else {
        return;
    };
    let mut buf = BytesMut::new();
    msg.encode(&mut buf);
    check_one_line(&buf);
    let again = ServerMessage::parse(buf.freeze()).expect("our own encoding must parse");
    assert_eq!(msg, again);
    if let ServerMessage::Response(r) = &msg {
        check_results(r);
    }
}

fn check_results(r: &crate::Response) {
    let _ = r.result_bool();
    if let Ok(s) = SubscribeResult::from_json(&r.result) {
        assert_eq!(SubscribeResult::from_json(&s.to_json()).ok(), Some(s));
    }
    if let Ok(c) = ConfigureResult::from_json(&r.result) {
        assert_eq!(ConfigureResult::from_json(&c.to_json()).ok(), Some(c));
    }
}

/// Feeds `data` to a [`LineDecoder`] (max line 4096) in chunks whose sizes come from the data
/// itself, parsing every line both ways; checks that no line exceeds the limit.
pub fn line_decoder(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(seed % 64) + 1;
    let mut d = LineDecoder::new(4096);
    let mut src = BytesMut::new();
    for part in data.chunks(chunk) {
        src.extend_from_slice(part);
        loop {
            match d.decode(&mut src) {
                Ok(Some(line)) => {
                    assert!(line.len() <= 4096);
                    assert!(!line.contains(&b'\n'));
                    parse_client_line(&line);
                    parse_server_line(&line);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(src.len() <= 4097, "buffer grew past the limit");
    }
    if let Ok(Some(line)) = d.decode_eof(&mut src) {
        parse_client_line(&line);
        parse_server_line(&line);
    }
}
