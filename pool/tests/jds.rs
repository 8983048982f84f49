//! The pool as Job Declarator Server on a real Bitcoin Core (regtest): a JD client written
//! here from our codec (real Noise, real messages; its coinbases built by the proxy's Job
//! Declarator Client, which `strata-proxy`'s `tests/jdc.rs` runs whole against this JDS; here
//! the refusals need a client that lies) gets a token, declares a block of a mempool
//! transaction and one the node has not seen (asked for with ProvideMissingTransactions),
//! opens an extended channel with REQUIRES_WORK_SELECTION, sets the declared custom job and
//! mines it; the node accepts a block that carries both transactions and pays the outputs the
//! pool required. Refusals: a coinbase moving value from a required output to its own, a
//! replayed token, a block the node finds invalid, a custom job with another token.
//!
//! Solo: a token pays the address of its `user_identifier` as the pool's own solo coinbase
//! would; the declared block mined on the channel and the next one pushed with
//! PushSolution pay it and are recorded as solo blocks.
//!
//! `ipc` templates: the JDS reads the same node's mempool and checks blocks over `[rpc]`,
//! and the custom job's whole block is submitted there (the IPC source cannot); an
//! unreachable `[rpc]` stops the pool at start.
#![allow(clippy::unwrap_used)]

mod common;

use std::str::FromStr;
use std::time::Duration;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut};
use common::bitcoin_core::{fund, payee_addresses, CoreNode, Flavor, TestKey};
use serde_json::{json, Value};
use strata_net::sv2::{initiate, Sv2Options, Sv2Reader, Sv2Writer};
use strata_pool::config::{Config, PayoutKind, SourceKind};
use strata_pool::server::RunningPool;
use strata_protocol::common::{CommonMessage, SetupConnection};
use strata_protocol::job_declaration::{self as jd, JobDeclarationMessage};
use strata_protocol::mining::{
    self as m, MiningMessage, OpenExtendedMiningChannel, OpenExtendedMiningChannelSuccess,
    SetCustomMiningJob, SubmitSharesExtended, REQUIRES_WORK_SELECTION,
};
use strata_protocol::wire::{Str0_255, B0_16M, B0_255, B0_32, B0_64K, U256};
use strata_protocol::Message;
use strata_work::coinbase::bip34_height_push;
use strata_work::header::Header;
use strata_work::merkle::{
    merkle_path_for_coinbase, merkle_root_from_path, witness_commitment, witness_commitment_script,
    witness_merkle_root,
};
use strata_work::target::Target;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

type Reader = Sv2Reader<OwnedReadHalf>;
type Writer = Sv2Writer<OwnedWriteHalf>;

async fn connect(
    addr: std::net::SocketAddr,
    authority: strata_noise::PublicKey,
) -> (Reader, Writer) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (rd, wr) = stream.into_split();
    initiate(rd, wr, authority, &Sv2Options::default())
        .await
        .unwrap()
}

async fn send(w: &mut Writer, msg: impl Into<Message>) {
    w.feed_message(&msg.into()).unwrap();
    w.flush().await.unwrap();
}

/// The next message that is not mining work the pool pushes on its own.
async fn recv(r: &mut Reader) -> Message {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), r.read_frame())
            .await
            .expect("a message in time")
            .unwrap()
            .expect("connection open");
        let msg = Message::decode(&frame.header, &frame.payload).unwrap();
        if !matches!(
            msg,
            Message::Mining(
                MiningMessage::NewExtendedMiningJob(_)
                    | MiningMessage::SetNewPrevHash(_)
                    | MiningMessage::SetTarget(_)
            )
        ) {
            return msg;
        }
    }
}

