//! Messages a miner (client) sends: requests, and the rare response to a server request.

use bytes::{BufMut, Bytes};

use crate::error::{FieldError, ParseError};
use crate::json::{self, Members, Params};
use crate::methods;
use crate::server::Response;
use crate::text::{Id, RawJson, Text};
use crate::types::{Difficulty, Extranonce2, MAX_EXTRANONCE2_LEN};

/// A request (or a notification, when `id` is `null`) with its method and parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Request<M> {
    /// The id, echoed verbatim in the response.
    pub id: Id,
    /// The method and its typed parameters.
    pub method: M,
}

/// `mining.subscribe`: `[user_agent?, session_id?, ...]`.
///
/// Firmware sends `[]`, `["bmminer/2.0.0"]`, `["cgminer/4.11.1", null]`, or a previous
/// subscription id / extranonce1 to resume (`["NiceHash/1.0.0", "08000002"]`); the
/// `host`/`port` some clients append are ignored.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Subscribe {
    /// The miner's user agent (`"bmminer/2.0.0"`, `"Antminer S19j Pro/..."`).
    pub user_agent: Option<Text>,
    /// A session id or extranonce1 (hex) the miner asks to resume.
    pub session_id: Option<Text>,
}

/// `mining.authorize`: `[user, password?]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Authorize {
    /// Account or `account.worker`.
    pub user: Text,
    /// Often `"x"`, sometimes absent.
    pub password: Option<Text>,
}

/// `mining.configure` (BIP310): `[[extension, ...], {"extension.param": value, ...}]`.
///
/// Parameters of the extensions this crate knows are typed; everything else (unknown extensions,
/// unknown parameters) is kept raw and re-encoded in order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Configure {
    /// The extension names in the order sent (known and unknown).
    pub extensions: Vec<Text>,
    /// `version-rolling.mask` (hex string on the wire; the miner's capability).
    pub version_rolling_mask: Option<u32>,
    /// `version-rolling.min-bit-count`.
    pub version_rolling_min_bit_count: Option<u32>,
    /// `minimum-difficulty.value`.
    pub minimum_difficulty: Option<Difficulty>,
    /// Other parameters, raw, in order.
    pub other_params: Vec<(Text, RawJson)>,
}

/// BIP310 extension names.
pub mod extensions {
    /// `version-rolling` (BIP310/BIP320 version rolling, "ASICBoost").
    pub const VERSION_ROLLING: &str = "version-rolling";
    /// `minimum-difficulty`.
    pub const MINIMUM_DIFFICULTY: &str = "minimum-difficulty";
    /// `subscribe-extranonce` (the `mining.extranonce.subscribe` of BIP310).
    pub const SUBSCRIBE_EXTRANONCE: &str = "subscribe-extranonce";
    /// `info` (BIP310 miner information; parameters kept raw).
    pub const INFO: &str = "info";
}

const VR_MASK: &str = "version-rolling.mask";
const VR_MIN_BITS: &str = "version-rolling.min-bit-count";
const MIN_DIFF: &str = "minimum-difficulty.value";

impl Configure {
    /// Whether the miner asks for `extension`.
    pub fn requests(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }

    /// `(mask, min_bit_count)` when `version-rolling` is requested; BIP310 defaults fill absent
    /// parameters (mask `0xffffffff`, min-bit-count 0).
    pub fn version_rolling(&self) -> Option<(u32, u32)> {
        self.requests(extensions::VERSION_ROLLING).then(|| {
            (
                self.version_rolling_mask
                    .unwrap_or(crate::VERSION_MASK_UNSPECIFIED),
                self.version_rolling_min_bit_count.unwrap_or(0),
            )
        })
    }
}

