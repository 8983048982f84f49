//! The `embedded` template source: a regtest chain inside the pool process, validated by
//! Bitcoin Core's own consensus code through `bitcoinkernel`.
//!
//! Templates are coinbase-only blocks on the current tip (there is no mempool): the height,
//! the tip's hash and bits, the BIP34 height push, the regtest subsidy (halving every 150
//! blocks) and the BIP141 witness commitment Bitcoin Core's `getblocktemplate` would require
//! for a block with no other transactions. Solved blocks go through the kernel's
//! `ProcessNewBlock`; a block is accepted only when it is on the active chain afterwards.
//!
//! The kernel's objects are synchronous and may block, so one dedicated std thread owns them
//! and the async side talks to it over channels:
//!
//! ```text
//!   EmbeddedSource (async, one task)            "embedded-node" thread
//!   ────────────────────────────────            ──────────────────────
//!   submit() ── mpsc Command::Submit ─────────▶ process_block, read tip
//!            ◀─ oneshot SubmitOutcome ─────────  (tip published first)
//!   next_template() ◀── watch ChainTip ───────── after every change
//!   drop ── closes the command channel ───────▶ flush chainstate, exit; joined
//! ```
//!
//! Bitcoin Core's reject reasons (`bad-cb-amount`, `high-hash`, ...) are not part of the
//! kernel's C API; the node thread reads them from the kernel's own log lines (`AcceptBlock
//! FAILED (...)`, `ConnectBlock ... failed, ...`), which Core writes on the validating thread
//! while `process_block` runs, and falls back to a name for the kernel's validation result.
//!
//! Data lives under `data_dir/regtest/` (`blocks/` with the block index, `chainstate/`) and
//! survives restarts.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::{Amount, ScriptBuf, TxOut};
use bitcoinkernel::prelude::{BlockHashExt, BlockHeaderExt, BlockValidationStateExt};
use bitcoinkernel::{
    Block, BlockHash, BlockValidationResult, BlockValidationStateRef, ChainType, ChainstateManager,
    Context, ContextBuilder, KernelError, Log, Logger, ProcessBlockResult, ValidationMode,
};
use strata_work::coinbase::bip34_height_push;
use strata_work::header::assemble_block;
use strata_work::merkle::{witness_commitment, witness_commitment_script, witness_merkle_root};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Solution, SourceError, SubmitOutcome, Template, TemplateSource};

/// How many recent templates a solution may name.
const KEPT_TEMPLATES: usize = 32;

/// Blocks in Bitcoin Core's median-time-past window.
const MEDIAN_TIME_SPAN: usize = 11;

/// Commands queued to the node thread; the owner submits one block at a time.
const COMMAND_QUEUE: usize = 8;

/// Coinbase nVersion of the templates (what Core's `CreateNewBlock` uses).
const COINBASE_TX_VERSION: u32 = 2;

/// Settings of the embedded node.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Block header nVersion of the templates. Default `0x2000_0000` (BIP9 top bits, no
    /// deployment signalled).
    pub block_version: u32,
    /// How long [`TemplateSource::next_template`] waits on an unchanged tip before it hands
    /// out a fresh template (new id, current time in `min_ntime`). Default 30 s; a duration
    /// too large to add to the clock means never.
    pub refresh: Duration,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            block_version: 0x2000_0000,
            refresh: Duration::from_secs(30),
        }
    }
}

/// The active chain's tip as the embedded node last published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTip {
    /// Height of the tip (0 for genesis).
    pub height: u32,
    /// Hash of the tip, in header byte order.
    pub hash: [u8; 32],
    /// The tip header's nBits (regtest never retargets, so also the next block's).
    pub nbits: u32,
    /// The tip header's nTime.
    pub time: u32,
    /// Median nTime of the tip and up to ten blocks before it (Core's `GetMedianTimePast`).
    pub median_time_past: u32,
}

impl ChainTip {
    /// The tip's hash in display (RPC) byte order hex.
    pub fn hash_hex(&self) -> String {
        display_hex(&self.hash)
    }
}

/// The regtest block subsidy at `height` in satoshis: 50 BTC halved every 150 blocks, zero
/// after 64 halvings (Core's `GetBlockSubsidy`).
pub fn regtest_block_subsidy(height: u32) -> u64 {
    strata_work::payout::block_subsidy(height, bitcoin::Network::Regtest)
}