fn setup(protocol: u8, flags: u32) -> SetupConnection {
    SetupConnection {
        protocol,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: Str0_255::new("127.0.0.1").unwrap(),
        endpoint_port: 0,
        vendor: Str0_255::new("jds-test").unwrap(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
}

/// The JDC's block: the coinbase split around its extranonce room, its transactions.
struct Declared {
    coinbase: Transaction,
    head_len: usize,
    room: usize,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    txs: Vec<Transaction>,
}

/// The coinbase as the proxy's Job Declarator Client builds it (`JobCoinbase`): `outputs`,
/// then the witness commitment of `txs`; the height, a tag, then `room` bytes of extranonce.
fn build(height: u32, outputs: &[TxOut], txs: Vec<Transaction>, room: usize) -> Declared {
    let wtxids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_wtxid().to_byte_array())
        .collect();
    let commitment = witness_commitment(&witness_merkle_root(&wtxids), &[0; 32]);
    let template = strata_pool::template::Template {
        id: 0,
        height,
        prev_hash: [0; 32],
        version: 0x2000_0000,
        nbits: 0,
        min_ntime: 0,
        coinbase_tx_version: 2,
        coinbase_prefix: bip34_height_push(height),
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: outputs.iter().map(|o| o.value.to_sat()).sum(),
        coinbase_tx_outputs: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(witness_commitment_script(&commitment).to_vec()),
        }],
        coinbase_tx_locktime: 0,
        merkle_path: Vec::new(),
        tx_count: txs.len() as u32,
    };
    let jc =
        strata_proxy::jdc::JobCoinbase::build(&template, outputs.to_vec(), b"/jdc/", room).unwrap();
    let mut bytes = jc.declared_prefix.clone();
    bytes.resize(bytes.len() + room, 0);
    bytes.extend_from_slice(&jc.declared_suffix);
    Declared {
        coinbase: deserialize(&bytes).unwrap(),
        head_len: jc.head.len(),
        room,
        prefix: jc.declared_prefix,
        suffix: jc.declared_suffix,
        txs,
    }
}

fn declare(token: &B0_255, request_id: u32, d: &Declared) -> jd::DeclareMiningJob {
    jd::DeclareMiningJob {
        request_id,
        mining_job_token: token.clone(),
        version: 0x2000_0000,
        coinbase_tx_prefix: B0_64K::new(d.prefix.clone()).unwrap(),
        coinbase_tx_suffix: B0_64K::new(d.suffix.clone()).unwrap(),
        wtxid_list: d
            .txs
            .iter()
            .map(|t| U256(t.compute_wtxid().to_byte_array()))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap(),
        excess_data: B0_64K::default(),
    }
}

async fn token(r: &mut Reader, w: &mut Writer, request_id: u32) -> (B0_255, Vec<TxOut>) {
    token_of(r, w, request_id, "farm").await
}

async fn token_of(
    r: &mut Reader,
    w: &mut Writer,
    request_id: u32,
    user: &str,
) -> (B0_255, Vec<TxOut>) {
    send(
        w,
        jd::AllocateMiningJobToken {
            user_identifier: Str0_255::new(user).unwrap(),
            request_id,
        },
    )
    .await;
    match recv(r).await {
        Message::JobDeclaration(JobDeclarationMessage::AllocateMiningJobTokenSuccess(s)) => {
            assert_eq!(s.request_id, request_id);
            (
                s.mining_job_token,
                deserialize(s.coinbase_tx_outputs.as_slice()).unwrap(),
            )
        }
        other => panic!("expected a token, got {other:?}"),
    }
}

fn declare_error(msg: Message) -> String {
    match msg {
        Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobError(e)) => {
            e.error_code.as_str().to_string()
        }
        other => panic!("expected DeclareMiningJob.Error, got {other:?}"),
    }
}

/// The token of an accepted declaration (all its transactions known to the JDS).
async fn declare_ok(
    r: &mut Reader,
    w: &mut Writer,
    token: &B0_255,
    request_id: u32,
    d: &Declared,
) -> B0_255 {
    send(w, declare(token, request_id, d)).await;
    match recv(r).await {
        Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobSuccess(s)) => {
            assert_eq!(s.request_id, request_id);
            s.new_mining_job_token
        }
        other => panic!("expected DeclareMiningJob.Success, got {other:?}"),
    }
}

/// A pool on `node` through `source` with its JDS on (PPLNS unless changed), polling fast.
fn jds_config(node: &CoreNode, dir: &std::path::Path, source: SourceKind) -> Config {
    let mut cfg = node.pool_config(dir, source);
    cfg.rpc.poll_ms = 100;
    cfg.payout.mode = PayoutKind::Pplns;
    cfg.jds.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.jds.mempool_poll_ms = 100;
    // probes waiting for the mempool view may leave declarations pending
    cfg.jds.max_pending_declarations = 100;
    cfg
}

/// A JDS connection past SetupConnection (Full-Template mode).
async fn jds_connect(pool: &RunningPool) -> (Reader, Writer) {
    let (mut r, mut w) = connect(pool.jds_addr.expect("the JDS listens"), pool.authority).await;
    send(&mut w, setup(1, jd::DECLARE_TX_DATA)).await;
    assert!(matches!(
        recv(&mut r).await,
        Message::Common(CommonMessage::SetupConnectionSuccess(_))
    ));
    (r, w)
}

