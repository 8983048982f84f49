//! Messages a pool or proxy (server) sends: responses with their typed results, and
//! notifications.

use bytes::{BufMut, Bytes};

use crate::client::{difficulty, Request};
use crate::error::{FieldError, ParseError};
use crate::json::{self, Member, Members, Params};
use crate::methods;
use crate::prevhash::swap_prevhash_words;
use crate::quirks::MAX_EXTRANONCE1_PARSE;
use crate::text::{Id, RawJson, Text};
use crate::types::Difficulty;

/// The stratum error triple `[code, "message", data]` (the object form
/// `{"code":..,"message":..}` and a bare string are accepted when parsing).
#[derive(Clone, Debug, PartialEq)]
pub struct StratumError {
    /// The code: 20..=25 for stratum's own, -32xxx for JSON-RPC's.
    pub code: i64,
    /// A human-readable message.
    pub message: Text,
    /// The third element (a traceback in the original pool software; usually `null`).
    pub data: Option<RawJson>,
}

impl StratumError {
    /// 20: other/unknown.
    pub const OTHER: i64 = 20;
    /// 21: job not found (stale).
    pub const JOB_NOT_FOUND: i64 = 21;
    /// 22: duplicate share.
    pub const DUPLICATE_SHARE: i64 = 22;
    /// 23: low difficulty share.
    pub const LOW_DIFFICULTY: i64 = 23;
    /// 24: unauthorized worker.
    pub const UNAUTHORIZED: i64 = 24;
    /// 25: not subscribed.
    pub const NOT_SUBSCRIBED: i64 = 25;
    /// JSON-RPC: the line could not be parsed.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON-RPC: unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// JSON-RPC: malformed parameters.
    pub const INVALID_PARAMS: i64 = -32602;

    /// An error with `data` `null`.
    pub fn new(code: i64, message: impl Into<Text>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The answer to a method this side does not implement.
    pub fn method_not_found() -> Self {
        Self::new(
            Self::METHOD_NOT_FOUND,
            Text::from_static("Method not found"),
        )
    }

    fn put(&self, buf: &mut impl BufMut) {
        buf.put_u8(b'[');
        json::put_i64(buf, self.code);
        buf.put_u8(b',');
        json::put_str(buf, &self.message);
        buf.put_u8(b',');
        match &self.data {
            Some(d) => buf.put_slice(d.as_str().as_bytes()),
            None => buf.put_slice(b"null"),
        }
        buf.put_u8(b']');
    }

    fn parse(line: &Bytes, raw: &str) -> Result<Self, FieldError> {
        let data = |raw: Option<&str>| raw.map(|r| json::raw_json(line, r));
        match raw.as_bytes().first() {
            Some(b'[') => {
                let p: Params<'_> =
                    serde_json::from_str(raw).map_err(|_| FieldError::WrongType {
                        expected: "an error array",
                    })?;
                Ok(Self {
                    code: json::required(p.get(0)).and_then(json::int)?,
                    message: p
                        .get(1)
                        .map(|r| json::text(line, r))
                        .transpose()?
                        .unwrap_or_default(),
                    data: data(p.get(2)),
                })
            }
            Some(b'{') => {
                let mut e = Self::new(Self::OTHER, Text::default());
                for (k, v) in Members::parse(raw)?.0 {
                    match &*k {
                        "code" => e.code = json::int(v)?,
                        "message" => e.message = json::text(line, v)?,
                        "data" if v != "null" => e.data = data(Some(v)),
                        _ => {}
                    }
                }
                Ok(e)
            }
            Some(b'"') => Ok(Self::new(Self::OTHER, json::text(line, raw)?)),
            _ => Err(FieldError::WrongType {
                expected: "an error array",
            }),
        }
    }
}

/// A response: `{"id":..,"result":..,"error":..}`.
///
/// `result` stays raw because its type depends on the request it answers; read it with
/// [`Response::result_bool`], [`SubscribeResult::from_json`] or [`ConfigureResult::from_json`].
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The id of the request answered.
    pub id: Id,
    /// The result (`null` when absent or on error).
    pub result: RawJson,
    /// The error, when the request failed.
    pub error: Option<StratumError>,
}

impl Response {
    /// A successful response.
    pub fn ok(id: Id, result: RawJson) -> Self {
        Self {
            id,
            result,
            error: None,
        }
    }