/// `mining.submit`: `[worker_name, job_id, extranonce2, ntime, nonce, version_bits?]`.
///
/// Parsing it allocates nothing: strings are slices of the line, extranonce2 is inline.
/// `ntime` and `nonce` must be exactly 8 hex digits; `version_bits` may drop leading zeros.
#[derive(Clone, Debug, PartialEq)]
pub struct Submit {
    /// The worker name as authorized.
    pub worker_name: Text,
    /// The job id from `mining.notify`.
    pub job_id: Text,
    /// The miner's extranonce2.
    pub extranonce2: Extranonce2,
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
    /// Rolled version bits (BIP310 version rolling), when sent.
    pub version_bits: Option<u32>,
}

/// Every client request, by method.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClientMethod {
    /// `mining.subscribe`.
    Subscribe(Subscribe),
    /// `mining.authorize`.
    Authorize(Authorize),
    /// `mining.configure`.
    Configure(Configure),
    /// `mining.extranonce.subscribe` (NiceHash extension; no parameters).
    ExtranonceSubscribe,
    /// `mining.suggest_difficulty`: `[difficulty]`.
    SuggestDifficulty(Difficulty),
    /// `mining.submit`.
    Submit(Submit),
    /// Any other method (`mining.multi_version`, `mining.get_transactions`...), so a server can
    /// answer it with a JSON-RPC error instead of dropping the miner.
    Unknown {
        /// The method name.
        method: Text,
        /// The params, raw (`[]` when absent).
        params: RawJson,
    },
}

/// A line a client sends.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// A request.
    Request(Request<ClientMethod>),
    /// A response to a server request (e.g. `client.get_version`).
    Response(Response),
}

fn field_err<'a>(
    id: &'a Id,
    method: &'static str,
    field: &'static str,
) -> impl FnOnce(FieldError) -> ParseError + 'a {
    move |kind| ParseError::InvalidParams {
        id: id.clone(),
        method,
        field,
        kind,
    }
}

impl ClientMessage {
    /// Parses one line (trailing `\r`/whitespace allowed). Strings in the result are slices of
    /// `line`: pass the `BytesMut` from [`LineDecoder`](crate::LineDecoder) (it freezes without
    /// copying).
    pub fn parse(line: impl Into<Bytes>) -> Result<Self, ParseError> {
        let line = line.into();
        Ok(match json::parse_line(&line, ClientMethod::parse)? {
            json::Line::Request(r) => ClientMessage::Request(r),
            json::Line::Response(r) => ClientMessage::Response(r),
        })
    }

    /// Parses a line from a plain slice (copies it once).
    pub fn parse_slice(line: &[u8]) -> Result<Self, ParseError> {
        Self::parse(Bytes::copy_from_slice(line))
    }

    /// Writes the message as one JSON line ending in `\n`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            ClientMessage::Request(r) => r.method.encode(&r.id, buf),
            ClientMessage::Response(r) => r.encode(buf),
        }
    }
}

impl Request<ClientMethod> {
    /// Writes the request as one JSON line ending in `\n`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.method.encode(&self.id, buf);
    }
}

impl ClientMethod {
    /// The method name on the wire.
    pub fn name(&self) -> &str {
        match self {
            ClientMethod::Subscribe(_) => methods::SUBSCRIBE,
            ClientMethod::Authorize(_) => methods::AUTHORIZE,
            ClientMethod::Configure(_) => methods::CONFIGURE,
            ClientMethod::ExtranonceSubscribe => methods::EXTRANONCE_SUBSCRIBE,
            ClientMethod::SuggestDifficulty(_) => methods::SUGGEST_DIFFICULTY,
            ClientMethod::Submit(_) => methods::SUBMIT,
            ClientMethod::Unknown { method, .. } => method,
        }
    }

