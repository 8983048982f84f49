//! What flows between the upstream side and the miners, shared by every module.
//!
//! ```text
//!  pool(s) ──SV2──▶ upstream tasks ──UpstreamEvent──▶ hub ──watch<Arc<UpstreamWork>>──▶ miner tasks
//!                     ▲    ▲                         │     (one watch per channel)      │ │
//!                     │    │                         │  ◀──HubRequest (join/leave/...)──┘ │
//!                     │    └──── UpstreamCommand ────┘                                    │
//!                     └──────────── ShareRoute (shares, from the work) ───────────────────┘
//! ```
//!
//! A forwarded share goes from its miner's task straight into the active pool connection's
//! queue, through the [`ShareRoute`](crate::upstream::ShareRoute) the hub put in the work it
//! published ([`queue_share`]), and the pool's answer comes back to the hub: one hand-off
//! each way. A share the route refuses (work of an older epoch, a full queue) goes to the
//! hub instead, which answers it.
//!
//! The proxy holds one or more extended channels on the active pool, numbered 0, 1, 2... on
//! the proxy side (`upstream.miners_per_channel` decides how many miners share one). The hub
//! owns each channel's state and extranonce splitter; each miner task owns its miner's
//! session (SV1 or SV2), follows its channel's work, validates its shares locally and sends
//! the hub only the shares that meet the upstream target.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strata_work::channel::ExtendedWork;
use strata_work::extranonce::MinerId;
use strata_work::target::Target;

/// The work every miner of one upstream channel derives its jobs from: that extended
/// channel's current job on its current prevhash (on the active pool).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamWork {
    /// Changes when the proxy switches to another upstream (or reopens its channel): miners
    /// must drop all previous work (SV1 `clean_jobs`) and may need a new extranonce1.
    pub epoch: u64,
    /// Increases with every new work.
    pub seq: u64,
    /// The upstream job id (what `SubmitSharesExtended.job_id` must carry).
    pub job_id: u32,
    /// Block header nVersion of the job.
    pub version: u32,
    /// Whether miners may roll version bits (within [`UpstreamWork::version_mask`]).
    pub version_rolling_allowed: bool,
    /// Version bits the upstream lets miners roll (BIP320 `0x1fffe000` unless told
    /// otherwise).
    pub version_mask: u32,
    /// Previous block hash, header byte order.
    pub prev_hash: [u8; 32],
    /// nBits of the header.
    pub nbits: u32,
    /// Smallest nTime (the job's `min_ntime`, or the prevhash's).
    pub min_ntime: u32,
    /// `coinbase_tx_prefix` (BIP141-stripped), i.e. SV1 `coinbase1`.
    pub coinbase_prefix: Bytes,
    /// `coinbase_tx_suffix` (BIP141-stripped), i.e. SV1 `coinbase2`.
    pub coinbase_suffix: Bytes,
    /// Merkle path, deepest first (SV1 `merkle_branch`).
    pub merkle_path: Arc<[[u8; 32]]>,
    /// The same coinbase parts and merkle path as the upstream channel's job holds them (with
    /// its cached coinbase-prefix state), shared by every miner's local channel instead of
    /// rebuilt per miner and job.
    pub extended: Arc<ExtendedWork>,
    /// The upstream channel's `extranonce_prefix`.
    pub extranonce_prefix: Bytes,
    /// The upstream channel's `extranonce_size` (bytes the proxy splits among miners).
    pub extranonce_size: u16,
    /// Bytes of miner id after the upstream prefix (the hub's
    /// [`strata_work::extranonce::ExtranonceSplitter::id_width`]).
    pub id_width: usize,
    /// Bytes each miner rolls (SV1 `extranonce2_size`); `id_width + extranonce2_size ==
    /// extranonce_size`.
    pub extranonce2_size: usize,
    /// Shares meeting this target are forwarded upstream.
    pub upstream_target: Target,
    /// True when this work starts a new prevhash (or a new epoch): older jobs are stale.
    pub clean: bool,
    /// The share route of the work's epoch, set by the hub when it publishes the work: a
    /// miner's task queues its shares straight into it (decision record 0010) and hands
    /// the hub only those the route refuses. `None` in work not published by the hub.
    pub route: Option<crate::upstream::ShareRoute>,
}

