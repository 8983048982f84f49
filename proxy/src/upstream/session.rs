//! One pool connection as a synchronous state machine: the SV2 client side of the Mining
//! Protocol for a single extended channel. Messages from the pool, shares and the current
//! time go in; messages to send and [`Action`]s come out. No I/O.
//!
//! ```text
//!  start() ──SetupConnection──▶ AwaitSetup ──.Success──▶ AwaitChannel ──.Success──▶ Open
//!                                  │  (sends [RequestExtensions] + OpenExtendedMiningChannel)
//!                                  └─ .Error / timeout / protocol error ──▶ SessionError (end)
//!  close(): every unanswered share comes back as `upstream-closed`; the session is over.
//! ```
//!
//! In `Open` the channel's jobs, prevhash, target and extranonce prefix are tracked by
//! [`strata_work::channel::Channels`] (client side); each time the active job changes the
//! session emits [`Action::Work`]. Shares get increasing sequence numbers and wait in a
//! bounded pending queue until `SubmitShares.Success` (which acknowledges every pending
//! sequence number up to `last_sequence_number`) or `SubmitShares.Error` answers them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_protocol::common::{CommonMessage, SetupConnection, PROTOCOL_MINING};
use strata_protocol::extensions::{ExtensionsMessage, RequestExtensions, UserIdentity};
use strata_protocol::mining::{
    self as m, MiningMessage, OpenExtendedMiningChannel, SubmitSharesExtended, UpdateChannel,
};
use strata_protocol::tlv::{Tlv, TlvField};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::{Message, EXTENSION_WORKER_HASHRATE};
use strata_work::channel::{Channel, ChannelConfig, ChannelError, ChannelKind, Channels};
use strata_work::target::Target;

use crate::work::{ForwardShare, UpstreamWork};

/// `request_id` of our one OpenExtendedMiningChannel.
const OPEN_REQUEST_ID: u32 = 1;
/// `request_id` of our one RequestExtensions.
const EXTENSIONS_REQUEST_ID: u16 = 1;

/// Share result code when a share cannot be (or could not be) forwarded on this connection.
pub const CODE_STALE_UPSTREAM: &str = "stale-upstream";
/// Share result code when the pending queue overflowed and the oldest share was given up.
pub const CODE_NO_RESPONSE: &str = "no-response";
/// Share result code for shares still unanswered when the connection ended.
pub const CODE_UPSTREAM_CLOSED: &str = "upstream-closed";

/// Settings of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `user_identity` of the channel (the pool account / payout name).
    pub user_identity: String,
    /// Nominal hashrate announced at open (hashes per second).
    pub nominal_hashrate: f32,
    /// `min_extranonce_size` asked for (bytes the proxy splits among its miners).
    pub min_extranonce_size: u16,
    /// Ask for extension 0x0002 and tag shares with the worker name when granted.
    pub request_worker_identity: bool,
    /// Shares waiting for an answer at most; when full the oldest is given up as
    /// [`CODE_NO_RESPONSE`].
    pub max_pending_shares: usize,
    /// Time from [`UpstreamSession::start`] to the channel being open.
    pub setup_timeout: Duration,
    /// Time from the channel being open to its first job on a prevhash.
    pub first_job_timeout: Duration,
    /// `endpoint_host` of SetupConnection.
    pub endpoint_host: String,
    /// `endpoint_port` of SetupConnection.
    pub endpoint_port: u16,
    /// `vendor` of SetupConnection.
    pub vendor: String,
    /// `firmware` of SetupConnection.
    pub firmware: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            user_identity: String::new(),
            nominal_hashrate: 0.0,
            min_extranonce_size: super::DEFAULT_MIN_EXTRANONCE_SIZE,
            request_worker_identity: true,
            max_pending_shares: 8192,
            setup_timeout: Duration::from_secs(10),
            first_job_timeout: Duration::from_secs(15),
            endpoint_host: String::new(),
            endpoint_port: 0,
            vendor: "strata".into(),
            firmware: concat!("strata-proxy/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// The open channel, as the pool granted it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    /// The channel id.
    pub channel_id: u32,
    /// The channel's `extranonce_prefix` (current: updated by SetExtranoncePrefix).
    pub extranonce_prefix: Bytes,
    /// Bytes the proxy rolls after the prefix.
    pub extranonce_size: u16,
    /// The channel's current target.
    pub target: Target,
    /// The group channel the pool put the channel in (0 = none).
    pub group_channel_id: u32,
}

