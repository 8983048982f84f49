//! One JDC connection as a synchronous state machine (see the [module docs](super)).
//!
//! ```text
//!   AwaitSetup --SetupConnection(job declaration, v2, DECLARE_TX_DATA)--> Ready
//!        \--anything else----------------------------------------------------> Closed
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{Block, Transaction};
use strata_protocol::common::{
    CommonMessage, Protocol, SetupConnection, SetupConnectionError, SetupConnectionSuccess,
};
use strata_protocol::job_declaration::{
    AllocateMiningJobToken, AllocateMiningJobTokenSuccess, DeclareMiningJob, DeclareMiningJobError,
    DeclareMiningJobSuccess, JobDeclarationMessage, ProvideMissingTransactions,
    ProvideMissingTransactionsSuccess, PushSolution, DECLARE_TX_DATA, ERROR_INTERNAL_ERROR,
    ERROR_INVALID_JOB, ERROR_INVALID_MINING_JOB_TOKEN, ERROR_MISSING_DECLARE_TX_DATA_FLAG,
    ERROR_MISSING_TXS, ERROR_STALE_CHAIN_TIP,
};
use strata_protocol::wire::{Str0_255, B0_255, B0_64K};
use strata_protocol::Message;
use strata_work::merkle::merkle_path_for_coinbase;
use strata_work::time::Now;

use super::coinbase::{assemble_block, check_required_outputs, HeaderFields, Refusal};
use crate::payout::Split;

use super::{ChainTip, DeclaredCoinbase, DeclaredJob, JdsContext, JdsLimits};

/// What the connection task must do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send this message to the JDC.
    Send(Message),
    /// Ask the pool's node whether `block` is valid on its tip, proof of work aside (the
    /// edge asks over `[rpc]`: `getblocktemplate` proposal mode, whatever the template
    /// source); answer with [`JdsSession::on_check`] and this `check`.
    CheckBlock {
        /// Id to answer with.
        check: u64,
        /// The declared block, with a zero nonce.
        block: Arc<Block>,
    },
    /// A declaration was accepted: the mining side may now accept custom jobs with its token.
    Declared(Arc<DeclaredJob>),
    /// A JDC pushed a solution of one of its declared jobs: submit this block (and record
    /// it as a block of `job`).
    SubmitBlock {
        /// The solved block.
        block: Arc<Block>,
        /// The declared job it solves.
        job: Arc<DeclaredJob>,
    },
    /// Close the connection after what precedes; the reason is logged.
    Close(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitSetup,
    Ready,
    Closed,
}

/// An allocated token waiting for its declaration.
#[derive(Debug)]
struct Allocated {
    expires: Instant,
    split: Arc<Split>,
    window: Option<(i64, i64)>,
    user: String,
}

/// A declaration waiting for missing transactions or the node's answer.
#[derive(Debug)]
struct Pending {
    request_id: u32,
    expires: Instant,
    version: u32,
    coinbase: DeclaredCoinbase,
    split: Arc<Split>,
    window: Option<(i64, i64)>,
    user: String,
    wtxids: Vec<[u8; 32]>,
    txs: Vec<Option<Arc<Transaction>>>,
    /// Positions asked for with ProvideMissingTransactions (empty once provided).
    missing: Vec<u16>,
    /// The tip the declaration was checked on.
    tip: ChainTip,
    /// The node check in flight.
    check: Option<u64>,
}

/// A declaration for the block after a tip the pool has not seen yet, waiting for it.
#[derive(Debug)]
struct Parked {
    declaration: DeclareMiningJob,
    allocated: Allocated,
    expires: Instant,
}

/// One Job Declaration connection.
#[derive(Debug)]
pub struct JdsSession {
    conn_id: u64,
    secret: [u8; 32],
    limits: JdsLimits,
    state: State,
    counter: u64,
    tokens: HashMap<u64, Allocated>,
    pending: Vec<Pending>,
    parked: Vec<Parked>,
    declared: VecDeque<Arc<DeclaredJob>>,
}

fn send(out: &mut Vec<Action>, msg: impl Into<Message>) {
    out.push(Action::Send(msg.into()));
}

