//! The hub: the one task that owns the active upstream channel's state, the extranonce
//! splitter and the routing of forwarded shares. Miner tasks talk to it with
//! [`HubRequest`]s and read the current [`UpstreamWork`] from a `watch` channel.

use std::net::SocketAddr;

use strata_work::extranonce::MinerId;
use tokio::sync::{mpsc, oneshot};

use crate::work::{ForwardShare, UpstreamWork};

/// A miner's place in the upstream channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Its id (stable for the connection's life, across upstream switches).
    pub miner: MinerId,
}

/// Why a miner cannot join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Every miner id of the upstream channel's extranonce space is taken.
    #[error("the upstream channel's extranonce space is full")]
    Full,
}

/// What a miner task tells the hub.
#[derive(Debug)]
pub enum HubRequest {
    /// A miner connected (SV1: at `mining.subscribe`): allocate its id.
    Join {
        /// Its address.
        peer: SocketAddr,
        /// The answer.
        reply: oneshot::Sender<Result<Slot, JoinError>>,
    },
    /// A miner left: release its id.
    Leave {
        /// The miner.
        miner: MinerId,
    },
    /// A share meeting the upstream target: forward it.
    Share(ForwardShare),
    /// Periodic figures of one miner (for UpdateChannel and the API).
    Report(MinerReport),
}

/// What a miner task reports about its miner (about every 10 s and at disconnect).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MinerReport {
    /// The miner.
    #[serde(skip)]
    pub miner: MinerId,
    /// Worker name (SV1 `mining.authorize` user, SV2 user identity).
    pub worker: String,
    /// Remote address.
    pub address: String,
    /// SV1 user agent / SV2 vendor and firmware.
    pub user_agent: String,
    /// `sv1` or `sv2`.
    pub protocol: &'static str,
    /// Current share difficulty.
    pub difficulty: f64,
    /// Estimated hashes per second (vardiff).
    pub hashrate: f64,
    /// Shares accepted locally.
    pub accepted: u64,
    /// Shares rejected locally, by reason code.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Shares rejected as stale (also counted in `rejected`).
    pub stale: u64,
    /// UNIX ms of the last accepted share (0 = none).
    pub last_share_ms: u64,
    /// UNIX ms of the connection.
    pub connected_since_ms: u64,
    /// False in the last report of a disconnecting miner.
    pub connected: bool,
}

/// The handle miner tasks hold.
#[derive(Debug, Clone)]
pub struct HubHandle {
    /// Requests to the hub.
    pub requests: mpsc::Sender<HubRequest>,
    /// The current work (`None` while no upstream is usable).
    pub work: tokio::sync::watch::Receiver<Option<std::sync::Arc<UpstreamWork>>>,
}