    /// `{"id":..,"result":true|false,"error":null}` (no allocation: share and authorize answers).
    pub fn bool(id: Id, value: bool) -> Self {
        Self::ok(id, if value { RawJson::TRUE } else { RawJson::FALSE })
    }

    /// A failed response (`result` `null`).
    pub fn error(id: Id, error: StratumError) -> Self {
        Self {
            id,
            result: RawJson::NULL,
            error: Some(error),
        }
    }

    /// The response to `mining.subscribe`.
    pub fn subscribe(id: Id, result: &SubscribeResult) -> Self {
        Self::ok(id, result.to_json())
    }

    /// The response to `mining.configure`.
    pub fn configure(id: Id, result: &ConfigureResult) -> Self {
        Self::ok(id, result.to_json())
    }

    /// Whether there is no error and the result is not `false`.
    pub fn is_ok(&self) -> bool {
        self.error.is_none() && self.result != RawJson::FALSE
    }

    /// The result as a boolean (`true`/`false`; `"true"`/`"false"` and 1/0 tolerated).
    pub fn result_bool(&self) -> Option<bool> {
        json::boolean(self.result.as_str()).ok()
    }

    /// Writes the response as one JSON line ending in `\n`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_slice(b"{\"id\":");
        json::put_id(buf, &self.id);
        buf.put_slice(b",\"result\":");
        buf.put_slice(self.result.as_str().as_bytes());
        buf.put_slice(b",\"error\":");
        match &self.error {
            Some(e) => e.put(buf),
            None => buf.put_slice(b"null"),
        }
        buf.put_slice(b"}\n");
    }

    pub(crate) fn from_parts(
        line: &Bytes,
        id: Id,
        result: Member<'_>,
        error: Member<'_>,
    ) -> Result<Self, ParseError> {
        let error =
            match error.non_null() {
                Some(raw) => Some(StratumError::parse(line, raw).map_err(|kind| {
                    ParseError::InvalidParams {
                        id: id.clone(),
                        method: "response",
                        field: "error",
                        kind,
                    }
                })?),
                None => None,
            };
        Ok(Self {
            result: result.0.map_or(RawJson::NULL, |r| json::raw_json(line, r)),
            id,
            error,
        })
    }
}

/// The result of `mining.subscribe`:
/// `[[["mining.set_difficulty", sub_id], ["mining.notify", sub_id]], extranonce1, extranonce2_size]`.
///
/// Parsing also accepts a single un-nested pair (`["mining.notify", "ae68..."]`) as some pools
/// send it.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscribeResult {
    /// `(method, subscription id)` pairs; informational (cgminer stores the notify id as the
    /// session id it later offers to resume).
    pub subscriptions: Vec<(Text, Text)>,
    /// The extranonce1 the server assigned.
    pub extranonce1: Bytes,
    /// How many extranonce2 bytes the miner rolls (keep at or below
    /// [`DEFAULT_MAX_EXTRANONCE2_SIZE`](crate::DEFAULT_MAX_EXTRANONCE2_SIZE)).
    pub extranonce2_size: u32,
}

impl SubscribeResult {
    /// The usual result: both subscriptions under `subscription_id`.
    pub fn new(subscription_id: Text, extranonce1: Bytes, extranonce2_size: u32) -> Self {
        Self {
            subscriptions: vec![
                (
                    Text::from_static(methods::SET_DIFFICULTY),
                    subscription_id.clone(),
                ),
                (Text::from_static(methods::NOTIFY), subscription_id),
            ],
            extranonce1,
            extranonce2_size,
        }
    }

    /// Serializes the result.
    pub fn to_json(&self) -> RawJson {
        json::raw_json_with(|b| {
            b.put_slice(b"[[");
            for (i, (m, s)) in self.subscriptions.iter().enumerate() {
                if i > 0 {
                    b.put_u8(b',');
                }
                b.put_u8(b'[');
                json::put_str(b, m);
                b.put_u8(b',');
                json::put_str(b, s);
                b.put_u8(b']');
            }
            b.put_slice(b"],");
            json::put_hex(b, &self.extranonce1);
            b.put_u8(b',');
            json::put_u64(b, u64::from(self.extranonce2_size));
            b.put_u8(b']');
        })
    }

