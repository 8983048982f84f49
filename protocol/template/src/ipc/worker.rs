//! The connection thread of the `ipc` source: it owns the Cap'n Proto connection (not
//! `Send`), keeps a `waitNext` in flight on the newest template, publishes each template it
//! gets, and serves the source's submits and block checks.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bitcoin::consensus;
use bitcoin::hashes::Hash;
use bitcoin::{Block, Transaction};
use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::{twoparty, RpcSystem};
use strata_work::merkle::merkle_root_from_path;
use strata_work::sha256d::sha256d;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use super::generated::init_capnp::init;
use super::generated::proxy_capnp::{thread, thread_map};
use super::generated::{mining_capnp, v30::mining_capnp as v30_mining};
use super::{
    header_fields, v30, v31, BlockCheck, CheckOptions, Command, Interface, IpcConfig, Latest,
    KEPT_TEMPLATES,
};
use crate::{SourceError, SubmitOutcome, Template};

/// Extra time the local guard of a `waitNext` allows beyond the wait's own timeout.
const WAIT_GRACE: Duration = Duration::from_secs(5);

/// Runs the connection until the source is dropped or the connection fails. `ready` gets the
/// outcome of connecting (up to the first published template).
pub(super) fn run(
    config: IpcConfig,
    commands: mpsc::Receiver<Command>,
    latest: watch::Sender<Latest>,
    ready: oneshot::Sender<Result<(), SourceError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(SourceError::Io(e)));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut ready = Some(ready);
        let result = serve(&config, commands, &latest, &mut ready).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "ipc: connection to the node ended");
            match ready.take() {
                Some(ready) => {
                    let _ = ready.send(Err(e));
                }
                None => {
                    latest.send_replace(Latest::Lost(e.to_string()));
                }
            }
        }
    });
}

/// A template the source handed out: what `submit` needs of it.
struct Kept {
    id: u64,
    client: TemplateClient,
    header: [u8; 80],
    merkle_path: Vec<[u8; 32]>,
}

/// The node's server threads every call names, and the configuration.
pub(super) struct Threads {
    /// The source's configuration.
    pub(super) config: IpcConfig,
    /// Server thread of ordinary calls.
    pub(super) calls: thread::Client,
    /// Server thread of `waitNext`, so a submit never queues behind a wait.
    pub(super) waits: thread::Client,
    /// A second thread for reading a new template, so that its four reads run two at a time
    /// on the node (never behind a `waitNext`).
    pub(super) reads: thread::Client,
}

impl Threads {
    /// The local guard of one `waitNext`: its own timeout, a request's, and some grace.
    pub(super) fn wait_limit(&self) -> Duration {
        self.config.wait_timeout + self.config.request_timeout + WAIT_GRACE
    }
}

/// `Mining` of the interface version the node serves.
enum MiningClient {
    V31(mining_capnp::mining::Client),
    V30(v30_mining::mining::Client),
}

/// A `BlockTemplate` of the interface version the node serves.
#[derive(Clone)]
enum TemplateClient {
    V31(mining_capnp::block_template::Client),
    V30(v30_mining::block_template::Client),
}

/// The live connection: the server threads and `Mining`.
struct Node {
    threads: Threads,
    mining: MiningClient,
}

type WaitFuture = Pin<Box<dyn Future<Output = Result<Option<TemplateClient>, SourceError>>>>;