/// A mining connection with REQUIRES_WORK_SELECTION and its extended channel.
struct Miner {
    r: Reader,
    w: Writer,
    opened: OpenExtendedMiningChannelSuccess,
}

impl Miner {
    /// Opens the channel as `identity`.
    async fn open(pool: &RunningPool, identity: &str) -> Miner {
        let (mut r, mut w) = connect(pool.sv2_addr, pool.authority).await;
        send(&mut w, setup(0, REQUIRES_WORK_SELECTION)).await;
        assert!(matches!(
            recv(&mut r).await,
            Message::Common(CommonMessage::SetupConnectionSuccess(_))
        ));
        send(
            &mut w,
            OpenExtendedMiningChannel {
                request_id: 1,
                user_identity: Str0_255::new(identity).unwrap(),
                nominal_hash_rate: 1.0,
                max_target: U256([0xff; 32]),
                min_extranonce_size: 4,
            },
        )
        .await;
        let opened = match recv(&mut r).await {
            Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(o)) => o,
            other => panic!("{other:?}"),
        };
        Miner { r, w, opened }
    }

    /// The extranonce room a declared coinbase leaves for this channel: its prefix and
    /// its miner part.
    fn room(&self) -> usize {
        self.opened.extranonce_prefix.as_slice().len() + self.opened.extranonce_size as usize
    }

    /// `SetCustomMiningJob` of `d` on `tip` with `token`.
    fn custom(
        &self,
        tip: &Tip,
        d: &Declared,
        token: B0_255,
        request_id: u32,
    ) -> SetCustomMiningJob {
        let script = d.coinbase.input[0].script_sig.as_bytes();
        SetCustomMiningJob {
            channel_id: self.opened.channel_id,
            request_id,
            mining_job_token: token,
            version: 0x2000_0000,
            prev_hash: U256(tip.prev),
            min_ntime: tip.ntime,
            nbits: tip.bits,
            coinbase_tx_version: 2,
            coinbase_prefix: B0_255::new(script[..d.head_len].to_vec()).unwrap(),
            coinbase_tx_input_n_sequence: u32::MAX,
            coinbase_tx_outputs: B0_64K::new(serialize(&d.coinbase.output)).unwrap(),
            coinbase_tx_locktime: 0,
            merkle_path: merkle_path(d)
                .iter()
                .map(|h| U256(*h))
                .collect::<Vec<_>>()
                .try_into()
                .unwrap(),
        }
    }

    /// Sets `d` as a custom job with the JDS's `token`: its job id.
    async fn set_custom(&mut self, tip: &Tip, d: &Declared, token: B0_255) -> u32 {
        let job = self.custom(tip, d, token, 21);
        send(&mut self.w, job).await;
        match recv(&mut self.r).await {
            Message::Mining(MiningMessage::SetCustomMiningJobSuccess(s)) => s.job_id,
            other => panic!("expected SetCustomMiningJob.Success, got {other:?}"),
        }
    }

    /// Mines custom job `job_id` of `d` (the coinbase with the channel's extranonce, the
    /// declared path) and submits the share, a block; the node's block at `height` once it
    /// has one there (decoded).
    async fn mine(
        &mut self,
        tip: &Tip,
        d: &Declared,
        job_id: u32,
        node: &CoreNode,
        height: u32,
    ) -> Value {
        let miner_part = vec![7u8; self.opened.extranonce_size as usize];
        let mut extranonce = self.opened.extranonce_prefix.as_slice().to_vec();
        extranonce.extend_from_slice(&miner_part);
        let target = Target::from_le_bytes(self.opened.target.0);
        let h = solve(tip, d, &extranonce, target);
        send(
            &mut self.w,
            SubmitSharesExtended {
                channel_id: self.opened.channel_id,
                sequence_number: 1,
                job_id,
                nonce: h.nonce,
                ntime: h.ntime,
                version: h.version,
                extranonce: B0_32::new(&miner_part).unwrap(),
            },
        )
        .await;
        match recv(&mut self.r).await {
            Message::Mining(MiningMessage::SubmitSharesSuccess(s)) => {
                assert_eq!(s.new_submits_accepted_count, 1)
            }
            other => panic!("expected SubmitShares.Success, got {other:?}"),
        }
        node.wait_height(u64::from(height), Duration::from_secs(20))
            .await;
        let hash = node.rpc("getblockhash", json!([height])).await;
        node.block(hash.as_str().unwrap()).await
    }
}

