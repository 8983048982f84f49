//! The SV2 mining-server role
//! ([spec 5](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md)) as
//! one synchronous core, driven by the pool (toward its miners) and by the proxy's SV2
//! downstream (toward the miners and proxies behind it). No I/O, no tokio: decoded messages
//! and the time go in, messages to send come out, and what only the role can decide comes
//! back as a [`Request`].
//!
//! ```text
//!   AwaitSetup --SetupConnection(mining, v2)--> Ready --(protocol violation)--> Closed
//!        \--anything else / unsupported flags / second setup--------------------^
//! ```
//!
//! The two roles differ only in where work comes from and where accepted shares go:
//!
//! | | pool | proxy downstream |
//! |---|---|---|
//! | extranonce prefix of a new channel | its own prefix allocator | its slice of the upstream channel: `extranonce1(miner) ‖ block` |
//! | a job | a template and the pool's coinbase | the upstream job, the same coinbase |
//! | an accepted share | the ledger; acknowledged after commit | forwarded upstream if it meets the upstream target; acknowledged at once |
//! | custom jobs | with its Job Declarator's tokens | refused (`jd-not-supported`) |
//!
//! What the core owns, for both: the setup and extension negotiation, channel admission
//! (capacity, nominal hashrate, maximum target, extranonce sizes), channel ids and the group
//! of the connection's standard channels, the channels' job state (from
//! [`strata_work::channel`]), job messages built from a [`JobSpec`] (standard jobs as merkle
//! roots, extended jobs as coinbase parts, group jobs, `SetNewPrevHash`,
//! `SetExtranoncePrefix`), share validation, per-channel vardiff (`SetTarget` on ticks and
//! `UpdateChannel`, never harder than the role's floor nor easier than the device's maximum),
//! and acknowledgements ([`AckPolicy`]).
//!
//! A role drives it like this:
//!
//! ```
//! use std::sync::Arc;
//! use strata_protocol::common::SetupConnection;
//! use strata_protocol::mining::OpenStandardMiningChannel;
//! use strata_protocol::wire::{Str0_255, U256};
//! use strata_protocol::Message;
//! use strata_server::{Placement, Request, ServerConfig, ServerCore, Now};
//! use strata_work::target::Target;
//!
//! #[derive(Debug)]
//! enum Out { Send(Message), Close(String) }
//! impl strata_server::Output for Out {
//!     fn send(msg: Message) -> Self { Out::Send(msg) }
//!     fn close(reason: String) -> Self { Out::Close(reason) }
//! }
//!
//! let mut core: ServerCore<(), ()> = ServerCore::new(Arc::new(ServerConfig::default()));
//! let (now, mut out) = (Now::current(), Vec::<Out>::new());
//! let setup = SetupConnection {
//!     protocol: 0, min_version: 2, max_version: 2, flags: 0,
//!     endpoint_host: Str0_255::new("pool").unwrap(), endpoint_port: 3333,
//!     vendor: Str0_255::default(), hardware_version: Str0_255::default(),
//!     firmware: Str0_255::default(), device_id: Str0_255::default(),
//! };
//! assert!(core.on_message(setup.into(), &[], now, &mut out).is_none());
//! let open = OpenStandardMiningChannel {
//!     request_id: 1, user_identity: Str0_255::new("alice").unwrap(),
//!     nominal_hash_rate: 1e6, max_target: U256([0xff; 32]),
//! };
//! let Some(Request::Open(admission)) = core.on_message(open.into(), &[], now, &mut out) else {
//!     panic!()
//! };
//! // the role places the channel in its extranonce space
//! let placement = Placement { extranonce_prefix: vec![0, 0, 0, 1], extranonce_size: 0,
//!     floor: Target::ZERO, group: false, data: () };
//! let id = core.open(*admission, placement, &mut out).unwrap();
//! assert_eq!(core.channel(id).unwrap().extranonce_prefix(), [0, 0, 0, 1]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod core;
mod jobs;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use strata_protocol::mining::{SetCustomMiningJob, SubmitSharesExtended, SubmitSharesStandard};
use strata_protocol::Message;
use strata_work::channel::{ChannelConfig, ExtendedWork};
use strata_work::share::{AcceptedShare, Rejection};
use strata_work::target::Target;
use strata_work::vardiff::{Vardiff, VardiffConfig};

pub use crate::core::{ChannelState, ServerCore};
pub use strata_work::time::Now;

/// What the core emits besides the role's own outputs: the role's output type (its event or
/// action enum) implements this, so the core writes into the role's queue directly.
pub trait Output: Sized {
    /// Send this message to the client.
    fn send(msg: Message) -> Self;
    /// Close the connection after sending what precedes; the reason is logged.
    fn close(reason: String) -> Self;
}

/// When accepted shares are acknowledged (`SubmitShares.Success`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPolicy {
    /// The role acknowledges them once it stored them ([`ServerCore::on_committed`]): the
    /// pool, after its ledger commit.
    AfterCommit,
    /// The core batches them per channel until [`ServerCore::flush_acks`]: the proxy, which
    /// credits them locally.
    Batched,
}

/// Settings of the server role shared by every connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Channel limits (jobs kept, duplicate memory, version mask...).
    pub channel: ChannelConfig,
    /// Difficulty adjustment per channel.
    pub vardiff: VardiffConfig,
    /// Channels one connection may open (opens the role holds back included).
    pub max_channels: usize,
    /// Whether clients may set `REQUIRES_WORK_SELECTION` and send `SetCustomMiningJob`.
    pub work_selection: bool,
    /// Whether extension 0x0002 (worker-specific hashrate tracking: a user identity TLV on
    /// `SubmitSharesExtended`) is offered.
    pub worker_identity: bool,
    /// When accepted shares are acknowledged.
    pub acks: AckPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            channel: ChannelConfig::default(),
            vardiff: VardiffConfig::default(),
            max_channels: 1024,
            work_selection: false,
            worker_identity: true,
            acks: AckPolicy::AfterCommit,
        }
    }
}

