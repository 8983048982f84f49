//! The JDC core with simulated time: no sockets, no sleeps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use bytes::Bytes;
use strata_protocol::common::{CommonMessage, SetupConnectionError, SetupConnectionSuccess};
use strata_protocol::job_declaration::{
    self as jd, AllocateMiningJobTokenSuccess, DeclareMiningJobError, DeclareMiningJobSuccess,
    JobDeclarationMessage as J, ProvideMissingTransactions,
};
use strata_protocol::wire::{Str0_255, B0_255, B0_64K};
use strata_protocol::Message;
use strata_template::Template;
use strata_work::coinbase::bip34_height_push;
use strata_work::header::Header;
use strata_work::merkle::{
    merkle_path_for_coinbase, merkle_root_from_path, witness_commitment, witness_commitment_script,
    witness_merkle_root,
};
use strata_work::target::Target;
use tokio::sync::mpsc;

use super::*;
use crate::upstream::ShareRoute;
use crate::work::UpstreamWork;

const SUBSIDY: u64 = 50 * 100_000_000;
const FEE: u64 = 10_000;

fn tx(n: u8) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(bitcoin::Txid::from_byte_array([n; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[n; 8]]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    }
}

fn template(id: u64, prev: u8, txs: &[Transaction]) -> Arc<NodeTemplate> {
    let txids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    let wtxids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_wtxid().to_byte_array())
        .collect();
    let commitment = witness_commitment(&witness_merkle_root(&wtxids), &[0; 32]);
    Arc::new(NodeTemplate {
        template: Template {
            id,
            height: 101,
            prev_hash: [prev; 32],
            version: 0x2000_0000,
            nbits: 0x207f_ffff,
            min_ntime: 1_700_000_000,
            coinbase_tx_version: 2,
            coinbase_prefix: bip34_height_push(101),
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: SUBSIDY + FEE,
            coinbase_tx_outputs: vec![TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(
                    witness_commitment_script(&commitment).to_vec(),
                ),
            }],
            coinbase_tx_locktime: 0,
            merkle_path: merkle_path_for_coinbase(&txids),
            tx_count: txs.len() as u32,
        },
        transactions: Some(txs.iter().cloned().map(Arc::new).collect()),
    })
}

fn solo_script() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![
        0x00, 0x14, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
        0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
    ])
}

fn pool_script() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![
        0x00, 0x14, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
        0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
    ])
}

struct Rig {
    jdc: Jdc,
    mode: DeclareMode,
    now: Instant,
    start: Instant,
    /// The JDC's own share queue (the hub's route into it).
    _shares: mpsc::Receiver<ForwardShare>,
    /// The pool connection's share queue.
    pool_shares: mpsc::Receiver<ForwardShare>,
    pool_route: ShareRoute,
}

impl Rig {
    fn new(mode: DeclareMode) -> Self {
        let now = Instant::now();
        let (route, shares) = ShareRoute::channel(0, 16);
        let (pool_route, pool_shares) = ShareRoute::channel(7, 16);
        let cfg = JdcConfig {
            mode,
            solo_script: solo_script(),
            ..JdcConfig::default()
        };
        let mut r = Rig {
            jdc: Jdc::new(cfg, route, 1, now),
            mode,
            now,
            start: now,
            _shares: shares,
            pool_shares,
            pool_route,
        };
        let out = r.at(Duration::ZERO);
        assert!(
            matches!(&out[..], [Action::ConnectJds]),
            "the JDS is connected at start: {out:?}"
        );
        r
    }

    fn input(&mut self, i: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.jdc.handle(i, self.now, &mut out);
        out
    }

    fn at(&mut self, after_start: Duration) -> Vec<Action> {
        self.now = self.start + after_start;
        let mut out = Vec::new();
        self.jdc.on_timer(self.now, &mut out);
        out
    }

    fn jds(&mut self, m: impl Into<Message>) -> Vec<Action> {
        self.input(Input::JdsMessage(m.into()))
    }

    fn pool_active(&mut self) -> Vec<Action> {
        self.input(Input::Upstream(UpstreamEvent::Active {
            epoch: 7,
            route: self.pool_route.clone(),
            pool: 0,
            url: "stratum2+tcp://pool:1/KEY".into(),
            channel_id: 42,
            extranonce_prefix: Bytes::from(vec![9; 6]),
            extranonce_size: 10,
            target: Target::MAX,
        }))
    }