async fn serve(
    config: &IpcConfig,
    mut commands: mpsc::Receiver<Command>,
    latest: &watch::Sender<Latest>,
    ready: &mut Option<oneshot::Sender<Result<(), SourceError>>>,
) -> Result<(), SourceError> {
    let stream = timed(config.request_timeout, "connect", async {
        tokio::net::UnixStream::connect(&config.socket)
            .await
            .map_err(|e| connect_error(config, &e))
    })
    .await?;
    let (reader, writer) = stream.into_split();
    let network = twoparty::VatNetwork::new(
        futures::io::BufReader::new(reader.compat()),
        futures::io::BufWriter::new(writer.compat_write()),
        Side::Client,
        Default::default(),
    );
    let mut rpc_system = RpcSystem::new(Box::new(network), None);
    let init: init::Client = rpc_system.bootstrap(Side::Server);
    let mut connection = tokio::task::spawn_local(rpc_system);

    let node = Node::open(config.clone(), &init).await?;
    let mut next_id = 1u64;
    let mut kept: VecDeque<Kept> = VecDeque::with_capacity(KEPT_TEMPLATES);
    let first = node.create_new_block().await?;
    let mut current = node.publish(first, &mut next_id, &mut kept, latest).await?;
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(()));
    }
    let mut wait = node.wait_next(&current);

    loop {
        tokio::select! {
            command = commands.recv() => match command {
                // the source is gone: stop waiting and close the connection
                None => {
                    node.interrupt(&current).await;
                    return Ok(());
                }
                Some(Command::Submit { solution, reply }) => {
                    let outcome = node.submit(&kept, &solution).await;
                    let mut failed = None;
                    if let Ok(SubmitOutcome::Accepted { .. }) = &outcome {
                        // the next template is on the new tip: publish it before answering
                        let fresh = async {
                            let fresh = node.create_new_block().await?;
                            node.publish(fresh, &mut next_id, &mut kept, latest).await
                        };
                        match fresh.await {
                            Ok(fresh) => {
                                tokio::task::spawn_local(node.interrupt(&current));
                                current = fresh;
                                wait = node.wait_next(&current);
                            }
                            Err(e) => failed = Some(e),
                        }
                    }
                    // the block's outcome is told even when the connection fails right after
                    let _ = reply.send(outcome);
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
                Some(Command::Check { block, options, reply }) => {
                    let _ = reply.send(node.check_block(&block, options).await);
                }
            },
            waited = &mut wait => {
                if let Some(template) = waited? {
                    current = node.publish(template, &mut next_id, &mut kept, latest).await?;
                }
                wait = node.wait_next(&current);
            }
            ended = &mut connection => {
                return Err(SourceError::Connection(match ended {
                    Ok(Ok(())) => "the node closed the IPC connection".into(),
                    Ok(Err(e)) => format!("IPC connection failed: {e}"),
                    Err(e) => format!("IPC connection task failed: {e}"),
                }));
            }
        }
    }
}

/// A clear error for a socket that cannot be reached.
fn connect_error(config: &IpcConfig, e: &std::io::Error) -> SourceError {
    use std::io::ErrorKind;
    let path = config.socket.display();
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => SourceError::Connection(format!(
            "no node listening on {path} ({e}): start Bitcoin Core as `bitcoin-node -ipcbind=unix` \
             (bitcoind has no IPC), or set [ipc] socket"
        )),
        _ => SourceError::Connection(format!("cannot connect to {path}: {e}")),
    }
}

/// A capnp call's error as a source error.
pub(super) fn call_error(call: &str, e: capnp::Error) -> SourceError {
    match e.kind {
        capnp::ErrorKind::Disconnected => {
            SourceError::Connection(format!("{call}: node disconnected: {}", e.extra))
        }
        _ => SourceError::Protocol(format!("{call}: {e}")),
    }
}

/// `fut` within `limit`, else a connection error naming `call`.
pub(super) async fn timed<T>(
    limit: Duration,
    call: &str,
    fut: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(SourceError::Connection(format!(
            "{call}: no answer from the node within {limit:?}"
        )))
    })
}

impl Node {
    /// `Init.construct`, three `ThreadMap.makeThread`, `Init.makeMining` of the configured
    /// interface version (or the first of 31 and 30 the node serves).
    async fn open(config: IpcConfig, init: &init::Client) -> Result<Node, SourceError> {
        let limit = config.request_timeout;
        let thread_map: thread_map::Client = timed(limit, "Init.construct", async {
            let answer = init
                .construct_request()
                .send()
                .promise
                .await
                .map_err(|e| call_error("Init.construct", e))?;
            answer
                .get()
                .and_then(|r| r.get_thread_map())
                .map_err(|e| call_error("Init.construct", e))
        })
        .await?;
        let make_thread = |name: &'static str| {
            let mut request = thread_map.make_thread_request();
            request.get().set_name(name);
            timed(limit, "ThreadMap.makeThread", async move {
                let answer = request
                    .send()
                    .promise
                    .await
                    .map_err(|e| call_error("ThreadMap.makeThread", e))?;
                answer
                    .get()
                    .and_then(|r| r.get_result())
                    .map_err(|e| call_error("ThreadMap.makeThread", e))
            })
        };
        let calls = make_thread("strata-ipc-calls").await?;
        let waits = make_thread("strata-ipc-waits").await?;
        let reads = make_thread("strata-ipc-reads").await?;
        let threads = Threads {
            config,
            calls,
            waits,
            reads,
        };

