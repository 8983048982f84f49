//! Unit tests of the JDS session core, the clock and the node's answers given as values.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use strata_protocol::common::{CommonMessage, SetupConnection, SetupConnectionError};
use strata_protocol::job_declaration::{self as jd, JobDeclarationMessage};
use strata_protocol::wire::{Str0_255, B0_16M, B0_255, B0_32, B0_64K, U256};
use strata_protocol::Message;
use strata_work::coinbase::bip34_height_push;
use strata_work::time::Now;

use super::*;
use crate::payout::Split;

const HEIGHT: u32 = 200;
const EXTRANONCE: usize = 8;

fn now0() -> Now {
    Now {
        mono: Instant::now(),
        unix_ms: 1_700_000_000_000,
    }
}

fn tip() -> ChainTip {
    ChainTip {
        prev_hash: [7; 32],
        height: HEIGHT,
        nbits: 0x207f_ffff,
        min_ntime: 1_600_000_000,
        subsidy: 1_000,
    }
}

fn pool_script(n: u8) -> ScriptBuf {
    let mut b = vec![0x00, 0x14];
    b.extend_from_slice(&[n; 20]);
    ScriptBuf::from_bytes(b)
}

fn required() -> Arc<Split> {
    split(vec![
        TxOut {
            value: Amount::from_sat(1_000_000),
            script_pubkey: pool_script(1),
        },
        TxOut {
            value: Amount::from_sat(2_000_000),
            script_pubkey: pool_script(2),
        },
    ])
}

fn split(outputs: Vec<TxOut>) -> Arc<Split> {
    Arc::new(Split {
        outputs,
        ..Split::default()
    })
}

fn mempool_tx(n: u8) -> Transaction {
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
            witness: Witness::from_slice(&[vec![n; 72]]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(10_000),
            script_pubkey: pool_script(n),
        }],
    }
}

fn wtxid(t: &Transaction) -> [u8; 32] {
    t.compute_wtxid().to_byte_array()
}

/// The PPLNS window of the tests' shared split.
const WINDOW: Option<(i64, i64)> = Some((3, 9));

struct Jdc {
    session: JdsSession,
    mempool: HashMap<[u8; 32], Arc<Transaction>>,
    required: Arc<Split>,
    /// Solo mode: the pool template's reward and the rules (else PPLNS: `required`).
    solo: Option<(u64, SoloRules)>,
    tip: ChainTip,
    now: Now,
}

fn required_of<'a>(split: &'a Arc<Split>, solo: &'a Option<(u64, SoloRules)>) -> Required<'a> {
    match solo {
        Some((reward, rules)) => Required::Solo {
            reward: *reward,
            rules,
        },
        None => Required::Shared {
            split,
            window: WINDOW,
        },
    }
}

impl Jdc {
    fn new(limits: JdsLimits) -> Self {
        let mut mempool = HashMap::new();
        for n in 10..13 {
            let t = mempool_tx(n);
            mempool.insert(wtxid(&t), Arc::new(t));
        }
        let mut j = Jdc {
            session: JdsSession::new(5, [9; 32], limits),
            mempool,
            required: required(),
            solo: None,
            tip: tip(),
            now: now0(),
        };
        let out = j.send(setup(1, jd::DECLARE_TX_DATA));
        assert!(matches!(
            &out[..],
            [Action::Send(Message::Common(CommonMessage::SetupConnectionSuccess(s)))] if s.flags == jd::DECLARE_TX_DATA
        ));
        j
    }

    fn send(&mut self, msg: impl Into<Message>) -> Vec<Action> {
        let mut out = Vec::new();
        let ctx = JdsContext {
            tip: self.tip,
            required: required_of(&self.required, &self.solo),
            mempool: &self.mempool,
        };
        self.session
            .on_message(msg.into(), self.now, &ctx, &mut out);
        out
    }

    fn check(&mut self, check: u64, result: Result<(), String>) -> Vec<Action> {
        let mut out = Vec::new();
        let ctx = JdsContext {
            tip: self.tip,
            required: required_of(&self.required, &self.solo),
            mempool: &self.mempool,
        };
        self.session
            .on_check(check, result, self.now, &ctx, &mut out);
        out
    }

    /// A solo pool's JDS: templates paying `reward`, a fee of 1 %.
    fn solo(reward: u64) -> Self {
        let mut j = Jdc::new(JdsLimits::default());
        j.solo = Some((reward, solo_rules()));
        j
    }