    /// Connects and sets up the JDS; returns the token requests' ids.
    fn jds_ready(&mut self) -> Vec<u32> {
        let out = self.input(Input::JdsConnected);
        let flags = match &out[..] {
            [Action::ToJds(Message::Common(CommonMessage::SetupConnection(s)))] => {
                assert_eq!(s.protocol, 1, "job declaration");
                s.flags
            }
            other => panic!("{other:?}"),
        };
        let want = match self.mode {
            DeclareMode::FullTemplate => jd::DECLARE_TX_DATA,
            DeclareMode::CoinbaseOnly => 0,
        };
        assert_eq!(flags, want);
        let out = self.jds(SetupConnectionSuccess {
            used_version: 2,
            flags,
        });
        token_requests(&out)
    }

    fn token(&mut self, request_id: u32, token: u8, required: &[TxOut]) -> Vec<Action> {
        self.jds(AllocateMiningJobTokenSuccess {
            request_id,
            mining_job_token: B0_255::new(vec![token; 8]).unwrap(),
            coinbase_tx_outputs: B0_64K::new(serialize(&required.to_vec())).unwrap(),
        })
    }
}

fn token_requests(out: &[Action]) -> Vec<u32> {
    out.iter()
        .filter_map(|a| match a {
            Action::ToJds(Message::JobDeclaration(J::AllocateMiningJobToken(t))) => {
                Some(t.request_id)
            }
            _ => None,
        })
        .collect()
}

fn declared(out: &[Action]) -> Option<jd::DeclareMiningJob> {
    out.iter().find_map(|a| match a {
        Action::ToJds(Message::JobDeclaration(J::DeclareMiningJob(d))) => Some(d.clone()),
        _ => None,
    })
}

fn custom_job(out: &[Action]) -> Option<(u64, usize, strata_protocol::mining::SetCustomMiningJob)> {
    out.iter().find_map(|a| match a {
        Action::ToUpstream(UpstreamCommand::SetCustomJob {
            epoch,
            channel,
            job,
        }) => Some((*epoch, *channel, (**job).clone())),
        _ => None,
    })
}

fn hub_active(out: &[Action]) -> Option<(u64, usize, Bytes)> {
    out.iter().find_map(|a| match a {
        Action::ToHub(UpstreamEvent::Active {
            epoch,
            pool,
            extranonce_prefix,
            ..
        }) => Some((*epoch, *pool, extranonce_prefix.clone())),
        _ => None,
    })
}

fn hub_work(out: &[Action]) -> Option<UpstreamWork> {
    out.iter().find_map(|a| match a {
        Action::ToHub(UpstreamEvent::Work { work, .. }) => Some(work.clone()),
        _ => None,
    })
}

/// The declared coinbase, parsed (its extranonce zeroed).
fn declared_coinbase(d: &jd::DeclareMiningJob, room: usize) -> Transaction {
    let mut b = d.coinbase_tx_prefix.as_slice().to_vec();
    b.resize(b.len() + room, 0);
    b.extend_from_slice(d.coinbase_tx_suffix.as_slice());
    deserialize(&b).unwrap()
}