/// The coinbase-only template with id `id` on `tip`, for a clock reading `now` (unix
/// seconds): what Core's `getblocktemplate` gives with an empty mempool.
fn coinbase_only_template(tip: &ChainTip, id: u64, now: u32, block_version: u32) -> Template {
    let height = tip.height.saturating_add(1);
    // the coinbase's wtxid counts as zero, and it is the only transaction
    let commitment = witness_commitment(&witness_merkle_root(&[]), &[0u8; 32]);
    let commitment_output = TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(witness_commitment_script(&commitment).to_vec()),
    };
    Template {
        id,
        height,
        prev_hash: tip.hash,
        version: block_version,
        nbits: tip.nbits,
        min_ntime: tip.median_time_past.saturating_add(1).max(now),
        coinbase_tx_version: COINBASE_TX_VERSION,
        coinbase_prefix: bip34_height_push(height),
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: regtest_block_subsidy(height),
        coinbase_tx_outputs: vec![commitment_output],
        coinbase_tx_locktime: 0,
        merkle_path: Vec::new(),
        tx_count: 0,
    }
}

/// Bitcoin Core's reject reason in one of its log lines about a failed block, if the line is
/// one: `ProcessNewBlock: AcceptBlock FAILED (<state>)`, `AcceptBlock: <state>`,
/// `ConnectTip: ConnectBlock <hash> failed, <state>` or `Block validation error: <state>`,
/// where `<state>` is `reason[, debug message]` (`ValidationState::ToString`).
fn reject_reason_from_log(line: &str) -> Option<String> {
    let line = line.trim_end();
    let state = if let Some((_, rest)) = line.split_once("AcceptBlock FAILED (") {
        rest.strip_suffix(')').unwrap_or(rest)
    } else if let Some((_, rest)) = line.split_once("AcceptBlock: ") {
        rest
    } else if let Some((_, rest)) = line.split_once("ConnectBlock ") {
        rest.split_once(" failed, ")?.1
    } else if let Some((_, rest)) = line.split_once("Block validation error: ") {
        rest
    } else {
        return None;
    };
    let reason = state.split(", ").next().unwrap_or(state).trim();
    (!reason.is_empty()).then(|| reason.to_owned())
}

/// A name for a kernel validation result when no log line named the reason; Core's reason
/// string where the result implies a single one.
fn result_name(result: BlockValidationResult) -> &'static str {
    match result {
        BlockValidationResult::Unset => "rejected",
        BlockValidationResult::Consensus => "consensus",
        BlockValidationResult::CachedInvalid => "duplicate-invalid",
        BlockValidationResult::InvalidHeader => "invalid-header",
        BlockValidationResult::Mutated => "mutated",
        BlockValidationResult::MissingPrev => "prev-blk-not-found",
        BlockValidationResult::InvalidPrev => "bad-prevblk",
        BlockValidationResult::TimeFuture => "time-too-new",
        BlockValidationResult::HeaderLowWork => "too-little-chainwork",
    }
}

/// Header-order hash bytes as display-order hex.
fn display_hex(hash: &[u8; 32]) -> String {
    let mut reversed = *hash;
    reversed.reverse();
    hex::encode(reversed)
}

fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn kernel_error(what: &str, e: KernelError) -> SourceError {
    SourceError::Node(format!("{what}: {e}"))
}

fn node_stopped() -> SourceError {
    SourceError::Node("the embedded node thread has stopped".to_owned())
}

/// What the node thread is asked to do.
enum Command {
    /// Validate and store a serialized block; answer after the tip is published.
    Submit {
        block: Vec<u8>,
        reply: oneshot::Sender<SubmitOutcome>,
    },
}

/// What the kernel's callbacks report to the node thread.
enum KernelEvent {
    /// `BlockChecked`: a block was fully checked, with this verdict.
    Checked {
        hash: [u8; 32],
        mode: ValidationMode,
        result: BlockValidationResult,
    },
    /// A log line Core wrote on the node thread.
    Log(String),
    /// The kernel hit an unrecoverable error.
    Fatal(String),
    /// The kernel failed to write state to disk.
    FlushError(String),
}

/// The kernel's logger is process-wide; each node thread connects one and keeps the lines
/// written on its own thread (Core logs synchronously on the validating thread).
struct ThreadLog {
    owner: ThreadId,
    events: std_mpsc::Sender<KernelEvent>,
}

