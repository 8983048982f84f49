//! Hand-written JSON writing (straight into the caller's buffer) and field-level parsing of
//! borrowed raw JSON values.
//!
//! Parsing strategy: the line is parsed once into an envelope whose `id`, `params`, `result` and
//! `error` are borrowed [`RawValue`]s; `params` is then split into at most [`MAX_PARAMS`] borrowed
//! raw elements (no allocation) and each field is read from its raw text. No `serde_json::Value`
//! tree is built on any path.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{FieldError, ParseError};
use crate::text::{Id, RawJson, Text};

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a JSON string (quotes and escapes included).
pub(crate) fn put_str(buf: &mut impl BufMut, s: &str) {
    buf.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.put_slice(&bytes[start..i]);
        if escape.is_empty() {
            buf.put_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            buf.put_slice(escape);
        }
        start = i + 1;
    }
    buf.put_slice(&bytes[start..]);
    buf.put_u8(b'"');
}

/// Writes `bytes` as a quoted lower-case hex string.
pub(crate) fn put_hex(buf: &mut impl BufMut, bytes: &[u8]) {
    buf.put_u8(b'"');
    let mut tmp = [0u8; 128];
    for chunk in bytes.chunks(64) {
        for (i, &b) in chunk.iter().enumerate() {
            tmp[2 * i] = HEX[usize::from(b >> 4)];
            tmp[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        buf.put_slice(&tmp[..2 * chunk.len()]);
    }
    buf.put_u8(b'"');
}

/// Writes a `u32` as a quoted 8-digit big-endian hex string (SV1's form for ntime, nonce, nbits,
/// version and masks).
pub(crate) fn put_hex_u32(buf: &mut impl BufMut, v: u32) {
    put_hex(buf, &v.to_be_bytes());
}

/// Writes an unsigned decimal integer.
pub(crate) fn put_u64(buf: &mut impl BufMut, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.put_slice(&tmp[i..]);
}

/// Writes a signed decimal integer.
pub(crate) fn put_i64(buf: &mut impl BufMut, v: i64) {
    if v < 0 {
        buf.put_u8(b'-');
    }
    put_u64(buf, v.unsigned_abs());
}

/// Writes a finite float: as an integer when it is one (below 2^53), else in the shortest form
/// that reads back to the same `f64`.
pub(crate) fn put_f64(buf: &mut impl BufMut, v: f64) {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        // Exact: integral and below 2^53.
        put_i64(buf, v as i64);
    } else if v.is_finite() {
        // serde_json writes floats with ryu; writing to a `BufMut` cannot fail.
        let _ = serde_json::to_writer(buf.writer(), &v);
    } else {
        buf.put_slice(b"null");
    }
}

/// Writes an id verbatim.
pub(crate) fn put_id(buf: &mut impl BufMut, id: &Id) {
    match id {
        Id::Null => buf.put_slice(b"null"),
        Id::Number(n) => buf.put_slice(n.as_str().as_bytes()),
        Id::String(s) => put_str(buf, s),
    }
}

/// Writes `{"id":<id>,"method":"<method>","params":[`.
pub(crate) fn put_request_head(buf: &mut impl BufMut, id: &Id, method: &str) {
    buf.put_slice(b"{\"id\":");
    put_id(buf, id);
    buf.put_slice(b",\"method\":");
    put_str(buf, method);
    buf.put_slice(b",\"params\":[");
}

/// Writes `]}` and the newline.
pub(crate) fn put_request_tail(buf: &mut impl BufMut) {
    buf.put_slice(b"]}\n");
}

/// Writes `null` or the string.
pub(crate) fn put_opt_str(buf: &mut impl BufMut, s: Option<&Text>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_slice(b"null"),
    }
}