        let interface = threads.config.interface;
        let v31 = match interface {
            Interface::V30 => None,
            Interface::Auto | Interface::V31 => v31::make_mining(&threads, init).await?,
        };
        let mining = match (v31, interface) {
            (Some(mining), _) => MiningClient::V31(mining),
            (None, Interface::V31) => {
                return Err(SourceError::Protocol(
                    "the node does not serve Init.makeMining @3: it runs an older Mining \
                     interface (Bitcoin Core 30?); set [ipc] interface = \"v30\" or \"auto\""
                        .into(),
                ))
            }
            (None, _) => {
                MiningClient::V30(v30::make_mining(&threads, init).await.map_err(|e| {
                    SourceError::Protocol(format!(
                        "the node serves neither Core 31's nor Core 30's Mining interface \
                         (Init.makeMining @3 unknown, @2: {e})"
                    ))
                })?)
            }
        };
        let test_chain = match &mining {
            MiningClient::V31(m) => v31::is_test_chain(&threads, m).await?,
            MiningClient::V30(m) => v30::is_test_chain(&threads, m).await?,
        };
        check_chain(test_chain, threads.config.network)?;
        tracing::info!(
            socket = %threads.config.socket.display(),
            interface = match mining { MiningClient::V31(_) => "31", MiningClient::V30(_) => "30" },
            "ipc: connected to the node's Mining interface"
        );
        Ok(Node { threads, mining })
    }

    /// `Mining.createNewBlock` with the pool's coinbase needs.
    async fn create_new_block(&self) -> Result<TemplateClient, SourceError> {
        Ok(match &self.mining {
            MiningClient::V31(m) => {
                TemplateClient::V31(v31::create_new_block(&self.threads, m).await?)
            }
            MiningClient::V30(m) => {
                TemplateClient::V30(v30::create_new_block(&self.threads, m).await?)
            }
        })
    }

    /// `BlockTemplate.waitNext` on `template`: `Some` new template (new tip or fees up), or
    /// `None` after the wait's timeout.
    fn wait_next(&self, template: &TemplateClient) -> WaitFuture {
        match template {
            TemplateClient::V31(t) => {
                let wait = v31::wait_next(&self.threads, t);
                Box::pin(async move { Ok(wait.await?.map(TemplateClient::V31)) })
            }
            TemplateClient::V30(t) => {
                let wait = v30::wait_next(&self.threads, t);
                Box::pin(async move { Ok(wait.await?.map(TemplateClient::V30)) })
            }
        }
    }

    /// `BlockTemplate.interruptWait`: ends a `waitNext` in flight on `template` (it runs on
    /// the node's event loop, not on a server thread). The returned future sends it.
    fn interrupt(&self, template: &TemplateClient) -> Pin<Box<dyn Future<Output = ()>>> {
        match template {
            TemplateClient::V31(t) => Box::pin(v31::interrupt(&self.threads, t)),
            TemplateClient::V30(t) => Box::pin(v30::interrupt(&self.threads, t)),
        }
    }

    /// Reads `client`, assigns it the next id, keeps it and publishes it. Returns the
    /// template client to wait on next.
    async fn publish(
        &self,
        client: TemplateClient,
        next_id: &mut u64,
        kept: &mut VecDeque<Kept>,
        latest: &watch::Sender<Latest>,
    ) -> Result<TemplateClient, SourceError> {
        let read = async {
            match &client {
                TemplateClient::V31(t) => v31::read_template(&self.threads, t).await,
                TemplateClient::V30(t) => v30::read_template(&self.threads, t).await,
            }
        };
        let (template, header) = timed(
            self.threads.config.request_timeout,
            "reading a block template",
            read,
        )
        .await?;
        let header: [u8; 80] = header
            .try_into()
            .map_err(|_| SourceError::Protocol("block header is not 80 bytes".into()))?;
        let template = Template {
            id: *next_id,
            ..template
        };
        *next_id += 1;
        if kept.len() == KEPT_TEMPLATES {
            kept.pop_front();
        }
        kept.push_back(Kept {
            id: template.id,
            client: client.clone(),
            header,
            merkle_path: template.merkle_path.clone(),
        });
        tracing::debug!(
            id = template.id,
            height = template.height,
            txs = template.tx_count,
            "ipc: new template"
        );
        check_regtest(&template, self.threads.config.network)?;
        let transactions = if self.threads.config.transactions {
            Some(self.transactions(&client).await?)
        } else {
            None
        };
        latest.send_replace(Latest::Template(template, transactions));
        Ok(client)
    }

    /// `BlockTemplate.submitSolution` on the template the solution names; on `false`,
    /// `Mining.checkBlock` on the same block for the reason.
    async fn submit(
        &self,
        kept: &VecDeque<Kept>,
        solution: &crate::Solution,
    ) -> Result<SubmitOutcome, SourceError> {
        let kept = kept
            .iter()
            .find(|k| k.id == solution.template_id)
            .ok_or(SourceError::UnknownTemplate(solution.template_id))?;
        let coinbase: Transaction = match consensus::deserialize(&solution.coinbase) {
            Ok(tx) => tx,
            Err(e) => {
                return Ok(SubmitOutcome::Rejected {
                    reason: format!("coinbase does not decode: {e}"),
                })
            }
        };
        // the header the node builds: its template's, with the solution's version, time and
        // nonce and the merkle root of the solution's coinbase
        let fields = header_fields(&solution.header);
        let (version, timestamp, nonce) = fields;
        let mut header = kept.header;
        let root =
            merkle_root_from_path(coinbase.compute_txid().to_byte_array(), &kept.merkle_path);
        header[0..4].copy_from_slice(&version.to_le_bytes());
        header[36..68].copy_from_slice(&root);
        header[68..72].copy_from_slice(&timestamp.to_le_bytes());
        header[76..80].copy_from_slice(&nonce.to_le_bytes());
        let mut hash = sha256d(&header);
        hash.reverse();
        let hash = hex::encode(hash);

        let accepted = match &kept.client {
            TemplateClient::V31(t) => {
                v31::submit_solution(&self.threads, t, fields, &solution.coinbase).await?
            }
            TemplateClient::V30(t) => {
                v30::submit_solution(&self.threads, t, fields, &solution.coinbase).await?
            }
        };
        if accepted {
            tracing::info!(%hash, template = solution.template_id, "ipc: block accepted");
            return Ok(SubmitOutcome::Accepted { hash });
        }
        let reason = match self.why_rejected(kept, &header, coinbase).await {
            Ok(BlockCheck::Invalid { reason, debug }) if debug.is_empty() => reason,
            Ok(BlockCheck::Invalid { reason, debug }) => format!("{reason} ({debug})"),
            Ok(BlockCheck::Valid) => "rejected by the node (checkBlock finds it valid now)".into(),
            Err(e) => format!("rejected by the node (checkBlock failed: {e})"),
        };
        tracing::warn!(%reason, template = solution.template_id, "ipc: block rejected");
        Ok(SubmitOutcome::Rejected { reason })
    }

    /// The template's transactions besides the coinbase, serialized (`getBlock`).
    async fn transactions(
        &self,
        client: &TemplateClient,
    ) -> Result<std::sync::Arc<[Vec<u8>]>, SourceError> {
        let raw = match client {
            TemplateClient::V31(t) => v31::get_block(&self.threads, t).await?,
            TemplateClient::V30(t) => v30::get_block(&self.threads, t).await?,
        };
        let block: Block = consensus::deserialize(&raw).map_err(|e| {
            SourceError::Protocol(format!(
                "BlockTemplate.getBlock: block does not decode: {e}"
            ))
        })?;
        Ok(block
            .txdata
            .iter()
            .skip(1)
            .map(consensus::serialize)
            .collect())
    }

    /// The block a rejected solution made (the template's transactions, the solution's
    /// coinbase and header) through `checkBlock`.
    async fn why_rejected(
        &self,
        kept: &Kept,
        header: &[u8; 80],
        coinbase: Transaction,
    ) -> Result<BlockCheck, SourceError> {
        let raw = match &kept.client {
            TemplateClient::V31(t) => v31::get_block(&self.threads, t).await?,
            TemplateClient::V30(t) => v30::get_block(&self.threads, t).await?,
        };
        let mut block: Block = consensus::deserialize(&raw).map_err(|e| {
            SourceError::Protocol(format!(
                "BlockTemplate.getBlock: block does not decode: {e}"
            ))
        })?;
        block.header = consensus::deserialize(header)
            .map_err(|e| SourceError::Protocol(format!("header does not decode: {e}")))?;
        match block.txdata.first_mut() {
            Some(first) => *first = coinbase,
            None => block.txdata.push(coinbase),
        }
        self.check_block(&consensus::serialize(&block), CheckOptions::default())
            .await
    }

    /// `Mining.checkBlock`.
    async fn check_block(
        &self,
        block: &[u8],
        options: CheckOptions,
    ) -> Result<BlockCheck, SourceError> {
        match &self.mining {
            MiningClient::V31(m) => v31::check_block(&self.threads, m, block, options).await,
            MiningClient::V30(m) => v30::check_block(&self.threads, m, block, options).await,
        }
    }
}

