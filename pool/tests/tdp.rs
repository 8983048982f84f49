//! The `tdp` template source against a Template Provider built from our own crates: a tokio
//! TCP listener, a Noise responder with an authority-signed certificate (or plaintext), and a
//! task that answers `RequestTransactionData` from real mainnet transactions.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use bitcoin::blockdata::script::Builder;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{
    absolute, block, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf,
    Sequence, Target, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};
use strata_net::sv2::{plaintext, respond, Sv2Options, Sv2Reader, Sv2Writer};
use strata_noise::{AuthorityKeypair, Certificate, Responder, StaticKeypair};
use strata_pool::template::tdp::{TdpConfig, TdpSource};
use strata_pool::template::{
    CoinbaseConstraints, Solution, SourceError, SubmitOutcome, Template, TemplateSource,
};
use strata_protocol::common::{
    CommonMessage, SetupConnection, SetupConnectionError, SetupConnectionSuccess,
};
use strata_protocol::template_distribution::{
    CoinbaseOutputConstraints, NewTemplate, RequestTransactionDataError,
    RequestTransactionDataSuccess, SetNewPrevHash, SubmitSolution, TemplateDistributionMessage,
};
use strata_protocol::{Message, Seq0_255, Seq0_64K, Str0_255, B0_16M, B0_255, B0_64K, U256};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Mainnet transaction: one segwit input (P2WPKH).
const P2WPKH_SPEND: &str = "020000000001018a763b78d3e17acea0625bf9e52b0dc1beb2241b2502185348ba8ff4a253176e0100000000ffffffff0280d725000000000017a914c07ed639bd46bf7087f2ae1dfde63b815a5f8b488767fda20300000000160014869ec8520fa2801c8a01bfdd2e82b19833cd0daf02473044022016243edad96b18c78b545325aaff80131689f681079fb107a67018cb7fb7830e02205520dae761d89728f73f1a7182157f6b5aecf653525855adb7ccb998c8e6143b012103b9489bde92afbcfa85129a82ffa512897105d1a27ad9806bded27e0532fc84e700000000";

/// Mainnet transaction: three legacy inputs (P2PKH).
const P2PKH_SPEND_3_INPUTS: &str = "0100000003e4d7be4314204a239d8e00691128dca7927e19a7339c7948bde56f669d27d797010000006b483045022100b988a858e2982e2daaf0755b37ad46775d6132057934877a5badc91dee2f66ff022020b967c1a2f0916007662ec609987e951baafa6d4fda23faaad70715611d6a2501210254a2dccd8c8832d4677dc6f0e562eaaa5d11feb9f1de2c50a33832e7c6190796ffffffff9e22eb1b3f24c260187d716a8a6c2a7efb5af14a30a4792a6eeac3643172379c000000006a47304402207df07f0cd30dca2cf7bed7686fa78d8a37fe9c2254dfdca2befed54e06b779790220684417b8ff9f0f6b480546a9e90ecee86a625b3ea1e4ca29b080da6bd6c5f67e01210254a2dccd8c8832d4677dc6f0e562eaaa5d11feb9f1de2c50a33832e7c6190796ffffffff1123df3bfb503b59769731da103d4371bc029f57979ebce68067768b958091a1000000006a47304402207a016023c2b0c4db9a7d4f9232fcec2193c2f119a69125ad5bcedcba56dd525e02206a734b3a321286c896759ac98ebfd9d808df47f1ce1fbfbe949891cc3134294701210254a2dccd8c8832d4677dc6f0e562eaaa5d11feb9f1de2c50a33832e7c6190796ffffffff0200c2eb0b000000001976a914e5eb3e05efad136b1405f5c2f9adb14e15a35bb488ac88cfff1b000000001976a9144846db516db3130b7a3c92253599edec6bc9630b88ac00000000";

/// Mainnet transaction: one segwit input (P2TR).
const P2TR_SPEND: &str = "01000000000101b5cee87f1a60915c38bb0bc26aaf2b67be2b890bbc54bb4be1e40272e0d2fe0b0000000000ffffffff025529000000000000225120106daad8a5cb2e6fc74783714273bad554a148ca2d054e7a19250e9935366f3033760000000000002200205e6d83c44f57484fd2ef2a62b6d36cdcd6b3e06b661e33fd65588a28ad0dbe060141df9d1bfce71f90d68bf9e9461910b3716466bfe035c7dbabaa7791383af6c7ef405a3a1f481488a91d33cd90b098d13cb904323a3e215523aceaa04e1bb35cdb0100000000";