impl Log for ThreadLog {
    fn log(&self, message: &str) {
        if thread::current().id() == self.owner {
            // the receiver only goes away with the node, which disconnects this logger first
            let _ = self
                .events
                .send(KernelEvent::Log(message.trim_end().to_owned()));
        }
    }
}

/// The kernel objects, owned by the node thread. Fields drop in order: the chainstate
/// manager (which flushes) before its context, the logger last.
struct Node {
    chainman: ChainstateManager,
    _context: Context,
    _logger: Logger,
    events: std_mpsc::Receiver<KernelEvent>,
    tip: watch::Sender<ChainTip>,
    fatal: Option<String>,
}

impl Node {
    /// Opens (or creates) the regtest chain under `dir`; returns the node and the receiver
    /// of its tip.
    fn open(dir: &Path) -> Result<(Node, watch::Receiver<ChainTip>), SourceError> {
        let blocks = dir.join("blocks");
        std::fs::create_dir_all(&blocks)?;
        let utf8 = |p: &Path| {
            p.to_str().map(str::to_owned).ok_or_else(|| {
                SourceError::Node(format!("data directory {} is not UTF-8", p.display()))
            })
        };
        let (data_dir, blocks_dir) = (utf8(dir)?, utf8(&blocks)?);

        let (events_tx, events) = std_mpsc::channel();
        let logger = Logger::new(ThreadLog {
            owner: thread::current().id(),
            events: events_tx.clone(),
        })
        .map_err(|e| kernel_error("connecting the kernel log", e))?;
        let checked = events_tx.clone();
        let fatal = events_tx.clone();
        let flush = events_tx;
        let context = ContextBuilder::new()
            .chain_type(ChainType::Regtest)
            .with_block_checked_validation(
                move |block: Block, state: BlockValidationStateRef<'_>| {
                    let _ = checked.send(KernelEvent::Checked {
                        hash: block.hash().to_bytes(),
                        mode: state.mode(),
                        result: state.result(),
                    });
                },
            )
            .with_fatal_error_notification(move |message: String| {
                let _ = fatal.send(KernelEvent::Fatal(message));
            })
            .with_flush_error_notification(move |message: String| {
                let _ = flush.send(KernelEvent::FlushError(message));
            })
            .build()
            .map_err(|e| kernel_error("creating the kernel context", e))?;
        let chainman = ChainstateManager::builder(&context, &data_dir, &blocks_dir)
            .map_err(|e| kernel_error("chainstate options", e))?
            // coinbase-only blocks have no scripts to check in parallel
            .worker_threads(0)
            .build()
            .map_err(|e| {
                let why = last_error_line(&events).unwrap_or_else(|| e.to_string());
                SourceError::Node(format!("loading the chainstate in {data_dir}: {why}"))
            })?;
        chainman.import_blocks().map_err(|e| {
            let why = last_error_line(&events).unwrap_or_else(|| e.to_string());
            SourceError::Node(format!("activating the best chain: {why}"))
        })?;

