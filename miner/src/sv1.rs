//! The SV1 miner core: sans-IO. Lines from the server go in through
//! [`Sv1Miner::handle_line`]; hashing is a bounded step, [`Sv1Miner::mine`]; lines to send,
//! events and reconnect requests come out of [`Sv1Miner::poll_output`].
//!
//! ```text
//!  connect() ──configure, subscribe, authorize──►  (responses in any order)
//!     subscribe result: extranonce1 / extranonce2_size      (error: fatal)
//!     authorize true                                         (false / error: fatal)
//!     configure result: version-rolling mask                 (error: no rolling)
//!  mining.notify ──► mine the newest job once subscribed and authorized
//! ```
//!
//! * `mining.set_difficulty` and `mining.set_extranonce` apply to jobs notified after them
//!   (the common convention). Because some servers apply a new difficulty to the current job
//!   at once, the miner hashes to the harder of the job's difficulty and the current one: its
//!   shares are valid under either reading.
//! * Version rolling is used only after the server accepted `version-rolling` in
//!   `mining.configure`; the 6th `mining.submit` parameter then carries the rolled bits.
//! * A line that is not valid JSON or not a valid message is reported
//!   ([`Event::MalformedLine`]) and skipped; an unknown server request with an id is answered
//!   with a JSON-RPC "method not found" error.
//!
//! # Firmware quirks
//!
//! [`Sv1Config`] can make the miner behave like the firmware found in farms
//! (docs/spec-notes.md §10, "Stratum V1 as ASIC firmware speaks it"); the defaults are a
//! well-behaved miner:
//!
//! * `max_extranonce2_size` / `max_extranonce1_len`: a subscribe result (or
//!   `mining.set_extranonce`) beyond the device's limits ends the miner
//!   ([`MinerError::Sv1Refused`]), as cgminer-based firmware breaks on them.
//! * `roll_mask_override`: the version bits actually rolled, whatever was negotiated (a
//!   device that asks for more than it can roll, or one that rolls bits it was not given).
//! * `send_configure: false`: no `mining.configure` at all (no version rolling).
//! * `id_style`: request ids as numbers, digit strings or `null`; an answer whose id has
//!   another JSON type is not matched (a protocol warning). With `null` ids, answers are
//!   matched to the oldest outstanding request whose kind fits the result's shape (an array
//!   answers a subscribe, an object a configure, anything else the other requests).
//! * `extranonce_subscribe`: `mining.extranonce.subscribe` after the subscribe.
//! * `suggest_difficulty`: `mining.suggest_difficulty`, where `suggest_at` says: before the
//!   subscribe, between subscribe and authorize, or after the authorize (as Bitaxe firmware
//!   does).
//!
//! What the server answered is kept in [`Sv1Observed`] ([`Sv1Miner::observed`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strata_sv1::{
    extensions, Authorize, ClientMethod, Configure, ConfigureResult, Difficulty, Extranonce2, Id,
    Notify, Request, Response, ServerMessage, ServerMethod, StratumError, Submit, Subscribe,
    SubscribeResult, Text, MAX_EXTRANONCE2_LEN, VERSION_MASK_BIP320,
};
use strata_work::coinbase::txid_from_parts;
use strata_work::header::HEADER_LEN;
use strata_work::merkle::merkle_root_from_path;
use strata_work::target::Target;

use crate::error::MinerError;
use crate::report::{since_clock_base, Event, MinerStats};
use crate::search::{display_hash, spread_bits, HeaderSearch};
use crate::{Mined, Now};

/// Unacknowledged submits remembered.
const MAX_PENDING: usize = 1 << 16;

/// `mining.set_difficulty` values kept in [`Sv1Observed::difficulties`].
pub const MAX_OBSERVED_DIFFICULTIES: usize = 1024;

/// How the miner writes the ids of its requests (firmware differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdStyle {
    /// JSON numbers `1`, `2`, ... (cgminer and most firmware).
    #[default]
    Number,
    /// The same numbers as JSON strings: `"1"`, `"2"`, ...
    String,
    /// `null` on every request (notification style): answers are matched by order and shape.
    Null,
}