/// The first check of the node's chain: the Mining interface tells only whether it is a test
/// chain (anything but mainnet); each template's nBits tells regtest apart
/// ([`check_regtest`]). testnet3, testnet4 and signet cannot be told apart over IPC.
fn check_chain(test_chain: bool, network: bitcoin::Network) -> Result<(), SourceError> {
    let mainnet = network == bitcoin::Network::Bitcoin;
    if test_chain == mainnet {
        return Err(SourceError::WrongChain {
            node: if test_chain { "a test chain" } else { "main" }.into(),
            configured: network.to_core_arg().into(),
        });
    }
    Ok(())
}

/// Regtest's nBits: its proof-of-work limit, never retargeted. No other network uses it.
const REGTEST_NBITS: u32 = 0x207f_ffff;

/// A template on regtest's nBits comes from a regtest node, and only such a template does.
fn check_regtest(template: &Template, network: bitcoin::Network) -> Result<(), SourceError> {
    let node_regtest = template.nbits == REGTEST_NBITS;
    if node_regtest != (network == bitcoin::Network::Regtest) {
        return Err(SourceError::WrongChain {
            node: if node_regtest {
                "regtest"
            } else {
                "not regtest"
            }
            .into(),
            configured: network.to_core_arg().into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::Network;

    #[test]
    fn the_chain_checks_refuse_the_wrong_network() {
        assert!(check_chain(false, Network::Bitcoin).is_ok());
        assert!(check_chain(true, Network::Signet).is_ok());
        assert!(check_chain(true, Network::Bitcoin)
            .unwrap_err()
            .is_permanent());
        assert!(check_chain(false, Network::Regtest)
            .unwrap_err()
            .is_permanent());
        let template = |nbits| Template {
            id: 1,
            height: 1,
            prev_hash: [0; 32],
            version: 0x2000_0000,
            nbits,
            min_ntime: 0,
            coinbase_tx_version: 2,
            coinbase_prefix: vec![0x51],
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: 0,
            coinbase_tx_outputs: vec![],
            coinbase_tx_locktime: 0,
            merkle_path: vec![],
            tx_count: 0,
        };
        assert!(check_regtest(&template(REGTEST_NBITS), Network::Regtest).is_ok());
        assert!(check_regtest(&template(0x1d00_ffff), Network::Testnet4).is_ok());
        let e = check_regtest(&template(REGTEST_NBITS), Network::Signet).unwrap_err();
        assert!(e.to_string().contains("regtest"), "{e}");
        assert!(check_regtest(&template(0x1703_0ecd), Network::Regtest).is_err());
    }
}