/// Mainnet transaction: one legacy input (P2PKH).
const P2PKH_SPEND: &str = "0100000001c336895d9fa674f8b1e294fd006b1ac8266939161600e04788c515089991b50a030000006a47304402204213769e823984b31dcb7104f2c99279e74249eacd4246dabcf2575f85b365aa02200c3ee89c84344ae326b637101a92448664a8d39a009c8ad5d147c752cbe112970121028b1b44b4903c9103c07d5a23e3c7cf7aeb0ba45ddbd2cfdce469ab197381f195fdffffff040000000000000000536a4c5058325bb7b7251cf9e36cac35d691bd37431eeea426d42cbdecca4db20794f9a4030e6cb5211fabf887642bcad98c9994430facb712da8ae5e12c9ae5ff314127d33665000bb26c0067000bb0bf00322a50c300000000000017a9145ca04fdc0a6d2f4e3f67cfeb97e438bb6287725f8750c30000000000001976a91423086a767de0143523e818d4273ddfe6d9e4bbcc88acc8465003000000001976a914c95cbacc416f757c65c942f9b6b8a20038b9b12988ac00000000";

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

fn server_keys() -> (AuthorityKeypair, Responder) {
    let authority = AuthorityKeypair::generate();
    let keys = StaticKeypair::generate();
    let cert = Certificate::issue(&authority, &keys.public_key(), now() - 60, now() + 3600);
    (authority, Responder::new(keys, cert))
}

// ---------------------------------------------------------------------------------------------
// Block data: real transactions, an independently computed merkle path and witness commitment.

const NBITS: u32 = 0x1703_4219;
const VERSION: u32 = 0x2000_0000;
const COINBASE_TX_VERSION: u32 = 2;
const SEQUENCE: u32 = 0xffff_fffe;
const VALUE_REMAINING: u64 = 312_500_000 + 7_654_321;

fn real_transactions() -> Vec<Transaction> {
    [P2WPKH_SPEND, P2PKH_SPEND_3_INPUTS, P2TR_SPEND, P2PKH_SPEND]
        .iter()
        .map(|h| deserialize(&hex::decode(h).unwrap()).unwrap())
        .collect()
}

/// The header-order hash of a block given in display hex.
fn block_hash(display: &str) -> [u8; 32] {
    BlockHash::from_str(display).unwrap().to_byte_array()
}

/// Mainnet block 839,999 (the tip under height 840,000) and 840,000.
fn tip_839_999() -> [u8; 32] {
    block_hash("0000000000000000000172014ba58d66455762add0512355ad651207918494ab")
}
fn tip_840_000() -> [u8; 32] {
    block_hash("0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5")
}

fn set_new_prev_hash(
    template_id: u64,
    prev_hash: [u8; 32],
    header_timestamp: u32,
) -> SetNewPrevHash {
    let target = Target::from_compact(CompactTarget::from_consensus(NBITS));
    SetNewPrevHash {
        template_id,
        prev_hash: U256(prev_hash),
        header_timestamp,
        n_bits: NBITS,
        target: U256(target.to_le_bytes()),
    }
}

/// The siblings of the coinbase, level by level, computed on the whole tree with
/// `bitcoin_hashes` (not with strata-work).
fn merkle_path_by_levels(txids: &[Txid]) -> Vec<[u8; 32]> {
    let mut level: Vec<[u8; 32]> = vec![[0; 32]]; // the coinbase's place; its value is irrelevant
    level.extend(txids.iter().map(|t| t.to_byte_array()));
    let mut path = Vec::new();
    while level.len() > 1 {
        path.push(level[1]);
        level = level
            .chunks(2)
            .map(|pair| {
                let right = pair.get(1).unwrap_or(&pair[0]);
                sha256d::Hash::hash(&[pair[0], *right].concat()).to_byte_array()
            })
            .collect();
    }
    path
}

/// A template's worth of block data at `height` over `txs`.
#[derive(Clone)]
struct Fixture {
    height: u32,
    txs: Vec<Transaction>,
    /// The template's required outputs: the BIP141 witness commitment.
    outputs: Vec<TxOut>,
    path: Vec<[u8; 32]>,
}

