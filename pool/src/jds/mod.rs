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
//! The required outputs are the ones the pool would put in its own coinbase ([`Required`]):
//! in PPLNS mode the current split of the window, the same for every token; in solo mode
//! each token's own, paying the address of its `user_identifier` as the pool pays a channel
//! of that identity ([`solo_split`](crate::payout::solo_split)). A solo
//! `user_identifier` without a valid address (the part before the first `.`) closes the
//! connection, as the mining side refuses a channel of such an identity.
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

use bitcoin::{Network, ScriptBuf, Transaction};

use crate::payout::{self, Split};

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

/// The pool's solo payout settings, as its solo coinbases use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoloRules {
    /// The pool's payout script (the fee; everything when the identity is the pool's).
    pub pool_script: ScriptBuf,
    /// Pool fee in parts per million of the reward (`[payout] fee_ppm`).
    pub fee_ppm: u32,
    /// Network of payout addresses.
    pub network: Network,
}

/// The coinbase outputs the pool requires of the tokens it allocates now: what it would pay
/// in its own coinbase.
#[derive(Debug, Clone, Copy)]
pub enum Required<'a> {
    /// PPLNS: the current split, the same for every token.
    Shared {
        /// The split of the window.
        split: &'a Arc<Split>,
        /// The ledger share ids `(first, last)` of its window.
        window: Option<(i64, i64)>,
    },
    /// Solo: each token pays the address of its `user_identifier`, like the coinbase of a
    /// channel of that identity.
    Solo {
        /// The reward of the pool's current template (`coinbase_tx_value_remaining`).
        reward: u64,
        /// Pool script, fee and network.
        rules: &'a SoloRules,
    },
}

/// What a token carries: the split its declarations must pay, and the PPLNS window (ledger
/// share ids) of that split.
pub type TokenSplit = (Arc<Split>, Option<(i64, i64)>);

impl Required<'_> {
    /// The split (and PPLNS window) a token of `user_identifier` carries; in solo mode the
    /// refusal's reason when the identity has no valid address for the network (the mining
    /// side refuses a channel of such an identity the same way).
    pub fn for_user(&self, user_identifier: &str) -> Result<TokenSplit, String> {
        match *self {
            Required::Shared { split, window } => Ok((Arc::clone(split), window)),
            Required::Solo { reward, rules } => {
                if payout::payout_script(user_identifier, rules.network).is_none() {
                    return Err(format!(
                        "solo: user_identifier {user_identifier:?} has no {} payout address \
                         (ADDRESS or ADDRESS.worker)",
                        rules.network
                    ));
                }
                let split = payout::solo_split(
                    reward,
                    user_identifier,
                    &rules.pool_script,
                    rules.fee_ppm,
                    rules.network,
                );
                Ok((Arc::new(split), None))
            }
        }
    }
}

/// What a JDS session needs to know about the pool at each input.
pub struct JdsContext<'a> {
    /// The node's tip.
    pub tip: ChainTip,
    /// The payouts the pool would put in its own coinbase now; a token carries the ones
    /// current when it was allocated, and a declared coinbase must pay at least their
    /// outputs.
    pub required: Required<'a>,
    /// The node's mempool, as the edge keeps it.
    pub mempool: &'a (dyn MempoolView + Sync),
}

impl std::fmt::Debug for JdsContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JdsContext")
            .field("tip", &self.tip)
            .field("required", &self.required)
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
    /// PPLNS: the ledger share ids of the split's window (None in solo mode).
    pub window: Option<(i64, i64)>,
    /// `AllocateMiningJobToken.user_identifier` of its token: in solo mode the identity the
    /// split pays (a custom job must be set on a channel of the same payout address), and
    /// the finder recorded for a block the JDC pushes.
    pub user: String,
    /// After this the token no longer opens custom jobs.
    pub expires: Instant,
}
