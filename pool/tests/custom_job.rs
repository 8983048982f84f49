//! Custom jobs driven by hand, sans IO: a JDS session declares a job (its transactions and
//! coinbase), a mining session with work selection accepts `SetCustomMiningJob` with the
//! declared token on an extended channel, and a share on it is credited and makes a whole
//! block with the declared transactions; what does not match the declaration is refused
//! with the spec's codes.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, Block, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Txid, Witness,
};
use strata_pool::jds::{
    Action, ChainTip, DeclaredJob, JdsContext, JdsLimits, JdsSession, Required,
};
use strata_pool::payout::Split;
use strata_pool::server::session::{Event, Now, Payouts, Session, SessionConfig, Work};
use strata_pool::template::Template;
use strata_protocol::common::SetupConnection;
use strata_protocol::job_declaration::{self as jd, JobDeclarationMessage};
use strata_protocol::mining::{
    self as m, MiningMessage, OpenExtendedMiningChannel, SetCustomMiningJob, SubmitSharesExtended,
    REQUIRES_WORK_SELECTION,
};
use strata_protocol::wire::{Str0_255, B0_255, B0_32, B0_64K, U256};
use strata_protocol::Message;
use strata_work::coinbase::bip34_height_push;
use strata_work::header::Header;
use strata_work::merkle::{
    merkle_root_from_path, witness_commitment, witness_commitment_script, witness_merkle_root,
};
use strata_work::target::Target;

const HEIGHT: u32 = 300;
const PREV: [u8; 32] = [0xaa; 32];
const BITS: u32 = 0x207f_ffff;
/// The extranonce room in the JDC's declared coinbase: the full extranonce of its channel
/// (the pool's 16 bytes).
const JDC_EXTRANONCE: usize = 16;

fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix_ms: 1_700_000_100_000,
    }
}

fn pool_script() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![0x51, 0x20].into_iter().chain([7u8; 32]).collect())
}

fn split() -> Arc<Split> {
    Arc::new(Split {
        outputs: vec![TxOut {
            value: Amount::from_sat(40 * 100_000_000),
            script_pubkey: pool_script(),
        }],
        ..Split::default()
    })
}

fn work() -> Arc<Work> {
    Arc::new(Work {
        seq: 1,
        template: Arc::new(Template {
            id: 1,
            height: HEIGHT,
            prev_hash: PREV,
            version: 0x2000_0000,
            nbits: BITS,
            min_ntime: 1_700_000_000,
            coinbase_tx_version: 2,
            coinbase_prefix: bip34_height_push(HEIGHT),
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: 50 * 100_000_000,
            coinbase_tx_outputs: vec![],
            coinbase_tx_locktime: 0,
            merkle_path: vec![],
            tx_count: 0,
        }),
        payouts: Payouts::Shared(split()),
        window: Some((1, 10)),
        shared_coinbase: Default::default(),
    })
}

fn tx(n: u8) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: 1,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[vec![n; 71], vec![2; 33]]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(90_000),
            script_pubkey: ScriptBuf::from_bytes(
                vec![0x00, 0x14].into_iter().chain([n; 20]).collect(),
            ),
        }],
    }
}

/// The JDC's coinbase: the pool's split, an output of its own and the witness commitment of
/// `txs`; split around its extranonce.
fn jdc_coinbase(txs: &[Transaction]) -> (Transaction, Vec<u8>, Vec<u8>) {
    let wtxids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_wtxid().to_byte_array())
        .collect();
    let commitment = witness_commitment(&witness_merkle_root(&wtxids), &[0; 32]);
    let mut outputs = split().outputs.clone();
    outputs.push(TxOut {
        value: Amount::from_sat(9 * 100_000_000),
        script_pubkey: ScriptBuf::from_bytes(
            vec![0x51, 0x20].into_iter().chain([9u8; 32]).collect(),
        ),
    });
    outputs.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(witness_commitment_script(&commitment).to_vec()),
    });
    let mut script = bip34_height_push(HEIGHT);
    script.extend_from_slice(b"/jdc/");
    let head_len = script.len();
    script.extend_from_slice(&[0; JDC_EXTRANONCE]);
    let cb = Transaction {
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
    let bytes = serialize(&cb);
    let split_at = 4 + 2 + 1 + 36 + 1 + head_len;
    let end = split_at + JDC_EXTRANONCE;
    (cb, bytes[..split_at].to_vec(), bytes[end..].to_vec())
}