impl Fixture {
    fn new(height: u32, txs: Vec<Transaction>) -> Self {
        let txids: Vec<Txid> = txs.iter().map(Transaction::compute_txid).collect();
        let path = merkle_path_by_levels(&txids);
        // a block with a placeholder coinbase: witness_root counts the coinbase as zeros
        let mut txdata = vec![coinbase_tx(height, &[], &[])];
        txdata.extend(txs.iter().cloned());
        let block = Block {
            header: header(VERSION, [0; 32], [0; 32], 0, 0),
            txdata,
        };
        let commitment =
            Block::compute_witness_commitment(&block.witness_root().unwrap(), &[0u8; 32]);
        let mut script = hex::decode("6a24aa21a9ed").unwrap();
        script.extend_from_slice(commitment.as_byte_array());
        let outputs = vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(script),
        }];
        // sanity: the path folds the coinbase up to bitcoin's merkle root
        let cb = coinbase_tx(height, &[], &outputs).compute_txid();
        let mut all = vec![cb];
        all.extend(txids);
        let root = bitcoin::merkle_tree::calculate_root(all.into_iter()).unwrap();
        let folded = path.iter().fold(cb.to_byte_array(), |acc, sib| {
            sha256d::Hash::hash(&[acc, *sib].concat()).to_byte_array()
        });
        assert_eq!(folded, root.to_byte_array());
        Fixture {
            height,
            txs,
            outputs,
            path,
        }
    }

    fn raw_txs(&self) -> Vec<Vec<u8>> {
        self.txs.iter().map(serialize).collect()
    }

    fn coinbase_prefix(&self) -> Vec<u8> {
        Builder::new()
            .push_int(i64::from(self.height))
            .into_script()
            .into_bytes()
    }

    fn new_template(&self, template_id: u64, future_template: bool) -> NewTemplate {
        let outputs: Vec<u8> = self.outputs.iter().flat_map(serialize).collect();
        NewTemplate {
            template_id,
            future_template,
            version: VERSION,
            coinbase_tx_version: COINBASE_TX_VERSION,
            coinbase_prefix: B0_255::new(self.coinbase_prefix()).unwrap(),
            coinbase_tx_input_sequence: SEQUENCE,
            coinbase_tx_value_remaining: VALUE_REMAINING,
            coinbase_tx_outputs_count: self.outputs.len() as u32,
            coinbase_tx_outputs: B0_64K::new(outputs).unwrap(),
            coinbase_tx_locktime: self.height - 1,
            merkle_path: Seq0_255::new(self.path.iter().map(|h| U256(*h)).collect()).unwrap(),
        }
    }

    /// The template the source must return for `template_id` on `tip`.
    fn expected(&self, id: u64, tip: &SetNewPrevHash, tx_count: u32) -> Template {
        Template {
            id,
            height: self.height,
            prev_hash: tip.prev_hash.0,
            version: VERSION,
            nbits: NBITS,
            min_ntime: tip.header_timestamp,
            coinbase_tx_version: COINBASE_TX_VERSION,
            coinbase_prefix: self.coinbase_prefix(),
            coinbase_tx_input_sequence: SEQUENCE,
            coinbase_tx_value_remaining: VALUE_REMAINING,
            coinbase_tx_outputs: self.outputs.clone(),
            coinbase_tx_locktime: self.height - 1,
            merkle_path: self.path.clone(),
            tx_count,
        }
    }
}

/// A coinbase at `height` paying 3.125 BTC to a P2WPKH, then `outputs`; the scriptSig ends
/// with `extranonce`, the witness is the reserved value.
fn coinbase_tx(height: u32, extranonce: &[u8], outputs: &[TxOut]) -> Transaction {
    let mut script_sig = Builder::new()
        .push_int(i64::from(height))
        .into_script()
        .into_bytes();
    script_sig.push(extranonce.len() as u8);
    script_sig.extend_from_slice(extranonce);
    let mut output = vec![TxOut {
        value: Amount::from_sat(312_500_000),
        script_pubkey: ScriptBuf::from_bytes(
            hex::decode("0014869ec8520fa2801c8a01bfdd2e82b19833cd0daf").unwrap(),
        ),
    }];
    output.extend_from_slice(outputs);
    Transaction {
        version: transaction::Version(COINBASE_TX_VERSION as i32),
        lock_time: absolute::LockTime::from_consensus(height - 1),
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(script_sig),
            sequence: Sequence(SEQUENCE),
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output,
    }
}

