//! One pool connection as a synchronous state machine: the SV2 client side of the Mining
//! Protocol for one or more extended channels on one connection. Messages from the pool,
//! shares and the current time go in; messages to send and [`Action`]s come out. No I/O.
//!
//! ```text
//!  start() ──SetupConnection──▶ AwaitSetup ──.Success──▶ AwaitChannel ──channel 0 .Success──▶ Open
//!                                  │  (sends [RequestExtensions] + one OpenExtendedMiningChannel
//!                                  │   per wanted channel; more later with set_channels)
//!                                  └─ .Error / timeout / protocol error ──▶ SessionError (end)
//!  close(): every unanswered share comes back as `upstream-closed`; the session is over.
//! ```
//!
//! Channels are numbered on the proxy side (0, 1, 2...): channel `i` is opened with
//! `request_id = i + 1`, and every [`Action`] about a channel names that index. Channel 0 is
//! the session's lifeline: its refusal or its absence past the setup timeout ends the
//! session (the supervisor fails over). A further channel the pool refuses is reported
//! ([`Action::ChannelRefused`]) and stays without work; the others go on.
//!
//! The channels' jobs, prevhashes, targets, extranonce prefixes and group membership are
//! tracked by [`strata_work::channel::Channels`] (client side): a job or prevhash addressed
//! to a group channel (`SetGroupChannel`) reaches every member, and each member whose active
//! job changed gets its own [`Action::Work`]. Shares get increasing sequence numbers per
//! channel and wait in a bounded pending queue until `SubmitShares.Success` (which
//! acknowledges every pending sequence number up to `last_sequence_number`) or
//! `SubmitShares.Error` answers them.
//!
//! Rooms: this file holds the state and the setup; `incoming.rs` what the pool's messages do;
//! `work_and_shares.rs` the work, shares, hashrate updates and closing; `custom.rs` custom
//! jobs (work selection); `tests.rs` the tests.

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

mod custom;
mod incoming;
#[cfg(test)]
mod tests;
mod work_and_shares;

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
    /// `user_identity` of the channels (the pool account / payout name).
    pub user_identity: String,
    /// Nominal hashrate announced at open (hashes per second), for a channel without its own
    /// figure in [`SessionConfig::channel_hashrates`].
    pub nominal_hashrate: f32,
    /// Channels to open at once (at least 1; more may be asked with
    /// [`UpstreamSession::set_channels`]).
    pub channels: usize,
    /// Nominal hashrate of channel `i` at open (the last `UpdateChannel` value), by index.
    pub channel_hashrates: Vec<f32>,
    /// `min_extranonce_size` asked for (bytes the proxy splits among its miners).
    pub min_extranonce_size: u16,
    /// Ask for extension 0x0002 and tag shares with the worker name when granted.
    pub request_worker_identity: bool,
    /// Shares waiting for an answer at most; when full the oldest is given up as
    /// [`CODE_NO_RESPONSE`].
    pub max_pending_shares: usize,
    /// Time from [`UpstreamSession::start`] to channel 0 being open.
    pub setup_timeout: Duration,
    /// Time from channel 0 being open to its first job on a prevhash.
    pub first_job_timeout: Duration,
    /// `endpoint_host` of SetupConnection.
    pub endpoint_host: String,
    /// `endpoint_port` of SetupConnection.
    pub endpoint_port: u16,
    /// `vendor` of SetupConnection.
    pub vendor: String,
    /// `firmware` of SetupConnection.
    pub firmware: String,
    /// Set `REQUIRES_WORK_SELECTION` (the proxy's Job Declarator Client sends
    /// `SetCustomMiningJob`, [`UpstreamSession::set_custom_job`]).
    pub work_selection: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            user_identity: String::new(),
            nominal_hashrate: 0.0,
            channels: 1,
            channel_hashrates: Vec::new(),
            min_extranonce_size: super::DEFAULT_MIN_EXTRANONCE_SIZE,
            request_worker_identity: true,
            max_pending_shares: 8192,
            setup_timeout: Duration::from_secs(10),
            first_job_timeout: Duration::from_secs(15),
            endpoint_host: String::new(),
            endpoint_port: 0,
            vendor: "strata".into(),
            firmware: concat!("strata-proxy/", env!("CARGO_PKG_VERSION")).into(),
            work_selection: false,
        }
    }
}