/// Runs a JDS session to a declared job of `txs`.
fn declare(txs: &[Transaction]) -> (Arc<DeclaredJob>, Transaction) {
    let mempool: HashMap<[u8; 32], Arc<Transaction>> = txs
        .iter()
        .map(|t| (t.compute_wtxid().to_byte_array(), Arc::new(t.clone())))
        .collect();
    let w = work();
    let Payouts::Shared(required) = &w.payouts else {
        unreachable!()
    };
    let ctx = JdsContext {
        tip: ChainTip {
            prev_hash: PREV,
            height: HEIGHT,
            nbits: BITS,
            min_ntime: 1_700_000_000,
            subsidy: 50 * 100_000_000,
        },
        required: Required::Shared {
            split: required,
            window: w.window,
        },
        mempool: &mempool,
    };
    let mut s = JdsSession::new(3, [1; 32], JdsLimits::default());
    let mut out = vec![];
    let setup = SetupConnection {
        protocol: 1,
        min_version: 2,
        max_version: 2,
        flags: jd::DECLARE_TX_DATA,
        endpoint_host: Str0_255::default(),
        endpoint_port: 0,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    };
    s.on_message(setup.into(), now(), &ctx, &mut out);
    let alloc = jd::AllocateMiningJobToken {
        user_identifier: Str0_255::new("farm").unwrap(),
        request_id: 1,
    };
    out.clear();
    s.on_message(alloc.into(), now(), &ctx, &mut out);
    let [Action::Send(Message::JobDeclaration(
        JobDeclarationMessage::AllocateMiningJobTokenSuccess(t),
    ))] = &out[..]
    else {
        panic!("{out:?}")
    };
    let token = t.mining_job_token.clone();
    let (cb, prefix, suffix) = jdc_coinbase(txs);
    let declare = jd::DeclareMiningJob {
        request_id: 2,
        mining_job_token: token,
        version: 0x2000_0000,
        coinbase_tx_prefix: B0_64K::new(prefix).unwrap(),
        coinbase_tx_suffix: B0_64K::new(suffix).unwrap(),
        wtxid_list: txs
            .iter()
            .map(|t| U256(t.compute_wtxid().to_byte_array()))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap(),
        excess_data: B0_64K::default(),
    };
    out.clear();
    s.on_message(declare.into(), now(), &ctx, &mut out);
    let [Action::CheckBlock { check, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    let check = *check;
    out.clear();
    s.on_check(check, Ok(()), now(), &ctx, &mut out);
    let Some(Action::Declared(job)) = out.last() else {
        panic!("{out:?}")
    };
    (job.clone(), cb)
}

/// A work-selecting mining session with one extended channel (id 1) on the pool's tip.
fn mining_session() -> (Session, Vec<u8>, usize, Target) {
    mining_session_of(SessionConfig::regtest(pool_script()), work(), "farm")
}

/// The same with these settings and work, the channel opened as `identity`.
fn mining_session_of(
    mut cfg: SessionConfig,
    work: Arc<Work>,
    identity: &str,
) -> (Session, Vec<u8>, usize, Target) {
    cfg.work_selection = true;
    let mut s = Session::new(9, Arc::new(cfg));
    let mut ev = vec![];
    s.on_work(work, now(), &mut ev);
    let setup = SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: REQUIRES_WORK_SELECTION,
        endpoint_host: Str0_255::default(),
        endpoint_port: 0,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    };
    s.on_message(setup.into(), &[], now(), &mut ev);
    assert!(s.is_ready(), "work selection allowed: {ev:?}");
    let open = OpenExtendedMiningChannel {
        request_id: 1,
        user_identity: Str0_255::new(identity).unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
        min_extranonce_size: 8,
    };
    ev.clear();
    s.on_message(open.into(), &[], now(), &mut ev);
    let opened = ev
        .iter()
        .find_map(|e| match e {
            Event::Send(Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(o))) => {
                Some(o.clone())
            }
            _ => None,
        })
        .unwrap();
    (
        s,
        opened.extranonce_prefix.as_slice().to_vec(),
        opened.extranonce_size as usize,
        Target::from_le_bytes(opened.target.0),
    )
}