/// Pool mode up to a custom job on channel 0; returns the work the hub got.
fn to_pool(r: &mut Rig, required: &[TxOut], txs: &[Transaction]) -> UpstreamWork {
    r.input(Input::Template(template(1, 1, txs)));
    r.pool_active();
    let ids = r.jds_ready();
    assert_eq!(ids.len(), 2, "one token per open channel, one ahead");
    let out = r.token(ids[0], 0xa1, required);
    let d = declared(&out).expect("a declaration once a token is there");
    assert_eq!(d.mining_job_token.as_slice(), &[0xa1; 8]);
    r.token(ids[1], 0xa2, required);
    let cb = declared_coinbase(&d, 16);
    let paid: u64 = cb.output.iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(paid, SUBSIDY + FEE, "the whole reward is paid");
    for req in required {
        assert!(cb
            .output
            .iter()
            .any(|o| o.script_pubkey == req.script_pubkey && o.value >= req.value));
    }
    assert_eq!(d.wtxid_list.len(), txs.len());
    let out = r.jds(DeclareMiningJobSuccess {
        request_id: d.request_id,
        new_mining_job_token: B0_255::new(vec![0xd1; 8]).unwrap(),
    });
    let (epoch, channel, job) = custom_job(&out).expect("SetCustomMiningJob after the declaration");
    assert_eq!((epoch, channel), (7, 0));
    assert_eq!(job.mining_job_token.as_slice(), &[0xd1; 8]);
    assert_eq!(job.prev_hash.0, [1; 32]);
    let outputs: Vec<TxOut> = deserialize(job.coinbase_tx_outputs.as_slice()).unwrap();
    assert_eq!(
        outputs, cb.output,
        "the custom job is the declared coinbase"
    );
    assert_eq!(r.jdc.mode(), Mode::Waiting);
    let out = r.input(Input::Upstream(UpstreamEvent::CustomJob {
        epoch: 7,
        channel: 0,
        request_id: job.request_id,
        result: Ok(77),
    }));
    let (_, pool, prefix) = hub_active(&out).expect("the hub switches to the pool");
    assert_eq!((pool, &prefix[..]), (0, &[9u8; 6][..]));
    assert_eq!(r.jdc.mode(), Mode::Pool);
    let w = hub_work(&out).expect("work of the custom job");
    assert_eq!(w.job_id, 77);
    w
}

fn share(w: &UpstreamWork, nonce: u32) -> ForwardShare {
    ForwardShare {
        channel: 0,
        miner: strata_work::extranonce::MinerId(1),
        worker: "w".into(),
        epoch: w.epoch,
        job_id: w.job_id,
        nonce,
        ntime: w.min_ntime,
        version: w.version,
        extranonce: Bytes::from(vec![3; w.extranonce_size as usize]),
        difficulty: 1.0,
        received: Instant::now(),
    }
}

/// A nonce whose header meets the regtest target, and its header.
fn block_nonce(w: &UpstreamWork) -> (u32, Header) {
    let txid = w
        .extended
        .txid(&[&w.extranonce_prefix, &[3; 10][..w.extranonce_size as usize]]);
    let root = merkle_root_from_path(txid, w.merkle_path.iter());
    let target = Target::from_compact(w.nbits).unwrap();
    (0..)
        .map(|nonce| {
            let h = Header {
                version: w.version,
                prev_hash: w.prev_hash,
                merkle_root: root,
                ntime: w.min_ntime,
                nbits: w.nbits,
                nonce,
            };
            (nonce, h)
        })
        .find(|(_, h)| h.meets(&target))
        .unwrap()
}

#[test]
fn full_template_declares_provides_sets_and_forwards() {
    let mut r = Rig::new(DeclareMode::FullTemplate);
    let txs = [tx(1), tx(2)];
    let required = [TxOut {
        value: Amount::from_sat(SUBSIDY),
        script_pubkey: pool_script(),
    }];
    // the JDS asks for the second transaction during the declaration
    r.input(Input::Template(template(1, 1, &txs)));
    r.pool_active();
    let ids = r.jds_ready();
    let d = declared(&r.token(ids[0], 0xa1, &required)).unwrap();
    let out = r.jds(ProvideMissingTransactions {
        request_id: d.request_id,
        unknown_tx_position_list: vec![1u16].try_into().unwrap(),
    });
    // (and the next token is asked for: one ahead)
    let provided = out.iter().find_map(|a| match a {
        Action::ToJds(Message::JobDeclaration(J::ProvideMissingTransactionsSuccess(p))) => Some(p),
        _ => None,
    });
    let p = provided.expect("the missing transaction provided");
    assert_eq!(p.request_id, d.request_id);
    assert_eq!(p.transaction_list.len(), 1);
    let got: Transaction = deserialize(p.transaction_list[0].as_slice()).unwrap();
    assert_eq!(got, txs[1]);
    // a fresh rig for the whole path, with the fee above the requirement left to us
    let mut r = Rig::new(DeclareMode::FullTemplate);
    let w = to_pool(&mut r, &required, &txs);
    assert_eq!(w.extranonce_prefix, Bytes::from(vec![9; 6]));
    // shares go to the pool's route with the pool's epoch
    let out = r.input(Input::Share(share(&w, 1)));
    assert!(
        out.iter()
            .all(|a| !matches!(a, Action::ToHub(UpstreamEvent::ShareResult { .. }))),
        "{out:?}"
    );
    let s = r.pool_shares.try_recv().expect("forwarded to the pool");
    assert_eq!((s.epoch, s.job_id), (7, 77));
    // a block: to the farm's node and the JDS, and to the pool as a share
    let (nonce, header) = block_nonce(&w);
    let out = r.input(Input::Share(share(&w, nonce)));
    let sol = out
        .iter()
        .find_map(|a| match a {
            Action::SubmitBlock(s) => Some(s.clone()),
            _ => None,
        })
        .expect("the block goes to the farm's node");
    assert_eq!(sol.header, header.to_bytes());
    assert_eq!(sol.template_id, 1);
    let cb: Transaction = deserialize(&sol.coinbase).unwrap();
    assert_eq!(cb.output[0].script_pubkey, pool_script());
    assert_eq!(cb.output[1].value.to_sat(), FEE, "the rest to the farm");
    assert!(out.iter().any(|a| matches!(a, Action::ToJds(Message::JobDeclaration(J::PushSolution(p))) if p.nonce == nonce)));
    assert!(r.pool_shares.try_recv().is_ok());
}

