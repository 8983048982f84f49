//! Tests against Cap'n Proto servers of our own: a node without a usable `Mining`, and a
//! node speaking Core 30's schema (`schema/v30/`), since no Core 30 binary is at hand.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::consensus;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use capnp::capability::Rc;
use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::{twoparty, RpcSystem};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use super::generated::v30::mining_capnp::{block_template, mining};
use super::generated::{init_capnp, proxy_capnp, v30};
use super::{BlockCheck, CheckOptions, Interface, IpcConfig, IpcSource};
use crate::{Solution, SourceError, SubmitOutcome, TemplateSource};

/// Serves `bootstrap` to one connection on `socket`, on a thread of its own.
fn serve(socket: PathBuf, bootstrap: impl FnOnce() -> capnp::capability::Client + Send + 'static) {
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let (reader, writer) = stream.into_split();
            let network = twoparty::VatNetwork::new(
                futures::io::BufReader::new(reader.compat()),
                futures::io::BufWriter::new(writer.compat_write()),
                Side::Server,
                Default::default(),
            );
            let _ = RpcSystem::new(Box::new(network), Some(bootstrap())).await;
        });
    });
}

struct Thread;
impl proxy_capnp::thread::Server for Thread {}

struct Threads;
impl proxy_capnp::thread_map::Server for Threads {
    fn make_thread(
        self: Rc<Self>,
        _: proxy_capnp::thread_map::MakeThreadParams,
        mut results: proxy_capnp::thread_map::MakeThreadResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        results
            .get()
            .set_result(capnp_rpc::new_client::<proxy_capnp::thread::Client, _>(
                Thread,
            ));
        std::future::ready(Ok(()))
    }
}

fn thread_map() -> proxy_capnp::thread_map::Client {
    capnp_rpc::new_client(Threads)
}

/// `Init` with `construct` only: neither Core 31's nor Core 30's `makeMining`.
struct NoMining;
impl init_capnp::init::Server for NoMining {
    fn construct(
        self: Rc<Self>,
        _: init_capnp::init::ConstructParams,
        mut results: init_capnp::init::ConstructResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        results.get().set_thread_map(thread_map());
        std::future::ready(Ok(()))
    }
}

async fn connect(socket: PathBuf, interface: Interface) -> Result<IpcSource, SourceError> {
    let mut config = IpcConfig::new(socket);
    config.interface = interface;
    config.wait_timeout = Duration::from_millis(50);
    config.request_timeout = Duration::from_secs(5);
    IpcSource::connect(config).await
}

#[tokio::test]
async fn a_node_without_the_wanted_interface_is_named() {
    for (interface, expected) in [
        (Interface::V31, "interface = \"v30\""),
        (Interface::Auto, "neither Core 31's nor Core 30's"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("node.sock");
        serve(socket.clone(), || {
            capnp_rpc::new_client::<init_capnp::init::Client, _>(NoMining).client
        });
        let err = connect(socket, interface).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SourceError::Protocol(_)), "{text}");
        assert!(text.contains(expected), "{interface:?}: {text}");
    }
}

/// What the Core 30 node saw.
#[derive(Debug, Default)]
struct Seen {
    /// `(version, timestamp, nonce, coinbase)` of each `submitSolution`.
    solutions: Vec<(u32, u32, u32, Vec<u8>)>,
    /// Calls that should have named a thread and did not.
    without_thread: Vec<&'static str>,
    /// `createNewBlock`'s `(useMempool, blockReservedWeight, sigops)`.
    create_options: Vec<(bool, u64, u64)>,
}

type Shared = Arc<Mutex<Seen>>;

const HEIGHT: u32 = 300;

fn commitment() -> Vec<u8> {
    strata_work::merkle::witness_commitment_script(&[9; 32]).to_vec()
}

/// Core 30's dummy coinbase: height push and OP_0, final sequence, the reward to OP_TRUE,
/// the witness commitment, the reserved value as witness.
fn dummy_coinbase() -> Transaction {
    let mut script_sig = strata_work::coinbase::bip34_height_push(HEIGHT);
    script_sig.push(0x00);
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(script_sig),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output: vec![
            TxOut {
                value: Amount::from_sat(312_500_000 + 1_234),
                script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
            },
            TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(commitment()),
            },
        ],
    }
}