fn header(
    version: u32,
    prev: [u8; 32],
    merkle_root: [u8; 32],
    time: u32,
    nonce: u32,
) -> block::Header {
    block::Header {
        version: block::Version::from_consensus(version as i32),
        prev_blockhash: BlockHash::from_byte_array(prev),
        merkle_root: TxMerkleNode::from_byte_array(merkle_root),
        time,
        bits: CompactTarget::from_consensus(NBITS),
        nonce,
    }
}

// ---------------------------------------------------------------------------------------------
// The Template Provider.

type TpReader = Sv2Reader<OwnedReadHalf>;
type TpWriter = Sv2Writer<OwnedWriteHalf>;

/// What the TP answers to `RequestTransactionData` for a template.
#[derive(Clone)]
enum TxData {
    List(Vec<Vec<u8>>),
    Error(&'static str),
}

enum Cmd {
    Send(Message),
    Data(u64, TxData),
    Close,
}

/// The TP's side of a connection after SetupConnection: a task that sends what the test
/// commands, answers RequestTransactionData from registered data (or as soon as it is
/// registered) and reports every message the source sent.
struct Tp {
    setup: SetupConnection,
    constraints: CoinbaseOutputConstraints,
    cmds: mpsc::UnboundedSender<Cmd>,
    events: mpsc::UnboundedReceiver<Message>,
}

impl Tp {
    fn send(&self, m: impl Into<Message>) {
        self.cmds.send(Cmd::Send(m.into())).unwrap();
    }

    fn data(&self, template_id: u64, data: TxData) {
        self.cmds.send(Cmd::Data(template_id, data)).unwrap();
    }

    fn close(&self) {
        self.cmds.send(Cmd::Close).unwrap();
    }

    /// The next message the source sent.
    async fn event(&mut self) -> Message {
        within(self.events.recv()).await.expect("tp task ended")
    }
}

async fn answer(w: &mut TpWriter, template_id: u64, data: TxData) {
    let msg: Message = match data {
        TxData::List(list) => RequestTransactionDataSuccess {
            template_id,
            excess_data: B0_64K::new(Vec::new()).unwrap(),
            transaction_list: Seq0_64K::new(
                list.into_iter().map(|t| B0_16M::new(t).unwrap()).collect(),
            )
            .unwrap(),
        }
        .into(),
        TxData::Error(code) => RequestTransactionDataError {
            template_id,
            error_code: Str0_255::new(code).unwrap(),
        }
        .into(),
    };
    w.send_message(&msg).await.unwrap();
}

async fn serve(
    mut r: TpReader,
    mut w: TpWriter,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<Message>,
) {
    let mut data: HashMap<u64, TxData> = HashMap::new();
    let mut waiting: HashSet<u64> = HashSet::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Close) => return,
                Some(Cmd::Send(m)) => w.send_message(&m).await.unwrap(),
                Some(Cmd::Data(id, d)) => {
                    if waiting.remove(&id) {
                        answer(&mut w, id, d.clone()).await;
                    }
                    data.insert(id, d);
                }
            },
            msg = r.read_message() => match msg {
                Ok(Some((_, m))) => {
                    if let Message::TemplateDistribution(
                        TemplateDistributionMessage::RequestTransactionData(req),
                    ) = &m
                    {
                        match data.get(&req.template_id) {
                            Some(d) => answer(&mut w, req.template_id, d.clone()).await,
                            None => {
                                waiting.insert(req.template_id);
                            }
                        }
                    }
                    let _ = events.send(m);
                }
                Ok(None) | Err(_) => return,
            },
        }
    }
}

