//! The work manager: the one task that owns the template source. It turns templates into
//! [`Work`] (with the PPLNS split of the moment) for every connection, and submits the
//! blocks connections find, at most one per tip.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::{Network, ScriptBuf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::session::{FoundBlock, Payouts, Work};
use super::stats::{StatsEvent, StatsHandle};
use crate::ledger::{BlockRecord, BlockStatus, Ledger};
use crate::payout::{self, PayoutMode};
use crate::template::rpc::NodeRpc;
use crate::template::{SourceError, SubmitOutcome, Template, TemplateSource};

/// Blocks of one tip remembered as recorded (a tip has one accepted block at most; the rest
/// were refused, and on regtest, where every share is a block, they can be many).
const MAX_RECORDED_PER_TIP: usize = 64;

/// How the manager pays out.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Payout scheme.
    pub payout: PayoutMode,
    /// The pool's payout script.
    pub pool_script: ScriptBuf,
    /// Network of payout addresses.
    pub network: Network,
    /// Candidates found sooner than this after the last accepted block are not submitted
    /// (testing on regtest, where every share is a block; zero submits them all).
    pub min_block_interval: Duration,
    /// Where whole blocks (custom jobs', pushed solutions) go when the template source
    /// cannot take them (`ipc`, `tdp`): the JDS's node over RPC (`submitblock`). `None`:
    /// the source's own [`TemplateSource::submit_full_block`] (`rpc`).
    pub whole_blocks: Option<NodeRpc>,
}

/// Builds the work for a template: PPLNS asks the ledger for the window now.
pub async fn make_work(seq: u64, template: Template, cfg: &ManagerConfig, ledger: &Ledger) -> Work {
    let total = template.coinbase_tx_value_remaining;
    let (payouts, window) = match &cfg.payout {
        PayoutMode::Solo(_) => (Payouts::Solo, None),
        PayoutMode::Pplns(p) => match ledger.pplns_window(p.window_shares).await {
            Ok(w) => {
                let range = (!w.is_empty()).then_some((w.first_id, w.last_id));
                let split = payout::pplns_split(total, &w, &cfg.pool_script, p, cfg.network);
                (Payouts::Shared(Arc::new(split)), range)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the PPLNS window; this template pays the pool");
                let split = payout::pplns_split(
                    total,
                    &Default::default(),
                    &cfg.pool_script,
                    p,
                    cfg.network,
                );
                (Payouts::Shared(Arc::new(split)), None)
            }
        },
    };
    Work {
        seq,
        template: Arc::new(template),
        payouts,
        window,
        shared_coinbase: Default::default(),
    }
}