fn header() -> Vec<u8> {
    let mut h = vec![0u8; 80];
    h[0..4].copy_from_slice(&0x2000_0000u32.to_le_bytes());
    h[4..36].copy_from_slice(&[0xcd; 32]);
    h[68..72].copy_from_slice(&1_800_000_000u32.to_le_bytes());
    h[72..76].copy_from_slice(&0x207f_ffffu32.to_le_bytes());
    h
}

struct Init30(Shared);
impl v30::init_capnp::init::Server for Init30 {
    fn construct(
        self: Rc<Self>,
        _: v30::init_capnp::init::ConstructParams,
        mut results: v30::init_capnp::init::ConstructResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        let map = v30::proxy_capnp::thread_map::Client {
            client: thread_map().client,
        };
        results.get().set_thread_map(map);
        std::future::ready(Ok(()))
    }

    fn make_mining(
        self: Rc<Self>,
        _: v30::init_capnp::init::MakeMiningParams,
        mut results: v30::init_capnp::init::MakeMiningResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        let mining: mining::Client = capnp_rpc::new_client(Mining30(self.0.clone()));
        results.get().set_result(mining);
        std::future::ready(Ok(()))
    }
}

struct Mining30(Shared);
impl mining::Server for Mining30 {
    fn is_test_chain(
        self: Rc<Self>,
        _params: mining::IsTestChainParams,
        mut results: mining::IsTestChainResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        // a regtest node
        results.get().set_result(true);
        std::future::ready(Ok(()))
    }

    fn create_new_block(
        self: Rc<Self>,
        params: mining::CreateNewBlockParams,
        mut results: mining::CreateNewBlockResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        let seen = self.0.clone();
        async move {
            let o = params.get()?.get_options()?;
            seen.lock().unwrap().create_options.push((
                o.get_use_mempool(),
                o.get_block_reserved_weight(),
                o.get_coinbase_output_max_additional_sigops(),
            ));
            let template: block_template::Client = capnp_rpc::new_client(Template30(seen));
            results.get().set_result(template);
            Ok(())
        }
    }

    fn check_block(
        self: Rc<Self>,
        params: mining::CheckBlockParams,
        mut results: mining::CheckBlockResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        let pow = params
            .get()
            .and_then(|p| Ok(p.get_options()?.get_check_pow()));
        let mut r = results.get();
        r.set_result(false);
        r.set_reason(if pow.unwrap_or(true) {
            "high-hash"
        } else {
            "bad-txnmrklroot"
        });
        r.set_debug("");
        std::future::ready(Ok(()))
    }
}

struct Template30(Shared);

impl Template30 {
    fn context(&self, call: &'static str, has_thread: capnp::Result<bool>) {
        if !has_thread.unwrap_or(false) {
            self.0.lock().unwrap().without_thread.push(call);
        }
    }
}

macro_rules! getter {
    ($name:ident, $params:ident, $results:ident, $call:literal, |$r:ident| $set:expr) => {
        fn $name(
            self: Rc<Self>,
            params: block_template::$params,
            mut results: block_template::$results,
        ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
            self.context(
                $call,
                params.get().and_then(|p| Ok(p.get_context()?.has_thread())),
            );
            #[allow(unused_mut)]
            let mut $r = results.get();
            $set;
            std::future::ready(Ok(()))
        }
    };
}

impl block_template::Server for Template30 {
    getter!(
        get_block_header,
        GetBlockHeaderParams,
        GetBlockHeaderResults,
        "getBlockHeader",
        |r| r.set_result(&header())
    );
    getter!(
        get_coinbase_tx,
        GetCoinbaseTxParams,
        GetCoinbaseTxResults,
        "getCoinbaseTx",
        |r| r.set_result(&consensus::serialize(&dummy_coinbase()))
    );
    getter!(
        get_coinbase_commitment,
        GetCoinbaseCommitmentParams,
        GetCoinbaseCommitmentResults,
        "getCoinbaseCommitment",
        |r| r.set_result(&commitment())
    );
    getter!(
        get_coinbase_merkle_path,
        GetCoinbaseMerklePathParams,
        GetCoinbaseMerklePathResults,
        "getCoinbaseMerklePath",
        |r| r.init_result(1).set(0, &[5u8; 32])
    );
    getter!(
        get_tx_fees,
        GetTxFeesParams,
        GetTxFeesResults,
        "getTxFees",
        |r| r.init_result(1).set(0, 1_234)
    );