    /// Parses the `result` of a subscribe response.
    pub fn from_json(result: &RawJson) -> Result<Self, ParseError> {
        let line = result.bytes();
        let e = |field| {
            move |kind| ParseError::InvalidParams {
                id: Id::Null,
                method: "mining.subscribe result",
                field,
                kind,
            }
        };
        let p = Params::split(Member(Some(result.as_str()))).map_err(e("result"))?;
        let mut subscriptions = Vec::new();
        if let Some(raw) = p.get(0) {
            let items = json::array_items(raw).map_err(e("subscriptions"))?;
            let pairs = if items.first().is_some_and(|f| f.starts_with('"')) {
                vec![raw] // one flat pair
            } else {
                items
            };
            for pair in pairs {
                let pp = Params::split(Member(Some(pair))).map_err(e("subscriptions"))?;
                let text = |i| {
                    json::required(pp.get(i))
                        .and_then(|r| json::text(line, r))
                        .map_err(e("subscriptions"))
                };
                subscriptions.push((text(0)?, text(1)?));
            }
        }
        Ok(Self {
            subscriptions,
            extranonce1: json::required(p.get(1))
                .and_then(|r| json::hex_bytes(r, MAX_EXTRANONCE1_PARSE))
                .map_err(e("extranonce1"))?,
            extranonce2_size: json::required(p.get(2))
                .and_then(json::uint)
                .and_then(|v| u32::try_from(v).map_err(|_| FieldError::OutOfRange))
                .map_err(e("extranonce2_size"))?,
        })
    }
}

/// The result of `mining.configure` (BIP310): one member per extension the miner asked for.
///
/// `{"version-rolling": true, "version-rolling.mask": "1fffe000", "minimum-difficulty": true}`.
/// A failed extension may be answered with an error string instead of `false`; it parses as
/// `Some(false)`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConfigureResult {
    /// `version-rolling`: accepted or not.
    pub version_rolling: Option<bool>,
    /// `version-rolling.mask`: the negotiated mask (see
    /// [`negotiate_version_mask`](crate::negotiate_version_mask)).
    pub version_rolling_mask: Option<u32>,
    /// `minimum-difficulty`: accepted or not.
    pub minimum_difficulty: Option<bool>,
    /// `subscribe-extranonce`: accepted or not.
    pub subscribe_extranonce: Option<bool>,
    /// Other members, raw, in order.
    pub other: Vec<(Text, RawJson)>,
}

impl ConfigureResult {
    /// Serializes the result object.
    pub fn to_json(&self) -> RawJson {
        json::raw_json_with(|b| {
            b.put_u8(b'{');
            let mut first = true;
            let mut key = |b: &mut Vec<u8>, k: &str| {
                if !std::mem::take(&mut first) {
                    b.put_u8(b',');
                }
                json::put_str(b, k);
                b.put_u8(b':');
            };
            let bool_text = |v: bool| if v { &b"true"[..] } else { &b"false"[..] };
            if let Some(v) = self.version_rolling {
                key(b, "version-rolling");
                b.put_slice(bool_text(v));
            }
            if let Some(m) = self.version_rolling_mask {
                key(b, "version-rolling.mask");
                json::put_hex_u32(b, m);
            }
            if let Some(v) = self.minimum_difficulty {
                key(b, "minimum-difficulty");
                b.put_slice(bool_text(v));
            }
            if let Some(v) = self.subscribe_extranonce {
                key(b, "subscribe-extranonce");
                b.put_slice(bool_text(v));
            }
            for (k, v) in &self.other {
                key(b, k);
                b.put_slice(v.as_str().as_bytes());
            }
            b.put_u8(b'}');
        })
    }

    /// Parses the `result` of a configure response.
    pub fn from_json(result: &RawJson) -> Result<Self, ParseError> {
        let line = result.bytes();
        let e = |field| {
            move |kind| ParseError::InvalidParams {
                id: Id::Null,
                method: "mining.configure result",
                field,
                kind,
            }
        };
        let flag = |v: &str| {
            if v.starts_with('"') {
                Ok(false)
            } else {
                json::boolean(v)
            }
        };
        let mut r = Self::default();
        for (k, v) in Members::parse(result.as_str()).map_err(e("result"))?.0 {
            match &*k {
                "version-rolling" => {
                    r.version_rolling = Some(flag(v).map_err(e("version-rolling"))?)
                }
                "version-rolling.mask" => {
                    r.version_rolling_mask =
                        Some(json::hex_u32_lenient(v).map_err(e("version-rolling.mask"))?)
                }
                "minimum-difficulty" => {
                    r.minimum_difficulty = Some(flag(v).map_err(e("minimum-difficulty"))?)
                }
                "subscribe-extranonce" => {
                    r.subscribe_extranonce = Some(flag(v).map_err(e("subscribe-extranonce"))?)
                }
                _ => r
                    .other
                    .push((Text::from_cow_in(line, k), json::raw_json(line, v))),
            }
        }
        Ok(r)
    }
}

