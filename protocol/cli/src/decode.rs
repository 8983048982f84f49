//! `strata decode`.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::Read;
use strata_protocol::{frame::parse_frame, Message};

/// Decode the hex frame and print it as one JSON object on stdout.
pub(crate) fn run(arg: &str) -> Result<()> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        s
    } else {
        arg.to_owned()
    };
    let value = decode_hex_frame(&text)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// The JSON form of a hex-encoded plaintext frame.
pub(crate) fn decode_hex_frame(text: &str) -> Result<Value> {
    let cleaned: String = text.split_whitespace().collect();
    let cleaned = cleaned
        .strip_prefix("0x")
        .or_else(|| cleaned.strip_prefix("0X"))
        .unwrap_or(&cleaned);
    if cleaned.is_empty() {
        bail!("no input: expected a frame as hex");
    }
    let bytes = hex::decode(cleaned).context("input is not valid hex")?;
    let (header, payload) = parse_frame(&bytes).context("bad frame")?;
    let (msg, rest) = Message::decode_with_tlvs(&header, payload).context("bad message")?;
    let mut out = json!({
        "extension_type": header.extension_type,
        "msg_type": header.msg_type,
        "channel_msg": header.channel_msg,
        "message": msg.name(),
        "fields": msg.fields_json(),
    });
    if !rest.is_empty() {
        out["tlvs"] = tlvs_json(rest)?;
    }
    Ok(out)
}

fn tlvs_json(rest: &[u8]) -> Result<Value> {
    let _ = rest;
    bail!(
        "bad message: {} trailing bytes after the message",
        rest.len()
    )
}
