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
use super::generated::mining_capnp::{block_template, mining};
use super::generated::proxy_capnp::{thread, thread_map};
use super::{
    header_fields, template_from_parts, BlockCheck, CheckOptions, CoinbaseParts, Command,
    IpcConfig, Latest, KEPT_TEMPLATES,
};
use crate::template::{SourceError, SubmitOutcome, Template};

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
    client: block_template::Client,
    header: [u8; 80],
    merkle_path: Vec<[u8; 32]>,
}

/// The live connection: the two server threads and `Mining`.
struct Node {
    config: IpcConfig,
    mining: mining::Client,
    /// Server thread of ordinary calls.
    calls: thread::Client,
    /// Server thread of `waitNext`.
    waits: thread::Client,
}

type WaitFuture =
    Pin<Box<dyn Future<Output = Result<Option<block_template::Client>, SourceError>>>>;

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
    let mut wait: WaitFuture = Box::pin(node.wait_next(current.clone()));

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
                    if let Ok(SubmitOutcome::Accepted { .. }) = &outcome {
                        // the next template is on the new tip: publish it before answering
                        let fresh = node.create_new_block().await?;
                        tokio::task::spawn_local(node.interrupt(&current));
                        current = node.publish(fresh, &mut next_id, &mut kept, latest).await?;
                        wait = Box::pin(node.wait_next(current.clone()));
                    }
                    let _ = reply.send(outcome);
                }
                Some(Command::Check { block, options, reply }) => {
                    let _ = reply.send(node.check_block(&block, options).await);
                }
            },
            waited = &mut wait => {
                if let Some(template) = waited? {
                    current = node.publish(template, &mut next_id, &mut kept, latest).await?;
                }
                wait = Box::pin(node.wait_next(current.clone()));
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
fn call_error(call: &str, e: capnp::Error) -> SourceError {
    match e.kind {
        capnp::ErrorKind::Disconnected => {
            SourceError::Connection(format!("{call}: node disconnected: {}", e.extra))
        }
        _ => SourceError::Protocol(format!("{call}: {e}")),
    }
}

/// `fut` within `limit`, else a connection error naming `call`.
async fn timed<T>(
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
    /// `Init.construct`, two `ThreadMap.makeThread`, `Init.makeMining`.
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

        let mut request = init.make_mining_request();
        request.get().init_context().set_thread(calls.clone());
        let mining = timed(limit, "Init.makeMining", async {
            let answer = request.send().promise.await.map_err(|e| match e.kind {
                capnp::ErrorKind::Unimplemented => SourceError::Protocol(
                    "the node does not serve Init.makeMining @3: it runs an older Mining \
                     interface (Bitcoin Core 30?); the ipc source needs Bitcoin Core 31"
                        .into(),
                ),
                _ => call_error("Init.makeMining", e),
            })?;
            answer
                .get()
                .and_then(|r| r.get_result())
                .map_err(|e| call_error("Init.makeMining", e))
        })
        .await?;
        tracing::info!(socket = %config.socket.display(), "ipc: connected to the node's Mining interface");
        Ok(Node {
            config,
            mining,
            calls,
            waits,
        })
    }

    /// `Mining.createNewBlock` with the pool's coinbase needs.
    async fn create_new_block(&self) -> Result<block_template::Client, SourceError> {
        let mut request = self.mining.create_new_block_request();
        {
            let mut params = request.get();
            params
                .reborrow()
                .init_context()
                .set_thread(self.calls.clone());
            params.set_cooldown(self.config.cooldown);
            let mut options = params.init_options();
            options.set_use_mempool(true);
            options.set_block_reserved_weight(self.config.block_reserved_weight());
            options.set_coinbase_output_max_additional_sigops(u64::from(
                self.config.constraints.max_additional_sigops,
            ));
        }
        let call = "Mining.createNewBlock";
        timed(self.config.request_timeout, call, async {
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            let results = answer.get().map_err(|e| call_error(call, e))?;
            if !results.has_result() {
                return Err(SourceError::Connection(format!(
                    "{call}: no template (the node is shutting down)"
                )));
            }
            results.get_result().map_err(|e| call_error(call, e))
        })
        .await
    }

    /// `BlockTemplate.waitNext` on `template`: `Some` new template (new tip or fees up), or
    /// `None` after the wait's timeout.
    fn wait_next(
        &self,
        template: block_template::Client,
    ) -> impl Future<Output = Result<Option<block_template::Client>, SourceError>> + 'static {
        let mut request = template.wait_next_request();
        {
            let mut params = request.get();
            params
                .reborrow()
                .init_context()
                .set_thread(self.waits.clone());
            let mut options = params.init_options();
            options.set_timeout(self.config.wait_timeout.as_secs_f64() * 1000.0);
            options.set_fee_threshold(i64::try_from(self.config.fee_threshold).unwrap_or(i64::MAX));
        }
        let limit = self.config.wait_timeout + self.config.request_timeout + WAIT_GRACE;
        let call = "BlockTemplate.waitNext";
        timed(limit, call, async move {
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            let results = answer.get().map_err(|e| call_error(call, e))?;
            if !results.has_result() {
                return Ok(None);
            }
            results
                .get_result()
                .map(Some)
                .map_err(|e| call_error(call, e))
        })
    }

    /// `BlockTemplate.interruptWait`: ends a `waitNext` in flight on `template` (it runs on
    /// the node's event loop, not on a server thread). The returned future sends it.
    fn interrupt(&self, template: &block_template::Client) -> impl Future<Output = ()> + 'static {
        let request = template.interrupt_wait_request();
        let limit = self.config.request_timeout;
        async move {
            let _ = tokio::time::timeout(limit, request.send().promise).await;
        }
    }

    /// Reads `template`, assigns it the next id, keeps it and publishes it. Returns the
    /// template client to wait on next.
    async fn publish(
        &self,
        client: block_template::Client,
        next_id: &mut u64,
        kept: &mut VecDeque<Kept>,
        latest: &watch::Sender<Latest>,
    ) -> Result<block_template::Client, SourceError> {
        let (template, header) = timed(
            self.config.request_timeout,
            "reading a block template",
            self.read_template(&client),
        )
        .await?;
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
        latest.send_replace(Latest::Template(template));
        Ok(client)
    }

    /// `getBlockHeader`, `getCoinbaseTx`, `getCoinbaseMerklePath`, `getTxFees`.
    async fn read_template(
        &self,
        client: &block_template::Client,
    ) -> Result<(Template, [u8; 80]), SourceError> {
        let header = {
            let mut request = client.get_block_header_request();
            request.get().init_context().set_thread(self.calls.clone());
            let call = "BlockTemplate.getBlockHeader";
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            answer
                .get()
                .and_then(|r| r.get_result())
                .map(<[u8]>::to_vec)
                .map_err(|e| call_error(call, e))?
        };
        let coinbase = {
            let mut request = client.get_coinbase_tx_request();
            request.get().init_context().set_thread(self.calls.clone());
            let call = "BlockTemplate.getCoinbaseTx";
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            let read = || -> capnp::Result<CoinbaseParts> {
                let tx = answer.get()?.get_result()?;
                Ok(CoinbaseParts {
                    version: tx.get_version(),
                    sequence: tx.get_sequence(),
                    script_sig_prefix: tx.get_script_sig_prefix()?.to_vec(),
                    witness: tx.get_witness()?.to_vec(),
                    block_reward_remaining: tx.get_block_reward_remaining(),
                    required_outputs: tx
                        .get_required_outputs()?
                        .iter()
                        .map(|o| o.map(<[u8]>::to_vec))
                        .collect::<capnp::Result<_>>()?,
                    lock_time: tx.get_lock_time(),
                })
            };
            read().map_err(|e| call_error(call, e))?
        };
        let merkle_path = {
            let mut request = client.get_coinbase_merkle_path_request();
            request.get().init_context().set_thread(self.calls.clone());
            let call = "BlockTemplate.getCoinbaseMerklePath";
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            let read = || -> capnp::Result<Vec<Vec<u8>>> {
                answer
                    .get()?
                    .get_result()?
                    .iter()
                    .map(|h| h.map(<[u8]>::to_vec))
                    .collect()
            };
            read().map_err(|e| call_error(call, e))?
        };
        let tx_count = {
            let mut request = client.get_tx_fees_request();
            request.get().init_context().set_thread(self.calls.clone());
            let call = "BlockTemplate.getTxFees";
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            answer
                .get()
                .and_then(|r| r.get_result())
                .map(|fees| fees.len() as usize)
                .map_err(|e| call_error(call, e))?
        };
        let template = template_from_parts(&header, &coinbase, &merkle_path, tx_count)?;
        let header: [u8; 80] = header
            .try_into()
            .map_err(|_| SourceError::Protocol("block header is not 80 bytes".into()))?;
        Ok((template, header))
    }

    /// `BlockTemplate.submitSolution` on the template the solution names; on `false`,
    /// `Mining.checkBlock` on the same block for the reason.
    async fn submit(
        &self,
        kept: &VecDeque<Kept>,
        solution: &crate::template::Solution,
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
        let (version, timestamp, nonce) = header_fields(&solution.header);
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

        let mut request = kept.client.submit_solution_request();
        {
            let mut params = request.get();
            params
                .reborrow()
                .init_context()
                .set_thread(self.calls.clone());
            params.set_version(version);
            params.set_timestamp(timestamp);
            params.set_nonce(nonce);
            params.set_coinbase(&solution.coinbase);
        }
        let call = "BlockTemplate.submitSolution";
        let accepted = timed(self.config.request_timeout, call, async {
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            answer
                .get()
                .map(|r| r.get_result())
                .map_err(|e| call_error(call, e))
        })
        .await?;
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

    /// The block a rejected solution made (the template's transactions, the solution's
    /// coinbase and header) through `checkBlock`.
    async fn why_rejected(
        &self,
        kept: &Kept,
        header: &[u8; 80],
        coinbase: Transaction,
    ) -> Result<BlockCheck, SourceError> {
        let mut request = kept.client.get_block_request();
        request.get().init_context().set_thread(self.calls.clone());
        let call = "BlockTemplate.getBlock";
        let raw = timed(self.config.request_timeout, call, async {
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            answer
                .get()
                .and_then(|r| r.get_result())
                .map(<[u8]>::to_vec)
                .map_err(|e| call_error(call, e))
        })
        .await?;
        let mut block: Block = consensus::deserialize(&raw)
            .map_err(|e| SourceError::Protocol(format!("{call}: block does not decode: {e}")))?;
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
        let mut request = self.mining.check_block_request();
        {
            let mut params = request.get();
            params
                .reborrow()
                .init_context()
                .set_thread(self.calls.clone());
            params.set_block(block);
            let mut o = params.init_options();
            o.set_check_merkle_root(options.check_merkle_root);
            o.set_check_pow(options.check_pow);
        }
        let call = "Mining.checkBlock";
        timed(self.config.request_timeout, call, async {
            let answer = request
                .send()
                .promise
                .await
                .map_err(|e| call_error(call, e))?;
            let read = || -> capnp::Result<BlockCheck> {
                let r = answer.get()?;
                let reason = r.get_reason()?.to_string()?;
                let debug = r.get_debug()?.to_string()?;
                Ok(BlockCheck::from_answer(r.get_result(), &reason, &debug))
            };
            read().map_err(|e| call_error(call, e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::generated::init_capnp::init;
    use super::super::generated::proxy_capnp::{thread, thread_map};
    use super::*;
    use capnp::capability::Rc;

    /// A node whose `Init` knows `construct` and `makeThread` but not `makeMining` @3, as
    /// Bitcoin Core 30 answers.
    struct OldInit;
    struct Threads;
    struct Thread;

    impl thread::Server for Thread {}

    impl thread_map::Server for Threads {
        fn make_thread(
            self: Rc<Self>,
            _: thread_map::MakeThreadParams,
            mut results: thread_map::MakeThreadResults,
        ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
            results
                .get()
                .set_result(capnp_rpc::new_client::<thread::Client, _>(Thread));
            std::future::ready(Ok(()))
        }
    }

    impl init::Server for OldInit {
        fn construct(
            self: Rc<Self>,
            _: init::ConstructParams,
            mut results: init::ConstructResults,
        ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
            results
                .get()
                .set_thread_map(capnp_rpc::new_client::<thread_map::Client, _>(Threads));
            std::future::ready(Ok(()))
        }
    }

    /// Serves [`OldInit`] to one connection on `socket`, on a thread of its own.
    fn old_node(socket: std::path::PathBuf) {
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            tokio::task::LocalSet::new().block_on(&rt, async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let (stream, _) = listener.accept().await.unwrap();
                let (reader, writer) = stream.into_split();
                let network = twoparty::VatNetwork::new(
                    futures::io::BufReader::new(reader.compat()),
                    futures::io::BufWriter::new(writer.compat_write()),
                    Side::Server,
                    Default::default(),
                );
                let init: init::Client = capnp_rpc::new_client(OldInit);
                let _ = RpcSystem::new(Box::new(network), Some(init.client)).await;
            });
        });
    }

    #[tokio::test]
    async fn an_older_mining_interface_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("node.sock");
        old_node(socket.clone());
        let err = super::super::IpcSource::connect(IpcConfig::new(socket))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SourceError::Protocol(_)), "{text}");
        assert!(text.contains("Bitcoin Core 31"), "{text}");
    }
}