/// Where in the handshake `mining.suggest_difficulty` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuggestAt {
    /// After `mining.configure`, before `mining.subscribe`.
    #[default]
    BeforeSubscribe,
    /// After `mining.subscribe` (and `mining.extranonce.subscribe`), before
    /// `mining.authorize`.
    BeforeAuthorize,
    /// After `mining.authorize` (Bitaxe / ESP-Miner).
    AfterAuthorize,
}

/// Response ids received, by JSON type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdCounts {
    /// Number ids.
    pub number: u64,
    /// String ids.
    pub string: u64,
    /// `null` ids.
    pub null: u64,
}

/// What the server told the miner, for tests and diagnostics (kept across reconnections).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sv1Observed {
    /// Every `mining.set_difficulty` value received, oldest first (the first
    /// [`MAX_OBSERVED_DIFFICULTIES`]).
    pub difficulties: Vec<f64>,
    /// The last subscribe result: `extranonce1` and `extranonce2_size` (also one the miner
    /// refused).
    pub subscribe: Option<(Vec<u8>, u32)>,
    /// The version-rolling mask of the last `mining.configure` answer (`Some(0)`: refused).
    pub configure_mask: Option<u32>,
    /// The answer to `mining.extranonce.subscribe` (`None`: not sent or not answered).
    pub extranonce_subscribe: Option<bool>,
    /// The answer to `mining.suggest_difficulty` (`None`: not sent or not answered).
    pub suggest_difficulty: Option<bool>,
    /// Ids of the server's responses, by JSON type.
    pub response_ids: IdCounts,
}

/// Configuration of one SV1 miner.
#[derive(Debug, Clone)]
pub struct Sv1Config {
    /// The miner's index (`miner=` in output lines).
    pub index: usize,
    /// `mining.authorize` user (and `mining.submit` worker name).
    pub user: String,
    /// `mining.authorize` password.
    pub password: Option<String>,
    /// The version-rolling mask asked for in `mining.configure` (0: do not ask).
    pub version_rolling_mask: u32,
    /// `minimum-difficulty.value` sent in `mining.configure` (`None`: not requested).
    pub minimum_difficulty: Option<f64>,
    /// Record submit-to-response latencies in [`MinerStats::latencies_us`].
    pub record_latency: bool,
    /// Send `mining.configure` when there is something to configure (default `true`;
    /// `false`: never, like old firmware: no version rolling).
    pub send_configure: bool,
    /// The version bits actually rolled (`None`, the default: the negotiated mask). Bits
    /// outside the negotiated mask are rolled and submitted all the same.
    pub roll_mask_override: Option<u32>,
    /// Largest `extranonce2_size` the device accepts (`None`: up to
    /// [`MAX_EXTRANONCE2_LEN`]); a larger one ends the miner.
    pub max_extranonce2_size: Option<usize>,
    /// Longest `extranonce1` in bytes the device accepts (`None`: any); a longer one ends the
    /// miner.
    pub max_extranonce1_len: Option<usize>,
    /// How request ids are written (default numbers).
    pub id_style: IdStyle,
    /// Send `mining.extranonce.subscribe` after the subscribe (default `false`).
    pub extranonce_subscribe: bool,
    /// Send `mining.suggest_difficulty` with this value (default none) ...
    pub suggest_difficulty: Option<f64>,
    /// ... at this point of the handshake (default before the subscribe).
    pub suggest_at: SuggestAt,
}

impl Sv1Config {
    /// A configuration with the defaults: BIP320 rolling mask `1fffe000`, no minimum
    /// difficulty, no latency recording.
    pub fn new(index: usize, user: impl Into<String>) -> Self {
        Sv1Config {
            index,
            user: user.into(),
            password: Some("x".into()),
            version_rolling_mask: VERSION_MASK_BIP320,
            minimum_difficulty: None,
            record_latency: false,
            send_configure: true,
            roll_mask_override: None,
            max_extranonce2_size: None,
            max_extranonce1_len: None,
            id_style: IdStyle::Number,
            extranonce_subscribe: false,
            suggest_difficulty: None,
            suggest_at: SuggestAt::BeforeSubscribe,
        }
    }
}