/// Writes the JSON to a `Vec` and wraps it as [`RawJson`] (for typed results).
pub(crate) fn raw_json_with(f: impl FnOnce(&mut Vec<u8>)) -> RawJson {
    let mut v = Vec::with_capacity(64);
    f(&mut v);
    match String::from_utf8(v) {
        Ok(s) => RawJson::trusted(Text::from(s)),
        // Our writers only emit UTF-8.
        Err(_) => RawJson::NULL,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// The top-level object of any line. Members other than these (`jsonrpc`, `worker`...) are
/// ignored. A member that is present but `null` is `Some("null")`, so `"result": null` still
/// marks a response.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(borrow, default)]
    pub(crate) id: Member<'a>,
    #[serde(borrow, default)]
    pub(crate) method: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    pub(crate) params: Member<'a>,
    #[serde(borrow, default)]
    pub(crate) result: Member<'a>,
    #[serde(borrow, default)]
    pub(crate) error: Member<'a>,
}

/// A top-level member: `None` when absent, its raw text (possibly `null`) when present.
#[derive(Default, Clone, Copy)]
pub(crate) struct Member<'a>(pub(crate) Option<&'a str>);

impl<'a> Member<'a> {
    /// The raw text unless absent or `null`.
    pub(crate) fn non_null(self) -> Option<&'a str> {
        self.0.filter(|t| *t != "null")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Member<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|r| Member(Some(r.get())))
    }
}

/// Checks framing-level properties and parses the envelope.
pub(crate) fn parse_envelope(line: &Bytes) -> Result<(&str, Envelope<'_>), ParseError> {
    let s = std::str::from_utf8(line).map_err(|e| ParseError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    if s.as_bytes().contains(&b'\n') {
        return Err(ParseError::MultipleLines);
    }
    if !s.starts_with('{') {
        return Err(ParseError::NotAnObject);
    }
    let env: Envelope<'_> =
        serde_json::from_str(s).map_err(|source| ParseError::Json { source })?;
    Ok((s, env))
}

/// The most positional parameters kept; extra ones are ignored (firmware appends odd things).
pub(crate) const MAX_PARAMS: usize = 10;

/// The elements of a `params` array as borrowed raw values.
#[derive(Default)]
pub(crate) struct Params<'a> {
    items: [Option<&'a str>; MAX_PARAMS],
}

impl<'a> Params<'a> {
    /// Splits `params` (absent and `null` give no parameters).
    pub(crate) fn split(raw: Member<'a>) -> Result<Self, FieldError> {
        let Some(text) = raw.0 else {
            return Ok(Self::default());
        };
        match text.as_bytes().first() {
            Some(b'[') => serde_json::from_str(text).map_err(|_| FieldError::WrongType {
                expected: "an array",
            }),
            Some(b'n') => Ok(Self::default()),
            _ => Err(FieldError::WrongType {
                expected: "an array",
            }),
        }
    }

    /// The raw text of parameter `i`; `None` when absent or `null`.
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        self.items.get(i).copied().flatten()
    }
}

impl<'de> Deserialize<'de> for Params<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Params<'de>, A::Error> {
                let mut p = Params::default();
                let mut i = 0;
                while i < MAX_PARAMS {
                    match seq.next_element::<&'de RawValue>()? {
                        Some(raw) => {
                            let t = raw.get();
                            p.items[i] = if t == "null" { None } else { Some(t) };
                        }
                        None => return Ok(p),
                    }
                    i += 1;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(p)
            }
        }
        d.deserialize_seq(V)
    }
}

/// The members of a JSON object in order, values raw.
pub(crate) struct Members<'a>(pub(crate) Vec<(Cow<'a, str>, &'a str)>);

