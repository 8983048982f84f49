//! The proxy as Job Declarator Client (JDC, Stratum V2 Job Declaration, spec 6): the farm's
//! own node chooses the block, the pool checks it and pays for shares on it.
//!
//! ```text
//!  farm node ──templates──▶ ┌──────────────┐ ──DeclareMiningJob──────────▶ pool's JDS
//!  (rpc/ipc/tdp)  ◀─blocks─ │  Jdc (core)  │ ◀─token, .Success/.Error────
//!                           │              │ ──PushSolution─────────────▶
//!  upstream side ─events──▶ │              │ ──events (own epochs)──────▶ hub ──▶ miners
//!  (pool channels) ◀─SetCustomMiningJob── │ ◀─commands, shares──────────
//!                           └──────────────┘
//! ```
//!
//! The JDC sits between the upstream side ([`crate::upstream::run_upstreams`]) and the hub:
//! the hub sees it as its upstream. With the pool and its JDS working (pool mode), each
//! template of the farm's node becomes, on every upstream channel, a coinbase paying the
//! outputs the JDS's token requires (the rest, if any, to the farm's address), a
//! `DeclareMiningJob` (Full-Template mode: its transactions by wtxid, sent in full when the
//! JDS asks) and, once declared, a `SetCustomMiningJob`; the pool's job id becomes the
//! miners' work. Miners' shares go to the pool as before; one that is a block also goes to
//! the farm's node and, as `PushSolution`, to the JDS. In Coinbase-only mode the token of
//! `AllocateMiningJobToken` goes straight into `SetCustomMiningJob` (no declaration).
//!
//! Solo fallback: when the pool is down, its JDS is unreachable or refuses (setup, a
//! token, a declaration, a custom job), the JDC gives the hub a "solo" upstream of its own:
//! channels with their own extranonce space and work from the same templates paying the
//! whole reward to the configured solo address; blocks go to the farm's node. The miners
//! stay connected (a new epoch, as on a pool failover). The pool is tried again with
//! backoff; the first custom job it accepts on channel 0 switches the miners back.
//!
//! [`Jdc`] is the sans-IO core (inputs and `now` in, [`Action`]s out); [`edge`] is its tokio
//! shell (the JDS connection, the template source task, the queues).

mod coinbase;
mod core;
pub mod edge;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bitcoin::{ScriptBuf, Transaction};
use strata_protocol::Message;
use strata_template::{Solution, Template};

use crate::upstream::{UpstreamCommand, UpstreamEvent};
use crate::work::ForwardShare;

pub use self::coinbase::{pool_outputs, JobCoinbase};
pub use self::core::{Jdc, Mode, SOLO_POOL};

/// How the JDC declares its jobs (`SetupConnection.flags` of the JD connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeclareMode {
    /// Full-Template mode (`DECLARE_TX_DATA`): every job is declared with its transactions
    /// (`DeclareMiningJob`, missing ones sent with `ProvideMissingTransactions.Success`);
    /// the pool checks them against its own node. What our pool's JDS and SRI's serve.
    FullTemplate,
    /// Coinbase-only mode: the token of `AllocateMiningJobToken` goes straight into
    /// `SetCustomMiningJob`; the pool learns the coinbase and the merkle path only. Our pool's
    /// JDS and SRI's refuse it (`missing-declare-tx-data-flag`): the JDC then mines solo.
    CoinbaseOnly,
}