#[test]
fn no_pool_within_the_grace_mines_solo_paying_the_solo_address() {
    let mut r = Rig::new(DeclareMode::FullTemplate);
    r.input(Input::Template(template(1, 1, &[])));
    assert!(hub_active(&r.at(Duration::from_secs(1))).is_none());
    let out = r.at(Duration::from_secs(3));
    let (epoch, pool, prefix) = hub_active(&out).expect("solo after the grace");
    assert_eq!((pool, &prefix[..]), (1, &[0u8, 0][..]));
    assert_eq!(r.jdc.mode(), Mode::Solo);
    let w = hub_work(&out).unwrap();
    assert_eq!(w.epoch, epoch);
    let (nonce, _) = block_nonce(&w);
    let out = r.input(Input::Share(share(&w, nonce)));
    let sol = out
        .iter()
        .find_map(|a| match a {
            Action::SubmitBlock(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a solo block");
    let cb: Transaction = deserialize(&sol.coinbase).unwrap();
    assert_eq!(cb.output[0].script_pubkey, solo_script());
    assert_eq!(cb.output[0].value.to_sat(), SUBSIDY + FEE);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::ToHub(UpstreamEvent::ShareResult { accepted: true, .. })
    )));
    // a new template: new work on the same epoch
    let out = r.input(Input::Template(template(2, 2, &[])));
    let w2 = hub_work(&out).unwrap();
    assert!(w2.clean && w2.epoch == epoch && w2.prev_hash == [2; 32]);
}

#[test]
fn a_refused_declaration_falls_back_to_solo_then_returns() {
    let mut r = Rig::new(DeclareMode::FullTemplate);
    let required = [TxOut {
        value: Amount::from_sat(SUBSIDY),
        script_pubkey: pool_script(),
    }];
    r.input(Input::Template(template(1, 1, &[])));
    r.pool_active();
    let ids = r.jds_ready();
    let d = declared(&r.token(ids[0], 0xa1, &required)).unwrap();
    r.token(ids[1], 0xa2, &required);
    let out = r.jds(DeclareMiningJobError {
        request_id: d.request_id,
        error_code: Str0_255::truncated(jd::ERROR_INVALID_COINBASE_TX),
        error_details: B0_64K::default(),
    });
    assert!(
        hub_active(&out).is_some_and(|a| a.1 == 1),
        "solo at once: {out:?}"
    );
    assert!(r
        .jdc
        .last_failure()
        .unwrap()
        .contains("invalid-coinbase-tx"));
    assert!(
        declared(&out).is_none(),
        "no declaration before the backoff"
    );
    // after the backoff (1 s) the next token is declared again
    let out = r.at(Duration::from_millis(1_100));
    let d = declared(&out).expect("declared again after the backoff");
    assert_eq!(d.mining_job_token.as_slice(), &[0xa2; 8]);
    let out = r.jds(DeclareMiningJobSuccess {
        request_id: d.request_id,
        new_mining_job_token: B0_255::new(vec![0xd2; 8]).unwrap(),
    });
    let (_, _, job) = custom_job(&out).unwrap();
    let out = r.input(Input::Upstream(UpstreamEvent::CustomJob {
        epoch: 7,
        channel: 0,
        request_id: job.request_id,
        result: Ok(5),
    }));
    assert!(
        hub_active(&out).is_some_and(|a| a.1 == 0),
        "back on the pool"
    );
    assert_eq!(r.jdc.mode(), Mode::Pool);
}