/// What the session asks its driver to do or tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message, followed by these TLV fields (empty for most messages).
    Send {
        /// The message.
        msg: Message,
        /// TLV fields of negotiated extensions appended to it.
        tlvs: Vec<Tlv>,
    },
    /// The channel is open.
    Opened(ChannelInfo),
    /// The active job changed: the current work (its `epoch`, `id_width` and
    /// `extranonce2_size` are 0, for the hub to fill).
    Work(UpstreamWork),
    /// `SetTarget`: jobs activated from now on use this target.
    Target(Target),
    /// `SetExtranoncePrefix`: jobs from now on use this prefix (size unchanged).
    ExtranoncePrefix(Bytes),
    /// A share's answer from the pool (or the reason it was not forwarded).
    ShareResult {
        /// The share.
        share: ForwardShare,
        /// Accepted by the pool.
        accepted: bool,
        /// The `SubmitShares.Error` code (or one of this module's `CODE_*`) when not.
        code: Option<String>,
    },
}

/// Why the session ended. Every variant ends the connection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// `SetupConnection.Error`.
    #[error("pool refused the connection setup: {code} (flags {flags:#x})")]
    SetupRefused {
        /// The error code.
        code: String,
        /// Flags the pool does not support.
        flags: u32,
    },
    /// `OpenMiningChannel.Error`.
    #[error("pool refused the channel: {code}")]
    ChannelRefused {
        /// The error code.
        code: String,
    },
    /// `CloseChannel` of our channel.
    #[error("pool closed the channel: {reason}")]
    ChannelClosed {
        /// The reason code.
        reason: String,
    },
    /// `Reconnect`: go to another host of the same pool.
    #[error("pool asked to reconnect to {host}:{port}")]
    Reconnect {
        /// New host (empty = same).
        host: String,
        /// New port (0 = same).
        port: u16,
    },
    /// A message out of place, or one the channel state refuses.
    #[error("protocol violation by the pool: {reason}")]
    Protocol {
        /// What happened.
        reason: String,
    },
    /// The pool's channel state is inconsistent with what it sent before.
    #[error("pool sent {message} the channel refuses: {source}")]
    Channel {
        /// The message's name.
        message: &'static str,
        /// Why.
        #[source]
        source: ChannelError,
    },
    /// No open channel within [`SessionConfig::setup_timeout`].
    #[error("no open channel within {secs:.1}s")]
    SetupTimeout {
        /// The timeout.
        secs: f64,
    },
    /// No job within [`SessionConfig::first_job_timeout`] of the channel opening.
    #[error("no job within {secs:.1}s of the channel opening")]
    NoJobTimeout {
        /// The timeout.
        secs: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    AwaitSetup,
    AwaitChannel,
    Open,
    Closed,
}

/// The client side of one pool connection (see the module docs).
#[derive(Debug)]
pub struct UpstreamSession {
    cfg: SessionConfig,
    state: State,
    started: Option<Instant>,
    opened: Option<Instant>,
    channel_id: u32,
    extranonce_size: u16,
    channels: Channels,
    worker_tlv: bool,
    /// The pool set REQUIRES_FIXED_VERSION: no version rolling.
    fixed_version: bool,
    seq: u64,
    /// Job id of the last emitted work.
    work_job: Option<u32>,
    next_sequence: u32,
    /// Shares sent and not yet answered, in sequence order.
    pending: VecDeque<(u32, ForwardShare)>,
}