/// The most merkle branch entries accepted (a block of 2^32 transactions needs 32).
pub const MAX_MERKLE_BRANCH_LEN: usize = 32;

/// The most coinbase bytes (coinb1 or coinb2) accepted; pools paying many outputs in the coinbase
/// send tens of kilobytes.
pub const MAX_COINBASE_PART_LEN: usize = 1 << 20;

/// `mining.notify`:
/// `[job_id, prevhash, coinb1, coinb2, [merkle_branch...], version, nbits, ntime, clean_jobs]`.
///
/// The coinbase is `coinb1 || extranonce1 || extranonce2 || coinb2`; merkle branch hashes are in
/// internal byte order (as hashed, no swap); `version`, `nbits`, `ntime` are 8-digit big-endian
/// hex on the wire. `prev_hash` is held in **header byte order**; on the wire each 4-byte word is
/// byte-swapped (see [`crate::prevhash`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Notify {
    /// The job id, echoed in `mining.submit`.
    pub job_id: Text,
    /// The previous block hash, in block-header byte order.
    pub prev_hash: [u8; 32],
    /// The coinbase before extranonce1.
    pub coinb1: Bytes,
    /// The coinbase after extranonce2.
    pub coinb2: Bytes,
    /// Merkle path from the coinbase to the root, bottom up.
    pub merkle_branch: Vec<[u8; 32]>,
    /// Block version (before rolling).
    pub version: u32,
    /// Compact target of the block.
    pub nbits: u32,
    /// Header time.
    pub ntime: u32,
    /// Whether earlier jobs are void (new block).
    pub clean_jobs: bool,
}

impl Notify {
    /// Writes the notification (`"id":null`) as one JSON line ending in `\n`: the server's hot
    /// path, one pass, no allocation.
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.encode_with_id(&Id::Null, buf);
    }

    fn encode_with_id(&self, id: &Id, buf: &mut impl BufMut) {
        json::put_request_head(buf, id, methods::NOTIFY);
        json::put_str(buf, &self.job_id);
        buf.put_u8(b',');
        json::put_hex(buf, &swap_prevhash_words(self.prev_hash));
        buf.put_u8(b',');
        json::put_hex(buf, &self.coinb1);
        buf.put_u8(b',');
        json::put_hex(buf, &self.coinb2);
        buf.put_slice(b",[");
        for (i, h) in self.merkle_branch.iter().enumerate() {
            if i > 0 {
                buf.put_u8(b',');
            }
            json::put_hex(buf, h);
        }
        buf.put_slice(b"],");
        json::put_hex_u32(buf, self.version);
        buf.put_u8(b',');
        json::put_hex_u32(buf, self.nbits);
        buf.put_u8(b',');
        json::put_hex_u32(buf, self.ntime);
        buf.put_slice(if self.clean_jobs { b",true" } else { b",false" });
        json::put_request_tail(buf);
    }

    fn parse(line: &Bytes, p: &Params<'_>) -> Result<Self, (&'static str, FieldError)> {
        let req = |i: usize, f: &'static str| json::required(p.get(i)).map_err(|k| (f, k));
        let hex32 = |raw, f| json::hex_32(raw).map_err(|k| (f, k));
        let mut merkle_branch = Vec::new();
        let items =
            json::array_items(req(4, "merkle_branch")?).map_err(|k| ("merkle_branch", k))?;
        if items.len() > MAX_MERKLE_BRANCH_LEN {
            return Err((
                "merkle_branch",
                FieldError::TooLong {
                    len: items.len(),
                    max: MAX_MERKLE_BRANCH_LEN,
                },
            ));
        }
        for h in items {
            merkle_branch.push(hex32(h, "merkle_branch")?);
        }
        Ok(Self {
            job_id: json::text(line, req(0, "job_id")?).map_err(|k| ("job_id", k))?,
            prev_hash: swap_prevhash_words(hex32(req(1, "prevhash")?, "prevhash")?),
            coinb1: json::hex_bytes(req(2, "coinb1")?, MAX_COINBASE_PART_LEN)
                .map_err(|k| ("coinb1", k))?,
            coinb2: json::hex_bytes(req(3, "coinb2")?, MAX_COINBASE_PART_LEN)
                .map_err(|k| ("coinb2", k))?,
            merkle_branch,
            version: json::hex_u32_lenient(req(5, "version")?).map_err(|k| ("version", k))?,
            nbits: json::hex_u32_lenient(req(6, "nbits")?).map_err(|k| ("nbits", k))?,
            ntime: json::hex_u32_lenient(req(7, "ntime")?).map_err(|k| ("ntime", k))?,
            clean_jobs: p
                .get(8)
                .map(json::boolean)
                .transpose()
                .map_err(|k| ("clean_jobs", k))?
                .unwrap_or(false),
        })
    }
}