#[test]
fn stale_tip_refusals_are_retried_without_solo() {
    let mut r = Rig::new(DeclareMode::FullTemplate);
    r.input(Input::Template(template(1, 1, &[])));
    r.pool_active();
    let ids = r.jds_ready();
    let d = declared(&r.token(ids[0], 0xa1, &[])).unwrap();
    let more = token_requests(&r.token(ids[1], 0xa2, &[]));
    assert_eq!(more.len(), 1, "the used token replaced");
    let out = r.jds(DeclareMiningJobError {
        request_id: d.request_id,
        error_code: Str0_255::truncated(jd::ERROR_STALE_CHAIN_TIP),
        error_details: B0_64K::default(),
    });
    assert!(hub_active(&out).is_none() && r.jdc.last_failure().is_none());
    // the first retry after stale_retry, each next one twice as late
    let first = JdcConfig::default().stale_retry;
    assert!(declared(&r.at(first - Duration::from_millis(1))).is_none());
    let out = r.at(first);
    let d = declared(&out).expect("declared again");
    let token = token_requests(&r.token(more[0], 0xa3, &[]));
    r.jds(DeclareMiningJobError {
        request_id: d.request_id,
        error_code: Str0_255::truncated(jd::ERROR_STALE_CHAIN_TIP),
        error_details: B0_64K::default(),
    });
    assert!(declared(&r.at(first * 3 - Duration::from_millis(1))).is_none());
    let d = declared(&r.at(first * 3)).expect("declared a third time");
    r.token(token[0], 0xa4, &[]);
    // refused again; the pool's own work on our tip (its JDS follows it) retries at once
    r.jds(DeclareMiningJobError {
        request_id: d.request_id,
        error_code: Str0_255::truncated(jd::ERROR_STALE_CHAIN_TIP),
        error_details: B0_64K::default(),
    });
    let mut w = hub_work_of_pool();
    w.epoch = 7;
    let out = r.input(Input::Upstream(UpstreamEvent::Work {
        channel: 0,
        work: w,
    }));
    assert!(
        declared(&out).is_some(),
        "declared as soon as the pool is on the tip"
    );
}

/// Work of the pool's own job on the test templates' tip `[1; 32]`.
fn hub_work_of_pool() -> UpstreamWork {
    let t = template(1, 1, &[]);
    let cb = JobCoinbase::build(&t.template, vec![], b"", 16).unwrap();
    let path: Arc<[[u8; 32]]> = Vec::new().into();
    UpstreamWork {
        epoch: 0,
        seq: 1,
        job_id: 1,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        version_mask: 0x1fff_e000,
        prev_hash: [1; 32],
        nbits: 0x207f_ffff,
        min_ntime: 0,
        coinbase_prefix: Bytes::copy_from_slice(cb.coinbase.prefix()),
        coinbase_suffix: Bytes::copy_from_slice(cb.coinbase.suffix()),
        merkle_path: path.clone(),
        extended: strata_work::channel::ExtendedWork::new(
            Bytes::copy_from_slice(cb.coinbase.prefix()),
            Bytes::copy_from_slice(cb.coinbase.suffix()),
            path,
        ),
        extranonce_prefix: Bytes::from(vec![9; 6]),
        extranonce_size: 10,
        id_width: 0,
        extranonce2_size: 0,
        upstream_target: Target::MAX,
        clean: true,
        route: None,
    }
}