/// The node's tip as a custom job on it needs it.
struct Tip {
    /// Its hash, header order.
    prev: [u8; 32],
    /// nBits of the next block (regtest: the tip's).
    bits: u32,
    /// An nTime the next block may have.
    ntime: u32,
}

async fn node_tip(node: &CoreNode) -> Tip {
    let tip = node.tip().await;
    Tip {
        prev: bitcoin::BlockHash::from_str(tip["hash"].as_str().unwrap())
            .unwrap()
            .to_byte_array(),
        bits: u32::from_str_radix(tip["bits"].as_str().unwrap(), 16).unwrap(),
        ntime: tip["time"].as_u64().unwrap() as u32 + 1,
    }
}

/// A header of `d` on `tip` with `extranonce` in its coinbase, meeting `target` and the
/// block's.
fn solve(tip: &Tip, d: &Declared, extranonce: &[u8], target: Target) -> Header {
    assert_eq!(extranonce.len(), d.room);
    let mut cb = d.coinbase.clone();
    let mut sig = cb.input[0].script_sig.as_bytes()[..d.head_len].to_vec();
    sig.extend_from_slice(extranonce);
    cb.input[0].script_sig = ScriptBuf::from_bytes(sig);
    let mut h = Header {
        version: 0x2000_0000,
        prev_hash: tip.prev,
        merkle_root: merkle_root_from_path(
            cb.compute_txid().to_byte_array(),
            merkle_path(d).iter(),
        ),
        ntime: tip.ntime,
        nbits: tip.bits,
        nonce: 0,
    };
    let target = Target::from_compact(tip.bits).unwrap().min(target);
    while !h.meets(&target) {
        h.nonce += 1;
    }
    h
}

/// Solves `d` on `tip` and pushes the solution to the JDS (`PushSolution`).
async fn push_solution(w: &mut Writer, tip: &Tip, d: &Declared) {
    let extranonce = vec![9u8; d.room];
    let h = solve(tip, d, &extranonce, Target::from_le_bytes([0xff; 32]));
    send(
        w,
        jd::PushSolution {
            extranonce: B0_32::new(&extranonce).unwrap(),
            prev_hash: U256(tip.prev),
            nonce: h.nonce,
            ntime: h.ntime,
            nbits: h.nbits,
            version: h.version,
        },
    )
    .await;
}

/// Declares a block of no transaction at `height` for `user` (its token's outputs), once
/// the pool's work is at that height (`stale-chain-tip` before): the declaration and its
/// mining token.
async fn declare_at(
    r: &mut Reader,
    w: &mut Writer,
    user: &str,
    height: u32,
    room: usize,
) -> (Declared, B0_255) {
    for request_id in 200..300 {
        let (token, required) = token_of(r, w, request_id, user).await;
        let d = build(height, &required, vec![], room);
        send(w, declare(&token, request_id, &d)).await;
        match recv(r).await {
            Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobSuccess(s)) => {
                return (d, s.new_mining_job_token)
            }
            Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobError(e))
                if e.error_code.as_str() == jd::ERROR_STALE_CHAIN_TIP =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("declaration at {height}: {other:?}"),
        }
    }
    panic!("the pool's work never reached height {height}");
}

fn merkle_path(d: &Declared) -> Vec<[u8; 32]> {
    let txids: Vec<[u8; 32]> = d
        .txs
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    merkle_path_for_coinbase(&txids)
}

/// Asserts that `block`'s coinbase starts with `outputs`.
fn assert_pays(block: &Value, outputs: &[TxOut]) {
    let vout = block["tx"][0]["vout"].as_array().unwrap();
    assert!(vout.len() >= outputs.len());
    for (o, want) in vout.iter().zip(outputs) {
        assert_eq!(
            o["scriptPubKey"]["hex"].as_str().unwrap(),
            hex::encode(want.script_pubkey.as_bytes())
        );
        assert_eq!(
            Amount::from_btc(o["value"].as_f64().unwrap()).unwrap(),
            want.value
        );
    }
}

/// Whether the block carries the transaction.
fn carries(block: &Value, tx: &Transaction) -> bool {
    block["tx"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["txid"] == tx.compute_txid().to_string())
}