        let tip = read_tip(&chainman)?;
        let (tip_tx, tip_rx) = watch::channel(tip);
        let mut node = Node {
            chainman,
            _context: context,
            _logger: logger,
            events,
            tip: tip_tx,
            fatal: None,
        };
        node.drain_events();
        if let Some(message) = node.fatal.take() {
            return Err(SourceError::Node(message));
        }
        tracing::info!(
            height = tip.height,
            hash = %tip.hash_hex(),
            dir = %dir.display(),
            "embedded regtest node opened"
        );
        Ok((node, tip_rx))
    }

    /// Serves commands until the source is dropped or the kernel fails.
    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.blocking_recv() {
            match command {
                Command::Submit { block, reply } => {
                    let outcome = self.submit(&block);
                    // the owner may have stopped waiting; the block is processed regardless
                    let _ = reply.send(outcome);
                }
            }
            if let Some(message) = &self.fatal {
                tracing::error!(%message, "embedded node: fatal kernel error, stopping");
                break;
            }
        }
        // dropping the chainstate manager flushes the chainstate to disk
        drop(self);
        tracing::info!("embedded regtest node stopped");
    }

    /// Runs one serialized block through `ProcessNewBlock` and publishes the new tip.
    fn submit(&mut self, raw: &[u8]) -> SubmitOutcome {
        let block = match Block::new(raw) {
            Ok(block) => block,
            Err(e) => {
                tracing::warn!(error = %e, "embedded node: block does not deserialize");
                return SubmitOutcome::Rejected {
                    reason: "block-decode-failed".to_owned(),
                };
            }
        };
        let hash = block.hash().to_bytes();
        self.drain_events();

        let started = Instant::now();
        let result = self.chainman.process_block(&block);
        let elapsed = started.elapsed();

        let mut verdict = None;
        let mut logged_reason = None;
        for event in self.events.try_iter().collect::<Vec<_>>() {
            match event {
                KernelEvent::Checked {
                    hash: checked,
                    mode,
                    result,
                } if checked == hash => verdict = Some((mode, result)),
                KernelEvent::Log(line) => {
                    if logged_reason.is_none() {
                        logged_reason = reject_reason_from_log(&line);
                    }
                    tracing::debug!(target: "bitcoinkernel", "{line}");
                }
                other => self.note(other),
            }
        }

        let on_active_chain = self
            .chainman
            .get_block_tree_entry(&BlockHash::from(hash))
            .is_some_and(|entry| self.chainman.active_chain().contains(&entry));
        self.publish_tip();

        let hash_hex = display_hex(&hash);
        if on_active_chain {
            tracing::info!(hash = %hash_hex, ?result, ?elapsed, "embedded node: block accepted");
            return SubmitOutcome::Accepted { hash: hash_hex };
        }
        let reason = logged_reason.unwrap_or_else(|| {
            let name = match (verdict, result) {
                (Some((ValidationMode::Invalid | ValidationMode::InternalError, r)), _) => {
                    result_name(r)
                }
                (_, ProcessBlockResult::Rejected) => "rejected",
                // valid as far as checked, but not on the active chain (bitcoind's words)
                (_, ProcessBlockResult::Duplicate) => "duplicate-inconclusive",
                (_, ProcessBlockResult::NewBlock) => "inconclusive",
            };
            name.to_owned()
        });
        tracing::warn!(hash = %hash_hex, %reason, ?elapsed, "embedded node: block rejected");
        SubmitOutcome::Rejected { reason }
    }

    /// Reads the tip and publishes it if it changed.
    fn publish_tip(&mut self) {
        match read_tip(&self.chainman) {
            Ok(tip) => {
                self.tip.send_if_modified(|current| {
                    let changed = *current != tip;
                    *current = tip;
                    changed
                });
            }
            Err(e) => self.fatal = Some(e.to_string()),
        }
    }

    /// Forwards pending log lines and notifications.
    fn drain_events(&mut self) {
        for event in self.events.try_iter().collect::<Vec<_>>() {
            self.note(event);
        }
    }

    fn note(&mut self, event: KernelEvent) {
        match event {
            KernelEvent::Log(line) => tracing::debug!(target: "bitcoinkernel", "{line}"),
            KernelEvent::Checked { .. } => {}
            KernelEvent::FlushError(message) => {
                tracing::error!(%message, "embedded node: flush error");
            }
            KernelEvent::Fatal(message) => self.fatal = Some(message),
        }
    }
}

/// The last error Core logged (lines it writes with `LogError`), draining the events.
fn last_error_line(events: &std_mpsc::Receiver<KernelEvent>) -> Option<String> {
    events
        .try_iter()
        .filter_map(|event| match event {
            KernelEvent::Log(line) if line.contains("[error]") => Some(line),
            KernelEvent::Fatal(message) => Some(message),
            _ => None,
        })
        .last()
        .map(|line| match line.split_once("[error] ") {
            Some((_, message)) => message.to_owned(),
            None => line,
        })
}

/// The active chain's tip and its median time past.
fn read_tip(chainman: &ChainstateManager) -> Result<ChainTip, SourceError> {
    let chain = chainman.active_chain();
    let height = u32::try_from(chain.height())
        .map_err(|_| SourceError::Node("the active chain is empty".to_owned()))?;
    let tip = chain.tip();
    let header = tip.header();
    let mut times = Vec::with_capacity(MEDIAN_TIME_SPAN);
    let mut entry = Some(tip);
    while let Some(e) = entry {
        if times.len() == MEDIAN_TIME_SPAN {
            break;
        }
        times.push(e.header().timestamp());
        entry = e.prev();
    }
    times.sort_unstable();
    Ok(ChainTip {
        height,
        hash: tip.block_hash().to_bytes(),
        nbits: header.bits(),
        time: header.timestamp(),
        median_time_past: times[times.len() / 2],
    })
}