    fn token(&mut self) -> (Vec<u8>, Vec<TxOut>) {
        self.token_of("farm")
    }

    fn token_of(&mut self, user: &str) -> (Vec<u8>, Vec<TxOut>) {
        let out = self.send(jd::AllocateMiningJobToken {
            user_identifier: Str0_255::new(user).unwrap(),
            request_id: 1,
        });
        match &out[..] {
            [Action::Send(Message::JobDeclaration(
                JobDeclarationMessage::AllocateMiningJobTokenSuccess(s),
            ))] => {
                assert_eq!(s.request_id, 1);
                let outputs: Vec<TxOut> = deserialize(s.coinbase_tx_outputs.as_slice()).unwrap();
                (s.mining_job_token.as_slice().to_vec(), outputs)
            }
            other => panic!("expected a token, got {other:?}"),
        }
    }
}

fn solo_rules() -> SoloRules {
    SoloRules {
        pool_script: pool_script(1),
        fee_ppm: 10_000,
        network: bitcoin::Network::Regtest,
    }
}

/// A regtest address (P2WSH of one opcode).
fn address(op: u8) -> bitcoin::Address {
    bitcoin::Address::p2wsh(&ScriptBuf::from(vec![op]), bitcoin::Network::Regtest)
}

/// Declares `outputs` with a fresh token of the session and answers its check: the job.
fn declared_job(j: &mut Jdc, token: &[u8], outputs: Vec<TxOut>) -> Arc<DeclaredJob> {
    let out = j.send(declare(token, 40, coinbase(HEIGHT, outputs), &[]));
    let (check, _) = check_id(&out);
    match &j.check(check, Ok(()))[..] {
        [Action::Send(_), Action::Declared(job)] => Arc::clone(job),
        other => panic!("expected DeclareMiningJob.Success, got {other:?}"),
    }
}

fn setup(protocol: u8, flags: u32) -> SetupConnection {
    SetupConnection {
        protocol,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: Str0_255::default(),
        endpoint_port: 0,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
}

/// A segwit coinbase at `height` paying `outputs`, split around an 8-byte extranonce.
fn coinbase(height: u32, outputs: Vec<TxOut>) -> (Vec<u8>, Vec<u8>) {
    let mut script = bip34_height_push(height);
    script.extend_from_slice(&[0u8; EXTRANONCE]);
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(script.clone()),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output: outputs,
    };
    let bytes = serialize(&tx);
    // version 4, marker and flag 2, one input 1, outpoint 36, scriptSig length 1
    let end_of_script = 4 + 2 + 1 + 36 + 1 + script.len();
    let split = end_of_script - EXTRANONCE;
    (bytes[..split].to_vec(), bytes[end_of_script..].to_vec())
}

fn declare(
    token: &[u8],
    request_id: u32,
    cb: (Vec<u8>, Vec<u8>),
    wtxids: &[[u8; 32]],
) -> jd::DeclareMiningJob {
    jd::DeclareMiningJob {
        request_id,
        mining_job_token: B0_255::new(token.to_vec()).unwrap(),
        version: 0x2000_0000,
        coinbase_tx_prefix: B0_64K::new(cb.0).unwrap(),
        coinbase_tx_suffix: B0_64K::new(cb.1).unwrap(),
        wtxid_list: wtxids
            .iter()
            .map(|w| U256(*w))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap(),
        excess_data: B0_64K::default(),
    }
}

fn error_code(out: &[Action]) -> (u32, String) {
    match out {
        [Action::Send(Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobError(e)))] => {
            (e.request_id, e.error_code.as_str().to_string())
        }
        other => panic!("expected one DeclareMiningJob.Error, got {other:?}"),
    }
}

fn check_id(out: &[Action]) -> (u64, Arc<bitcoin::Block>) {
    match out {
        [Action::CheckBlock { check, block }] => (*check, Arc::clone(block)),
        other => panic!("expected one CheckBlock, got {other:?}"),
    }
}

fn mempool_wtxids(j: &Jdc) -> Vec<[u8; 32]> {
    (10..13)
        .map(|n| wtxid(&mempool_tx(n)))
        .filter(|w| j.mempool.contains_key(w))
        .collect()
}