/// `mining.set_extranonce`: `[extranonce1, extranonce2_size]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SetExtranonce {
    /// The new extranonce1.
    pub extranonce1: Bytes,
    /// The new extranonce2 size.
    pub extranonce2_size: u32,
}

/// `client.reconnect`: `[host?, port?, wait_seconds?]`; all optional (empty means "reconnect to
/// the same place"). The port may arrive as a number or a string.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Reconnect {
    /// Host to connect to.
    pub host: Option<Text>,
    /// Port to connect to.
    pub port: Option<u16>,
    /// Seconds to wait before reconnecting.
    pub wait: Option<u32>,
}

/// Every server request or notification, by method.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ServerMethod {
    /// `mining.notify`.
    Notify(Notify),
    /// `mining.set_difficulty`: `[difficulty]`.
    SetDifficulty(Difficulty),
    /// `mining.set_extranonce`.
    SetExtranonce(SetExtranonce),
    /// `mining.set_version_mask`: `[mask]` (hex).
    SetVersionMask(u32),
    /// `client.reconnect`.
    Reconnect(Reconnect),
    /// `client.show_message`: `[message]`.
    ShowMessage(Text),
    /// Any other method (`client.get_version`...); a miner answers requests it does not know
    /// with [`StratumError::method_not_found`] and ignores such notifications.
    Unknown {
        /// The method name.
        method: Text,
        /// The params, raw (`[]` when absent).
        params: RawJson,
    },
}

/// A line a server sends.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// A notification (`id` `null`) or request.
    Request(Request<ServerMethod>),
    /// A response to a client request.
    Response(Response),
}

impl ServerMessage {
    /// Parses one line (trailing `\r`/whitespace allowed).
    pub fn parse(line: impl Into<Bytes>) -> Result<Self, ParseError> {
        let line = line.into();
        Ok(match json::parse_line(&line, ServerMethod::parse)? {
            json::Line::Request(r) => ServerMessage::Request(r),
            json::Line::Response(r) => ServerMessage::Response(r),
        })
    }

    /// Parses a line from a plain slice (copies it once).
    pub fn parse_slice(line: &[u8]) -> Result<Self, ParseError> {
        Self::parse(Bytes::copy_from_slice(line))
    }

    /// Writes the message as one JSON line ending in `\n`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            ServerMessage::Request(r) => r.method.encode(&r.id, buf),
            ServerMessage::Response(r) => r.encode(buf),
        }
    }
}

impl Request<ServerMethod> {
    /// Writes the request or notification as one JSON line ending in `\n`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.method.encode(&self.id, buf);
    }
}

impl ServerMethod {
    /// The method name on the wire.
    pub fn name(&self) -> &str {
        match self {
            ServerMethod::Notify(_) => methods::NOTIFY,
            ServerMethod::SetDifficulty(_) => methods::SET_DIFFICULTY,
            ServerMethod::SetExtranonce(_) => methods::SET_EXTRANONCE,
            ServerMethod::SetVersionMask(_) => methods::SET_VERSION_MASK,
            ServerMethod::Reconnect(_) => methods::RECONNECT,
            ServerMethod::ShowMessage(_) => methods::SHOW_MESSAGE,
            ServerMethod::Unknown { method, .. } => method,
        }
    }