/// A regtest chain validated by Bitcoin Core's consensus code, as a [`TemplateSource`].
///
/// Owned by one task. Dropping it stops the node thread, which flushes the chainstate; the
/// drop waits for that (milliseconds).
#[derive(Debug)]
pub struct EmbeddedSource {
    config: EmbeddedConfig,
    commands: Option<mpsc::Sender<Command>>,
    tip: watch::Receiver<ChainTip>,
    thread: Option<JoinHandle<()>>,
    /// Ids of the last [`KEPT_TEMPLATES`] templates handed out, oldest first.
    recent: VecDeque<u64>,
    next_id: u64,
    /// The tip and time of the last template handed out.
    last: Option<([u8; 32], tokio::time::Instant)>,
}

impl EmbeddedSource {
    /// Opens the regtest chain under `data_dir` (created if missing; data in
    /// `data_dir/regtest/{blocks,chainstate}`) and starts the node thread. Blocks while the
    /// chainstate loads; an error if the kernel cannot open it (e.g. another process or
    /// source has it open).
    pub fn open(data_dir: &Path, config: EmbeddedConfig) -> Result<EmbeddedSource, SourceError> {
        let dir = data_dir.join("regtest");
        let (init_tx, init_rx) = std_mpsc::sync_channel(1);
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let thread = thread::Builder::new()
            .name("embedded-node".to_owned())
            .spawn(move || match Node::open(&dir) {
                Ok((node, tip)) => {
                    if init_tx.send(Ok(tip)).is_ok() {
                        node.run(command_rx);
                    }
                }
                Err(e) => {
                    let _ = init_tx.send(Err(e));
                }
            })?;
        let tip = match init_rx.recv() {
            Ok(Ok(tip)) => tip,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(node_stopped());
            }
        };
        // ids keep increasing across restarts: start at the clock in microseconds
        let next_id = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        Ok(EmbeddedSource {
            config,
            commands: Some(commands),
            tip,
            thread: Some(thread),
            recent: VecDeque::with_capacity(KEPT_TEMPLATES),
            next_id,
            last: None,
        })
    }

    /// The tip the node last published (cheap; no call into the node thread).
    pub fn chain_tip(&self) -> ChainTip {
        *self.tip.borrow()
    }

    /// Hands out a new template on `tip` and remembers it.
    fn issue(&mut self, tip: ChainTip) -> Template {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        if self.recent.len() == KEPT_TEMPLATES {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
        self.last = Some((tip.hash, tokio::time::Instant::now()));
        let template = coinbase_only_template(&tip, id, unix_now(), self.config.block_version);
        tracing::debug!(
            id,
            height = template.height,
            min_ntime = template.min_ntime,
            "embedded node: new template"
        );
        template
    }
}

impl TemplateSource for EmbeddedSource {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn next_template(&mut self) -> Result<Template, SourceError> {
        loop {
            let tip = *self.tip.borrow_and_update();
            let Some((last_hash, issued_at)) = self.last else {
                return Ok(self.issue(tip));
            };
            if last_hash != tip.hash {
                return Ok(self.issue(tip));
            }
            let deadline = issued_at.checked_add(self.config.refresh);
            let refresh = async move {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            // both branches are cancel-safe, and nothing changes before one completes
            tokio::select! {
                changed = self.tip.changed() => changed.map_err(|_| node_stopped())?,
                () = refresh => {
                    let tip = *self.tip.borrow_and_update();
                    return Ok(self.issue(tip));
                }
            }
        }
    }