/// Runs the manager until shutdown. `connect` makes a new source after the current one
/// failed (with backoff).
#[allow(clippy::too_many_arguments)]
pub async fn run<S, C, F>(
    mut source: S,
    mut connect: C,
    cfg: ManagerConfig,
    work_tx: watch::Sender<Arc<Work>>,
    mut blocks: mpsc::Receiver<FoundBlock>,
    ledger: Ledger,
    stats: StatsHandle,
    shutdown: CancellationToken,
) where
    S: TemplateSource,
    C: FnMut() -> F,
    F: Future<Output = Result<S, SourceError>>,
{
    let mut seq = work_tx.borrow().seq;
    let mut tip = work_tx.borrow().template.prev_hash;
    let mut submitted_on: Option<[u8; 32]> = None;
    // blocks of the current tip recorded in the ledger, and whether the node accepted them:
    // the same block can come twice (from a share and from a JDC's PushSolution)
    let mut recorded: HashMap<String, bool> = HashMap::new();
    let mut last_block: Option<tokio::time::Instant> = None;
    let mut backoff = Duration::from_millis(500);
    // blocks being recorded in the ledger: the next template (the new tip's work) does not
    // wait for that commit
    let mut records: JoinSet<()> = JoinSet::new();
    // recorded with every block, so that its split verifies after the settings change
    let rules = crate::api::PayoutRules::new(cfg.payout.clone(), &cfg.pool_script, cfg.network);
    let rules = match serde_json::to_string(&rules) {
        Ok(json) => Some(json),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the payout rules; blocks are recorded without them");
            None
        }
    };
    loop {
        tokio::select! {
            t = source.next_template() => match t {
                Ok(t) => {
                    backoff = Duration::from_millis(500);
                    seq += 1;
                    let new_tip = t.prev_hash != tip;
                    tip = t.prev_hash;
                    if new_tip {
                        recorded.clear();
                    }
                    let height = t.height;
                    let id = t.id;
                    let work = make_work(seq, t, &cfg, &ledger).await;
                    stats.send(StatsEvent::Height(height));
                    tracing::info!(height, template = id, new_tip, "new work");
                    work_tx.send_replace(Arc::new(work));
                }
                Err(e) => {
                    tracing::warn!(source = source.name(), error = %e, "template source failed; reconnecting in {backoff:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    match connect().await {
                        Ok(s) => source = s,
                        Err(e) => tracing::warn!(error = %e, "template source reconnect failed"),
                    }
                }
            },
            Some(found) = blocks.recv() => {
                if found.prev_hash != tip {
                    tracing::info!(hash = %found.hash, "block candidate on an old tip; not submitted");
                    continue;
                }
                if submitted_on == Some(found.prev_hash) {
                    tracing::debug!(hash = %found.hash, "a block on this tip was already submitted");
                    continue;
                }
                if last_block.is_some_and(|t| t.elapsed() < cfg.min_block_interval) {
                    tracing::debug!(hash = %found.hash, "candidate within min_block_interval; kept as a share");
                    continue;
                }
                let mode = match cfg.payout {
                    PayoutMode::Solo(_) => "solo",
                    PayoutMode::Pplns(_) => "pplns",
                };
                let mut whole_blocks = cfg.whole_blocks.clone();
                let mut record = submit(&mut source, whole_blocks.as_mut(), found, mode, &stats, &mut submitted_on).await;
                record.payout_rules.clone_from(&rules);
                let accepted = record.status == BlockStatus::Accepted;
                if recorded.len() >= MAX_RECORDED_PER_TIP {
                    // a tip with this many refused blocks: remember only the newest
                    recorded.clear();
                }
                match recorded.insert(record.hash.clone(), accepted) {
                    None => {
                        let ledger = ledger.clone();
                        records.spawn(async move {
                            let hash = record.hash.clone();
                            if let Err(e) = ledger.record_block(record).await {
                                tracing::error!(%hash, error = %e, "cannot record the block in the ledger");
                            }
                        });
                    }
                    // refused once, accepted now: the record (written first) says so
                    Some(false) if accepted => {
                        while records.join_next().await.is_some() {}
                        if let Err(e) = ledger.update_block_status(&record.hash, BlockStatus::Accepted).await {
                            tracing::error!(hash = %record.hash, error = %e, "cannot record the block's acceptance");
                        }
                    }
                    Some(_) => tracing::debug!(hash = %record.hash, "the same block again: recorded once"),
                }
                if submitted_on == Some(tip) {
                    last_block = Some(tokio::time::Instant::now());
                }
            }
            Some(_) = records.join_next(), if !records.is_empty() => {}
            _ = shutdown.cancelled() => break,
        }
    }
    // the blocks found are in the ledger before the pool closes it
    while records.join_next().await.is_some() {}
}