/// Settings of the core (from `[jdc]`).
#[derive(Debug, Clone)]
pub struct JdcConfig {
    /// Full-Template or Coinbase-only.
    pub mode: DeclareMode,
    /// `AllocateMiningJobToken.user_identifier`.
    pub user_identifier: String,
    /// Where solo blocks pay, and what the pool's required outputs leave of a larger reward.
    pub solo_script: ScriptBuf,
    /// The network (block subsidy).
    pub network: bitcoin::Network,
    /// Bytes pushed in the coinbase scriptSig after the height (a tag).
    pub coinbase_tag: Vec<u8>,
    /// Solo channels' extranonce bytes after their 2-byte prefix (what the hub splits).
    pub solo_extranonce_size: u16,
    /// At start, how long to wait for a custom job on the pool before mining solo.
    pub startup_grace: Duration,
    /// First JDS reconnect (or pool retry) delay after a failure; doubles up to
    /// [`JdcConfig::retry_max`].
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Tokens older than this are dropped unused (the JDS expires them) and replaced.
    pub token_max_age: Duration,
    /// Unused tokens held at most (one ahead per channel is asked for).
    pub max_tokens: usize,
    /// A token request, declaration or custom job unanswered for this long is a JDS (or
    /// pool) failure.
    pub answer_timeout: Duration,
    /// Times a declaration or custom job refused for a stale tip (the pool's node behind
    /// the farm's) is tried again on the same template: after [`JdcConfig::stale_retry`],
    /// each wait twice the last up to [`JdcConfig::stale_retry_max`], or as soon as the
    /// pool's own work shows the tip (a JDS that makes such declarations wait for its tip,
    /// as ours does, never needs it).
    pub stale_retries: u32,
    /// Delay before the first such retry (the pool's node is usually a few ms behind).
    pub stale_retry: Duration,
    /// Longest delay between two such retries.
    pub stale_retry_max: Duration,
    /// Jobs kept per channel to recognise a block among forwarded shares.
    pub max_jobs: usize,
}

impl Default for JdcConfig {
    fn default() -> Self {
        JdcConfig {
            mode: DeclareMode::FullTemplate,
            user_identifier: "strata-proxy".into(),
            solo_script: ScriptBuf::new(),
            network: bitcoin::Network::Regtest,
            coinbase_tag: b"/strata-jdc/".to_vec(),
            solo_extranonce_size: 10,
            startup_grace: Duration::from_secs(3),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            token_max_age: Duration::from_secs(60),
            max_tokens: 8,
            answer_timeout: Duration::from_secs(10),
            stale_retries: 20,
            stale_retry: Duration::from_millis(5),
            stale_retry_max: Duration::from_millis(250),
            max_jobs: 8,
        }
    }
}

/// A template of the farm's node with its transactions (Full-Template mode needs them).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTemplate {
    /// The template.
    pub template: Template,
    /// Its transactions besides the coinbase, in block order; `None` when the source does
    /// not give them.
    pub transactions: Option<Vec<Arc<Transaction>>>,
}

/// A latency distribution of the JDC (microseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Measurements.
    pub samples: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Latency {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        Latency {
            samples: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

/// What the JDC reports (see [`Jdc::stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JdcStats {
    /// Where the miners' work comes from (`None` before the core started).
    pub mode: Option<Mode>,
    /// `DeclareMiningJob` sent to `DeclareMiningJob.Success` received.
    pub declare_round_trip: Latency,
    /// A template on a new tip received to its custom job accepted by the pool on channel 0
    /// (pool mode).
    pub tip_to_custom_job: Latency,
    /// Why the pool was last given up.
    pub last_failure: Option<String>,
}

/// What the core is told.
#[derive(Debug)]
pub enum Input {
    /// A new template from the farm's node.
    Template(Arc<NodeTemplate>),
    /// The JDS connection is up (Noise done): the core sends `SetupConnection`.
    JdsConnected,
    /// A message from the JDS.
    JdsMessage(Message),
    /// The JDS connection failed or ended.
    JdsDown(String),
    /// An event of the upstream side.
    Upstream(UpstreamEvent),
    /// A command of the hub.
    Command(UpstreamCommand),
    /// A share the hub forwards (through the JDC's route).
    Share(ForwardShare),
}

/// What the core asks its shell to do, in order.
#[derive(Debug)]
pub enum Action {
    /// Tell the hub.
    ToHub(UpstreamEvent),
    /// Tell the upstream side.
    ToUpstream(UpstreamCommand),
    /// Connect to the JDS (answer with [`Input::JdsConnected`] or [`Input::JdsDown`]).
    ConnectJds,
    /// Send this to the JDS.
    ToJds(Message),
    /// Close the JDS connection (the reason is logged).
    CloseJds(String),
    /// Submit this block to the farm's node.
    SubmitBlock(Solution),
}