impl<'a> Members<'a> {
    pub(crate) fn parse(raw: &'a str) -> Result<Self, FieldError> {
        if !raw.starts_with('{') {
            return Err(FieldError::WrongType {
                expected: "an object",
            });
        }
        serde_json::from_str(raw).map_err(|_| FieldError::WrongType {
            expected: "an object",
        })
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = map.next_key::<CowStr<'de>>()? {
                    let raw = map.next_value::<&'de RawValue>()?;
                    v.push((k.0, raw.get()));
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// A string that borrows when it can (`Cow<str>` alone never borrows through serde).
pub(crate) struct CowStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The elements of a JSON array, raw (for lists: merkle branches, extension names).
pub(crate) fn array_items(raw: &str) -> Result<Vec<&str>, FieldError> {
    if !raw.starts_with('[') {
        return Err(FieldError::WrongType {
            expected: "an array",
        });
    }
    let v: Vec<&RawValue> = serde_json::from_str(raw).map_err(|_| FieldError::WrongType {
        expected: "an array",
    })?;
    Ok(v.into_iter().map(RawValue::get).collect())
}

/// `Missing` for an absent field.
pub(crate) fn required(raw: Option<&str>) -> Result<&str, FieldError> {
    raw.ok_or(FieldError::Missing)
}

/// A string; a bare number is taken as its text (some firmware sends numeric job ids).
pub(crate) fn string(raw: &str) -> Result<Cow<'_, str>, FieldError> {
    match raw.as_bytes().first() {
        // Fast path: `raw` is an already-validated JSON string; without a backslash its content
        // is exactly the text between the quotes.
        Some(b'"') if raw.len() >= 2 && raw.ends_with('"') && !raw.as_bytes().contains(&b'\\') => {
            Ok(Cow::Borrowed(&raw[1..raw.len() - 1]))
        }
        Some(b'"') => serde_json::from_str::<CowStr<'_>>(raw)
            .map(|c| c.0)
            .map_err(|_| FieldError::WrongType {
                expected: "a string",
            }),
        Some(b'-' | b'0'..=b'9') => Ok(Cow::Borrowed(raw)),
        _ => Err(FieldError::WrongType {
            expected: "a string",
        }),
    }
}

/// A string field as [`Text`] sliced from `line`.
pub(crate) fn text(line: &Bytes, raw: &str) -> Result<Text, FieldError> {
    string(raw).map(|s| Text::from_cow_in(line, s))
}

/// A string field that must be a JSON string (for hex fields): the content, escapes decoded.
fn hex_str(raw: &str) -> Result<Cow<'_, str>, FieldError> {
    if !raw.starts_with('"') {
        return Err(FieldError::WrongType {
            expected: "a hex string",
        });
    }
    string(raw)
}

/// Hex digit values; 0xff for anything else.
const NIBBLE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn nibble(c: u8) -> Result<u8, FieldError> {
    match NIBBLE[usize::from(c)] {
        0xff => Err(FieldError::InvalidHex),
        n => Ok(n),
    }
}

/// Decodes hex digits into `out`, whose length must be half the digit count.
fn decode_hex_into(digits: &[u8], out: &mut [u8]) -> Result<(), FieldError> {
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0xf);
    }
    // Any invalid digit sets the high bits (0xff); valid ones never exceed 0x0f.
    if bad > 0xf {
        return Err(FieldError::InvalidHex);
    }
    Ok(())
}