/// A miner task's view of its channel's work (`None` while the channel has none).
pub type WorkRx = tokio::sync::watch::Receiver<Option<Arc<UpstreamWork>>>;

/// Queues a miner's `share` into the route of its channel's current `work` (decision record
/// 0010: no hub wake-up on the way to the pool); gives it back when there is no such route
/// or the route refuses it (another epoch, a full queue), for the hub, which decides and
/// counts its answer.
pub fn queue_share(work: Option<&WorkRx>, share: ForwardShare) -> Option<ForwardShare> {
    let Some(work) = work else {
        return Some(share);
    };
    let work = work.borrow();
    match work.as_ref().and_then(|w| w.route.as_ref()) {
        Some(route) => route.submit(share).err().map(|(share, _)| share),
        None => Some(share),
    }
}

impl UpstreamWork {
    /// Miner `miner`'s `extranonce1`: the upstream prefix ‖ the miner id, big-endian in
    /// `id_width` bytes (as [`strata_work::extranonce::ExtranonceSplitter::extranonce1`]).
    pub fn extranonce1(&self, miner: MinerId) -> Vec<u8> {
        let mut e = self.extranonce_prefix.to_vec();
        let be = miner.0.to_be_bytes();
        for i in (0..self.id_width).rev() {
            e.push(if i < 4 { be[3 - i] } else { 0 });
        }
        e
    }
}

/// A miner's share that meets the upstream target, for the hub to forward as
/// `SubmitSharesExtended` on its upstream channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardShare {
    /// The proxy-side index of the upstream channel the miner works on (see
    /// [`crate::hub::Joined::channel`]); the share goes out on that channel.
    pub channel: usize,
    /// The miner (unique within its channel).
    pub miner: MinerId,
    /// Its worker name (extension 0x0002 user identity upstream, at most 32 bytes used).
    pub worker: String,
    /// [`UpstreamWork::epoch`] the share was mined in (shares of an old epoch are stale).
    pub epoch: u64,
    /// Upstream job id.
    pub job_id: u32,
    /// Header nonce.
    pub nonce: u32,
    /// Header nTime.
    pub ntime: u32,
    /// Full header nVersion (rolled bits included).
    pub version: u32,
    /// The upstream `extranonce` field: `extranonce_size` bytes after the upstream prefix
    /// (miner id ‖ extranonce2).
    pub extranonce: Bytes,
    /// The share's difficulty at the miner's target (for accounting).
    pub difficulty: f64,
    /// When the proxy took the miner's submit (the start of its acknowledgement latency,
    /// [`crate::hub::AckLatency`]).
    pub received: Instant,
}

/// Why a miner's share did not count, as reported to the miner and in statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    /// The job is not (or no longer) known.
    UnknownJob,
    /// The job was replaced by a new prevhash or upstream.
    Stale,
    /// Already submitted.
    Duplicate,
    /// Above the miner's target.
    LowDifficulty,
    /// Version bits outside the negotiated mask.
    BadVersion,
    /// nTime out of the allowed window.
    BadNtime,
    /// Wrong extranonce2 size or a malformed field.
    Malformed,
    /// Not authorized / not subscribed.
    Unauthorized,
    /// No upstream is connected: there is no valid work.
    NoUpstream,
}

impl RejectReason {
    /// A short stable code (API, metrics, logs).
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::UnknownJob => "unknown-job",
            RejectReason::Stale => "stale",
            RejectReason::Duplicate => "duplicate",
            RejectReason::LowDifficulty => "low-difficulty",
            RejectReason::BadVersion => "bad-version",
            RejectReason::BadNtime => "bad-ntime",
            RejectReason::Malformed => "malformed",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::NoUpstream => "no-upstream",
        }
    }
}