/// Accepts one connection as the TP: Noise (when `responder` is given) or plaintext,
/// SetupConnection answered with Success (or `refuse`'s SetupConnection.Error, then closes).
async fn tp_accept(
    listener: TcpListener,
    responder: Option<Responder>,
    refuse: Option<&'static str>,
) -> Option<Tp> {
    let (tcp, _) = listener.accept().await.unwrap();
    let (rd, wr) = tcp.into_split();
    let opts = Sv2Options::default();
    let (mut r, mut w) = match responder {
        Some(resp) => respond(rd, wr, &resp, &opts).await.unwrap(),
        None => plaintext(rd, wr, &opts),
    };
    let setup = match r.read_message().await {
        Ok(Some((_, Message::Common(CommonMessage::SetupConnection(s))))) => s,
        _ => return None, // the client gave up (e.g. it refused our certificate)
    };
    if let Some(code) = refuse {
        w.send(&SetupConnectionError {
            flags: 0,
            error_code: Str0_255::new(code).unwrap(),
        })
        .await
        .unwrap();
        return None;
    }
    w.send(&SetupConnectionSuccess {
        used_version: 2,
        flags: 0,
    })
    .await
    .unwrap();
    let constraints = match r.read_message().await.unwrap().unwrap().1 {
        Message::TemplateDistribution(TemplateDistributionMessage::CoinbaseOutputConstraints(
            c,
        )) => c,
        other => panic!("expected CoinbaseOutputConstraints, got {}", other.name()),
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    tokio::spawn(serve(r, w, cmd_rx, ev_tx));
    Some(Tp {
        setup,
        constraints,
        cmds: cmd_tx,
        events: ev_rx,
    })
}

const CONSTRAINTS: CoinbaseConstraints = CoinbaseConstraints {
    max_additional_size: 1_234,
    max_additional_sigops: 56,
    block_reserved_weight: 7_890,
};

/// A connected source and its TP.
async fn pair(encrypted: bool, verify: bool) -> (TdpSource, Tp, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (authority, responder) = server_keys();
    let mut config = TdpConfig::new(address.clone(), encrypted.then(|| authority.public_key()));
    config.verify_templates = verify;
    config.constraints = CONSTRAINTS;
    let tp = tokio::spawn(tp_accept(listener, encrypted.then_some(responder), None));
    let src = within(TdpSource::connect(config)).await.unwrap();
    let tp = within(tp).await.unwrap().expect("tp accepted");
    (src, tp, address)
}

fn request_id(m: &Message) -> Option<u64> {
    match m {
        Message::TemplateDistribution(TemplateDistributionMessage::RequestTransactionData(r)) => {
            Some(r.template_id)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn setup_connection_and_constraints_reach_the_tp() {
    let (src, tp, address) = pair(true, true).await;
    assert_eq!(src.name(), "tdp");
    let port: u16 = address.rsplit_once(':').unwrap().1.parse().unwrap();
    let s = &tp.setup;
    assert_eq!(s.protocol, 2, "template distribution");
    assert_eq!((s.min_version, s.max_version, s.flags), (2, 2, 0));
    assert_eq!(s.endpoint_host.as_str(), "127.0.0.1");
    assert_eq!(s.endpoint_port, port);
    assert_eq!(s.vendor.as_str(), "strata");
    assert!(s.firmware.as_str().starts_with("strata-pool "));
    assert_eq!(
        tp.constraints,
        CoinbaseOutputConstraints {
            coinbase_output_max_additional_size: 1_234,
            coinbase_output_max_additional_sigops: 56,
        }
    );
}

#[tokio::test]
async fn future_template_is_returned_when_set_new_prev_hash_activates_it() {
    let (mut src, mut tp, _) = pair(true, true).await;
    let first = Fixture::new(840_000, real_transactions());
    let tip_a = set_new_prev_hash(10, tip_839_999(), 1_713_571_000);
    tp.data(10, TxData::List(first.raw_txs()));
    tp.send(first.new_template(10, true));
    tp.send(tip_a.clone());
    let t = within(src.next_template()).await.unwrap();
    assert_eq!(t, first.expected(10, &tip_a, 4));
    assert_eq!(request_id(&tp.event().await), Some(10));
    // the transactions it was checked against, for a Job Declarator Client's declaration
    assert_eq!(src.transactions(10), Some(&first.raw_txs()[..]));
    assert_eq!(src.transactions(9), None);

    // the next block's future template, then an update on the current tip: the update comes
    // out first, the future template only with its SetNewPrevHash (and its fields)
    let next = Fixture::new(840_001, real_transactions()[1..].to_vec());
    let update = Fixture::new(840_000, real_transactions()[..2].to_vec());
    tp.data(11, TxData::List(next.raw_txs()));
    tp.data(12, TxData::List(update.raw_txs()));
    tp.send(next.new_template(11, true));
    tp.send(update.new_template(12, false));
    let t = within(src.next_template()).await.unwrap();
    assert_eq!(t, update.expected(12, &tip_a, 2));
    assert_eq!(src.transactions(12), Some(&update.raw_txs()[..]));
    assert_eq!(
        src.transactions(10),
        None,
        "only the template returned last"
    );
    let tip_b = set_new_prev_hash(11, tip_840_000(), 1_713_571_767);
    tp.send(tip_b.clone());
    let t = within(src.next_template()).await.unwrap();
    assert_eq!(t, next.expected(11, &tip_b, 3));
    assert_eq!(request_id(&tp.event().await), Some(12));
    assert_eq!(request_id(&tp.event().await), Some(11));
}

#[tokio::test]
async fn non_future_template_on_the_current_tip_plaintext_unverified() {
    let (mut src, mut tp, _) = pair(false, false).await;
    let f = Fixture::new(840_000, real_transactions());
    let tip = set_new_prev_hash(1, tip_839_999(), 1_713_571_000);
    tp.send(f.new_template(1, true));
    tp.send(tip.clone());
    let update = Fixture::new(840_000, real_transactions()[..3].to_vec());
    tp.send(update.new_template(2, false));
    // without verification tx_count is the merkle path's lower bound: 4 transactions give a
    // path of 3 hashes (at least 4), 3 transactions one of 2 hashes (at least 2)
    assert_eq!(
        within(src.next_template()).await.unwrap(),
        f.expected(1, &tip, 4)
    );
    assert_eq!(
        within(src.next_template()).await.unwrap(),
        update.expected(2, &tip, 2)
    );
    assert_eq!(
        src.transactions(2),
        None,
        "unverified: the TP never listed them"
    );

    // nothing was requested: the first message the TP gets is the solution
    let cb = serialize(&coinbase_tx(840_000, &[1, 2, 3, 4], &update.outputs));
    let solution = Solution {
        template_id: 2,
        header: serialize(&header(
            VERSION,
            tip.prev_hash.0,
            [7; 32],
            tip.header_timestamp,
            9,
        ))
        .try_into()
        .unwrap(),
        coinbase: cb,
    };
    within(src.submit(solution)).await.unwrap();
    assert!(matches!(
        tp.event().await,
        Message::TemplateDistribution(TemplateDistributionMessage::SubmitSolution(_))
    ));
}

#[tokio::test]
async fn submit_solution_reaches_the_tp_with_the_solution_fields() {
    let (mut src, mut tp, _) = pair(true, true).await;
    let f = Fixture::new(840_000, real_transactions());
    let tip = set_new_prev_hash(5, tip_839_999(), 1_713_571_000);
    tp.data(5, TxData::List(f.raw_txs()));
    tp.send(f.new_template(5, true));
    tp.send(tip.clone());
    let t = within(src.next_template()).await.unwrap();
    assert_eq!(request_id(&tp.event().await), Some(5));

    // a solved block as the pool would build it
    let coinbase = coinbase_tx(
        t.height,
        &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1],
        &t.coinbase_tx_outputs,
    );
    let mut txids = vec![coinbase.compute_txid()];
    txids.extend(f.txs.iter().map(Transaction::compute_txid));
    let root = bitcoin::merkle_tree::calculate_root(txids.into_iter()).unwrap();
    let hdr = header(
        0x2000_4000,
        t.prev_hash,
        root.to_byte_array(),
        t.min_ntime + 5,
        0x1234_5678,
    );
    let header_bytes: [u8; 80] = serialize(&hdr).try_into().unwrap();
    let coinbase_bytes = serialize(&coinbase);

    let unknown = Solution {
        template_id: 99,
        header: header_bytes,
        coinbase: coinbase_bytes.clone(),
    };
    assert!(matches!(
        within(src.submit(unknown)).await,
        Err(SourceError::UnknownTemplate(99))
    ));

    let outcome = within(src.submit(Solution {
        template_id: 5,
        header: header_bytes,
        coinbase: coinbase_bytes.clone(),
    }))
    .await
    .unwrap();
    assert_eq!(
        outcome,
        SubmitOutcome::Accepted {
            hash: hdr.block_hash().to_string()
        }
    );
    match tp.event().await {
        Message::TemplateDistribution(TemplateDistributionMessage::SubmitSolution(s)) => {
            assert_eq!(
                s,
                SubmitSolution {
                    template_id: 5,
                    version: 0x2000_4000,
                    header_timestamp: t.min_ntime + 5,
                    header_nonce: 0x1234_5678,
                    coinbase_tx: B0_64K::new(coinbase_bytes).unwrap(),
                }
            );
            // the coinbase arrives with its witness (not stripped)
            let cb: Transaction = deserialize(s.coinbase_tx.as_slice()).unwrap();
            assert_eq!(cb.input[0].witness.to_vec(), vec![vec![0u8; 32]]);
        }
        other => panic!("expected SubmitSolution, got {}", other.name()),
    }
}

#[tokio::test]
async fn merkle_path_not_matching_the_transactions_is_a_protocol_error() {
    let (mut src, tp, _) = pair(true, true).await;
    let f = Fixture::new(840_000, real_transactions());
    // the TP lists the transactions in another order than the path it announced
    let mut listed = f.raw_txs();
    listed.swap(0, 1);
    tp.data(1, TxData::List(listed));
    tp.send(f.new_template(1, true));
    tp.send(set_new_prev_hash(1, tip_839_999(), 1_713_571_000));
    match within(src.next_template()).await {
        Err(SourceError::Protocol(m)) => assert!(m.contains("merkle_path"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    // the source stays failed
    assert!(matches!(
        within(src.next_template()).await,
        Err(SourceError::Protocol(_))
    ));
}

#[tokio::test]
async fn witness_commitment_not_matching_the_transactions_is_a_protocol_error() {
    let (mut src, tp, _) = pair(true, true).await;
    let f = Fixture::new(840_000, real_transactions());
    // same txids, but one segwit spend lost its witness: the commitment no longer matches
    let mut txs = f.txs.clone();
    txs[0].input[0].witness = Witness::new();
    tp.data(1, TxData::List(txs.iter().map(serialize).collect()));
    tp.send(f.new_template(1, true));
    tp.send(set_new_prev_hash(1, tip_839_999(), 1_713_571_000));
    match within(src.next_template()).await {
        Err(SourceError::Protocol(m)) => assert!(m.contains("witness commitment"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn request_transaction_data_error_drops_the_template_and_goes_on() {
    let (mut src, tp, _) = pair(true, true).await;
    let stale = Fixture::new(840_000, real_transactions());
    let fresh = Fixture::new(840_000, real_transactions()[2..].to_vec());
    let tip = set_new_prev_hash(1, tip_839_999(), 1_713_571_000);
    tp.data(1, TxData::Error("stale-template-id"));
    tp.data(2, TxData::List(fresh.raw_txs()));
    tp.send(stale.new_template(1, true));
    tp.send(tip.clone());
    tp.send(fresh.new_template(2, false));
    assert_eq!(
        within(src.next_template()).await.unwrap(),
        fresh.expected(2, &tip, 2)
    );
}

#[tokio::test]
async fn wrong_authority_key_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (_authority, responder) = server_keys();
    let stranger = AuthorityKeypair::generate();
    let tp = tokio::spawn(tp_accept(listener, Some(responder), None));
    let config = TdpConfig::new(address, Some(stranger.public_key()));
    match within(TdpSource::connect(config)).await {
        Err(SourceError::Auth(m)) => assert!(m.contains("noise"), "{m}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert!(
        within(tp).await.unwrap().is_none(),
        "the TP never got a SetupConnection"
    );
}

#[tokio::test]
async fn setup_connection_error_is_a_protocol_error_naming_the_code() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (authority, responder) = server_keys();
    let tp = tokio::spawn(tp_accept(
        listener,
        Some(responder),
        Some("unsupported-protocol"),
    ));
    let config = TdpConfig::new(address, Some(authority.public_key()));
    match within(TdpSource::connect(config)).await {
        Err(SourceError::Protocol(m)) => assert!(m.contains("unsupported-protocol"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    within(tp).await.unwrap();
}

#[tokio::test]
async fn tp_closing_the_connection_is_a_connection_error() {
    let (mut src, tp, _) = pair(true, true).await;
    tp.close();
    assert!(matches!(
        within(src.next_template()).await,
        Err(SourceError::Connection(_))
    ));
    // and stays so, for submits too
    let solution = Solution {
        template_id: 1,
        header: [0; 80],
        coinbase: vec![],
    };
    assert!(matches!(
        within(src.submit(solution)).await,
        Err(SourceError::Connection(_))
    ));
}

#[tokio::test]
async fn unreachable_tp_is_a_connection_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let config = TdpConfig::new(address, None);
    assert!(matches!(
        within(TdpSource::connect(config)).await,
        Err(SourceError::Connection(_))
    ));
}

#[tokio::test]
async fn next_template_dropped_while_waiting_for_transaction_data_loses_nothing() {
    let (mut src, mut tp, _) = pair(true, true).await;
    let f = Fixture::new(840_000, real_transactions());
    let tip = set_new_prev_hash(1, tip_839_999(), 1_713_571_000);
    // no data registered yet: the TP holds the answer back
    tp.send(f.new_template(1, true));
    tp.send(tip.clone());
    let request = tokio::select! {
        r = src.next_template() => panic!("returned before the transaction data: {r:?}"),
        ev = tp.event() => ev,
    };
    // the next_template future was dropped mid-way, after it sent its request
    assert_eq!(request_id(&request), Some(1));
    tp.data(1, TxData::List(f.raw_txs()));
    assert_eq!(
        within(src.next_template()).await.unwrap(),
        f.expected(1, &tip, 4)
    );

    // exactly one request was sent: the next message the TP sees is the solution
    let solution = Solution {
        template_id: 1,
        header: serialize(&header(
            VERSION,
            tip.prev_hash.0,
            [1; 32],
            tip.header_timestamp,
            1,
        ))
        .try_into()
        .unwrap(),
        coinbase: serialize(&coinbase_tx(840_000, &[0; 8], &f.outputs)),
    };
    within(src.submit(solution)).await.unwrap();
    assert!(matches!(
        tp.event().await,
        Message::TemplateDistribution(TemplateDistributionMessage::SubmitSolution(_))
    ));
}

#[tokio::test]
async fn next_template_dropped_in_the_middle_of_a_frame_loses_nothing() {
    // a plaintext TP that writes raw bytes, to split a frame
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let tp = tokio::spawn(async move {
        let (tcp, _): (TcpStream, _) = listener.accept().await.unwrap();
        let (rd, mut wr) = tcp.into_split();
        let (mut r, _) = plaintext(rd, tokio::io::sink(), &Sv2Options::default());
        r.read_message().await.unwrap().unwrap(); // SetupConnection
        let ok: Message = SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }
        .into();
        wr.write_all(&ok.to_frame_vec()).await.unwrap();
        r.read_message().await.unwrap().unwrap(); // CoinbaseOutputConstraints
        (r, wr)
    });
    let mut config = TdpConfig::new(address, None);
    config.verify_templates = false;
    let mut src = within(TdpSource::connect(config)).await.unwrap();
    let (_r, mut wr) = within(tp).await.unwrap();

    let f = Fixture::new(840_000, real_transactions());
    let tip = set_new_prev_hash(1, tip_839_999(), 1_713_571_000);
    let mut wire = Message::from(f.new_template(1, true)).to_frame_vec();
    wire.extend_from_slice(&Message::from(tip.clone()).to_frame_vec());
    let cut = wire.len() - 20; // inside SetNewPrevHash
    wr.write_all(&wire[..cut]).await.unwrap();
    tokio::select! {
        r = src.next_template() => panic!("returned on half a frame: {r:?}"),
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    wr.write_all(&wire[cut..]).await.unwrap();
    assert_eq!(
        within(src.next_template()).await.unwrap(),
        f.expected(1, &tip, 4)
    );
}

#[tokio::test]
async fn the_pool_tells_the_tp_its_coinbase_budget_from_max_outputs() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let address = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
    let mut cfg = strata_pool::config::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        template_source: strata_pool::config::SourceKind::Tdp,
        network: bitcoin::Network::Bitcoin,
        pool_address: Some(address.into()),
        ..Default::default()
    };
    cfg.tdp.address = listener.local_addr().unwrap().to_string();
    cfg.payout.max_outputs = 10;
    let pool_script = bitcoin::Address::from_str(address)
        .unwrap()
        .assume_checked()
        .script_pubkey();
    let expected = strata_pool::budget::CoinbaseBudget::for_config(&cfg, &pool_script);
    // the pool waits for its first template: only the handshake matters here
    let pool = tokio::spawn(strata_pool::server::start(cfg));
    let tp = within(tp_accept(listener, None, None))
        .await
        .expect("tp accepted");
    pool.abort();
    // 10 payees of 43 bytes, the pool's P2WPKH output (31), the pushed 8-byte tag (9) and
    // 16-byte extranonce (17); a P2PKH sigop per payee, 4 each
    assert_eq!(
        tp.constraints,
        CoinbaseOutputConstraints {
            coinbase_output_max_additional_size: 10 * 43 + 31 + 9 + 17,
            coinbase_output_max_additional_sigops: 40,
        }
    );
    assert_eq!(
        (
            tp.constraints.coinbase_output_max_additional_size,
            tp.constraints.coinbase_output_max_additional_sigops
        ),
        (
            expected.constraints().max_additional_size,
            expected.constraints().max_additional_sigops
        )
    );
}