/// The pool's ledger record of block `hash` (`/api/v1/blocks`), once it is there.
async fn recorded(pool: &RunningPool, hash: &str) -> Value {
    for _ in 0..100 {
        if let Some(b) = common::api_blocks(pool)
            .await
            .into_iter()
            .find(|b| b["hash"] == hash)
        {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the pool did not record block {hash}");
}

/// A spend of `fund` back to `key` (10,000 sats of fee).
fn pay(key: &TestKey, (outpoint, value): (OutPoint, Amount)) -> Transaction {
    key.spend(
        &[(outpoint, value)],
        vec![TxOut {
            value: value - Amount::from_sat(10_000),
            script_pubkey: key.script(),
        }],
    )
}

/// Declares `tx` alone with fresh tokens until the JDS's mempool view has it (the
/// declaration is then checked at once, not asked for): the view follows the node's mempool.
async fn wait_for_mempool_view(
    r: &mut Reader,
    w: &mut Writer,
    height: u32,
    room: usize,
    tx: &Transaction,
) {
    let mut probes = 0;
    loop {
        probes += 1;
        assert!(probes < 100, "the JDS never saw the mempool transaction");
        let (t, required) = token(r, w, 100 + probes).await;
        let probe = build(height, &required, vec![tx.clone()], room);
        send(w, declare(&t, 100 + probes, &probe)).await;
        match recv(r).await {
            Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobSuccess(_)) => return,
            Message::JobDeclaration(JobDeclarationMessage::ProvideMissingTransactions(_)) => {
                // not in the view yet: let the declaration expire unanswered
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("probe: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_job_with_mempool_and_provided_transactions_is_mined_and_accepted() {
    let node = CoreNode::start(Flavor::Bitcoind, &[]).await;
    let key = TestKey::new(0x21);
    let funds = fund(&node, &key, 2).await;
    // one transaction in the node's mempool, one the node never saw
    let in_mempool = pay(&key, funds[0]);
    node.rpc(
        "sendrawtransaction",
        json!([hex::encode(serialize(&in_mempool))]),
    )
    .await;
    let unseen = pay(&key, funds[1]);

    let dir = tempfile::tempdir().unwrap();
    let pool = strata_pool::server::start(jds_config(&node, dir.path(), SourceKind::Rpc))
        .await
        .unwrap();
    // the mining connection first: the declared coinbase leaves room for its full extranonce
    let mut miner = Miner::open(&pool, "farm").await;
    let room = miner.room();
    let (mut r, mut w) = jds_connect(&pool).await;
    let height = node.height().await as u32 + 1;
    wait_for_mempool_view(&mut r, &mut w, height, room, &in_mempool).await;
    let (t1, required) = token(&mut r, &mut w, 1).await;
    assert!(
        !required.is_empty(),
        "the pool requires its split's outputs"
    );

    // refused: one sat of a required output moved to an output of the JDC's own (the token
    // is used up)
    let mut short = required.clone();
    short[0].value -= Amount::from_sat(1);
    short.push(TxOut {
        value: Amount::from_sat(1),
        script_pubkey: key.script(),
    });
    let bad = build(height, &short, vec![in_mempool.clone()], room);
    send(&mut w, declare(&t1, 10, &bad)).await;
    assert_eq!(
        declare_error(recv(&mut r).await),
        jd::ERROR_INVALID_COINBASE_TX
    );
    // refused: the same token again
    let good = build(
        height,
        &required,
        vec![in_mempool.clone(), unseen.clone()],
        room,
    );
    send(&mut w, declare(&t1, 11, &good)).await;
    assert_eq!(
        declare_error(recv(&mut r).await),
        jd::ERROR_INVALID_MINING_JOB_TOKEN
    );

    // refused by the node: a provided transaction spending an output that does not exist
    let phantom = pay(
        &key,
        (
            OutPoint {
                txid: bitcoin::Txid::from_byte_array([0x5a; 32]),
                vout: 0,
            },
            Amount::from_int_btc(1),
        ),
    );
    let (t3, _) = token(&mut r, &mut w, 3).await;
    let invalid = build(height, &required, vec![phantom.clone()], room);
    send(&mut w, declare(&t3, 13, &invalid)).await;
    assert!(matches!(
        recv(&mut r).await,
        Message::JobDeclaration(JobDeclarationMessage::ProvideMissingTransactions(_))
    ));
    send(
        &mut w,
        jd::ProvideMissingTransactionsSuccess {
            request_id: 13,
            transaction_list: vec![B0_16M::new(serialize(&phantom)).unwrap()]
                .try_into()
                .unwrap(),
        },
    )
    .await;
    assert_eq!(declare_error(recv(&mut r).await), jd::ERROR_INVALID_JOB);

    // accepted: the unseen transaction is asked for and provided
    let (t2, _) = token(&mut r, &mut w, 2).await;
    send(&mut w, declare(&t2, 12, &good)).await;
    match recv(&mut r).await {
        Message::JobDeclaration(JobDeclarationMessage::ProvideMissingTransactions(p)) => {
            assert_eq!(p.request_id, 12);
            assert_eq!(
                p.unknown_tx_position_list.as_slice(),
                &[1],
                "only the unseen one"
            );
        }
        other => panic!("expected ProvideMissingTransactions, got {other:?}"),
    }
    send(
        &mut w,
        jd::ProvideMissingTransactionsSuccess {
            request_id: 12,
            transaction_list: vec![B0_16M::new(serialize(&unseen)).unwrap()]
                .try_into()
                .unwrap(),
        },
    )
    .await;
    let mining_token = match recv(&mut r).await {
        Message::JobDeclaration(JobDeclarationMessage::DeclareMiningJobSuccess(s)) => {
            assert_eq!(s.request_id, 12);
            s.new_mining_job_token
        }
        other => panic!("expected DeclareMiningJob.Success, got {other:?}"),
    };

    // the custom job on the extended channel: a token the JDS did not declare is refused
    let tip = node_tip(&node).await;
    let undeclared = miner.custom(&tip, &good, t2.clone(), 20);
    send(&mut miner.w, undeclared).await;
    match recv(&mut miner.r).await {
        Message::Mining(MiningMessage::SetCustomMiningJobError(e)) => {
            assert_eq!(e.error_code.as_str(), m::ERROR_INVALID_MINING_JOB_TOKEN)
        }
        other => panic!("{other:?}"),
    }
    let job_id = miner.set_custom(&tip, &good, mining_token).await;
    let block = miner.mine(&tip, &good, job_id, &node, height).await;
    assert!(carries(&block, &in_mempool));
    assert!(carries(&block, &unseen));
    assert_pays(&block, &required);
    pool.shutdown.cancel();
    pool.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_tokens_pay_the_users_address_and_the_declared_block_is_a_solo_block() {
    let node = CoreNode::start(Flavor::Bitcoind, &[]).await;
    let [miner_address, pool_address]: [String; 2] = payee_addresses(2).try_into().unwrap();
    node.generate_to(101, &pool_address).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = jds_config(&node, dir.path(), SourceKind::Rpc);
    cfg.payout.mode = PayoutKind::Solo;
    cfg.pool_address = Some(pool_address.clone());
    let fee_ppm = cfg.payout.fee_ppm;
    let pool = strata_pool::server::start(cfg).await.unwrap();
    let identity = format!("{miner_address}.rig1");
    let mut miner = Miner::open(&pool, &identity).await;
    let (mut r, mut w) = jds_connect(&pool).await;

    // the token requires what the pool's solo coinbase pays the address (before the '.'):
    // the reward (the subsidy: the mempool is empty) less the fee, the fee to the pool
    let height = node.height().await as u32 + 1;
    let (token, required) = token_of(&mut r, &mut w, 1, &identity).await;
    let address = |a: &str| {
        bitcoin::Address::from_str(a)
            .unwrap()
            .require_network(bitcoin::Network::Regtest)
            .unwrap()
            .script_pubkey()
    };
    let solo = strata_pool::payout::solo_split(
        strata_pool::jds::block_subsidy(height, bitcoin::Network::Regtest),
        &miner_address,
        &address(&pool_address),
        fee_ppm,
        bitcoin::Network::Regtest,
    );
    assert_eq!(required, solo.outputs);
    assert_eq!(required[0].script_pubkey, address(&miner_address));
    assert_eq!(required[1].script_pubkey, address(&pool_address));

    // refused: the same outputs paying another address
    let mut stolen = required.clone();
    stolen[0].script_pubkey = address(&pool_address);
    let (t2, _) = token_of(&mut r, &mut w, 2, &identity).await;
    send(
        &mut w,
        declare(&t2, 2, &build(height, &stolen, vec![], miner.room())),
    )
    .await;
    assert_eq!(
        declare_error(recv(&mut r).await),
        jd::ERROR_INVALID_COINBASE_TX
    );

    // the declared block, mined on the channel: the node has it, paying the address
    let d = build(height, &required, vec![], miner.room());
    let mining_token = declare_ok(&mut r, &mut w, &token, 3, &d).await;
    let tip = node_tip(&node).await;
    let job_id = miner.set_custom(&tip, &d, mining_token).await;
    let block = miner.mine(&tip, &d, job_id, &node, height).await;
    assert_eq!(block["height"], height);
    assert_pays(&block, &solo.outputs);
    // recorded as a solo block: the channel's identity found it, no PPLNS window
    let record = recorded(&pool, block["hash"].as_str().unwrap()).await;
    assert_eq!(record["status"]["status"], "accepted");
    assert_eq!(record["mode"], "solo");
    assert_eq!(record["worker"], identity.as_str());
    assert_eq!(record["window"], Value::Null);
    assert_eq!(record["outputs"][0]["owner"], miner_address.as_str());
    assert_eq!(record["outputs"][0]["sats"], solo.outputs[0].value.to_sat());

    // the next block pushed by the JDC (PushSolution) for a token of the bare address:
    // submitted by the pool, paying the address, recorded with the token's identity as finder
    let (d, _) = declare_at(&mut r, &mut w, &miner_address, height + 1, miner.room()).await;
    push_solution(&mut w, &node_tip(&node).await, &d).await;
    node.wait_height(u64::from(height + 1), Duration::from_secs(20))
        .await;
    let block = node.tip().await;
    assert_eq!(block["height"], height + 1);
    assert_eq!(
        block["tx"][0]["vout"][0]["scriptPubKey"]["hex"],
        hex::encode(address(&miner_address).as_bytes())
    );
    let record = recorded(&pool, block["hash"].as_str().unwrap()).await;
    assert_eq!(record["status"]["status"], "accepted");
    assert_eq!(record["mode"], "solo");
    assert_eq!(record["worker"], miner_address.as_str());
    assert_eq!(record["window"], Value::Null);
    assert_eq!(record["outputs"][0]["owner"], miner_address.as_str());
    pool.shutdown.cancel();
    pool.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ipc_templates_the_jds_uses_the_nodes_rpc_and_its_block_is_accepted() {
    let node = CoreNode::start(Flavor::Ipc, &[]).await;
    let key = TestKey::new(0x22);
    let funds = fund(&node, &key, 1).await;
    let tx = pay(&key, funds[0]);
    node.rpc("sendrawtransaction", json!([hex::encode(serialize(&tx))]))
        .await;

    // the JDS's node at [rpc] does not answer: the pool does not start
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = jds_config(&node, dir.path(), SourceKind::Ipc);
    cfg.rpc.url = "http://127.0.0.1:1".into();
    let err = format!("{:#}", strata_pool::server::start(cfg).await.unwrap_err());
    assert!(
        err.contains("[rpc]") && err.contains("127.0.0.1:1"),
        "{err}"
    );

    // templates over IPC; the mempool, the checks and the custom job's block over RPC
    let dir = tempfile::tempdir().unwrap();
    let pool = strata_pool::server::start(jds_config(&node, dir.path(), SourceKind::Ipc))
        .await
        .unwrap();
    let mut miner = Miner::open(&pool, "farm").await;
    let (mut r, mut w) = jds_connect(&pool).await;
    let height = node.height().await as u32 + 1;
    wait_for_mempool_view(&mut r, &mut w, height, miner.room(), &tx).await;
    let (token, required) = token(&mut r, &mut w, 1).await;
    let d = build(height, &required, vec![tx.clone()], miner.room());
    let mining_token = declare_ok(&mut r, &mut w, &token, 2, &d).await;
    let tip = node_tip(&node).await;
    let job_id = miner.set_custom(&tip, &d, mining_token).await;
    let block = miner.mine(&tip, &d, job_id, &node, height).await;
    assert_eq!(block["height"], height);
    assert!(carries(&block, &tx));
    assert_pays(&block, &required);
    let record = recorded(&pool, block["hash"].as_str().unwrap()).await;
    assert_eq!(record["status"]["status"], "accepted");
    assert_eq!(record["height"], height);
    pool.shutdown.cancel();
    pool.wait().await;
}