/// Submits a found block and returns its ledger record.
async fn submit<S: TemplateSource>(
    source: &mut S,
    whole_blocks: Option<&mut NodeRpc>,
    found: FoundBlock,
    mode: &str,
    stats: &StatsHandle,
    submitted_on: &mut Option<[u8; 32]>,
) -> BlockRecord {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let outcome = match (&found.block, whole_blocks) {
        (Some(block), Some(node)) => node.submit_block(block).await,
        (Some(block), None) => source.submit_full_block(block.clone()).await,
        (None, _) => source.submit(found.solution.clone()).await,
    };
    let status = match &outcome {
        Ok(SubmitOutcome::Accepted { hash }) => {
            *submitted_on = Some(found.prev_hash);
            tracing::info!(height = found.height, %hash, worker = %found.worker, "block accepted");
            stats.send(StatsEvent::BlockFound);
            BlockStatus::Accepted
        }
        Ok(SubmitOutcome::Rejected { reason }) => {
            tracing::warn!(height = found.height, hash = %found.hash, %reason, "block rejected");
            stats.send(StatsEvent::BlockRejected);
            BlockStatus::Rejected {
                reason: reason.clone(),
            }
        }
        Err(e) => {
            tracing::error!(height = found.height, hash = %found.hash, error = %e, "block submission failed");
            stats.send(StatsEvent::BlockRejected);
            BlockStatus::Rejected {
                reason: format!("submission failed: {e}"),
            }
        }
    };
    BlockRecord {
        height: found.height,
        hash: found.hash.clone(),
        template_id: found.template_id,
        worker: found.worker.clone(),
        time_ms: now_ms,
        reward_sats: found.reward_sats,
        outputs: found.split.payouts.clone(),
        window: found.window,
        mode: mode.into(),
        status,
        payout_rules: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::ledger::LedgerConfig;
    use crate::payout::Split;
    use crate::template::Solution;

    /// A source with one template and the node's answers to submits, in order.
    struct Node {
        answers: VecDeque<Result<SubmitOutcome, SourceError>>,
    }

    impl TemplateSource for Node {
        fn name(&self) -> &'static str {
            "test"
        }

        fn next_template(&mut self) -> impl Future<Output = Result<Template, SourceError>> + Send {
            std::future::pending()
        }

        fn submit(
            &mut self,
            _: Solution,
        ) -> impl Future<Output = Result<SubmitOutcome, SourceError>> + Send {
            let answer = self
                .answers
                .pop_front()
                .unwrap_or_else(|| Err(SourceError::Connection("no more answers".into())));
            async move { answer }
        }
    }

    fn found(prev_hash: [u8; 32]) -> FoundBlock {
        FoundBlock {
            solution: Solution {
                template_id: 1,
                header: [0; 80],
                coinbase: vec![],
            },
            height: 101,
            hash: "00aa".into(),
            prev_hash,
            worker: "miner".into(),
            split: Arc::new(Split::default()),
            reward_sats: 5_000_000_000,
            window: None,
            template_id: 1,
            block: None,
        }
    }

    #[tokio::test]
    async fn a_block_refused_then_accepted_on_its_second_copy_is_recorded_accepted_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ledger, thread) =
            Ledger::open(LedgerConfig::new(dir.path().join("ledger.sqlite"))).expect("ledger");
        let template = crate::template::Template {
            id: 1,
            height: 101,
            prev_hash: [7; 32],
            version: 0x2000_0000,
            nbits: 0x207f_ffff,
            min_ntime: 0,
            coinbase_tx_version: 2,
            coinbase_prefix: vec![1, 101],
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: 5_000_000_000,
            coinbase_tx_outputs: vec![],
            coinbase_tx_locktime: 0,
            merkle_path: vec![],
            tx_count: 0,
        };
        let (work_tx, _work_rx) = watch::channel(Arc::new(Work {
            seq: 1,
            template: Arc::new(template),
            payouts: Payouts::Solo,
            window: None,
            shared_coinbase: Default::default(),
        }));
        let (stats, _queue) = super::super::stats::channel();
        let (blocks_tx, blocks_rx) = mpsc::channel(8);
        let shutdown = CancellationToken::new();
        // the first copy's submission fails; the same block again (a JDC's PushSolution
        // after the share) is accepted
        let node = Node {
            answers: VecDeque::from([
                Err(SourceError::Connection("connection reset".into())),
                Ok(SubmitOutcome::Accepted {
                    hash: "00aa".into(),
                }),
            ]),
        };
        let cfg = ManagerConfig {
            payout: PayoutMode::Solo(Default::default()),
            pool_script: ScriptBuf::from_bytes(vec![0x51]),
            network: Network::Regtest,
            min_block_interval: Duration::ZERO,
            whole_blocks: None,
        };
        let manager = tokio::spawn(run(
            node,
            || async { Err::<Node, _>(SourceError::Connection("no reconnect".into())) },
            cfg,
            work_tx,
            blocks_rx,
            ledger.clone(),
            stats,
            shutdown.clone(),
        ));
        blocks_tx.send(found([7; 32])).await.expect("manager");
        blocks_tx.send(found([7; 32])).await.expect("manager");
        let mut status = None;
        for _ in 0..200 {
            status = ledger.block("00aa").await.expect("read").map(|b| b.status);
            if status == Some(BlockStatus::Accepted) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(status, Some(BlockStatus::Accepted));
        assert_eq!(ledger.blocks(10).await.expect("read").len(), 1);
        shutdown.cancel();
        manager.await.expect("manager");
        drop(ledger);
        thread.join().expect("ledger thread");
    }
}