    /// Writes `{"id":..,"method":..,"params":[..]}\n`.
    pub fn encode(&self, id: &Id, buf: &mut impl BufMut) {
        match self {
            ClientMethod::Submit(s) => s.encode(id, buf),
            ClientMethod::Unknown { method, params } => {
                buf.put_slice(b"{\"id\":");
                json::put_id(buf, id);
                buf.put_slice(b",\"method\":");
                json::put_str(buf, method);
                buf.put_slice(b",\"params\":");
                buf.put_slice(params.as_str().as_bytes());
                buf.put_slice(b"}\n");
            }
            _ => {
                json::put_request_head(buf, id, self.name());
                match self {
                    ClientMethod::Subscribe(s) => match (&s.user_agent, &s.session_id) {
                        (None, None) => {}
                        (ua, None) => json::put_opt_str(buf, ua.as_ref()),
                        (ua, Some(sid)) => {
                            json::put_opt_str(buf, ua.as_ref());
                            buf.put_u8(b',');
                            json::put_str(buf, sid);
                        }
                    },
                    ClientMethod::Authorize(a) => {
                        json::put_str(buf, &a.user);
                        if let Some(p) = &a.password {
                            buf.put_u8(b',');
                            json::put_str(buf, p);
                        }
                    }
                    ClientMethod::Configure(c) => c.put_params(buf),
                    ClientMethod::SuggestDifficulty(d) => json::put_f64(buf, d.get()),
                    _ => {}
                }
                json::put_request_tail(buf);
            }
        }
    }

    fn parse(
        line: &Bytes,
        id: &Id,
        method: &str,
        params: json::Member<'_>,
    ) -> Result<Self, ParseError> {
        let name: &'static str = match method {
            methods::SUBMIT => methods::SUBMIT,
            methods::SUBSCRIBE => methods::SUBSCRIBE,
            methods::AUTHORIZE => methods::AUTHORIZE,
            methods::CONFIGURE => methods::CONFIGURE,
            methods::EXTRANONCE_SUBSCRIBE => return Ok(ClientMethod::ExtranonceSubscribe),
            methods::SUGGEST_DIFFICULTY => methods::SUGGEST_DIFFICULTY,
            _ => {
                return Ok(ClientMethod::Unknown {
                    method: Text::from_str_in(line, method),
                    params: params
                        .0
                        .map_or(RawJson::EMPTY_ARRAY, |p| json::raw_json(line, p)),
                })
            }
        };
        let p = Params::split(params).map_err(field_err(id, name, "params"))?;
        let e = |field| field_err(id, name, field);
        let opt_text = |i: usize, field| {
            p.get(i)
                .map(|raw| json::text(line, raw))
                .transpose()
                .map_err(e(field))
        };
        Ok(match name {
            methods::SUBMIT => {
                let worker_name = json::required(p.get(0))
                    .and_then(|raw| json::text(line, raw))
                    .map_err(e("worker_name"))?;
                let job_id = json::required(p.get(1))
                    .and_then(|raw| json::text(line, raw))
                    .map_err(e("job_id"))?;
                let mut en2 = [0u8; MAX_EXTRANONCE2_LEN];
                let en2_len = json::required(p.get(2))
                    .and_then(|raw| json::hex_into(raw, &mut en2))
                    .map_err(e("extranonce2"))?;
                ClientMethod::Submit(Submit {
                    worker_name,
                    job_id,
                    extranonce2: Extranonce2::from_parts(en2, en2_len),
                    ntime: json::required(p.get(3))
                        .and_then(json::hex_u32_exact)
                        .map_err(e("ntime"))?,
                    nonce: json::required(p.get(4))
                        .and_then(json::hex_u32_exact)
                        .map_err(e("nonce"))?,
                    version_bits: p
                        .get(5)
                        .map(json::hex_u32_lenient)
                        .transpose()
                        .map_err(e("version_bits"))?,
                })
            }
            methods::SUBSCRIBE => ClientMethod::Subscribe(Subscribe {
                user_agent: opt_text(0, "user_agent")?,
                session_id: opt_text(1, "session_id")?,
            }),
            methods::AUTHORIZE => ClientMethod::Authorize(Authorize {
                user: json::required(p.get(0))
                    .and_then(|raw| json::text(line, raw))
                    .map_err(e("user"))?,
                password: opt_text(1, "password")?,
            }),
            methods::SUGGEST_DIFFICULTY => ClientMethod::SuggestDifficulty(
                json::required(p.get(0))
                    .and_then(difficulty)
                    .map_err(e("difficulty"))?,
            ),
            _ => ClientMethod::Configure(Configure::parse(line, &p).map_err(|(f, k)| e(f)(k))?),
        })
    }
}