fn str255(s: &str) -> Str0_255 {
    let mut s = s.to_string();
    while s.len() > 255 {
        s.pop();
    }
    Str0_255::new(s).unwrap_or_default()
}

/// `a <= b` in sequence-number order (wrapping at `u32::MAX`).
fn seq_le(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) < (1 << 31)
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn send(out: &mut Vec<Action>, msg: impl Into<Message>) {
    out.push(Action::Send {
        msg: msg.into(),
        tlvs: Vec::new(),
    });
}

impl UpstreamSession {
    /// A session that has sent nothing yet.
    pub fn new(cfg: SessionConfig) -> Self {
        UpstreamSession {
            cfg,
            state: State::Idle,
            started: None,
            opened: None,
            channel_id: 0,
            extranonce_size: 0,
            channels: Channels::new(),
            worker_tlv: false,
            fixed_version: false,
            seq: 0,
            work_job: None,
            next_sequence: 0,
            pending: VecDeque::new(),
        }
    }

    /// Whether the channel is open.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether extension 0x0002 was granted (shares carry the worker name).
    pub fn worker_identity_granted(&self) -> bool {
        self.worker_tlv
    }

    /// Shares waiting for an answer.
    pub fn pending_shares(&self) -> usize {
        self.pending.len()
    }

    /// The channel, once open.
    pub fn channel(&self) -> Option<&Channel> {
        self.channels
            .get(self.channel_id)
            .filter(|_| self.is_open())
    }