    /// Writes `{"id":..,"method":..,"params":[..]}\n` (use [`Id::Null`] for notifications).
    pub fn encode(&self, id: &Id, buf: &mut impl BufMut) {
        match self {
            ServerMethod::Notify(n) => n.encode_with_id(id, buf),
            ServerMethod::Unknown { method, params } => {
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
                    ServerMethod::SetDifficulty(d) => json::put_f64(buf, d.get()),
                    ServerMethod::SetExtranonce(s) => {
                        json::put_hex(buf, &s.extranonce1);
                        buf.put_u8(b',');
                        json::put_u64(buf, u64::from(s.extranonce2_size));
                    }
                    ServerMethod::SetVersionMask(m) => json::put_hex_u32(buf, *m),
                    ServerMethod::Reconnect(r) => {
                        let n = if r.wait.is_some() {
                            3
                        } else if r.port.is_some() {
                            2
                        } else {
                            usize::from(r.host.is_some())
                        };
                        if n >= 1 {
                            json::put_opt_str(buf, r.host.as_ref());
                        }
                        if n >= 2 {
                            buf.put_u8(b',');
                            match r.port {
                                Some(p) => json::put_u64(buf, u64::from(p)),
                                None => buf.put_slice(b"null"),
                            }
                        }
                        if let Some(w) = r.wait {
                            buf.put_u8(b',');
                            json::put_u64(buf, u64::from(w));
                        }
                    }
                    ServerMethod::ShowMessage(m) => json::put_str(buf, m),
                    _ => {}
                }
                json::put_request_tail(buf);
            }
        }
    }

    fn parse(line: &Bytes, id: &Id, method: &str, params: Member<'_>) -> Result<Self, ParseError> {
        let name: &'static str = match method {
            methods::NOTIFY => methods::NOTIFY,
            methods::SET_DIFFICULTY => methods::SET_DIFFICULTY,
            methods::SET_EXTRANONCE => methods::SET_EXTRANONCE,
            methods::SET_VERSION_MASK => methods::SET_VERSION_MASK,
            methods::RECONNECT => methods::RECONNECT,
            methods::SHOW_MESSAGE => methods::SHOW_MESSAGE,
            _ => {
                return Ok(ServerMethod::Unknown {
                    method: Text::from_str_in(line, method),
                    params: params
                        .0
                        .map_or(RawJson::EMPTY_ARRAY, |p| json::raw_json(line, p)),
                })
            }
        };
        let err = |(field, kind)| ParseError::InvalidParams {
            id: id.clone(),
            method: name,
            field,
            kind,
        };
        let p = Params::split(params).map_err(|k| err(("params", k)))?;
        let u32_of = |raw: &str| {
            json::uint(raw).and_then(|v| u32::try_from(v).map_err(|_| FieldError::OutOfRange))
        };
        let r: Result<Self, (&'static str, FieldError)> = match name {
            methods::NOTIFY => Notify::parse(line, &p).map(ServerMethod::Notify),
            methods::SET_DIFFICULTY => json::required(p.get(0))
                .and_then(difficulty)
                .map(ServerMethod::SetDifficulty)
                .map_err(|k| ("difficulty", k)),
            methods::SET_EXTRANONCE => (|| {
                Ok(ServerMethod::SetExtranonce(SetExtranonce {
                    extranonce1: json::required(p.get(0))
                        .and_then(|r| json::hex_bytes(r, MAX_EXTRANONCE1_PARSE))
                        .map_err(|k| ("extranonce1", k))?,
                    extranonce2_size: json::required(p.get(1))
                        .and_then(u32_of)
                        .map_err(|k| ("extranonce2_size", k))?,
                }))
            })(),
            methods::SET_VERSION_MASK => json::required(p.get(0))
                .and_then(json::hex_u32_lenient)
                .map(ServerMethod::SetVersionMask)
                .map_err(|k| ("mask", k)),
            methods::RECONNECT => (|| {
                Ok(ServerMethod::Reconnect(Reconnect {
                    host: p
                        .get(0)
                        .map(|r| json::text(line, r))
                        .transpose()
                        .map_err(|k| ("host", k))?,
                    port: p
                        .get(1)
                        .map(|r| {
                            json::uint(r)
                                .and_then(|v| u16::try_from(v).map_err(|_| FieldError::OutOfRange))
                        })
                        .transpose()
                        .map_err(|k| ("port", k))?,
                    wait: p.get(2).map(u32_of).transpose().map_err(|k| ("wait", k))?,
                }))
            })(),
            _ => json::required(p.get(0))
                .and_then(|r| json::text(line, r))
                .map(ServerMethod::ShowMessage)
                .map_err(|k| ("message", k)),
        };
        r.map_err(err)
    }
}