fn set_custom(job: &DeclaredJob, declared_cb: &Transaction) -> SetCustomMiningJob {
    let script = declared_cb.input[0].script_sig.as_bytes();
    SetCustomMiningJob {
        channel_id: 1,
        request_id: 5,
        mining_job_token: B0_255::new(job.token.to_le_bytes().to_vec()).unwrap(),
        version: job.version,
        prev_hash: U256(job.prev_hash),
        min_ntime: job.min_ntime,
        nbits: job.nbits,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(script[..script.len() - JDC_EXTRANONCE].to_vec()).unwrap(),
        coinbase_tx_input_n_sequence: u32::MAX,
        coinbase_tx_outputs: B0_64K::new(serialize(&declared_cb.output)).unwrap(),
        coinbase_tx_locktime: 0,
        merkle_path: job
            .merkle_path
            .iter()
            .map(|h| U256(*h))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap(),
    }
}

fn answer(ev: &[Event]) -> Result<u32, String> {
    match ev {
        [Event::Send(Message::Mining(MiningMessage::SetCustomMiningJobSuccess(s)))] => {
            assert_eq!((s.channel_id, s.request_id), (1, 5));
            Ok(s.job_id)
        }
        [Event::Send(Message::Mining(MiningMessage::SetCustomMiningJobError(e)))] => {
            Err(e.error_code.as_str().to_string())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_declared_custom_job_is_mined_credited_and_makes_the_declared_block() {
    let txs = [tx(1), tx(2), tx(3)];
    let (job, declared_cb) = declare(&txs);
    let (mut s, prefix, extranonce_size, channel_target) = mining_session();

    let msg = set_custom(&job, &declared_cb);
    let mut ev = vec![];
    s.on_message(msg.clone().into(), &[], now(), &mut ev);
    let [Event::CustomJob(asked)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(**asked, msg);
    ev.clear();
    s.on_custom_job(&msg, Some(job.clone()), now(), &mut ev);
    let job_id = answer(&ev).unwrap();

    // the JDC mines its coinbase with the channel's extranonce in place of its own
    let miner_part = vec![5u8; extranonce_size];
    let script = declared_cb.input[0].script_sig.as_bytes();
    let mut sig = script[..script.len() - JDC_EXTRANONCE].to_vec();
    sig.extend_from_slice(&prefix);
    sig.extend_from_slice(&miner_part);
    let mut cb = declared_cb.clone();
    cb.input[0].script_sig = ScriptBuf::from_bytes(sig);
    let root = merkle_root_from_path(cb.compute_txid().to_byte_array(), job.merkle_path.iter());
    let mut h = Header {
        version: job.version,
        prev_hash: PREV,
        merkle_root: root,
        ntime: 1_700_000_100,
        nbits: BITS,
        nonce: 0,
    };
    let network = Target::from_compact(BITS).unwrap().min(channel_target);
    while !h.meets(&network) {
        h.nonce += 1;
    }
    let share = SubmitSharesExtended {
        channel_id: 1,
        sequence_number: 1,
        job_id,
        nonce: h.nonce,
        ntime: h.ntime,
        version: h.version,
        extranonce: B0_32::new(&miner_part).unwrap(),
    };
    ev.clear();
    s.on_message(share.into(), &[], now(), &mut ev);
    let credited = ev
        .iter()
        .any(|e| matches!(e, Event::Accepted(b) if b.0.channel_identity == "farm"));
    assert!(credited, "the share is credited: {ev:?}");
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a block");
    assert_eq!(
        found.window,
        Some((1, 10)),
        "the split's window as of the token"
    );
    assert_eq!(found.split.outputs, split().outputs);
    let block: Block = deserialize(found.block.as_ref().expect("a whole block")).unwrap();
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    assert_eq!(block.txdata.len(), 4);
    assert_eq!(&block.txdata[1..], &txs[..]);
    assert_eq!(
        block.txdata[0], cb,
        "the JDC's coinbase with the channel's extranonce"
    );
    assert_eq!(block.bip34_block_height().unwrap(), u64::from(HEIGHT));
    assert_eq!(found.hash, block.block_hash().to_string());
}

#[test]
fn custom_jobs_that_differ_from_the_declaration_are_refused() {
    let txs = [tx(4)];
    let (job, declared_cb) = declare(&txs);
    let (mut s, _, _, _) = mining_session();
    let good = set_custom(&job, &declared_cb);
    let mut ev = vec![];
    let param = |f: &str| format!("{}{f}", m::ERROR_INVALID_JOB_PARAM_VALUE_PREFIX);

    let mut bad = good.clone();
    bad.coinbase_tx_outputs = B0_64K::new(serialize(&declared_cb.output[1..].to_vec())).unwrap();
    s.on_custom_job(&bad, Some(job.clone()), now(), &mut ev);
    assert_eq!(answer(&ev), Err(param("coinbase_tx_outputs")));

    let mut bad = good.clone();
    bad.merkle_path = vec![U256([1; 32])].try_into().unwrap();
    ev.clear();
    s.on_custom_job(&bad, Some(job.clone()), now(), &mut ev);
    assert_eq!(answer(&ev), Err(param("merkle_path")));

    let mut bad = good.clone();
    bad.prev_hash = U256([0xbb; 32]);
    ev.clear();
    s.on_custom_job(&bad, Some(job.clone()), now(), &mut ev);
    assert_eq!(answer(&ev), Err(param("prev_hash")));

    ev.clear();
    s.on_custom_job(&good, None, now(), &mut ev);
    assert_eq!(
        answer(&ev),
        Err(m::ERROR_INVALID_MINING_JOB_TOKEN.to_string())
    );

    let mut bad = good.clone();
    bad.channel_id = 9;
    ev.clear();
    s.on_custom_job(&bad, Some(job.clone()), now(), &mut ev);
    assert!(
        matches!(&ev[..], [Event::Send(Message::Mining(MiningMessage::SetCustomMiningJobError(e)))] if e.error_code.as_str() == m::ERROR_INVALID_CHANNEL_ID)
    );

    // an expired declaration
    ev.clear();
    let later = Now {
        mono: now().mono + JdsLimits::default().token_lifetime * 2,
        unix_ms: now().unix_ms,
    };
    s.on_custom_job(&good, Some(job.clone()), later, &mut ev);
    assert_eq!(
        answer(&ev),
        Err(m::ERROR_INVALID_MINING_JOB_TOKEN.to_string())
    );

    // the right one is still accepted after all that
    ev.clear();
    s.on_custom_job(&good, Some(job), now(), &mut ev);
    assert!(answer(&ev).is_ok());
}

#[test]
fn in_solo_mode_a_custom_job_must_pay_the_channels_address() {
    let (job, declared_cb) = declare(&[tx(5)]);
    let address = |op: u8| {
        bitcoin::Address::p2wsh(&ScriptBuf::from(vec![op]), bitcoin::Network::Regtest).to_string()
    };
    let mut cfg = SessionConfig::regtest(pool_script());
    cfg.solo = true;
    let solo_work = Arc::new(Work {
        payouts: Payouts::Solo,
        window: None,
        ..(*work()).clone()
    });
    let (mut s, _, _, _) = mining_session_of(cfg, solo_work, &format!("{}.rig", address(0x51)));
    let msg = set_custom(&job, &declared_cb);
    let param = |f: &str| format!("{}{f}", m::ERROR_INVALID_JOB_PARAM_VALUE_PREFIX);
    // the declaration's token was of another identity: its coinbase pays someone else
    for user in [address(0x52), "farm".to_string()] {
        let theirs = Arc::new(DeclaredJob {
            user,
            ..(*job).clone()
        });
        let mut ev = vec![];
        s.on_custom_job(&msg, Some(theirs), now(), &mut ev);
        assert_eq!(answer(&ev), Err(param("coinbase_tx_outputs")));
    }
    // a token of the channel's address (with or without a worker name) pays the finder
    let mine = Arc::new(DeclaredJob {
        user: address(0x51),
        ..(*job).clone()
    });
    let mut ev = vec![];
    s.on_custom_job(&msg, Some(mine), now(), &mut ev);
    assert!(answer(&ev).is_ok());
}

#[test]
fn without_jds_work_selection_is_refused_as_before() {
    let mut s = Session::new(9, Arc::new(SessionConfig::regtest(pool_script())));
    let setup = SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: REQUIRES_WORK_SELECTION,
        endpoint_host: Str0_255::default(),
        endpoint_port: 0,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    };
    let mut ev = vec![];
    s.on_message(setup.into(), &[], now(), &mut ev);
    assert!(s.is_closed());
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Send(Message::Common(_)))));
}