#[test]
fn setup_requires_job_declaration_and_declare_tx_data() {
    let mut s = JdsSession::new(1, [0; 32], JdsLimits::default());
    let mempool = HashMap::new();
    let req = required();
    let ctx = JdsContext {
        tip: tip(),
        required: Required::Shared {
            split: &req,
            window: None,
        },
        mempool: &mempool,
    };
    let mut out = Vec::new();
    s.on_message(setup(1, 0).into(), now0(), &ctx, &mut out);
    match &out[..] {
        [Action::Send(Message::Common(CommonMessage::SetupConnectionError(
            SetupConnectionError { flags, error_code },
        ))), Action::Close(_)] => {
            assert_eq!(*flags, jd::DECLARE_TX_DATA);
            assert_eq!(error_code.as_str(), jd::ERROR_MISSING_DECLARE_TX_DATA_FLAG);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.is_closed());

    let mut s = JdsSession::new(1, [0; 32], JdsLimits::default());
    let mut out = Vec::new();
    s.on_message(setup(0, jd::DECLARE_TX_DATA).into(), now0(), &ctx, &mut out);
    assert!(
        matches!(out.last(), Some(Action::Close(_))),
        "mining protocol refused"
    );

    let mut s = JdsSession::new(1, [0; 32], JdsLimits::default());
    let mut out = Vec::new();
    let alloc = jd::AllocateMiningJobToken {
        user_identifier: Str0_255::default(),
        request_id: 1,
    };
    s.on_message(alloc.into(), now0(), &ctx, &mut out);
    assert!(
        matches!(&out[..], [Action::Close(_)]),
        "nothing before SetupConnection"
    );
}

#[test]
fn tokens_carry_the_required_outputs_and_differ() {
    let mut j = Jdc::new(JdsLimits::default());
    let (t1, outputs) = j.token();
    let (t2, _) = j.token();
    assert_eq!(t1.len(), 8, "8-byte tokens as SRI's");
    assert_ne!(t1, t2);
    assert_eq!(outputs, required().outputs);
    let mut other = JdsSession::new(6, [9; 32], JdsLimits::default());
    assert_ne!(
        other.next_token_for_test(),
        u64::from_le_bytes(t1.try_into().unwrap())
    );
}

#[test]
fn full_declaration_is_checked_by_the_node_and_accepted() {
    let mut j = Jdc::new(JdsLimits::default());
    let (token, outputs) = j.token();
    let wtxids = mempool_wtxids(&j);
    let out = j.send(declare(
        &token,
        7,
        coinbase(HEIGHT, outputs.clone()),
        &wtxids,
    ));
    let (check, block) = check_id(&out);
    assert_eq!(
        block.txdata.len(),
        4,
        "coinbase and the three declared transactions"
    );
    assert_eq!(block.header.prev_blockhash.to_byte_array(), [7; 32]);
    assert!(block.check_merkle_root());
    assert_eq!(block.txdata[0].output, outputs);
    assert_eq!(j.session.pending_count(), 1);

    let out = j.check(check, Ok(()));
    let job = match &out[..] {
        [Action::Send(Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobSuccess(
            s,
        ))), Action::Declared(job)] => {
            assert_eq!(s.request_id, 7);
            assert_eq!(s.new_mining_job_token.as_slice(), job.token.to_le_bytes());
            Arc::clone(job)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(job.transactions.len(), 3);
    assert_eq!(job.coinbase.extranonce_len, EXTRANONCE);
    assert_eq!(job.height, HEIGHT);
    // PPLNS: the window's split and its share ids, whoever the user is
    assert_eq!(job.split, required());
    assert_eq!(job.window, WINDOW);
    assert_eq!(job.user, "farm");
    assert_eq!(j.session.pending_count(), 0);
    assert_eq!(j.session.declared_jobs().count(), 1);

    // the same token again: replay
    let out = j.send(declare(&token, 8, coinbase(HEIGHT, outputs), &wtxids));
    assert_eq!(
        error_code(&out),
        (8, jd::ERROR_INVALID_MINING_JOB_TOKEN.to_string())
    );
    assert_eq!(j.session.declared_jobs().count(), 1);
}

#[test]
fn node_refusal_and_moved_tip_are_errors() {
    let mut j = Jdc::new(JdsLimits::default());
    let (token, outputs) = j.token();
    let out = j.send(declare(&token, 1, coinbase(HEIGHT, outputs.clone()), &[]));
    let (check, _) = check_id(&out);
    let out = j.check(check, Err("bad-txns-inputs-missingorspent".into()));
    assert_eq!(error_code(&out), (1, jd::ERROR_INVALID_JOB.to_string()));
    assert_eq!(j.session.declared_jobs().count(), 0);
    assert!(j.check(check, Ok(())).is_empty(), "an answer is used once");

    let (token, outputs) = j.token();
    let out = j.send(declare(&token, 2, coinbase(HEIGHT, outputs), &[]));
    let (check, _) = check_id(&out);
    j.tip.prev_hash = [8; 32];
    let out = j.check(check, Ok(()));
    assert_eq!(error_code(&out), (2, jd::ERROR_STALE_CHAIN_TIP.to_string()));
    assert_eq!(j.session.declared_jobs().count(), 0);

    // the node never answers: the declaration expires
    j.tip = tip();
    let (token, outputs) = j.token();
    let out = j.send(declare(&token, 3, coinbase(HEIGHT, outputs), &[]));
    let (check, _) = check_id(&out);
    j.now = j.now.after(JdsLimits::default().token_lifetime);
    let mut out = Vec::new();
    j.session.on_tick(j.now, &mut out);
    assert_eq!(error_code(&out), (3, jd::ERROR_INTERNAL_ERROR.to_string()));
    assert!(
        j.check(check, Ok(())).is_empty(),
        "a late answer changes nothing"
    );
    assert_eq!(j.session.declared_jobs().count(), 0);
}

#[test]
fn lying_coinbases_are_refused() {
    let mut j = Jdc::new(JdsLimits::default());
    // one sat of a required output moved to an output of the JDC's own
    let (token, mut outputs) = j.token();
    outputs[1].value = Amount::from_sat(1_999_999);
    outputs.push(TxOut {
        value: Amount::from_sat(1),
        script_pubkey: pool_script(9),
    });
    let out = j.send(declare(&token, 1, coinbase(HEIGHT, outputs), &[]));
    assert_eq!(
        error_code(&out),
        (1, jd::ERROR_INVALID_COINBASE_TX.to_string())
    );
    // paying more, and to an extra output, is fine
    let (token, mut outputs) = j.token();
    outputs[0].value = Amount::from_sat(5_000_000);
    outputs.push(TxOut {
        value: Amount::from_sat(1),
        script_pubkey: pool_script(3),
    });
    let out = j.send(declare(&token, 2, coinbase(HEIGHT, outputs.clone()), &[]));
    check_id(&out);
    // the wrong height
    let (token, _) = j.token();
    let out = j.send(declare(
        &token,
        3,
        coinbase(HEIGHT - 1, outputs.clone()),
        &[],
    ));
    assert_eq!(error_code(&out), (3, jd::ERROR_STALE_CHAIN_TIP.to_string()));
    // garbage
    let (token, _) = j.token();
    let out = j.send(declare(&token, 4, (vec![1, 2, 3], vec![]), &[]));
    assert_eq!(
        error_code(&out),
        (4, jd::ERROR_INVALID_COINBASE_TX.to_string())
    );
    // a declaration's tokens are used up even when refused
    let out = j.send(declare(&token, 5, coinbase(HEIGHT, outputs), &[]));
    assert_eq!(
        error_code(&out),
        (5, jd::ERROR_INVALID_MINING_JOB_TOKEN.to_string())
    );
}

#[test]
fn tokens_expire_and_are_bounded() {
    let limits = JdsLimits {
        max_tokens: 2,
        ..JdsLimits::default()
    };
    let mut j = Jdc::new(limits);
    let (t1, outputs) = j.token();
    j.now = j.now.after(Duration::from_secs(1));
    let (t2, _) = j.token();
    j.now = j.now.after(Duration::from_secs(1));
    let (t3, _) = j.token();
    assert_eq!(j.session.token_count(), 2, "the oldest was dropped");
    let out = j.send(declare(&t1, 1, coinbase(HEIGHT, outputs.clone()), &[]));
    assert_eq!(
        error_code(&out),
        (1, jd::ERROR_INVALID_MINING_JOB_TOKEN.to_string())
    );
    j.now = j.now.after(JdsLimits::default().token_lifetime);
    let out = j.send(declare(&t2, 2, coinbase(HEIGHT, outputs), &[]));
    assert_eq!(
        error_code(&out),
        (2, jd::ERROR_INVALID_MINING_JOB_TOKEN.to_string())
    );
    assert_eq!(j.session.token_count(), 0, "t3 expired too");
    drop(t3);
}

#[test]
fn unknown_transactions_are_asked_for_and_checked() {
    let mut j = Jdc::new(JdsLimits::default());
    let (token, outputs) = j.token();
    let unknown = mempool_tx(42);
    let mut wtxids = mempool_wtxids(&j);
    wtxids.insert(1, wtxid(&unknown));
    let out = j.send(declare(
        &token,
        9,
        coinbase(HEIGHT, outputs.clone()),
        &wtxids,
    ));
    match &out[..] {
        [Action::Send(Message::JobDeclaration(
            JobDeclarationMessage::ProvideMissingTransactions(p),
        ))] => {
            assert_eq!(p.request_id, 9);
            assert_eq!(p.unknown_tx_position_list.as_slice(), &[1]);
        }
        other => panic!("{other:?}"),
    }
    // a different transaction than the declared one
    let provide = |tx: &Transaction| jd::ProvideMissingTransactionsSuccess {
        request_id: 9,
        transaction_list: vec![B0_16M::new(serialize(tx)).unwrap()]
            .try_into()
            .unwrap(),
    };
    let out = j.send(provide(&mempool_tx(43)));
    assert_eq!(error_code(&out), (9, jd::ERROR_MISSING_TXS.to_string()));
    assert_eq!(j.session.pending_count(), 0);

    // the right one, in a second declaration
    let (token, _) = j.token();
    let out = j.send(declare(&token, 9, coinbase(HEIGHT, outputs), &wtxids));
    assert!(matches!(&out[..], [Action::Send(_)]));
    let out = j.send(provide(&unknown));
    let (check, block) = check_id(&out);
    assert_eq!(block.txdata[2], unknown, "in its declared position");
    let out = j.check(check, Ok(()));
    assert!(matches!(out.last(), Some(Action::Declared(job)) if job.transactions.len() == 4));
    assert!(
        j.send(provide(&unknown)).is_empty(),
        "nothing waits for a late answer"
    );
}

#[test]
fn too_many_unknown_or_waiting_declarations_are_refused() {
    let limits = JdsLimits {
        max_missing_txs: 1,
        max_pending: 1,
        ..JdsLimits::default()
    };
    let mut j = Jdc::new(limits);
    let (token, outputs) = j.token();
    let two = [wtxid(&mempool_tx(50)), wtxid(&mempool_tx(51))];
    let out = j.send(declare(&token, 1, coinbase(HEIGHT, outputs.clone()), &two));
    assert_eq!(error_code(&out), (1, jd::ERROR_MISSING_TXS.to_string()));

    let (t1, _) = j.token();
    let (t2, _) = j.token();
    let out = j.send(declare(
        &t1,
        2,
        coinbase(HEIGHT, outputs.clone()),
        &two[..1],
    ));
    assert!(
        matches!(&out[..], [Action::Send(_)]),
        "ProvideMissingTransactions"
    );
    let out = j.send(declare(&t2, 3, coinbase(HEIGHT, outputs.clone()), &[]));
    assert_eq!(error_code(&out), (3, jd::ERROR_INTERNAL_ERROR.to_string()));
    assert_eq!(
        j.session.token_count(),
        1,
        "a refusal for the limit keeps the token"
    );

    // the waiting one expires and is answered
    j.now = j.now.after(JdsLimits::default().token_lifetime);
    let mut out = Vec::new();
    j.session.on_tick(j.now, &mut out);
    assert_eq!(error_code(&out), (2, jd::ERROR_MISSING_TXS.to_string()));
    assert_eq!(j.session.pending_count(), 0);
}

/// A solution on the test tip at a fixed time.
fn push(extranonce: &[u8], nonce: u32) -> jd::PushSolution {
    jd::PushSolution {
        extranonce: B0_32::new(extranonce).unwrap(),
        prev_hash: U256([7; 32]),
        nonce,
        ntime: 1_700_000_100,
        nbits: 0x207f_ffff,
        version: 0x2000_0000,
    }
}

#[test]
fn push_solution_rebuilds_the_declared_block() {
    let mut j = Jdc::new(JdsLimits::default());
    let (token, outputs) = j.token();
    let wtxids = mempool_wtxids(&j);
    let out = j.send(declare(&token, 1, coinbase(HEIGHT, outputs), &wtxids));
    let (check, _) = check_id(&out);
    j.check(check, Ok(()));
    // regtest target: about one nonce in two solves
    let extranonce = [3u8; EXTRANONCE];
    let mut found = None;
    for nonce in 0..64 {
        if let [Action::SubmitBlock { block: b, .. }] = &j.send(push(&extranonce, nonce))[..] {
            found = Some(Arc::clone(b));
            break;
        }
    }
    let block = found.expect("a regtest nonce in 64");
    assert!(block.check_merkle_root());
    assert_eq!(block.txdata.len(), 4);
    let script = block.txdata[0].input[0].script_sig.as_bytes();
    assert!(script.ends_with(&extranonce));
    assert!(block.header.validate_pow(block.header.target()).is_ok());

    // a second job declared on the same tip (no transactions): a solution of either job is
    // that job's block, the older one included
    let (token, outputs) = j.token();
    let out = j.send(declare(&token, 2, coinbase(HEIGHT, outputs), &[]));
    let (check, _) = check_id(&out);
    j.check(check, Ok(()));
    let mut sizes = std::collections::BTreeSet::new();
    for nonce in 0..256 {
        if let [Action::SubmitBlock { block: b, .. }] = &j.send(push(&extranonce, nonce))[..] {
            assert!(b.header.validate_pow(b.header.target()).is_ok());
            sizes.insert(b.txdata.len());
        }
    }
    assert_eq!(
        sizes.into_iter().collect::<Vec<_>>(),
        [1, 4],
        "blocks of both jobs"
    );

    // a solution with a wrong extranonce size, or on an unknown tip, submits nothing
    assert!(j
        .send(push(&extranonce[..4], block.header.nonce))
        .is_empty());
    let mut elsewhere = push(&extranonce, block.header.nonce);
    elsewhere.prev_hash = U256([8; 32]);
    assert!(j.send(elsewhere).is_empty());
}

impl Jdc {
    /// The pool's work moved to `tip`.
    fn new_work(&mut self, tip: ChainTip) -> Vec<Action> {
        self.tip = tip;
        let mut out = Vec::new();
        let ctx = JdsContext {
            tip: self.tip,
            required: required_of(&self.required, &self.solo),
            mempool: &self.mempool,
        };
        self.session.on_work(self.now, &ctx, &mut out);
        out
    }
}

#[test]
fn a_declaration_one_block_ahead_waits_for_the_pools_tip() {
    let limits = JdsLimits {
        max_pending: 2,
        ..JdsLimits::default()
    };
    let wait = limits.tip_wait;
    let mut j = Jdc::new(limits);
    let next = ChainTip {
        prev_hash: [8; 32],
        height: HEIGHT + 1,
        ..tip()
    };
    // the farm's node has the next block first: no answer yet
    let (token, outputs) = j.token();
    let out = j.send(declare(
        &token,
        1,
        coinbase(HEIGHT + 1, outputs.clone()),
        &[],
    ));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(j.session.pending_count(), 1);
    // two blocks ahead is not waited for
    let (token, _) = j.token();
    let out = j.send(declare(
        &token,
        2,
        coinbase(HEIGHT + 2, outputs.clone()),
        &[],
    ));
    assert_eq!(error_code(&out), (2, jd::ERROR_STALE_CHAIN_TIP.to_string()));
    // a waiting declaration counts against the pending limit
    let (token, _) = j.token();
    let out = j.send(declare(
        &token,
        3,
        coinbase(HEIGHT + 1, outputs.clone()),
        &[],
    ));
    assert!(out.is_empty());
    let (token, _) = j.token();
    let out = j.send(declare(
        &token,
        4,
        coinbase(HEIGHT + 1, outputs.clone()),
        &[],
    ));
    assert_eq!(error_code(&out), (4, jd::ERROR_INTERNAL_ERROR.to_string()));
    // work on the same tip (fees) changes nothing
    assert!(j.new_work(tip()).is_empty());
    // the pool's node gets the block: both are checked on the new tip, then accepted
    let out = j.new_work(next);
    let checks: Vec<u64> = out
        .iter()
        .map(|a| match a {
            Action::CheckBlock { check, block } => {
                assert_eq!(block.header.prev_blockhash.to_byte_array(), [8; 32]);
                *check
            }
            other => panic!("expected node checks, got {other:?}"),
        })
        .collect();
    assert_eq!(checks.len(), 2);
    let out = j.check(checks[0], Ok(()));
    assert!(matches!(
        &out[..],
        [Action::Send(Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobSuccess(s))), Action::Declared(job)]
            if s.request_id == 1 && job.height == HEIGHT + 1
    ));

    // a tip the pool never reaches: refused once the wait is over
    let (token, outputs) = j.token();
    let out = j.send(declare(&token, 5, coinbase(HEIGHT + 2, outputs), &[]));
    assert!(out.is_empty());
    j.now = j.now.after(wait);
    let mut out = Vec::new();
    j.session.on_tick(j.now, &mut out);
    assert_eq!(error_code(&out), (5, jd::ERROR_STALE_CHAIN_TIP.to_string()));
    assert_eq!(
        j.session.pending_count(),
        1,
        "request 3's check is in flight"
    );
}

#[test]
fn solo_tokens_require_the_pools_solo_coinbase_for_the_users_address() {
    let reward = 3_000_000;
    let mut j = Jdc::solo(reward);
    let payee = address(0x51);
    let identity = format!("{payee}.rig1");
    let (token, outputs) = j.token_of(&identity);
    // what the pool's own coinbase pays a solo channel of this identity
    let rules = solo_rules();
    let pools = crate::payout::solo_split(
        reward,
        &identity,
        &rules.pool_script,
        rules.fee_ppm,
        rules.network,
    );
    assert_eq!(outputs, pools.outputs);
    assert_eq!(
        outputs,
        vec![
            TxOut {
                value: Amount::from_sat(2_970_000),
                script_pubkey: payee.script_pubkey(),
            },
            TxOut {
                value: Amount::from_sat(30_000),
                script_pubkey: pool_script(1),
            },
        ],
        "the address before the first '.' less the 1 % fee, the fee to the pool"
    );
    // the bare address is the same payee
    let (_, bare) = j.token_of(&payee.to_string());
    assert_eq!(bare, outputs);
    // a declaration paying them is accepted; its job carries the token's split and user
    // and no window
    let job = declared_job(&mut j, &token, outputs);
    assert_eq!(*job.split, pools);
    assert_eq!(job.window, None);
    assert_eq!(job.user, identity);
    // another identity, another token's outputs
    let (_, other) = j.token_of(&address(0x52).to_string());
    assert_eq!(other[0].script_pubkey, address(0x52).script_pubkey());
}

#[test]
fn a_solo_declaration_paying_another_address_is_refused() {
    let mut j = Jdc::solo(3_000_000);
    let (token, outputs) = j.token_of(&address(0x51).to_string());
    // the same amounts, the miner's output to another address
    let mut stolen = outputs.clone();
    stolen[0].script_pubkey = address(0x52).script_pubkey();
    let out = j.send(declare(&token, 1, coinbase(HEIGHT, stolen), &[]));
    assert_eq!(
        error_code(&out),
        (1, jd::ERROR_INVALID_COINBASE_TX.to_string())
    );
    // the fee moved to the miner's address: the pool's output is short
    let (token, mut outputs) = j.token_of(&address(0x51).to_string());
    let fee = outputs[1].value;
    outputs[0].value += fee;
    outputs.truncate(1);
    let out = j.send(declare(&token, 2, coinbase(HEIGHT, outputs), &[]));
    assert_eq!(
        error_code(&out),
        (2, jd::ERROR_INVALID_COINBASE_TX.to_string())
    );
}

#[test]
fn a_solo_user_identifier_without_an_address_closes_the_connection() {
    for user in ["farm", "", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq.rig"] {
        let mut j = Jdc::solo(3_000_000);
        let out = j.send(jd::AllocateMiningJobToken {
            user_identifier: Str0_255::new(user).unwrap(),
            request_id: 1,
        });
        match &out[..] {
            [Action::Close(reason)] => {
                assert!(reason.contains("payout address"), "{reason}");
                assert!(reason.contains(&format!("{user:?}")), "{reason}");
            }
            other => panic!("{user:?}: expected a close, got {other:?}"),
        }
        assert!(j.session.is_closed());
        assert_eq!(j.session.token_count(), 0);
    }
}