/// Exactly 8 hex digits (either case) as a big-endian `u32`: ntime and nonce in `mining.submit`.
pub(crate) fn hex_u32_exact(raw: &str) -> Result<u32, FieldError> {
    let s = hex_str(raw)?;
    let d = s.as_bytes();
    if d.len() != 8 {
        return Err(FieldError::HexLength {
            expected: 8,
            actual: d.len(),
        });
    }
    let mut b = [0u8; 4];
    decode_hex_into(d, &mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// 1 or more hex digits (either case), leading zeros allowed and optional, value within 32 bits:
/// version bits, masks, notify's version/nbits/ntime. A JSON number is read as the decimal value
/// (seen from a few pools for masks).
pub(crate) fn hex_u32_lenient(raw: &str) -> Result<u32, FieldError> {
    if !raw.starts_with('"') {
        return match raw.as_bytes().first() {
            Some(b'0'..=b'9') => {
                uint(raw).and_then(|v| u32::try_from(v).map_err(|_| FieldError::OutOfRange))
            }
            _ => Err(FieldError::WrongType {
                expected: "a hex string",
            }),
        };
    }
    let s = hex_str(raw)?;
    let d = s.as_bytes();
    if d.is_empty() {
        return Err(FieldError::HexLength {
            expected: 8,
            actual: 0,
        });
    }
    let mut v: u32 = 0;
    for &c in d {
        let n = nibble(c)?;
        if v >> 28 != 0 {
            return Err(FieldError::OutOfRange);
        }
        v = (v << 4) | u32::from(n);
    }
    Ok(v)
}

/// Hex digits (either case, even count) decoded into `out`; returns the byte count.
pub(crate) fn hex_into(raw: &str, out: &mut [u8]) -> Result<usize, FieldError> {
    let s = hex_str(raw)?;
    let d = s.as_bytes();
    if d.len() % 2 != 0 {
        return Err(FieldError::HexLength {
            expected: d.len() + 1,
            actual: d.len(),
        });
    }
    let n = d.len() / 2;
    if n > out.len() {
        return Err(FieldError::TooLong {
            len: n,
            max: out.len(),
        });
    }
    decode_hex_into(d, &mut out[..n])?;
    Ok(n)
}

/// Hex digits (either case, even count) as bytes; at most `max` bytes.
pub(crate) fn hex_bytes(raw: &str, max: usize) -> Result<Bytes, FieldError> {
    let s = hex_str(raw)?;
    let d = s.as_bytes();
    if d.len() % 2 != 0 {
        return Err(FieldError::HexLength {
            expected: d.len() + 1,
            actual: d.len(),
        });
    }
    if d.len() / 2 > max {
        return Err(FieldError::TooLong {
            len: d.len() / 2,
            max,
        });
    }
    let mut v = vec![0u8; d.len() / 2];
    decode_hex_into(d, &mut v)?;
    Ok(Bytes::from(v))
}

/// Exactly 64 hex digits as 32 bytes, in wire order.
pub(crate) fn hex_32(raw: &str) -> Result<[u8; 32], FieldError> {
    let s = hex_str(raw)?;
    let d = s.as_bytes();
    if d.len() != 64 {
        return Err(FieldError::HexLength {
            expected: 64,
            actual: d.len(),
        });
    }
    let mut out = [0u8; 32];
    decode_hex_into(d, &mut out)?;
    Ok(out)
}

/// The number text of a field that may be a number or a string holding one.
fn number_text(raw: &str) -> Result<Cow<'_, str>, FieldError> {
    match raw.as_bytes().first() {
        Some(b'"') => string(raw).map(|s| match s {
            Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
            Cow::Owned(o) => Cow::Owned(o.trim().to_owned()),
        }),
        Some(b'-' | b'0'..=b'9') => Ok(Cow::Borrowed(raw)),
        _ => Err(FieldError::WrongType {
            expected: "a number",
        }),
    }
}

/// A non-negative integer, given as a number or a numeric string; `4.0` is accepted as 4.
pub(crate) fn uint(raw: &str) -> Result<u64, FieldError> {
    let t = number_text(raw)?;
    if let Ok(v) = t.parse::<u64>() {
        return Ok(v);
    }
    match t.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) => Ok(f as u64),
        Ok(_) => Err(FieldError::OutOfRange),
        Err(_) => Err(FieldError::WrongType {
            expected: "a number",
        }),
    }
}

/// A signed integer (error codes), given as a number or a numeric string.
pub(crate) fn int(raw: &str) -> Result<i64, FieldError> {
    let t = number_text(raw)?;
    if let Ok(v) = t.parse::<i64>() {
        return Ok(v);
    }
    match t.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && (-9.2e18..9.2e18).contains(&f) => Ok(f as i64),
        Ok(_) => Err(FieldError::OutOfRange),
        Err(_) => Err(FieldError::WrongType {
            expected: "a number",
        }),
    }
}

/// A float, given as a number or a numeric string.
pub(crate) fn float(raw: &str) -> Result<f64, FieldError> {
    let t = number_text(raw)?;
    t.parse::<f64>().map_err(|_| FieldError::WrongType {
        expected: "a number",
    })
}

