//! Fuzzing harness for the Job Declarator Server's connection state machine
//! ([`JdsSession`]); the `jds_session` cargo-fuzz target is a shim over [`session`] and its
//! seeds are replayed by `cargo test`.
//!
//! The input is a script: each step is one control byte followed by its argument. Steps feed
//! the session SV2 frames (whatever bytes follow, framed or not), the node's answer to the
//! oldest block check in flight (valid or not), a new tip, and time. Invariants checked: no
//! panic; nothing comes out after a `Close`; the per-connection bounds hold; every
//! `DeclareMiningJob.Success` answers a block check that was asked for and comes with its
//! [`Action::Declared`]; every block to submit has a valid merkle root and proof of work.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use bytes::BytesMut;
use strata_protocol::job_declaration::JobDeclarationMessage;
use strata_protocol::{FrameDecoder, Message};
use strata_work::time::Now;

use crate::jds::{Action, ChainTip, JdsContext, JdsLimits, JdsSession, Required};
use crate::payout::Split;

/// The harness's first tip (seeds declare coinbases at its height).
pub fn tip() -> ChainTip {
    ChainTip {
        prev_hash: [7; 32],
        height: 200,
        nbits: 0x207f_ffff,
        min_ntime: 1_700_000_000,
        subsidy: 1_000,
    }
}

/// The outputs the harness's pool requires.
pub fn required_outputs() -> Vec<TxOut> {
    vec![TxOut {
        value: Amount::from_sat(1_000_000),
        script_pubkey: ScriptBuf::from_bytes([0x00, 0x14].into_iter().chain([1u8; 20]).collect()),
    }]
}

/// Transaction `n` of the harness's mempool (`n` in 0..4 are in it, others are not).
pub fn mempool_tx(n: u8) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[vec![n; 8]]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    }
}

/// The pool's side of a step: its tip, its PPLNS split (no window) and its mempool.
fn context<'a>(
    tip: ChainTip,
    split: &'a Arc<Split>,
    mempool: &'a HashMap<[u8; 32], Arc<Transaction>>,
) -> JdsContext<'a> {
    JdsContext {
        tip,
        required: Required::Shared {
            split,
            window: None,
        },
        mempool,
    }
}

/// The limits the harness runs with (small, to reach them).
pub fn limits() -> JdsLimits {
    JdsLimits {
        token_lifetime: Duration::from_secs(60),
        max_tokens: 3,
        max_pending: 2,
        max_missing_txs: 4,
        max_declared_jobs: 2,
        tip_wait: Duration::from_millis(500),
    }
}

/// What one run produced (seed tests check their scripts reach what they are meant to).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    /// `DeclareMiningJob.Success` sent.
    pub declared: usize,
    /// `DeclareMiningJob.Error` sent.
    pub refused: usize,
    /// `ProvideMissingTransactions` sent.
    pub asked: usize,
    /// Blocks to submit.
    pub submitted: usize,
    /// Whether the session closed.
    pub closed: bool,
}

/// Runs one fuzz input through a JDS session.
pub fn session(data: &[u8]) -> Outcomes {
    let mut seen = Outcomes::default();
    let limits = limits();
    let mut s = JdsSession::new(1, [3; 32], limits.clone());
    let mempool: HashMap<[u8; 32], Arc<Transaction>> = (0..4)
        .map(|n| {
            let t = mempool_tx(n);
            (t.compute_wtxid().to_byte_array(), Arc::new(t))
        })
        .collect();
    let mut required = Arc::new(Split {
        outputs: required_outputs(),
        ..Split::default()
    });
    let mut tip = tip();
    let mut now = Now {
        mono: Instant::now(),
        unix_ms: 1_700_000_000_000,
    };
    let mut checks: VecDeque<u64> = VecDeque::new();
    let mut out: Vec<Action> = Vec::new();
    let mut buf = BytesMut::new();
    let mut decoder = FrameDecoder::new(1 << 16);
    let mut closed = false;
    let mut i = 0;
    while i < data.len() {
        let op = data[i];
        i += 1;
        let arg = data.get(i).copied().unwrap_or(0);
        let ctx = context(tip, &required, &mempool);
        let mut answered = None;
        match op % 5 {
            0 | 1 => {
                // bytes of the SV2 stream, length-prefixed by one byte
                let n = usize::from(arg);
                i = (i + 1).min(data.len());
                let end = (i + n).min(data.len());
                buf.extend_from_slice(&data[i..end]);
                i = end;
                while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                    if let Ok(msg) = Message::decode(&frame.header, &frame.payload) {
                        s.on_message(msg, now, &ctx, &mut out);
                    }
                }
            }
            2 => {
                i += 1;
                if let Some(check) = checks.pop_front() {
                    let result = if arg & 1 == 0 {
                        Ok(())
                    } else {
                        Err("bad-txns".into())
                    };
                    answered = Some(check);
                    s.on_check(check, result, now, &ctx, &mut out);
                }
            }
            3 => {
                i += 1;
                if arg & 1 == 1 {
                    tip.prev_hash[0] = tip.prev_hash[0].wrapping_add(1);
                    tip.height += 1;
                } else {
                    required = Arc::new(Split::default());
                }
                // new work: declarations waiting for this tip go on
                s.on_work(now, &context(tip, &required, &mempool), &mut out);
            }
            _ => {
                i += 1;
                now = now.after(Duration::from_secs(u64::from(arg) * 10));
                s.on_tick(now, &mut out);
            }
        }
        assert!(s.token_count() <= limits.max_tokens);
        assert!(s.pending_count() <= limits.max_pending);
        assert!(s.declared_jobs().count() <= limits.max_declared_jobs);
        let mut success = false;
        for a in out.drain(..) {
            assert!(!closed, "action after Close: {a:?}");
            match a {
                Action::Close(_) => closed = true,
                Action::CheckBlock { check, block } => {
                    assert!(block.check_merkle_root());
                    checks.push_back(check);
                }
                Action::Send(Message::JobDeclaration(
                    JobDeclarationMessage::DeclareMiningJobSuccess(_),
                )) => {
                    assert!(answered.is_some(), "Success without a node check");
                    success = true;
                    seen.declared += 1;
                }
                Action::Declared(job) => {
                    assert!(success, "Declared without its Success");
                    assert_eq!(job.prev_hash, tip.prev_hash);
                }
                Action::SubmitBlock { block, .. } => {
                    assert!(block.check_merkle_root());
                    assert!(block.header.validate_pow(block.header.target()).is_ok());
                    seen.submitted += 1;
                }
                Action::Send(Message::JobDeclaration(
                    JobDeclarationMessage::DeclareMiningJobError(_),
                )) => seen.refused += 1,
                Action::Send(Message::JobDeclaration(
                    JobDeclarationMessage::ProvideMissingTransactions(_),
                )) => seen.asked += 1,
                Action::Send(_) => {}
            }
        }
    }
    seen.closed = closed;
    seen
}