/// What the core wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Sv1Output {
    /// Send this line (it ends in `\n`).
    Send(Vec<u8>),
    /// Report this event.
    Event(Event),
    /// Close the connection, wait `wait_secs`, connect to this endpoint (`None`: the current
    /// host / port) and call [`Sv1Miner::connect`].
    Reconnect {
        /// New host.
        host: Option<String>,
        /// New port.
        port: Option<u16>,
        /// Seconds to wait first.
        wait_secs: u32,
    },
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Configure,
    Subscribe,
    Authorize,
    ExtranonceSubscribe,
    SuggestDifficulty,
    Submit { at: Instant },
}

impl Pending {
    /// Whether a `null`-id answer whose result starts with `first` can answer this request.
    fn fits(self, first: Option<u8>, is_error: bool) -> bool {
        if is_error {
            return true;
        }
        match self {
            Pending::Subscribe => first == Some(b'['),
            Pending::Configure => first == Some(b'{'),
            _ => !matches!(first, Some(b'[' | b'{')),
        }
    }
}

/// A `mining.notify` with what it is mined with.
#[derive(Debug)]
struct Sv1Job {
    notify: Notify,
    /// Target of the difficulty in force when the job arrived.
    target: Target,
    network_target: Target,
}

#[derive(Debug, Clone)]
struct Sv1Work {
    job: Arc<Sv1Job>,
    extranonce1: Bytes,
    extranonce2: Vec<u8>,
    mask: u32,
    version: u32,
    ntime: u32,
    search: HeaderSearch,
}

impl Sv1Work {
    fn roll(&mut self, roll: u64) {
        let n = &self.job.notify;
        self.version = (n.version & !self.mask) | spread_bits(roll, self.mask);
        let r = roll.to_le_bytes();
        let k = self.extranonce2.len().min(r.len());
        self.extranonce2[..k].copy_from_slice(&r[..k]);
        if self.mask == 0 && self.extranonce2.is_empty() && self.search.is_exhausted() {
            self.ntime = self.ntime.wrapping_add(1);
        }
        let txid = txid_from_parts(
            &n.coinb1,
            &[&self.extranonce1, &self.extranonce2],
            &n.coinb2,
        );
        let root = merkle_root_from_path(txid, n.merkle_branch.iter());
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&self.version.to_le_bytes());
        header[4..36].copy_from_slice(&n.prev_hash);
        header[36..68].copy_from_slice(&root);
        header[68..72].copy_from_slice(&self.ntime.to_le_bytes());
        header[72..76].copy_from_slice(&n.nbits.to_le_bytes());
        let target = self.search.target();
        self.search = HeaderSearch::new(header, target);
    }
}

/// The code a rejected SV1 share is counted under: the stratum error code's name (`20`
/// `other`, `21` `job-not-found`, `22` `duplicate-share`, `23` `low-difficulty`, `24`
/// `unauthorized`, `25` `not-subscribed`, others `error-<code>`), or `rejected` for a plain
/// `false` result.
pub fn rejection_code(r: &Response) -> String {
    match &r.error {
        Some(e) => match e.code {
            StratumError::OTHER => "other".into(),
            StratumError::JOB_NOT_FOUND => "job-not-found".into(),
            StratumError::DUPLICATE_SHARE => "duplicate-share".into(),
            StratumError::LOW_DIFFICULTY => "low-difficulty".into(),
            StratumError::UNAUTHORIZED => "unauthorized".into(),
            StratumError::NOT_SUBSCRIBED => "not-subscribed".into(),
            c => format!("error-{c}"),
        },
        None => "rejected".into(),
    }
}

