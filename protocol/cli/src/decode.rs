//! `strata decode`.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::Read;
use strata_protocol::common::{CommonMessage, ERROR_UNSUPPORTED_PROTOCOL};
use strata_protocol::json::ToJson;
use strata_protocol::tlv::{self, Tlv, TlvField};
use strata_protocol::{frame::parse_frame, Message, UserIdentity};

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
    if let Message::Common(CommonMessage::SetupConnection(setup)) = &msg {
        // 3 ("Job Distribution" in the spec's table, never specified) like 4..=255
        setup.sub_protocol().with_context(|| {
            format!("bad message: a server answers it with SetupConnection.Error {ERROR_UNSUPPORTED_PROTOCOL}")
        })?;
    }
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

/// The TLV fields after the message as a JSON array; the bytes must be a well-formed list.
fn tlvs_json(rest: &[u8]) -> Result<Value> {
    let tlvs = tlv::decode_list(rest).with_context(|| {
        format!(
            "{} bytes after the message are not a valid TLV list",
            rest.len()
        )
    })?;
    tlvs.iter().map(tlv_json).collect()
}

/// One TLV: `{"extension_type", "field_type", "value"}`, plus the decoded value of the
/// fields we know.
fn tlv_json(t: &Tlv) -> Result<Value> {
    let mut v = t.to_json();
    if t.as_tlv_ref()
        .is(UserIdentity::EXTENSION_TYPE, UserIdentity::FIELD_TYPE)
    {
        let id = UserIdentity::from_tlv(t.as_tlv_ref())
            .context("bad user_identity TLV (extension 0x0002, field 0x01)")?;
        v["user_identity"] = Value::String(id.as_str().to_owned());
    }
    Ok(v)
}