/// A boolean; the strings `"true"`/`"false"` and the numbers 0/1 are accepted too.
pub(crate) fn boolean(raw: &str) -> Result<bool, FieldError> {
    match raw {
        "true" | "\"true\"" | "1" => Ok(true),
        "false" | "\"false\"" | "0" => Ok(false),
        _ => Err(FieldError::WrongType {
            expected: "a boolean",
        }),
    }
}

/// Raw text kept as [`RawJson`] (a slice of the line).
pub(crate) fn raw_json(line: &Bytes, raw: &str) -> RawJson {
    RawJson::trusted(Text::from_str_in(line, raw))
}

/// What a line holds once its envelope is read: a request/notification (its method parsed by
/// the caller's `parse_method`) or a response. Shared by client and server parsing.
pub(crate) enum Line<M> {
    /// A request or notification.
    Request(crate::client::Request<M>),
    /// A response to a request.
    Response(crate::server::Response),
}

/// Parse one line's envelope, its id, and either its method (with `parse_method`) or its
/// response parts.
pub(crate) fn parse_line<M>(
    line: &Bytes,
    parse_method: impl FnOnce(&Bytes, &crate::text::Id, &str, Member<'_>) -> Result<M, ParseError>,
) -> Result<Line<M>, ParseError> {
    let (_, env) = parse_envelope(line)?;
    let id = match env.id.0 {
        Some(raw) => crate::text::Id::from_raw(line, raw)?,
        None => crate::text::Id::Null,
    };
    match env.method {
        Some(method) => {
            let method = parse_method(line, &id, &method.0, env.params)?;
            Ok(Line::Request(crate::client::Request { id, method }))
        }
        None if env.result.0.is_some() || env.error.0.is_some() => {
            crate::server::Response::from_parts(line, id, env.result, env.error).map(Line::Response)
        }
        None => Err(ParseError::NotAMessage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_escape_like_serde_json() {
        for s in ["", "a", "a\"b\\c\n\r\t\u{1}\u{1f}é😀", "\u{7f}"] {
            assert_eq!(
                enc(|b| put_str(b, s)),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(enc(|b| put_u64(b, 0)), "0");
        assert_eq!(enc(|b| put_u64(b, u64::MAX)), u64::MAX.to_string());
        assert_eq!(enc(|b| put_i64(b, i64::MIN)), i64::MIN.to_string());
        assert_eq!(enc(|b| put_f64(b, 1024.0)), "1024");
        assert_eq!(enc(|b| put_f64(b, 0.5)), "0.5");
        assert_eq!(enc(|b| put_f64(b, 1e300)).parse::<f64>().unwrap(), 1e300);
        assert_eq!(enc(|b| put_f64(b, 5e-324)).parse::<f64>().unwrap(), 5e-324);
        assert_eq!(enc(|b| put_hex_u32(b, 0x1fffe000)), "\"1fffe000\"");
        assert_eq!(
            enc(|b| put_hex(b, &[0xab; 70])),
            format!("\"{}\"", "ab".repeat(70))
        );
    }

    #[test]
    fn hex_parsers() {
        assert_eq!(hex_u32_exact("\"DEADbeef\""), Ok(0xdeadbeef));
        assert_eq!(
            hex_u32_exact("\"beef\""),
            Err(FieldError::HexLength {
                expected: 8,
                actual: 4
            })
        );
        assert_eq!(hex_u32_exact("\"deadbeeg\""), Err(FieldError::InvalidHex));
        assert_eq!(hex_u32_lenient("\"2000\""), Ok(0x2000));
        assert_eq!(hex_u32_lenient("\"000000001fffe000\""), Ok(0x1fffe000));
        assert_eq!(
            hex_u32_lenient("\"100000000\""),
            Err(FieldError::OutOfRange)
        );
        assert_eq!(uint("\"42\""), Ok(42));
        assert_eq!(uint("4.0"), Ok(4));
        assert_eq!(uint("-1"), Err(FieldError::OutOfRange));
        assert_eq!(uint("1e400"), Err(FieldError::OutOfRange));
        assert_eq!(int("-32601"), Ok(-32601));
        assert!(float("\"abc\"").is_err());
    }
}