#[test]
fn pool_down_mines_solo_at_once_and_keeps_the_down_event() {
    let mut r = Rig::new(DeclareMode::FullTemplate);
    to_pool(&mut r, &[], &[]);
    let out = r.input(Input::Upstream(UpstreamEvent::Down {
        pool: 0,
        url: "p".into(),
        reason: "eof".into(),
        was_active: true,
    }));
    assert!(matches!(
        &out[0],
        Action::ToHub(UpstreamEvent::Down {
            was_active: true,
            ..
        })
    ));
    assert!(hub_active(&out).is_some_and(|a| a.1 == 1));
    assert_eq!(r.jdc.mode(), Mode::Solo);
    // a share of the pool's epoch is stale now
    let out = r.input(Input::Share(ForwardShare {
        epoch: 1,
        ..share(&hub_work(&out).unwrap(), 0)
    }));
    assert!(matches!(
        &out[0],
        Action::ToHub(UpstreamEvent::ShareResult {
            accepted: false,
            ..
        })
    ));
}

#[test]
fn a_lying_jds_is_dropped_and_the_farm_mines_solo() {
    // asks for a transaction the declaration does not have
    let mut r = Rig::new(DeclareMode::FullTemplate);
    r.input(Input::Template(template(1, 1, &[tx(1)])));
    r.pool_active();
    let ids = r.jds_ready();
    let d = declared(&r.token(ids[0], 0xa1, &[])).unwrap();
    let out = r.jds(ProvideMissingTransactions {
        request_id: d.request_id,
        unknown_tx_position_list: vec![5u16].try_into().unwrap(),
    });
    assert!(out.iter().any(|a| matches!(a, Action::CloseJds(_))));
    assert!(hub_active(&out).is_some_and(|a| a.1 == 1));
    assert!(r.jdc.last_failure().unwrap().contains("transaction 5"));
    // a token nobody asked for, or unreadable outputs
    let mut r = Rig::new(DeclareMode::FullTemplate);
    r.input(Input::Template(template(1, 1, &[])));
    let ids = r.jds_ready();
    let out = r.jds(AllocateMiningJobTokenSuccess {
        request_id: ids[0],
        mining_job_token: B0_255::new(vec![1; 8]).unwrap(),
        coinbase_tx_outputs: B0_64K::new(vec![5, 1, 2]).unwrap(),
    });
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::CloseJds(r) if r.contains("unreadable"))));
    // setup refused
    let mut r = Rig::new(DeclareMode::CoinbaseOnly);
    r.input(Input::Template(template(1, 1, &[])));
    r.input(Input::JdsConnected);
    let out = r.jds(SetupConnectionError {
        flags: jd::DECLARE_TX_DATA,
        error_code: Str0_255::truncated(jd::ERROR_MISSING_DECLARE_TX_DATA_FLAG),
    });
    assert!(hub_active(&out).is_some_and(|a| a.1 == 1));
    assert!(r
        .jdc
        .last_failure()
        .unwrap()
        .contains("missing-declare-tx-data-flag"));
    // and reconnects after the backoff
    assert!(r
        .at(Duration::from_millis(1_050))
        .iter()
        .any(|a| matches!(a, Action::ConnectJds)));
}

#[test]
fn coinbase_only_sets_the_allocated_token_without_declaring() {
    let mut r = Rig::new(DeclareMode::CoinbaseOnly);
    r.input(Input::Template(template(1, 1, &[tx(1)])));
    r.pool_active();
    let ids = r.jds_ready();
    let out = r.token(ids[0], 0xa1, &[]);
    assert!(declared(&out).is_none());
    let (_, _, job) = custom_job(&out).expect("the token goes straight into the custom job");
    assert_eq!(job.mining_job_token.as_slice(), &[0xa1; 8]);
    assert_eq!(job.merkle_path.len(), 1);
}

#[test]
fn a_silent_jds_times_out_into_solo() {
    let mut r = Rig::new(DeclareMode::FullTemplate);
    r.input(Input::Template(template(1, 1, &[])));
    r.pool_active();
    let ids = r.jds_ready();
    let d = declared(&r.token(ids[0], 0xa1, &[]));
    assert!(d.is_some());
    let out = r.at(Duration::from_secs(11));
    assert!(
        out.iter().any(|a| matches!(a, Action::CloseJds(_))),
        "{out:?}"
    );
    assert_eq!(r.jdc.mode(), Mode::Solo);
    assert!(r.jdc.next_wake().is_some_and(|t| t > r.now));
}
