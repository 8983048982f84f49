//! The pool as Job Declarator Server (spec 6): miners' Job Declarator Clients (JDC) declare
//! the blocks they want to mine (their own transaction selection) and the pool checks them
//! before the mining side accepts them as custom jobs.
//!
//! ```text
//!   JDC                                               JdsSession (sans-IO)       edge
//!     SetupConnection(protocol 1, DECLARE_TX_DATA) -->
//!     AllocateMiningJobToken                       -->  token bound to the connection,
//!                                                  <--  .Success(token, required outputs)
//!     DeclareMiningJob(token, coinbase, wtxids)    -->  token used up; coinbase checked
//!                                                       against the token's outputs; wtxids
//!                                                       looked up in the MempoolView
//!                                                  <--  ProvideMissingTransactions (unknown)
//!     ProvideMissingTransactions.Success           -->  wtxids checked
//!                                                       Action::CheckBlock  ------------> node
//!                                                       JdsSession::on_check <----------- (proposal)
//!                                                  <--  DeclareMiningJob.Success / .Error
//!                                                       Action::Declared (mining side)
//!     PushSolution                                 -->  Action::SubmitBlock
//! ```
//!
//! [`JdsSession`] is a synchronous state machine: messages, node answers and the time come
//! in as values with a [`JdsContext`] (the current tip, the coinbase outputs the pool
//! requires, the edge's [`MempoolView`]); [`Action`]s go out. The session owns only its own
//! connection's tokens and declarations; accepted jobs leave as [`DeclaredJob`]s for the one
//! owner the mining side asks.
//!
//! Only Full-Template mode is served (like SRI's JDS): `SetupConnection` must set
//! `DECLARE_TX_DATA`.

mod coinbase;
pub mod edge;
mod registry;
mod session;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::Transaction;

use crate::payout::Split;

pub use coinbase::{block_subsidy, check_required_outputs, DeclaredCoinbase, MAX_EXTRANONCE_LEN};
pub use registry::Registry;
pub use session::{Action, JdsSession};

/// Bounds of one JDS connection (`[jds]` in the pool's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JdsLimits {
    /// How long an allocated token may wait for its DeclareMiningJob, and how long a
    /// declaration may wait for its missing transactions or the node's answer.
    pub token_lifetime: Duration,
    /// Allocated, undeclared tokens one connection may hold; allocating more drops the
    /// oldest.
    pub max_tokens: usize,
    /// Declarations of one connection waiting for missing transactions or the node; more
    /// are refused with `DeclareMiningJob.Error` (the token stays usable).
    pub max_pending: usize,
    /// Transactions one declaration may leave to ProvideMissingTransactions; a declaration
    /// with more unknown transactions is refused (`missing-txs`).
    pub max_missing_txs: usize,
    /// Accepted declarations one connection keeps (for PushSolution and custom jobs); the
    /// oldest is forgotten first.
    pub max_declared_jobs: usize,
    /// How long a declaration one block ahead of the pool's tip waits for the pool's node to
    /// reach that tip (the JDC's node often sees a block a moment before the pool's); then
    /// it is refused `stale-chain-tip`. Such declarations count in `max_pending`.
    pub tip_wait: Duration,
}

impl Default for JdsLimits {
    fn default() -> Self {
        JdsLimits {
            token_lifetime: Duration::from_secs(120),
            max_tokens: 16,
            max_pending: 4,
            max_missing_txs: 4_096,
            max_declared_jobs: 8,
            tip_wait: Duration::from_secs(3),
        }
    }
}

/// The chain tip the pool's node is on (from the pool's current template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTip {
    /// Hash of the tip, in header byte order.
    pub prev_hash: [u8; 32],
    /// Height of the next block.
    pub height: u32,
    /// nBits of the next block.
    pub nbits: u32,
    /// Smallest valid nTime of the next block.
    pub min_ntime: u32,
    /// The next block's subsidy ([`block_subsidy`]): required outputs are never paid less
    /// than their part of it.
    pub subsidy: u64,
}

/// Transactions the edge knows from the pool's node mempool, by wtxid (internal byte order,
/// as `DeclareMiningJob.wtxid_list` carries them).
pub trait MempoolView {
    /// The transaction with this wtxid, if the node has it.
    fn by_wtxid(&self, wtxid: &[u8; 32]) -> Option<Arc<Transaction>>;
}

impl MempoolView for HashMap<[u8; 32], Arc<Transaction>> {
    fn by_wtxid(&self, wtxid: &[u8; 32]) -> Option<Arc<Transaction>> {
        self.get(wtxid).cloned()
    }
}

/// What a JDS session needs to know about the pool at each input.
pub struct JdsContext<'a> {
    /// The node's tip.
    pub tip: ChainTip,
    /// The payouts the pool would put in its own coinbase now (PPLNS: the current split);
    /// a token carries the ones current when it was allocated, and a declared coinbase must
    /// pay at least their outputs.
    pub required: &'a Arc<Split>,
    /// PPLNS: the ledger share ids `(first, last)` of `required`'s window.
    pub window: Option<(i64, i64)>,
    /// The node's mempool, as the edge keeps it.
    pub mempool: &'a (dyn MempoolView + Sync),
}

impl std::fmt::Debug for JdsContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JdsContext")
            .field("tip", &self.tip)
            .field("required", &self.required)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// A declaration the pool accepted: what the mining side needs to accept `SetCustomMiningJob`
/// with its token, and the JDS to rebuild the block of a `PushSolution`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredJob {
    /// `DeclareMiningJob.Success.new_mining_job_token` (8 bytes, little endian on the wire).
    pub token: u64,
    /// The JDS connection that declared it.
    pub conn_id: u64,
    /// The tip it builds on (header order).
    pub prev_hash: [u8; 32],
    /// Its height.
    pub height: u32,
    /// nBits of its block.
    pub nbits: u32,
    /// Smallest valid nTime.
    pub min_ntime: u32,
    /// Declared header version.
    pub version: u32,
    /// The declared coinbase.
    pub coinbase: DeclaredCoinbase,
    /// The block's other transactions, in block order.
    pub transactions: Vec<Arc<Transaction>>,
    /// Merkle path of the coinbase (siblings, deepest first).
    pub merkle_path: Vec<[u8; 32]>,
    /// The payouts the coinbase pays at least (their outputs), as the ledger records them.
    pub split: Arc<Split>,
    /// PPLNS: the ledger share ids of the split's window.
    pub window: Option<(i64, i64)>,
    /// After this the token no longer opens custom jobs.
    pub expires: Instant,
}