/// A difficulty given as a number or numeric string.
pub(crate) fn difficulty(raw: &str) -> Result<Difficulty, FieldError> {
    json::float(raw).and_then(|f| Difficulty::new(f).ok_or(FieldError::InvalidDifficulty))
}

impl Configure {
    fn parse(line: &Bytes, p: &Params<'_>) -> Result<Self, (&'static str, FieldError)> {
        let mut c = Configure::default();
        if let Some(raw) = p.get(0) {
            // A bare string is taken as a one-element list.
            let names = if raw.starts_with('"') {
                vec![raw]
            } else {
                json::array_items(raw).map_err(|k| ("extensions", k))?
            };
            for n in names {
                c.extensions
                    .push(json::text(line, n).map_err(|k| ("extensions", k))?);
            }
        }
        if let Some(raw) = p.get(1) {
            for (key, value) in Members::parse(raw).map_err(|k| ("extension_params", k))?.0 {
                match &*key {
                    VR_MASK => {
                        c.version_rolling_mask =
                            Some(json::hex_u32_lenient(value).map_err(|k| (VR_MASK, k))?)
                    }
                    VR_MIN_BITS => {
                        c.version_rolling_min_bit_count = Some(
                            json::uint(value)
                                .and_then(|v| u32::try_from(v).map_err(|_| FieldError::OutOfRange))
                                .map_err(|k| (VR_MIN_BITS, k))?,
                        )
                    }
                    MIN_DIFF => {
                        c.minimum_difficulty = Some(difficulty(value).map_err(|k| (MIN_DIFF, k))?)
                    }
                    _ => c
                        .other_params
                        .push((Text::from_cow_in(line, key), json::raw_json(line, value))),
                }
            }
        }
        Ok(c)
    }

    fn put_params(&self, buf: &mut impl BufMut) {
        buf.put_u8(b'[');
        for (i, e) in self.extensions.iter().enumerate() {
            if i > 0 {
                buf.put_u8(b',');
            }
            json::put_str(buf, e);
        }
        buf.put_slice(b"],{");
        let mut first = true;
        let mut sep = |buf: &mut dyn BufMut| {
            if !std::mem::take(&mut first) {
                buf.put_u8(b',');
            }
        };
        if let Some(m) = self.version_rolling_mask {
            sep(buf);
            buf.put_slice(b"\"version-rolling.mask\":");
            json::put_hex_u32(buf, m);
        }
        if let Some(n) = self.version_rolling_min_bit_count {
            sep(buf);
            buf.put_slice(b"\"version-rolling.min-bit-count\":");
            json::put_u64(buf, u64::from(n));
        }
        if let Some(d) = self.minimum_difficulty {
            sep(buf);
            buf.put_slice(b"\"minimum-difficulty.value\":");
            json::put_f64(buf, d.get());
        }
        for (k, v) in &self.other_params {
            sep(buf);
            json::put_str(buf, k);
            buf.put_u8(b':');
            buf.put_slice(v.as_str().as_bytes());
        }
        buf.put_u8(b'}');
    }
}

impl Submit {
    /// Writes `{"id":..,"method":"mining.submit","params":[...]}\n` (the miner's hot path; no
    /// allocation).
    pub fn encode(&self, id: &Id, buf: &mut impl BufMut) {
        json::put_request_head(buf, id, methods::SUBMIT);
        json::put_str(buf, &self.worker_name);
        buf.put_u8(b',');
        json::put_str(buf, &self.job_id);
        buf.put_u8(b',');
        json::put_hex(buf, self.extranonce2.as_bytes());
        buf.put_u8(b',');
        json::put_hex_u32(buf, self.ntime);
        buf.put_u8(b',');
        json::put_hex_u32(buf, self.nonce);
        if let Some(v) = self.version_bits {
            buf.put_u8(b',');
            json::put_hex_u32(buf, v);
        }
        json::put_request_tail(buf);
    }
}