    fn submit_solution(
        self: Rc<Self>,
        params: block_template::SubmitSolutionParams,
        mut results: block_template::SubmitSolutionResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        let seen = self.0.clone();
        async move {
            let p = params.get()?;
            if !p.get_context()?.has_thread() {
                seen.lock().unwrap().without_thread.push("submitSolution");
            }
            seen.lock().unwrap().solutions.push((
                p.get_version(),
                p.get_timestamp(),
                p.get_nonce(),
                p.get_coinbase()?.to_vec(),
            ));
            results.get().set_result(true);
            Ok(())
        }
    }

    fn wait_next(
        self: Rc<Self>,
        params: block_template::WaitNextParams,
        _: block_template::WaitNextResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        // nothing changes on this node: every wait ends empty after its timeout
        let timeout = params
            .get()
            .and_then(|p| p.get_options())
            .map(|o| o.get_timeout())
            .unwrap_or(0.0);
        async move {
            tokio::time::sleep(Duration::from_secs_f64(
                timeout.clamp(0.0, 1_000.0) / 1000.0,
            ))
            .await;
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_core_30_node_through_its_own_schema() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("node.sock");
    let seen = Shared::default();
    let shared = seen.clone();
    serve(socket.clone(), move || {
        capnp_rpc::new_client::<v30::init_capnp::init::Client, _>(Init30(shared)).client
    });
    let mut source = connect(socket, Interface::Auto).await.unwrap();
    let t = source.next_template().await.unwrap();
    assert_eq!(t.height, HEIGHT);
    assert_eq!(t.prev_hash, [0xcd; 32]);
    assert_eq!(t.nbits, 0x207f_ffff);
    assert_eq!(t.min_ntime, 1_800_000_000);
    assert_eq!(
        t.coinbase_prefix,
        strata_work::coinbase::bip34_height_push(HEIGHT)
    );
    assert_eq!(t.coinbase_tx_input_sequence, 0xffff_ffff);
    assert_eq!(t.coinbase_tx_value_remaining, 312_501_234);
    assert_eq!(t.coinbase_tx_outputs.len(), 1);
    assert_eq!(
        t.coinbase_tx_outputs[0].script_pubkey.as_bytes(),
        commitment()
    );
    assert_eq!(t.merkle_path, vec![[5; 32]]);
    assert_eq!(t.tx_count, 1);

    // a dropped wait loses nothing; nothing new comes from an idle node
    assert!(
        tokio::time::timeout(Duration::from_millis(120), source.next_template())
            .await
            .is_err()
    );

    let mut solution_header = [0u8; 80];
    solution_header[0..4].copy_from_slice(&0x2000_0004u32.to_le_bytes());
    solution_header[68..72].copy_from_slice(&1_800_000_007u32.to_le_bytes());
    solution_header[76..80].copy_from_slice(&77u32.to_le_bytes());
    let coinbase = consensus::serialize(&dummy_coinbase());
    let outcome = source
        .submit(Solution {
            template_id: t.id,
            header: solution_header,
            coinbase: coinbase.clone(),
        })
        .await
        .unwrap();
    assert!(
        matches!(outcome, SubmitOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    let next = source.next_template().await.unwrap();
    assert!(next.id > t.id, "a fresh template after an accepted block");

    let unmined = CheckOptions {
        check_pow: false,
        ..CheckOptions::default()
    };
    assert_eq!(
        source.check_block(vec![0; 81], unmined).await.unwrap(),
        BlockCheck::Invalid {
            reason: "bad-txnmrklroot".into(),
            debug: String::new()
        }
    );
    drop(source);

    let seen = seen.lock().unwrap();
    assert!(seen.without_thread.is_empty(), "{seen:?}");
    assert_eq!(
        seen.solutions,
        vec![(0x2000_0004, 1_800_000_007, 77, coinbase)]
    );
    // the default constraints' reserved weight and 400 sigops, the mempool on
    assert_eq!(seen.create_options, vec![(true, 18_400, 400); 2]);
}