/// A simulated SV1 mining device on one connection.
#[derive(Debug)]
pub struct Sv1Miner {
    config: Sv1Config,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    pending_order: VecDeque<u64>,
    extranonce: Option<(Bytes, usize)>,
    authorized: bool,
    target: Target,
    version_mask: Option<u32>,
    job: Option<Arc<Sv1Job>>,
    work: Option<Sv1Work>,
    roll: u64,
    outputs: VecDeque<Sv1Output>,
    stats: MinerStats,
    observed: Sv1Observed,
}

impl Sv1Miner {
    /// A miner; call [`connect`](Self::connect) once the TCP connection is up.
    pub fn new(config: Sv1Config) -> Self {
        Sv1Miner {
            config,
            next_id: 1,
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            extranonce: None,
            authorized: false,
            target: Target::DIFF1,
            version_mask: None,
            job: None,
            work: None,
            roll: 0,
            outputs: VecDeque::new(),
            stats: MinerStats::default(),
            observed: Sv1Observed::default(),
        }
    }

    /// What the server answered and sent (see [`Sv1Observed`]).
    pub fn observed(&self) -> &Sv1Observed {
        &self.observed
    }

    /// The configuration.
    pub fn config(&self) -> &Sv1Config {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &MinerStats {
        &self.stats
    }

    /// Whether there is a job to hash (subscribed, authorized, notified).
    pub fn has_work(&self) -> bool {
        self.work.is_some()
    }

    /// Whether a submitted share still waits for its answer (remembered ones: at most the
    /// last [`MAX_PENDING`] requests).
    pub fn submit_in_flight(&self) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p, Pending::Submit { .. }))
    }

    /// The negotiated version-rolling mask (`None` until `mining.configure` accepted it).
    pub fn version_mask(&self) -> Option<u32> {
        self.version_mask
    }

    /// The version bits the miner rolls: the override if configured, else the negotiated
    /// mask (0: none).
    pub fn rolled_mask(&self) -> u32 {
        self.config
            .roll_mask_override
            .or(self.version_mask)
            .unwrap_or(0)
    }

    /// The bits sent as the 6th `mining.submit` parameter (`None`: no version rolling).
    fn submitted_mask(&self) -> Option<u32> {
        match (self.version_mask, self.config.roll_mask_override) {
            (None, None) => None,
            (m, o) => Some(m.unwrap_or(0) | o.unwrap_or(0)),
        }
    }

    /// The id of the job being hashed.
    pub fn current_job(&self) -> Option<&str> {
        self.work.as_ref().map(|w| w.job.notify.job_id.as_str())
    }

    /// The target being hashed to.
    pub fn current_target(&self) -> Option<Target> {
        self.work.as_ref().map(|w| w.search.target())
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Sv1Output> {
        self.outputs.pop_front()
    }

    fn event(&mut self, e: Event) {
        self.outputs.push_back(Sv1Output::Event(e));
    }

    fn warn(&mut self, message: &'static str, error: String) {
        tracing::warn!(miner = self.config.index, message, %error, "server message not applied");
        self.stats.protocol_warnings += 1;
        self.event(Event::ProtocolWarning { message, error });
    }

    fn request(&mut self, method: ClientMethod, kind: Pending) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = Vec::with_capacity(160);
        let wire_id = match self.config.id_style {
            IdStyle::Number => Id::from(id),
            IdStyle::String => Id::from(id.to_string()),
            IdStyle::Null => Id::Null,
        };
        Request {
            id: wire_id,
            method,
        }
        .encode(&mut line);
        self.outputs.push_back(Sv1Output::Send(line));
        if self.pending_order.len() >= MAX_PENDING {
            if let Some(old) = self.pending_order.pop_front() {
                self.pending.remove(&old);
            }
        }
        self.pending.insert(id, kind);
        self.pending_order.push_back(id);
        id
    }

    /// Starts a connection (TCP is up): forgets the previous session and queues
    /// `mining.configure`, `mining.subscribe` and `mining.authorize`.
    pub fn connect(&mut self) {
        self.pending.clear();
        self.pending_order.clear();
        self.extranonce = None;
        self.authorized = false;
        self.target = Target::DIFF1;
        self.version_mask = None;
        self.job = None;
        self.work = None;
        self.outputs.clear();
        let mut exts = vec![];
        if self.config.version_rolling_mask != 0 {
            exts.push(Text::from_static(extensions::VERSION_ROLLING));
        }
        let min_diff = self.config.minimum_difficulty.and_then(Difficulty::new);
        if min_diff.is_some() {
            exts.push(Text::from_static(extensions::MINIMUM_DIFFICULTY));
        }
        if !exts.is_empty() && self.config.send_configure {
            let rolling = self.config.version_rolling_mask != 0;
            let configure = Configure {
                extensions: exts,
                version_rolling_mask: rolling.then_some(self.config.version_rolling_mask),
                version_rolling_min_bit_count: rolling.then_some(2),
                minimum_difficulty: min_diff,
                other_params: vec![],
            };
            self.request(ClientMethod::Configure(configure), Pending::Configure);
        }
        self.suggest_difficulty(SuggestAt::BeforeSubscribe);
        self.request(
            ClientMethod::Subscribe(Subscribe {
                user_agent: Some(Text::from(concat!(
                    "strata-miner/",
                    env!("CARGO_PKG_VERSION")
                ))),
                session_id: None,
            }),
            Pending::Subscribe,
        );
        if self.config.extranonce_subscribe {
            self.request(
                ClientMethod::ExtranonceSubscribe,
                Pending::ExtranonceSubscribe,
            );
        }
        self.suggest_difficulty(SuggestAt::BeforeAuthorize);
        self.request(
            ClientMethod::Authorize(Authorize {
                user: Text::from(self.config.user.clone()),
                password: self.config.password.clone().map(Text::from),
            }),
            Pending::Authorize,
        );
        self.suggest_difficulty(SuggestAt::AfterAuthorize);
    }

    /// Queues `mining.suggest_difficulty` if one is configured at `at`.
    fn suggest_difficulty(&mut self, at: SuggestAt) {
        if self.config.suggest_at != at {
            return;
        }
        if let Some(d) = self.config.suggest_difficulty.and_then(Difficulty::new) {
            self.request(
                ClientMethod::SuggestDifficulty(d),
                Pending::SuggestDifficulty,
            );
        }
    }

    /// Handles one line from the server (without its newline). An error means the miner
    /// cannot go on (subscribe or authorize refused); a line that does not parse is reported
    /// and skipped.
    pub fn handle_line(&mut self, line: impl Into<Bytes>, now: Now) -> Result<(), MinerError> {
        self.handle_line_arrived(line, now, None)
    }

    /// [`Sv1Miner::handle_line`] for a line that reached the miner's socket at `arrived`
    /// (the kernel's receive time), before the miner read it at `now`: a submit's latency
    /// then runs to the arrival, and the time to the read is recorded apart
    /// ([`MinerStats::read_latencies_us`]). `None`: the line arrived when it was read.
    pub fn handle_line_arrived(
        &mut self,
        line: impl Into<Bytes>,
        now: Now,
        arrived: Option<Instant>,
    ) -> Result<(), MinerError> {
        match ServerMessage::parse(line) {
            Ok(ServerMessage::Response(r)) => self.on_response(r, now, arrived)?,
            Ok(ServerMessage::Request(req)) => self.on_request(req)?,
            Err(e) => {
                tracing::warn!(miner = self.config.index, error = %e, "malformed line skipped");
                self.stats.malformed_lines += 1;
                self.event(Event::MalformedLine {
                    error: e.to_string(),
                });
            }
        }
        self.refresh_work();
        Ok(())
    }

    fn on_request(&mut self, req: Request<ServerMethod>) -> Result<(), MinerError> {
        match req.method {
            ServerMethod::Notify(n) => {
                self.event(Event::NewJob {
                    channel: None,
                    job: n.job_id.to_string(),
                    flag: n.clean_jobs,
                });
                let network_target = match Target::from_compact(n.nbits) {
                    Ok(t) => t,
                    Err(e) => {
                        self.warn("mining.notify", format!("nbits {:08x}: {e}", n.nbits));
                        return Ok(());
                    }
                };
                self.job = Some(Arc::new(Sv1Job {
                    notify: n,
                    target: self.target,
                    network_target,
                }));
                self.work = None;
            }
            ServerMethod::SetDifficulty(d) => {
                if self.observed.difficulties.len() < MAX_OBSERVED_DIFFICULTIES {
                    self.observed.difficulties.push(d.get());
                }
                self.event(Event::TargetChanged {
                    channel: None,
                    difficulty: d.get(),
                });
                match Target::from_difficulty(d.get()) {
                    Ok(t) => {
                        self.target = t;
                        if let Some(w) = self.work.as_mut() {
                            w.search.set_target(w.job.target.min(t));
                        }
                    }
                    Err(e) => self.warn("mining.set_difficulty", e.to_string()),
                }
            }
            ServerMethod::SetExtranonce(s) => {
                self.event(Event::Extranonce {
                    channel: None,
                    prefix: s.extranonce1.to_vec(),
                    size: Some(s.extranonce2_size),
                });
                self.check_device_limits(
                    "mining.set_extranonce",
                    &s.extranonce1,
                    s.extranonce2_size,
                )?;
                match usize::try_from(s.extranonce2_size) {
                    Ok(n) if n <= MAX_EXTRANONCE2_LEN => self.extranonce = Some((s.extranonce1, n)),
                    _ => self.warn(
                        "mining.set_extranonce",
                        format!("extranonce2_size {} too large", s.extranonce2_size),
                    ),
                }
            }
            ServerMethod::SetVersionMask(mask) => match self.version_mask {
                Some(_) => {
                    let m = mask & self.config.version_rolling_mask;
                    self.version_mask = Some(m);
                    self.event(Event::VersionMask { mask: m });
                    self.work = None;
                }
                None => self.warn(
                    "mining.set_version_mask",
                    "version rolling was not negotiated".into(),
                ),
            },
            ServerMethod::Reconnect(r) => self.outputs.push_back(Sv1Output::Reconnect {
                host: r.host.map(|h| h.to_string()).filter(|h| !h.is_empty()),
                port: r.port.filter(|&p| p != 0),
                wait_secs: r.wait.unwrap_or(0),
            }),
            ServerMethod::ShowMessage(t) => self.event(Event::ServerMessage {
                text: t.to_string(),
            }),
            other => {
                tracing::debug!(method = other.name(), "unknown server method");
                if !req.id.is_null() {
                    let mut line = Vec::new();
                    Response::error(req.id, StratumError::method_not_found()).encode(&mut line);
                    self.outputs.push_back(Sv1Output::Send(line));
                }
            }
        }
        Ok(())
    }

    /// The device's extranonce limits ([`Sv1Config::max_extranonce1_len`],
    /// [`Sv1Config::max_extranonce2_size`]): beyond them the firmware cannot mine.
    fn check_device_limits(
        &self,
        request: &'static str,
        extranonce1: &[u8],
        extranonce2_size: u32,
    ) -> Result<(), MinerError> {
        let refused = |reason: String| Err(MinerError::Sv1Refused { request, reason });
        if let Some(max) = self.config.max_extranonce2_size {
            if usize::try_from(extranonce2_size).map_or(true, |n| n > max) {
                return refused(format!(
                    "extranonce2_size {extranonce2_size} above the device's limit {max}"
                ));
            }
        }
        if let Some(max) = self.config.max_extranonce1_len {
            if extranonce1.len() > max {
                return refused(format!(
                    "extranonce1 of {} bytes above the device's limit {max}",
                    extranonce1.len()
                ));
            }
        }
        Ok(())
    }

    /// The request a response answers, removed from the outstanding ones. Ids are matched
    /// only in the miner's own [`IdStyle`]: an answer whose id is of another JSON type (or a
    /// `null`-id error to a miner that numbers its requests) answers nothing of ours.
    fn take_pending(&mut self, r: &Response) -> Option<(u64, Pending)> {
        let ids = &mut self.observed.response_ids;
        match &r.id {
            Id::Number(_) => ids.number += 1,
            Id::String(_) => ids.string += 1,
            Id::Null => ids.null += 1,
        }
        let seq = match (&r.id, self.config.id_style) {
            (Id::Number(_), IdStyle::Number) => r.id.as_u64()?,
            (Id::String(s), IdStyle::String) => s.parse().ok()?,
            (Id::Null, IdStyle::Null) => return self.take_pending_by_shape(r),
            _ => return None,
        };
        self.pending.remove(&seq).map(|kind| (seq, kind))
    }

    /// A `null`-id answer: the oldest outstanding request its result's shape fits.
    fn take_pending_by_shape(&mut self, r: &Response) -> Option<(u64, Pending)> {
        while let Some(front) = self.pending_order.front() {
            if self.pending.contains_key(front) {
                break;
            }
            self.pending_order.pop_front();
        }
        let first = r.result.as_str().trim_start().bytes().next();
        let is_error = r.error.is_some();
        let pos = self.pending_order.iter().position(|id| {
            self.pending
                .get(id)
                .is_some_and(|k| k.fits(first, is_error))
        })?;
        let seq = self.pending_order.remove(pos)?;
        self.pending.remove(&seq).map(|kind| (seq, kind))
    }

    fn on_response(
        &mut self,
        r: Response,
        now: Now,
        arrived: Option<Instant>,
    ) -> Result<(), MinerError> {
        let Some((seq, kind)) = self.take_pending(&r) else {
            self.warn("response", format!("to unknown request id {}", r.id));
            return Ok(());
        };
        match kind {
            Pending::Configure => {
                let accepted = r
                    .error
                    .is_none()
                    .then(|| ConfigureResult::from_json(&r.result).ok())
                    .flatten()
                    .filter(|c| c.version_rolling == Some(true));
                let mask = accepted.map(|c| {
                    c.version_rolling_mask
                        .unwrap_or(self.config.version_rolling_mask)
                        & self.config.version_rolling_mask
                });
                self.version_mask = mask;
                self.observed.configure_mask = Some(mask.unwrap_or(0));
                self.event(Event::VersionMask {
                    mask: mask.unwrap_or(0),
                });
                self.work = None;
            }
            Pending::Subscribe => {
                let refused = |reason: String| MinerError::Sv1Refused {
                    request: "mining.subscribe",
                    reason,
                };
                if let Some(e) = &r.error {
                    return Err(refused(format!("{} {}", e.code, e.message)));
                }
                let s =
                    SubscribeResult::from_json(&r.result).map_err(|e| refused(e.to_string()))?;
                self.observed.subscribe = Some((s.extranonce1.to_vec(), s.extranonce2_size));
                self.check_device_limits("mining.subscribe", &s.extranonce1, s.extranonce2_size)?;
                let size = usize::try_from(s.extranonce2_size)
                    .ok()
                    .filter(|&n| n <= MAX_EXTRANONCE2_LEN)
                    .ok_or_else(|| {
                        refused(format!("extranonce2_size {} too large", s.extranonce2_size))
                    })?;
                self.event(Event::Extranonce {
                    channel: None,
                    prefix: s.extranonce1.to_vec(),
                    size: Some(s.extranonce2_size),
                });
                self.extranonce = Some((s.extranonce1, size));
                self.work = None;
            }
            Pending::Authorize => {
                if r.error.is_some() || r.result_bool() != Some(true) {
                    let reason = match &r.error {
                        Some(e) => format!("{} {}", e.code, e.message),
                        None => format!("result {}", r.result),
                    };
                    return Err(MinerError::Sv1Refused {
                        request: "mining.authorize",
                        reason,
                    });
                }
                self.authorized = true;
                self.event(Event::Authorized {
                    user: self.config.user.clone(),
                });
            }
            Pending::ExtranonceSubscribe => {
                self.observed.extranonce_subscribe =
                    Some(r.error.is_none() && r.result_bool() == Some(true));
            }
            Pending::SuggestDifficulty => {
                self.observed.suggest_difficulty =
                    Some(r.error.is_none() && r.result_bool() == Some(true));
            }
            Pending::Submit { at } => {
                if r.error.is_none() && r.result_bool() == Some(true) {
                    self.stats.acknowledged += 1;
                    if self.config.record_latency {
                        let micros = |t: Instant| {
                            u32::try_from(t.saturating_duration_since(at).as_micros())
                                .unwrap_or(u32::MAX)
                        };
                        let read = micros(now.instant);
                        self.stats.latency_at_us.push(since_clock_base(at));
                        match arrived {
                            Some(a) => {
                                self.stats.latencies_us.push(micros(a).min(read));
                                self.stats.read_latencies_us.push(read);
                            }
                            None => self.stats.latencies_us.push(read),
                        }
                    }
                    let acked = self.stats.acknowledged;
                    self.event(Event::ShareAccepted {
                        channel: None,
                        seq,
                        count: 1,
                        acked,
                    });
                } else {
                    let code = rejection_code(&r);
                    self.stats.reject(&code);
                    self.event(Event::ShareRejected {
                        channel: None,
                        seq,
                        code,
                    });
                }
            }
        }
        Ok(())
    }

    fn refresh_work(&mut self) {
        if self.work.is_some() || !self.authorized {
            return;
        }
        let (Some(job), Some((en1, en2_size))) = (self.job.clone(), self.extranonce.clone()) else {
            return;
        };
        self.stats.established = true;
        let target = job.target.min(self.target);
        let mut work = Sv1Work {
            extranonce1: en1,
            extranonce2: vec![0u8; en2_size],
            mask: self.rolled_mask(),
            version: job.notify.version,
            ntime: job.notify.ntime,
            search: HeaderSearch::new([0u8; HEADER_LEN], target),
            job,
        };
        self.roll = self.roll.wrapping_add(1);
        work.roll(self.roll);
        self.work = Some(work);
    }

    /// Hashes at most `budget` nonces of the newest job, stopping at the first share, which is
    /// queued as `mining.submit`.
    pub fn mine(&mut self, budget: u64, now: Now) -> Mined {
        self.refresh_work();
        let mut mined = Mined::default();
        while mined.hashes < budget {
            let Some(work) = self.work.as_mut() else {
                break;
            };
            let step = work.search.step(budget - mined.hashes);
            mined.hashes += step.hashes;
            if let Some((nonce, hash)) = step.found {
                self.submit(nonce, hash, now);
                mined.share = true;
                break;
            }
            if work.search.is_exhausted() {
                self.roll = self.roll.wrapping_add(1);
                work.roll(self.roll);
            }
        }
        self.stats.hashes += mined.hashes;
        mined
    }

    fn submit(&mut self, nonce: u32, hash: [u8; 32], now: Now) {
        let Some(w) = self.work.as_ref() else {
            return;
        };
        let Some(extranonce2) = Extranonce2::from_slice(&w.extranonce2) else {
            return;
        };
        let submit = Submit {
            worker_name: Text::from(self.config.user.clone()),
            job_id: w.job.notify.job_id.clone(),
            extranonce2,
            ntime: w.ntime,
            nonce,
            version_bits: self.submitted_mask().map(|m| w.version & m),
        };
        let job = w.job.notify.job_id.to_string();
        let is_block = w.job.network_target.is_met_by(&hash);
        let id = self.request(
            ClientMethod::Submit(submit),
            Pending::Submit { at: now.instant },
        );
        self.stats.submitted += 1;
        self.event(Event::ShareSubmitted {
            channel: None,
            seq: id,
            job,
            nonce,
        });
        if is_block {
            self.stats.blocks += 1;
            self.event(Event::BlockCandidate {
                channel: None,
                hash: display_hash(&hash),
            });
        }
    }
}