/// The kind of channel a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelRequest {
    /// `OpenStandardMiningChannel`: header-only mining on a fixed full extranonce.
    Standard,
    /// `OpenExtendedMiningChannel`: the client rolls at least `min_extranonce_size` bytes.
    Extended {
        /// The client's minimum.
        min_extranonce_size: u16,
    },
}

/// An open request that passed the core's checks (capacity, nominal hashrate, maximum
/// target): the role places it ([`ServerCore::open`]) or refuses it
/// ([`ServerCore::refuse_open`]), now or later.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The request id to answer.
    pub request_id: u32,
    /// The user identity.
    pub user: String,
    /// Standard or extended.
    pub kind: ChannelRequest,
    /// The channel's vardiff, started from the nominal hashrate within `max_target`.
    pub vardiff: Vardiff,
    /// The device's maximum target.
    pub max_target: Target,
}

/// Where the role puts a new channel.
#[derive(Debug, Clone)]
pub struct Placement<C> {
    /// The channel's `extranonce_prefix` (a standard channel's full extranonce).
    pub extranonce_prefix: Vec<u8>,
    /// Bytes an extended channel rolls (ignored for standard channels).
    pub extranonce_size: u16,
    /// The hardest target the channel may get (the proxy's upstream target; `Target::ZERO`
    /// for none).
    pub floor: Target,
    /// Standard channels only: join the connection's group channel (its jobs then go to the
    /// group, spec 5.2.3) instead of standing alone.
    pub group: bool,
    /// The role's data for the channel.
    pub data: C,
}

/// A share the core validated and accepted; the role decides where it goes.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The share as validated (job, difficulty, hash, block candidate).
    pub share: AcceptedShare,
    /// The submit it came in.
    pub submit: Submit,
    /// The target of the share's job.
    pub job_target: Target,
    /// The user identity TLV (extension 0x0002) of an extended submit, when negotiated and
    /// present.
    pub worker: Option<String>,
}

/// A submit as received.
#[derive(Debug, Clone)]
pub enum Submit {
    /// `SubmitSharesStandard`.
    Standard(SubmitSharesStandard),
    /// `SubmitSharesExtended`.
    Extended(SubmitSharesExtended),
}

impl Submit {
    /// The channel.
    pub fn channel_id(&self) -> u32 {
        match self {
            Submit::Standard(s) => s.channel_id,
            Submit::Extended(s) => s.channel_id,
        }
    }
    /// The sequence number.
    pub fn sequence_number(&self) -> u32 {
        match self {
            Submit::Standard(s) => s.sequence_number,
            Submit::Extended(s) => s.sequence_number,
        }
    }
    /// `(nonce, ntime, version)` of the header.
    pub fn header_fields(&self) -> (u32, u32, u32) {
        match self {
            Submit::Standard(s) => (s.nonce, s.ntime, s.version),
            Submit::Extended(s) => (s.nonce, s.ntime, s.version),
        }
    }
    /// The rolled extranonce of an extended submit (empty for a standard one).
    pub fn extranonce(&self) -> &[u8] {
        match self {
            Submit::Standard(_) => &[],
            Submit::Extended(s) => s.extranonce.as_slice(),
        }
    }
}

/// What the core cannot decide alone: the role answers each.
#[derive(Debug)]
pub enum Request<C> {
    /// An open request passed the core's checks: place it ([`ServerCore::open`]) or refuse
    /// it ([`ServerCore::refuse_open`]).
    Open(Box<Admission>),
    /// A share was accepted (vardiff counted, batched for acknowledgement under
    /// [`AckPolicy::Batched`]).
    Accepted(Box<Accepted>),
    /// A share was refused (already answered with `SubmitShares.Error`).
    Rejected {
        /// The channel named by the submit.
        channel_id: u32,
        /// Why.
        rejection: Rejection,
    },
    /// The client closed channels: release what the role holds for them.
    Closed(Vec<(u32, ChannelState<C>)>),
    /// A channel took an `UpdateChannel` (new nominal hashrate and maximum target).
    Updated {
        /// The channel.
        channel_id: u32,
    },
    /// A `SetCustomMiningJob` on a connection that negotiated work selection.
    CustomJob(Box<SetCustomMiningJob>),
}

/// One job for a channel or a group, as the role's work source gives it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Block header nVersion.
    pub version: u32,
    /// Whether the client may roll version bits.
    pub version_rolling_allowed: bool,
    /// The coinbase around the extranonce and the merkle path.
    pub work: Arc<ExtendedWork>,
    /// `None`: a future job (a `SetNewPrevHash` activates it); `Some(t)`: active at once on
    /// the channel's current prevhash, from nTime `t` (raised to the prevhash's own).
    pub min_ntime: Option<u32>,
}

/// A new chain tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrevHashSpec {
    /// Previous block hash, header byte order.
    pub prev_hash: [u8; 32],
    /// nBits.
    pub nbits: u32,
    /// Smallest nTime.
    pub min_ntime: u32,
}

/// A share accepted but not yet acknowledged ([`AckPolicy::AfterCommit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAck {
    /// Channel of the share.
    pub channel_id: u32,
    /// Its sequence number.
    pub sequence_number: u32,
    /// Its difficulty.
    pub difficulty: f64,
}