/// An open channel, as the pool granted it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    /// The proxy-side index of the channel (0, 1, 2...).
    pub index: usize,
    /// The channel id.
    pub channel_id: u32,
    /// The channel's `extranonce_prefix` (current: updated by SetExtranoncePrefix).
    pub extranonce_prefix: Bytes,
    /// Bytes the proxy rolls after the prefix.
    pub extranonce_size: u16,
    /// The target the pool opened the channel with. A later `SetTarget` stays in the channel
    /// state ([`UpstreamSession::channel`]) and goes out with the work of the jobs activated
    /// after it (spec 5.3.21).
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
    /// A channel is open.
    Opened(ChannelInfo),
    /// The pool refused to open channel `channel` (never channel 0: that ends the session).
    ChannelRefused {
        /// The channel's index.
        channel: usize,
        /// The `OpenMiningChannel.Error` code.
        code: String,
    },
    /// The active job of channel `channel` changed: its current work (`epoch`, `id_width` and
    /// `extranonce2_size` are 0, for the hub to fill).
    Work {
        /// The channel's index.
        channel: usize,
        /// The work.
        work: UpstreamWork,
    },
    /// `SetExtranoncePrefix`: jobs of channel `channel` from now on use this prefix (size
    /// unchanged).
    ExtranoncePrefix {
        /// The channel's index.
        channel: usize,
        /// The new prefix.
        prefix: Bytes,
    },
    /// The pool's answer to a [`UpstreamSession::set_custom_job`].
    CustomJob {
        /// The channel's index.
        channel: usize,
        /// The `request_id` the job was sent with.
        request_id: u32,
        /// The job id to submit shares with, or the `SetCustomMiningJob.Error` code.
        result: Result<u32, String>,
    },
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
    /// `OpenMiningChannel.Error` for channel 0.
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
    /// Channel 0 not open within [`SessionConfig::setup_timeout`].
    #[error("no open channel within {secs:.1}s")]
    SetupTimeout {
        /// The timeout.
        secs: f64,
    },
    /// No job within [`SessionConfig::first_job_timeout`] of channel 0 opening.
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

/// One channel of the session, by proxy-side index.
#[derive(Debug)]
enum Chan {
    /// `OpenExtendedMiningChannel` sent, no answer yet.
    Opening,
    /// Open.
    Open(OpenChan),
    /// `OpenMiningChannel.Error`.
    Refused,
}

#[derive(Debug)]
struct OpenChan {
    channel_id: u32,
    /// Job id of the last emitted work.
    work_job: Option<u32>,
    /// A custom job of ours was accepted on it: the pool serves the channel even if it
    /// sends no job of its own (SRI's pool sends none to a `REQUIRES_WORK_SELECTION`
    /// channel), so the first-job timer is off.
    custom_job: bool,
    next_sequence: u32,
    /// Shares sent and not yet answered, in sequence order.
    pending: VecDeque<(u32, ForwardShare)>,
}