    /// Sends `SetupConnection` (mining, version 2, REQUIRES_VERSION_ROLLING).
    pub fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Idle {
            return;
        }
        self.state = State::AwaitSetup;
        self.started = Some(now);
        send(
            out,
            SetupConnection {
                protocol: PROTOCOL_MINING,
                min_version: 2,
                max_version: 2,
                flags: m::REQUIRES_VERSION_ROLLING,
                endpoint_host: str255(&self.cfg.endpoint_host),
                endpoint_port: self.cfg.endpoint_port,
                vendor: str255(&self.cfg.vendor),
                hardware_version: Str0_255::default(),
                firmware: str255(&self.cfg.firmware),
                device_id: Str0_255::default(),
            },
        );
    }

    /// When [`check_timeout`](Self::check_timeout) must be called next (`None`: no timer).
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Idle => None,
            State::AwaitSetup | State::AwaitChannel => {
                self.started.map(|s| s + self.cfg.setup_timeout)
            }
            State::Open if self.work_job.is_none() => {
                self.opened.map(|o| o + self.cfg.first_job_timeout)
            }
            State::Open | State::Closed => None,
        }
    }

    /// Fails when the setup or first-job deadline passed.
    pub fn check_timeout(&self, now: Instant) -> Result<(), SessionError> {
        match self.deadline() {
            Some(d) if now >= d => Err(if self.state == State::Open {
                SessionError::NoJobTimeout {
                    secs: self.cfg.first_job_timeout.as_secs_f64(),
                }
            } else {
                SessionError::SetupTimeout {
                    secs: self.cfg.setup_timeout.as_secs_f64(),
                }
            }),
            _ => Ok(()),
        }
    }

    /// Handles one message from the pool. An error ends the session.
    pub fn on_message(
        &mut self,
        msg: Message,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        let name = msg.name();
        if matches!(self.state, State::Idle | State::Closed) {
            return Err(SessionError::Protocol {
                reason: format!("{name} on a session that is not running"),
            });
        }
        match msg {
            Message::Common(c) => self.on_common(c, now, out),
            Message::Extensions(e) => {
                self.on_extensions(e);
                Ok(())
            }
            Message::Mining(mm) => self.on_mining(mm, now, out),
            _ => Err(SessionError::Protocol {
                reason: format!("unexpected {name} on a mining connection"),
            }),
        }
    }

    fn on_common(
        &mut self,
        c: CommonMessage,
        _now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        match (self.state, c) {
            (State::AwaitSetup, CommonMessage::SetupConnectionSuccess(s)) => {
                if s.used_version != 2 {
                    return Err(SessionError::Protocol {
                        reason: format!("pool chose protocol version {}", s.used_version),
                    });
                }
                if s.flags & m::REQUIRES_FIXED_VERSION != 0 {
                    self.fixed_version = true;
                    tracing::warn!(
                        "pool requires a fixed version: miners will not roll version bits"
                    );
                }
                self.state = State::AwaitChannel;
                if self.cfg.request_worker_identity {
                    send(
                        out,
                        RequestExtensions {
                            request_id: EXTENSIONS_REQUEST_ID,
                            requested_extensions: vec![EXTENSION_WORKER_HASHRATE]
                                .try_into()
                                .unwrap_or_default(),
                        },
                    );
                }
                send(
                    out,
                    OpenExtendedMiningChannel {
                        request_id: OPEN_REQUEST_ID,
                        user_identity: str255(&self.cfg.user_identity),
                        nominal_hash_rate: self.cfg.nominal_hashrate,
                        max_target: U256([0xff; 32]),
                        min_extranonce_size: self.cfg.min_extranonce_size,
                    },
                );
                Ok(())
            }
            (State::AwaitSetup, CommonMessage::SetupConnectionError(e)) => {
                Err(SessionError::SetupRefused {
                    code: e.error_code.as_str().to_string(),
                    flags: e.flags,
                })
            }
            (_, CommonMessage::Reconnect(r)) => Err(SessionError::Reconnect {
                host: r.new_host.as_str().to_string(),
                port: r.new_port,
            }),
            (_, CommonMessage::ChannelEndpointChanged(c)) => {
                tracing::info!(
                    channel = c.channel_id,
                    "pool says the channel endpoint changed"
                );
                Ok(())
            }
            (state, other) => Err(SessionError::Protocol {
                reason: format!("unexpected {} in state {state:?}", other.name()),
            }),
        }
    }

    fn on_extensions(&mut self, e: ExtensionsMessage) {
        match e {
            ExtensionsMessage::RequestExtensionsSuccess(s) => {
                self.worker_tlv = s
                    .supported_extensions
                    .iter()
                    .any(|&x| x == EXTENSION_WORKER_HASHRATE);
                tracing::debug!(granted = self.worker_tlv, "extension 0x0002 negotiated");
            }
            ExtensionsMessage::RequestExtensionsError(e) => {
                self.worker_tlv = false;
                tracing::info!(
                    unsupported = ?e.unsupported_extensions.as_slice(),
                    "pool refused extension 0x0002: shares go without worker names"
                );
            }
            other => tracing::debug!(message = other.name(), "ignored extension message"),
        }
    }

    fn channel_err(message: &'static str) -> impl FnOnce(ChannelError) -> SessionError {
        move |source| SessionError::Channel { message, source }
    }

    /// Whether `id` addresses our channel (directly or through its group).
    fn is_ours(&self, id: u32) -> bool {
        id == self.channel_id
            || self
                .channels
                .get(self.channel_id)
                .and_then(Channel::group_id)
                .is_some_and(|g| g == id)
    }

    fn on_mining(
        &mut self,
        mm: MiningMessage,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        if self.state == State::AwaitChannel {
            return match mm {
                MiningMessage::OpenExtendedMiningChannelSuccess(s)
                    if s.request_id == OPEN_REQUEST_ID =>
                {
                    self.on_opened(&s, now, out)
                }
                MiningMessage::OpenMiningChannelError(e) if e.request_id == OPEN_REQUEST_ID => {
                    Err(SessionError::ChannelRefused {
                        code: e.error_code.as_str().to_string(),
                    })
                }
                other => Err(SessionError::Protocol {
                    reason: format!("unexpected {} before the channel opened", other.name()),
                }),
            };
        }
        if self.state != State::Open {
            return Err(SessionError::Protocol {
                reason: format!("unexpected {} before SetupConnection.Success", mm.name()),
            });
        }
        match mm {
            MiningMessage::NewExtendedMiningJob(j) => {
                if !self.is_ours(j.channel_id) {
                    tracing::debug!(channel = j.channel_id, "job for another channel ignored");
                    return Ok(());
                }
                let active = j.min_ntime.is_some();
                self.channels
                    .on_new_extended_mining_job(&j)
                    .map_err(Self::channel_err("NewExtendedMiningJob"))?;
                if active {
                    self.emit_work(false, out);
                }
                Ok(())
            }
            MiningMessage::SetNewPrevHash(p) => {
                if !self.is_ours(p.channel_id) {
                    return Ok(());
                }
                self.channels
                    .on_set_new_prev_hash(&p)
                    .map_err(Self::channel_err("SetNewPrevHash"))?;
                self.emit_work(true, out);
                Ok(())
            }
            MiningMessage::SetTarget(t) => {
                if !self.is_ours(t.channel_id) {
                    return Ok(());
                }
                self.channels
                    .on_set_target(&t)
                    .map_err(Self::channel_err("SetTarget"))?;
                out.push(Action::Target(Target::from_le_bytes(t.maximum_target.0)));
                Ok(())
            }
            MiningMessage::SetExtranoncePrefix(p) => {
                if p.channel_id != self.channel_id {
                    return Ok(());
                }
                self.channels
                    .on_set_extranonce_prefix(&p)
                    .map_err(Self::channel_err("SetExtranoncePrefix"))?;
                out.push(Action::ExtranoncePrefix(Bytes::copy_from_slice(
                    p.extranonce_prefix.as_slice(),
                )));
                Ok(())
            }
            MiningMessage::SetGroupChannel(g) => {
                if g.channel_ids.iter().any(|&c| c == self.channel_id) {
                    self.channels
                        .on_set_group_channel(&g)
                        .map_err(Self::channel_err("SetGroupChannel"))?;
                }
                Ok(())
            }
            MiningMessage::SubmitSharesSuccess(s) => {
                if s.channel_id == self.channel_id {
                    self.on_success(s.last_sequence_number, s.new_submits_accepted_count, out);
                }
                Ok(())
            }
            MiningMessage::SubmitSharesError(e) => {
                if e.channel_id == self.channel_id {
                    self.on_share_error(e.sequence_number, e.error_code.as_str(), out);
                }
                Ok(())
            }
            MiningMessage::CloseChannel(c) => {
                if self.is_ours(c.channel_id) {
                    return Err(SessionError::ChannelClosed {
                        reason: c.reason_code.as_str().to_string(),
                    });
                }
                Ok(())
            }
            MiningMessage::UpdateChannelError(e) => {
                tracing::warn!(code = e.error_code.as_str(), "pool refused UpdateChannel");
                Ok(())
            }
            MiningMessage::NewMiningJob(j) => {
                // extended channels take extended jobs only; a standard job cannot be split
                tracing::warn!(
                    channel = j.channel_id,
                    "NewMiningJob on an extended channel ignored"
                );
                Ok(())
            }
            other => Err(SessionError::Protocol {
                reason: format!("unexpected {} from a pool", other.name()),
            }),
        }
    }

    fn on_opened(
        &mut self,
        s: &m::OpenExtendedMiningChannelSuccess,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        let size = u8::try_from(s.extranonce_size).map_err(|_| SessionError::Protocol {
            reason: format!(
                "extranonce_size {} does not fit 32 bytes",
                s.extranonce_size
            ),
        })?;
        if s.extranonce_size < self.cfg.min_extranonce_size {
            return Err(SessionError::Protocol {
                reason: format!(
                    "pool granted extranonce_size {} below the {} asked for",
                    s.extranonce_size, self.cfg.min_extranonce_size
                ),
            });
        }
        let target = Target::from_le_bytes(s.target.0);
        let channel = Channel::new_extended(
            s.channel_id,
            s.extranonce_prefix.as_slice(),
            size,
            target,
            ChannelConfig {
                version_mask: if self.fixed_version {
                    0
                } else {
                    ChannelConfig::default().version_mask
                },
                ..ChannelConfig::default()
            },
        )
        .map_err(Self::channel_err("OpenExtendedMiningChannel.Success"))?;
        self.channels
            .insert(channel)
            .map_err(Self::channel_err("OpenExtendedMiningChannel.Success"))?;
        if s.group_channel_id != 0 && s.group_channel_id != s.channel_id {
            let full = s.extranonce_prefix.as_slice().len() + usize::from(size);
            let _ = self.channels.create_group(s.group_channel_id, Some(full));
            self.channels
                .add_to_group(s.group_channel_id, s.channel_id)
                .map_err(Self::channel_err("OpenExtendedMiningChannel.Success"))?;
        }
        self.channel_id = s.channel_id;
        self.extranonce_size = s.extranonce_size;
        self.state = State::Open;
        self.opened = Some(now);
        out.push(Action::Opened(ChannelInfo {
            channel_id: s.channel_id,
            extranonce_prefix: Bytes::copy_from_slice(s.extranonce_prefix.as_slice()),
            extranonce_size: s.extranonce_size,
            target,
            group_channel_id: s.group_channel_id,
        }));
        Ok(())
    }

    /// The current work from the channel's active job, if it has one.
    pub fn current_work(&self, clean: bool) -> Option<UpstreamWork> {
        let ch = self.channel()?;
        let job = ch.active_job()?;
        let prev = ch.prev_hash()?;
        let ext = job.extended()?;
        let extranonce_size = match ch.kind() {
            ChannelKind::Extended { extranonce_size } => u16::from(extranonce_size),
            ChannelKind::Standard => 0,
        };
        Some(UpstreamWork {
            epoch: 0,
            seq: self.seq,
            job_id: job.id(),
            version: job.version(),
            version_rolling_allowed: job.version_mask() != 0,
            version_mask: job.version_mask(),
            prev_hash: prev.prev_hash,
            nbits: prev.nbits,
            min_ntime: job.min_ntime().unwrap_or(prev.min_ntime),
            coinbase_prefix: ext.coinbase_prefix.clone(),
            coinbase_suffix: ext.coinbase_suffix.clone(),
            merkle_path: ext.merkle_path.clone(),
            extranonce_prefix: Bytes::copy_from_slice(job.extranonce_prefix()),
            extranonce_size,
            id_width: 0,
            extranonce2_size: 0,
            upstream_target: job.target(),
            clean,
        })
    }

    fn emit_work(&mut self, clean: bool, out: &mut Vec<Action>) {
        self.seq += 1;
        if let Some(w) = self.current_work(clean) {
            self.work_job = Some(w.job_id);
            out.push(Action::Work(w));
        }
    }

    /// Forwards a share as `SubmitSharesExtended` (with the worker-name TLV when 0x0002 was
    /// granted). Before the channel is open the share comes straight back as
    /// [`CODE_STALE_UPSTREAM`]. The share's `epoch` is not checked here (the caller's job).
    pub fn submit(&mut self, share: ForwardShare, out: &mut Vec<Action>) {
        if !self.is_open() {
            out.push(Action::ShareResult {
                share,
                accepted: false,
                code: Some(CODE_STALE_UPSTREAM.into()),
            });
            return;
        }
        let Ok(extranonce) = B0_32::new(&share.extranonce) else {
            out.push(Action::ShareResult {
                share,
                accepted: false,
                code: Some(m::ERROR_BAD_EXTRANONCE_SIZE.into()),
            });
            return;
        };
        let sequence_number = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let tlvs = if self.worker_tlv && !share.worker.is_empty() {
            UserIdentity::new(truncate_utf8(&share.worker, 32))
                .map(|id| vec![id.to_tlv()])
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push(Action::Send {
            msg: SubmitSharesExtended {
                channel_id: self.channel_id,
                sequence_number,
                job_id: share.job_id,
                nonce: share.nonce,
                ntime: share.ntime,
                version: share.version,
                extranonce,
            }
            .into(),
            tlvs,
        });
        if self.pending.len() >= self.cfg.max_pending_shares.max(1) {
            if let Some((_, oldest)) = self.pending.pop_front() {
                tracing::warn!(
                    pending = self.cfg.max_pending_shares,
                    "pool does not answer shares: the oldest is given up"
                );
                out.push(Action::ShareResult {
                    share: oldest,
                    accepted: false,
                    code: Some(CODE_NO_RESPONSE.into()),
                });
            }
        }
        self.pending.push_back((sequence_number, share));
    }

    fn on_success(&mut self, last: u32, count: u32, out: &mut Vec<Action>) {
        let mut acked = 0u32;
        while let Some((seq, _)) = self.pending.front() {
            if !seq_le(*seq, last) {
                break;
            }
            if let Some((_, share)) = self.pending.pop_front() {
                acked += 1;
                out.push(Action::ShareResult {
                    share,
                    accepted: true,
                    code: None,
                });
            }
        }
        if acked != count {
            tracing::debug!(
                acked,
                count,
                last,
                "SubmitShares.Success count differs from the shares it acknowledges"
            );
        }
    }

    fn on_share_error(&mut self, sequence_number: u32, code: &str, out: &mut Vec<Action>) {
        match self.pending.iter().position(|(s, _)| *s == sequence_number) {
            Some(i) => {
                if let Some((_, share)) = self.pending.remove(i) {
                    out.push(Action::ShareResult {
                        share,
                        accepted: false,
                        code: Some(code.to_string()),
                    });
                }
            }
            None => tracing::debug!(
                sequence_number,
                code,
                "SubmitShares.Error for a share not pending"
            ),
        }
    }

    /// Sends `UpdateChannel` with a new nominal hashrate (no maximum target). Ignored before
    /// the channel is open.
    pub fn update_hashrate(&mut self, hashrate: f32, out: &mut Vec<Action>) {
        if !self.is_open() || !hashrate.is_finite() || hashrate < 0.0 {
            return;
        }
        send(
            out,
            UpdateChannel {
                channel_id: self.channel_id,
                nominal_hash_rate: hashrate,
                maximum_target: U256([0xff; 32]),
            },
        );
    }

    /// The connection ended: every unanswered share comes back as
    /// [`CODE_UPSTREAM_CLOSED`] (the pool may or may not have counted it).
    pub fn close(&mut self, out: &mut Vec<Action>) {
        for (_, share) in self.pending.drain(..) {
            out.push(Action::ShareResult {
                share,
                accepted: false,
                code: Some(CODE_UPSTREAM_CLOSED.into()),
            });
        }
        self.state = State::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_order_wraps() {
        assert!(seq_le(1, 1));
        assert!(seq_le(1, 2));
        assert!(!seq_le(2, 1));
        assert!(seq_le(u32::MAX, 0));
        assert!(!seq_le(0, u32::MAX));
    }

    #[test]
    fn worker_names_are_cut_on_char_boundaries() {
        assert_eq!(truncate_utf8("abc", 32), "abc");
        let long = "é".repeat(20); // 40 bytes
        let cut = truncate_utf8(&long, 32);
        assert_eq!(cut.len(), 32);
        let odd = format!("a{long}"); // 'a' + 40 bytes: cut at 31
        assert_eq!(truncate_utf8(&odd, 32).len(), 31);
    }
}