fn refuse(out: &mut Vec<Action>, request_id: u32, (code, details): Refusal) {
    tracing::debug!(request_id, code, %details, "DeclareMiningJob refused");
    let mut details = details.into_bytes();
    details.truncate(B0_64K::MAX);
    send(
        out,
        DeclareMiningJobError {
            request_id,
            error_code: Str0_255::truncated(code),
            error_details: B0_64K::new(details).unwrap_or_default(),
        },
    );
}

impl JdsSession {
    /// A session for connection `conn_id`; tokens are derived from `secret` (random per pool
    /// process), so that they cannot be guessed from another connection.
    pub fn new(conn_id: u64, secret: [u8; 32], limits: JdsLimits) -> Self {
        JdsSession {
            conn_id,
            secret,
            limits,
            state: State::AwaitSetup,
            counter: 0,
            tokens: HashMap::new(),
            pending: Vec::new(),
            parked: Vec::new(),
            declared: VecDeque::new(),
        }
    }

    /// Whether `SetupConnection` succeeded.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the session ended (a `Close` action was emitted).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Allocated tokens not yet declared.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Declarations waiting for transactions, the node, or the pool's next tip.
    pub fn pending_count(&self) -> usize {
        self.pending.len() + self.parked.len()
    }

    /// Accepted declarations kept.
    pub fn declared_jobs(&self) -> impl Iterator<Item = &Arc<DeclaredJob>> {
        self.declared.iter()
    }

    fn close(&mut self, out: &mut Vec<Action>, reason: String) {
        self.state = State::Closed;
        out.push(Action::Close(reason));
    }

    #[cfg(test)]
    pub(super) fn next_token_for_test(&mut self) -> u64 {
        self.next_token()
    }

    fn next_token(&mut self) -> u64 {
        self.counter += 1;
        let mut e = sha256::HashEngine::default();
        e.input(&self.secret);
        e.input(&self.conn_id.to_le_bytes());
        e.input(&self.counter.to_le_bytes());
        let h = sha256::Hash::from_engine(e).to_byte_array();
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        u64::from_le_bytes(b)
    }