/// The client side of one pool connection (see the module docs).
#[derive(Debug)]
pub struct UpstreamSession {
    cfg: SessionConfig,
    state: State,
    started: Option<Instant>,
    opened: Option<Instant>,
    /// Channels wanted (opened once the setup is done).
    wanted: usize,
    /// Channels asked for so far, by index.
    chans: Vec<Chan>,
    channels: Channels,
    worker_tlv: bool,
    /// The pool set REQUIRES_FIXED_VERSION: no version rolling.
    fixed_version: bool,
    seq: u64,
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
            state: State::Idle,
            started: None,
            opened: None,
            wanted: cfg.channels.max(1),
            chans: Vec::new(),
            channels: Channels::new(),
            worker_tlv: false,
            fixed_version: false,
            seq: 0,
            cfg,
        }
    }

    /// Whether channel 0 is open (the session is usable).
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether channel `index` is open.
    pub fn is_channel_open(&self, index: usize) -> bool {
        self.state == State::Open && self.open_chan(index).is_some()
    }

    /// Channels asked for so far (open, opening or refused).
    pub fn channel_count(&self) -> usize {
        self.chans.len()
    }

    fn open_chan(&self, index: usize) -> Option<&OpenChan> {
        match self.chans.get(index) {
            Some(Chan::Open(c)) => Some(c),
            _ => None,
        }
    }

    fn open_chan_mut(&mut self, index: usize) -> Option<&mut OpenChan> {
        match self.chans.get_mut(index) {
            Some(Chan::Open(c)) => Some(c),
            _ => None,
        }
    }

    /// The index of our channel with upstream id `channel_id`.
    fn index_of(&self, channel_id: u32) -> Option<usize> {
        self.chans
            .iter()
            .position(|c| matches!(c, Chan::Open(o) if o.channel_id == channel_id))
    }

    /// The indices of our channels a message to `id` reaches: the channel itself, or every
    /// member of the group `id`.
    fn addressed(&self, id: u32) -> Vec<usize> {
        if let Some(i) = self.index_of(id) {
            return vec![i];
        }
        self.channels
            .group(id)
            .map(|g| {
                g.members()
                    .iter()
                    .filter_map(|&m| self.index_of(m))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether extension 0x0002 was granted (shares carry the worker name).
    pub fn worker_identity_granted(&self) -> bool {
        self.worker_tlv
    }

    /// Shares waiting for an answer (all channels).
    pub fn pending_shares(&self) -> usize {
        self.chans
            .iter()
            .map(|c| match c {
                Chan::Open(o) => o.pending.len(),
                _ => 0,
            })
            .sum()
    }

    /// Channel `index`, once open.
    pub fn channel(&self, index: usize) -> Option<&Channel> {
        let id = self.open_chan(index)?.channel_id;
        self.channels
            .get(id)
            .filter(|_| self.state != State::Closed)
    }

    /// Asks for `wanted` channels in all: the missing ones are opened now (or once the
    /// setup is done). Channels are never closed by asking for fewer.
    pub fn set_channels(&mut self, wanted: usize, out: &mut Vec<Action>) {
        self.wanted = self.wanted.max(wanted);
        if matches!(self.state, State::AwaitChannel | State::Open) {
            self.open_missing(out);
        }
    }

    fn open_missing(&mut self, out: &mut Vec<Action>) {
        while self.chans.len() < self.wanted {
            let index = self.chans.len();
            self.chans.push(Chan::Opening);
            let hashrate = self
                .cfg
                .channel_hashrates
                .get(index)
                .copied()
                .unwrap_or(self.cfg.nominal_hashrate);
            send(
                out,
                OpenExtendedMiningChannel {
                    request_id: index as u32 + 1,
                    user_identity: Str0_255::truncated(&self.cfg.user_identity),
                    nominal_hash_rate: hashrate,
                    max_target: U256([0xff; 32]),
                    min_extranonce_size: self.cfg.min_extranonce_size,
                },
            );
        }
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
                flags: m::REQUIRES_VERSION_ROLLING
                    | if self.cfg.work_selection {
                        m::REQUIRES_WORK_SELECTION
                    } else {
                        0
                    },
                endpoint_host: Str0_255::truncated(&self.cfg.endpoint_host),
                endpoint_port: self.cfg.endpoint_port,
                vendor: Str0_255::truncated(&self.cfg.vendor),
                hardware_version: Str0_255::default(),
                firmware: Str0_255::truncated(&self.cfg.firmware),
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
            State::Open
                if self
                    .open_chan(0)
                    .is_some_and(|c| c.work_job.is_none() && !c.custom_job) =>
            {
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
}