    async fn submit(&mut self, solution: Solution) -> Result<SubmitOutcome, SourceError> {
        if !self.recent.contains(&solution.template_id) {
            return Err(SourceError::UnknownTemplate(solution.template_id));
        }
        let mut block = Vec::with_capacity(81 + solution.coinbase.len());
        assemble_block::<&[u8]>(&solution.header, &solution.coinbase, &[], &mut block);
        let commands = self.commands.as_ref().ok_or_else(node_stopped)?;
        let (reply, outcome) = oneshot::channel();
        commands
            .send(Command::Submit { block, reply })
            .await
            .map_err(|_| node_stopped())?;
        outcome.await.map_err(|_| node_stopped())
    }
}

impl Drop for EmbeddedSource {
    fn drop(&mut self) {
        // closing the command channel ends the node thread's loop
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("embedded node thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(height: u32, mtp: u32) -> ChainTip {
        ChainTip {
            height,
            hash: [7; 32],
            nbits: 0x207f_ffff,
            time: mtp + 5,
            median_time_past: mtp,
        }
    }

    #[test]
    fn subsidy_halves_every_150_blocks() {
        assert_eq!(regtest_block_subsidy(0), 5_000_000_000);
        assert_eq!(regtest_block_subsidy(149), 5_000_000_000);
        assert_eq!(regtest_block_subsidy(150), 2_500_000_000);
        assert_eq!(regtest_block_subsidy(300), 1_250_000_000);
        assert_eq!(regtest_block_subsidy(150 * 33), 0);
        assert_eq!(regtest_block_subsidy(150 * 64), 0);
        assert_eq!(regtest_block_subsidy(u32::MAX), 0);
    }

    #[test]
    fn template_fields_follow_the_tip() {
        let t = coinbase_only_template(&tip(149, 1_000), 42, 900, 0x2000_0000);
        assert_eq!(t.id, 42);
        assert_eq!(t.height, 150);
        assert_eq!(t.prev_hash, [7; 32]);
        assert_eq!(t.nbits, 0x207f_ffff);
        // median time past + 1 when the clock is behind it
        assert_eq!(t.min_ntime, 1_001);
        assert_eq!(t.coinbase_prefix, bip34_height_push(150));
        assert_eq!(t.coinbase_tx_value_remaining, 2_500_000_000);
        assert_eq!(t.coinbase_tx_version, 2);
        assert_eq!(t.coinbase_tx_input_sequence, 0xffff_ffff);
        assert_eq!(t.coinbase_tx_locktime, 0);
        assert!(t.merkle_path.is_empty());
        assert_eq!(t.tx_count, 0);
        // the clock when it is ahead
        assert_eq!(
            coinbase_only_template(&tip(1, 1_000), 1, 5_000, 1).min_ntime,
            5_000
        );
    }

    #[test]
    fn witness_commitment_is_cores_for_a_coinbase_only_block() {
        let t = coinbase_only_template(&tip(0, 0), 1, 0, 0x2000_0000);
        assert_eq!(t.coinbase_tx_outputs.len(), 1);
        let out = &t.coinbase_tx_outputs[0];
        assert_eq!(out.value, Amount::ZERO);
        // Core's default_witness_commitment for a block with no other transactions:
        // OP_RETURN aa21a9ed || SHA256d(32 zero bytes || 32 zero bytes)
        assert_eq!(
            hex::encode(out.script_pubkey.as_bytes()),
            "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"
        );
    }

    #[test]
    fn reject_reasons_from_core_log_lines() {
        let cases = [
            (
                "2025-01-01T00:00:00Z [error] ProcessNewBlock: AcceptBlock FAILED (high-hash, proof of work failed)\n",
                Some("high-hash"),
            ),
            (
                "ProcessNewBlock: AcceptBlock FAILED (bad-cb-height)",
                Some("bad-cb-height"),
            ),
            (
                "AcceptBlock: bad-witness-merkle-match, ContextualCheckBlock : witness merkle commitment mismatch",
                Some("bad-witness-merkle-match"),
            ),
            (
                "ConnectTip: ConnectBlock 0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206 failed, bad-cb-amount, coinbase pays too much (actual=5000000001 vs limit=5000000000)",
                Some("bad-cb-amount"),
            ),
            (
                "Block validation error: bad-cb-amount, coinbase pays too much",
                Some("bad-cb-amount"),
            ),
            ("UpdateTip: new best=00ab height=3", None),
            ("AcceptBlock FAILED ()", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                reject_reason_from_log(line).as_deref(),
                want,
                "line: {line}"
            );
        }
    }

    #[test]
    fn display_hex_reverses() {
        let mut h = [0u8; 32];
        h[0] = 0xab;
        h[31] = 0x01;
        let s = display_hex(&h);
        assert!(s.starts_with("01"));
        assert!(s.ends_with("ab"));
    }
}