    /// Forgets expired tokens, declarations and jobs. A declaration that expires while
    /// waiting is answered `DeclareMiningJob.Error`: `missing-txs` when its transactions did
    /// not come, `internal-error` when the node did not answer.
    pub fn on_tick(&mut self, now: Now, out: &mut Vec<Action>) {
        self.tokens.retain(|_, t| t.expires > now.mono);
        self.declared.retain(|j| j.expires > now.mono);
        let (keep, expired): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.expires > now.mono);
        self.pending = keep;
        for p in expired {
            let refusal = if p.check.is_some() {
                (ERROR_INTERNAL_ERROR, "the node did not answer in time")
            } else {
                (
                    ERROR_MISSING_TXS,
                    "the missing transactions did not come in time",
                )
            };
            refuse(out, p.request_id, (refusal.0, refusal.1.into()));
        }
        let (keep, expired): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.expires > now.mono);
        self.parked = keep;
        for p in expired {
            let why = format!(
                "the pool's node did not reach the tip before the declared block in {} ms",
                self.limits.tip_wait.as_millis()
            );
            refuse(out, p.declaration.request_id, (ERROR_STALE_CHAIN_TIP, why));
        }
    }

    /// The pool's work changed (`ctx` is the new one): declarations waiting for this tip
    /// are examined now; those it left behind are refused `stale-chain-tip`.
    pub fn on_work(&mut self, now: Now, ctx: &JdsContext<'_>, out: &mut Vec<Action>) {
        if self.state == State::Closed || self.parked.is_empty() {
            return;
        }
        self.on_tick(now, out);
        for p in std::mem::take(&mut self.parked) {
            self.examine(p.declaration, p.allocated, p.expires, now, ctx, out);
        }
    }

    /// Handles one message from the JDC.
    pub fn on_message(
        &mut self,
        msg: Message,
        now: Now,
        ctx: &JdsContext<'_>,
        out: &mut Vec<Action>,
    ) {
        if self.state == State::Closed {
            return;
        }
        self.on_tick(now, out);
        let name = msg.name();
        match (self.state, msg) {
            (State::AwaitSetup, Message::Common(CommonMessage::SetupConnection(s))) => {
                self.on_setup(&s, out)
            }
            (State::AwaitSetup, _) => self.close(out, format!("{name} before SetupConnection")),
            (State::Ready, Message::JobDeclaration(m)) => match m {
                JobDeclarationMessage::AllocateMiningJobToken(a) => {
                    self.allocate(&a, now, ctx, out)
                }
                JobDeclarationMessage::DeclareMiningJob(d) => self.declare(d, now, ctx, out),
                JobDeclarationMessage::ProvideMissingTransactionsSuccess(p) => {
                    self.provided(p, now, out)
                }
                JobDeclarationMessage::PushSolution(p) => self.push_solution(&p, out),
                other => {
                    let name = other.name();
                    self.close(out, format!("unexpected {name} from a JDC"));
                }
            },
            (State::Ready, _) => self.close(out, format!("unexpected {name} from a JDC")),
            (State::Closed, _) => {}
        }
    }

    fn on_setup(&mut self, s: &SetupConnection, out: &mut Vec<Action>) {
        let error = |flags: u32, code: &str| SetupConnectionError {
            flags,
            error_code: Str0_255::truncated(code),
        };
        if let Some((refused, reason)) = s.refusal(Protocol::JobDeclaration) {
            send(out, refused);
            return self.close(out, reason);
        }
        if s.flags & DECLARE_TX_DATA == 0 {
            send(
                out,
                error(DECLARE_TX_DATA, ERROR_MISSING_DECLARE_TX_DATA_FLAG),
            );
            return self.close(out, "coinbase-only mode is not served".into());
        }
        self.state = State::Ready;
        send(
            out,
            SetupConnectionSuccess {
                used_version: 2,
                flags: DECLARE_TX_DATA,
            },
        );
    }

    fn allocate(
        &mut self,
        a: &AllocateMiningJobToken,
        now: Now,
        ctx: &JdsContext<'_>,
        out: &mut Vec<Action>,
    ) {
        while self.tokens.len() >= self.limits.max_tokens.max(1) {
            let Some(oldest) = self
                .tokens
                .iter()
                .min_by_key(|(_, t)| t.expires)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.tokens.remove(&oldest);
        }
        let user = a.user_identifier.as_str().to_owned();
        let (split, window) = match ctx.required.for_user(&user) {
            Ok(r) => r,
            // AllocateMiningJobToken has no error message
            Err(reason) => return self.close(out, reason),
        };
        let token = self.next_token();
        let encoded = serialize(&split.outputs);
        let Ok(coinbase_tx_outputs) = B0_64K::new(encoded) else {
            return self.close(out, "the required outputs exceed 64 KiB".into());
        };
        self.tokens.insert(
            token,
            Allocated {
                expires: now.mono + self.limits.token_lifetime,
                split,
                window,
                user,
            },
        );
        send(
            out,
            AllocateMiningJobTokenSuccess {
                request_id: a.request_id,
                mining_job_token: B0_255::new(token.to_le_bytes().to_vec()).unwrap_or_default(),
                coinbase_tx_outputs,
            },
        );
    }

    fn declare(
        &mut self,
        d: DeclareMiningJob,
        now: Now,
        ctx: &JdsContext<'_>,
        out: &mut Vec<Action>,
    ) {
        let rid = d.request_id;
        let token = <[u8; 8]>::try_from(d.mining_job_token.as_slice())
            .ok()
            .map(u64::from_le_bytes)
            .filter(|t| self.tokens.contains_key(t));
        let Some(token) = token else {
            let why = "not a token of this connection, used, or expired";
            return refuse(out, rid, (ERROR_INVALID_MINING_JOB_TOKEN, why.into()));
        };
        if self.pending_count() >= self.limits.max_pending
            || self.pending.iter().any(|p| p.request_id == rid)
            || self.parked.iter().any(|p| p.declaration.request_id == rid)
        {
            let why = "too many declarations in flight, or this request_id is in flight";
            return refuse(out, rid, (ERROR_INTERNAL_ERROR, why.into()));
        }
        // the token is used up from here on, whatever the outcome
        let Some(allocated) = self.tokens.remove(&token) else {
            return;
        };
        let wait_until = now.mono + self.limits.tip_wait;
        self.examine(d, allocated, wait_until, now, ctx, out);
    }

    /// Checks a declaration whose token was valid against the pool's tip and mempool. One
    /// for the block after a tip the pool has not seen yet waits for it until `wait_until`.
    fn examine(
        &mut self,
        d: DeclareMiningJob,
        allocated: Allocated,
        wait_until: Instant,
        now: Now,
        ctx: &JdsContext<'_>,
        out: &mut Vec<Action>,
    ) {
        let rid = d.request_id;
        let coinbase = match DeclaredCoinbase::parse(
            d.coinbase_tx_prefix.as_slice(),
            d.coinbase_tx_suffix.as_slice(),
        ) {
            Ok(c) => c,
            Err(r) => return refuse(out, rid, r),
        };
        match coinbase.height() {
            Ok(h) if h == ctx.tip.height => {}
            Ok(h) if h == ctx.tip.height.wrapping_add(1) && wait_until > now.mono => {
                tracing::debug!(
                    request_id = rid,
                    height = h,
                    "declaration ahead of the pool's tip: waiting for it"
                );
                self.parked.push(Parked {
                    declaration: d,
                    allocated,
                    expires: wait_until,
                });
                return;
            }
            Ok(h) => {
                let why = format!("height {h}, the pool's next block is {}", ctx.tip.height);
                return refuse(out, rid, (ERROR_STALE_CHAIN_TIP, why));
            }
            Err(e) => {
                let code = strata_protocol::job_declaration::ERROR_INVALID_COINBASE_TX_INPUT;
                return refuse(out, rid, (code, format!("scriptSig {e}")));
            }
        }
        if let Err(e) = check_required_outputs(
            &coinbase.tx.output,
            &allocated.split.outputs,
            ctx.tip.subsidy,
        ) {
            let code = strata_protocol::job_declaration::ERROR_INVALID_COINBASE_TX;
            return refuse(out, rid, (code, e));
        }
        let wtxids: Vec<[u8; 32]> = d.wtxid_list.iter().map(|w| w.0).collect();
        let mut seen = std::collections::HashSet::with_capacity(wtxids.len());
        if !wtxids.iter().all(|w| seen.insert(*w)) {
            return refuse(
                out,
                rid,
                (ERROR_INVALID_JOB, "a wtxid appears twice".into()),
            );
        }
        let txs: Vec<Option<Arc<Transaction>>> =
            wtxids.iter().map(|w| ctx.mempool.by_wtxid(w)).collect();
        let missing: Vec<u16> = txs
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_none())
            .map(|(i, _)| i as u16)
            .collect();
        if missing.len() > self.limits.max_missing_txs {
            let why = format!(
                "{} unknown transactions, at most {} may be provided",
                missing.len(),
                self.limits.max_missing_txs
            );
            return refuse(out, rid, (ERROR_MISSING_TXS, why));
        }
        let mut pending = Pending {
            request_id: rid,
            expires: now.mono + self.limits.token_lifetime,
            version: d.version,
            coinbase,
            split: allocated.split,
            window: allocated.window,
            user: allocated.user,
            wtxids,
            txs,
            missing,
            tip: ctx.tip,
            check: None,
        };
        if !pending.missing.is_empty() {
            let list = pending.missing.clone();
            send(
                out,
                ProvideMissingTransactions {
                    request_id: rid,
                    unknown_tx_position_list: list.try_into().unwrap_or_default(),
                },
            );
            self.pending.push(pending);
            return;
        }
        self.request_check(&mut pending, now, out);
        self.pending.push(pending);
    }

    fn provided(&mut self, p: ProvideMissingTransactionsSuccess, now: Now, out: &mut Vec<Action>) {
        let Some(i) = self
            .pending
            .iter()
            .position(|x| x.request_id == p.request_id && !x.missing.is_empty())
        else {
            // late (expired) or never asked: nothing waits for it
            tracing::debug!(
                request_id = p.request_id,
                "unexpected ProvideMissingTransactions.Success"
            );
            return;
        };
        let mut pending = self.pending.swap_remove(i);
        let rid = pending.request_id;
        if p.transaction_list.len() != pending.missing.len() {
            let why = format!(
                "{} transactions provided, {} asked for",
                p.transaction_list.len(),
                pending.missing.len()
            );
            return refuse(out, rid, (ERROR_MISSING_TXS, why));
        }
        for (pos, raw) in pending.missing.iter().zip(p.transaction_list.iter()) {
            let pos = usize::from(*pos);
            let tx: Transaction = match deserialize(raw.as_slice()) {
                Ok(t) => t,
                Err(e) => {
                    let why = format!("transaction {pos} does not decode: {e}");
                    return refuse(out, rid, (ERROR_MISSING_TXS, why));
                }
            };
            if tx.compute_wtxid().to_byte_array() != pending.wtxids[pos] {
                let why = format!("transaction {pos} is not the declared wtxid");
                return refuse(out, rid, (ERROR_MISSING_TXS, why));
            }
            pending.txs[pos] = Some(Arc::new(tx));
        }
        pending.missing.clear();
        self.request_check(&mut pending, now, out);
        self.pending.push(pending);
    }

    fn request_check(&mut self, pending: &mut Pending, now: Now, out: &mut Vec<Action>) {
        self.counter += 1;
        let check = self.counter;
        pending.check = Some(check);
        let txs: Vec<Arc<Transaction>> = pending.txs.iter().flatten().cloned().collect();
        let block = assemble_block(
            HeaderFields {
                version: pending.version,
                prev_hash: pending.tip.prev_hash,
                time: pending.tip.min_ntime.max(now.unix_secs()),
                nbits: pending.tip.nbits,
                nonce: 0,
            },
            pending.coinbase.tx.clone(),
            &txs,
        );
        out.push(Action::CheckBlock {
            check,
            block: Arc::new(block),
        });
    }

    /// The node's answer to [`Action::CheckBlock`]: `Err` with its reason when it refused
    /// the block.
    pub fn on_check(
        &mut self,
        check: u64,
        result: Result<(), String>,
        now: Now,
        ctx: &JdsContext<'_>,
        out: &mut Vec<Action>,
    ) {
        if self.state == State::Closed {
            return;
        }
        let Some(i) = self.pending.iter().position(|p| p.check == Some(check)) else {
            return;
        };
        let p = self.pending.swap_remove(i);
        let rid = p.request_id;
        if p.tip.prev_hash != ctx.tip.prev_hash {
            return refuse(out, rid, (ERROR_STALE_CHAIN_TIP, "the tip moved".into()));
        }
        if let Err(reason) = result {
            return refuse(out, rid, (ERROR_INVALID_JOB, format!("the node: {reason}")));
        }
        let transactions: Vec<Arc<Transaction>> = p.txs.into_iter().flatten().collect();
        let txids: Vec<[u8; 32]> = transactions
            .iter()
            .map(|t| t.compute_txid().to_byte_array())
            .collect();
        let token = self.next_token();
        let job = Arc::new(DeclaredJob {
            token,
            conn_id: self.conn_id,
            prev_hash: p.tip.prev_hash,
            height: p.tip.height,
            nbits: p.tip.nbits,
            min_ntime: p.tip.min_ntime,
            version: p.version,
            coinbase: p.coinbase,
            merkle_path: merkle_path_for_coinbase(&txids),
            transactions,
            split: p.split,
            window: p.window,
            user: p.user,
            expires: now.mono + self.limits.token_lifetime,
        });
        while self.declared.len() >= self.limits.max_declared_jobs.max(1) {
            self.declared.pop_front();
        }
        self.declared.push_back(Arc::clone(&job));
        send(
            out,
            DeclareMiningJobSuccess {
                request_id: rid,
                new_mining_job_token: B0_255::new(token.to_le_bytes().to_vec()).unwrap_or_default(),
            },
        );
        out.push(Action::Declared(job));
    }

    /// A solution names no job: it is the block of whichever declared job on its tip it
    /// completes (the newest first; a JDC may have declared several on one tip, fees rising).
    fn push_solution(&mut self, p: &PushSolution, out: &mut Vec<Action>) {
        let mut on_tip = 0;
        for job in self.declared.iter().rev() {
            if job.prev_hash != p.prev_hash.0 || p.nbits != job.nbits {
                continue;
            }
            on_tip += 1;
            let Ok(coinbase) = job.coinbase.with_extranonce(p.extranonce.as_slice()) else {
                continue;
            };
            let block = assemble_block(
                HeaderFields {
                    version: p.version,
                    prev_hash: job.prev_hash,
                    time: p.ntime,
                    nbits: job.nbits,
                    nonce: p.nonce,
                },
                coinbase,
                &job.transactions,
            );
            if block.header.validate_pow(block.header.target()).is_ok() {
                out.push(Action::SubmitBlock {
                    block: Arc::new(block),
                    job: Arc::clone(job),
                });
                return;
            }
        }
        tracing::debug!(
            conn = self.conn_id,
            jobs_on_its_tip = on_tip,
            "PushSolution completes no declared job (extranonce size, or below the block target)"
        );
    }
}
