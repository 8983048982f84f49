//! What the ledger stores and answers: shares, blocks and totals.

use serde::Serialize;

use super::Payout;

/// One accepted share, as the ledger stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShareRecord {
    /// Who the share is credited to in statistics: the channel's user identity, or
    /// `identity/worker` when a proxy tagged the share with a worker name (extension
    /// 0x0002), e.g. `"bcrt1q...x.rig1"`, `"bcrt1q...x/rig.7"`.
    pub worker: String,
    /// The user identity the channel was opened with: whom PPLNS pays for the share (the
    /// address before its first `.`, see [`crate::payout`]), whatever the worker label.
    /// Shares stored before the ledger kept it (schema version 1) read back with their
    /// `worker` here.
    pub channel_identity: String,
    /// The pool's id of the miner's connection.
    pub connection_id: u64,
    /// The channel the share was submitted on.
    pub channel_id: u32,
    /// The job the share solves.
    pub job_id: u32,
    /// `SubmitShares.sequence_number`.
    pub sequence_number: u32,
    /// Height of the block the job builds.
    pub height: u32,
    /// The channel's share difficulty when the share was accepted (its PPLNS weight); finite
    /// and non-negative.
    pub difficulty: f64,
    /// The header hash, in header (internal) byte order.
    pub hash: [u8; 32],
    /// When the pool accepted it, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Whether the share also met the network target.
    pub block: bool,
}

/// What a resolved [`CommitTicket`](super::CommitTicket) says: the shares are durable, with ids
/// `first_id .. first_id + count` in submission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CommitReceipt {
    /// Id of the first share of the request (0 when `count` is 0).
    pub first_id: i64,
    /// Number of shares committed.
    pub count: usize,
}

impl CommitReceipt {
    /// Id of the last share of the request, if it had any.
    pub fn last_id(&self) -> Option<i64> {
        let count = i64::try_from(self.count).ok()?;
        (count > 0).then(|| self.first_id + count - 1)
    }
}

/// The state of a found block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum BlockStatus {
    /// Handed to the template source, no verdict yet.
    Submitted,
    /// The node accepted it.
    Accepted,
    /// The node rejected it.
    Rejected {
        /// The node's reason.
        reason: String,
    },
}

/// A block the pool found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockRecord {
    /// Its height.
    pub height: u32,
    /// Block hash, display (RPC) hex; unique in the ledger.
    pub hash: String,
    /// The template it was built from.
    pub template_id: u64,
    /// Identity of the finder.
    pub worker: String,
    /// When it was found, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Total the pool's coinbase outputs paid (subsidy + fees available to the pool).
    pub reward_sats: u64,
    /// The pool's coinbase outputs, in coinbase order.
    pub outputs: Vec<Payout>,
    /// The PPLNS share-id range (inclusive) the split was computed from, if any.
    pub window: Option<(i64, i64)>,
    /// Payout mode: `"solo"` or `"pplns"`.
    pub mode: String,
    /// What the node said.
    pub status: BlockStatus,
    /// The payout rules the split followed, as JSON (`api::PayoutRules`: network, the pool's
    /// script, mode and its parameters), recorded with the block so that it verifies after
    /// the pool's settings change; `None` for blocks recorded before schema version 4.
    /// Served by `/api/v1/blocks/{hash}`, not in the block lists.
    #[serde(skip)]
    pub payout_rules: Option<String>,
}

/// Ledger-wide totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Accepted shares stored.
    pub shares_accepted: u64,
    /// Sum of their difficulty.
    pub difficulty: f64,
    /// Blocks recorded (any status).
    pub blocks_found: u64,
    /// Blocks the node accepted.
    pub blocks_accepted: u64,
    /// Per worker identity, sorted by identity.
    pub workers: Vec<WorkerTotals>,
}

/// One worker's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerTotals {
    /// The user identity.
    pub worker: String,
    /// Accepted shares.
    pub shares: u64,
    /// Sum of their difficulty.
    pub difficulty: f64,
    /// Time of its latest share, milliseconds since the Unix epoch.
    pub last_share_ms: u64,
}
