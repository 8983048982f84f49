//! The running pool: keys and certificate (renewed or re-read while it runs), ledger,
//! statistics, the work manager owning the template source, the SV2 listener with one task per
//! connection, and the HTTP API.
//!
//! ```text
//!  template source ──▶ manager ──watch<Work>──▶ connection tasks ◀──▶ miners
//!        ▲                ▲  └──────────▶ ledger ◀── shares (ack after commit)
//!        └── submit ──────┴──── found blocks (mpsc) ──┘
//! ```

pub mod cluster;
pub mod conn;
pub mod history;
pub mod keys;
pub mod manager;
pub mod session;
pub mod stats;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bitcoin::ScriptBuf;
use strata_net::keys::CERT_CHECK_INTERVAL;
use strata_net::limit::IpLimiter;
use strata_net::sv2::Sv2Options;
use strata_noise::PublicKey;
use strata_work::channel::ChannelConfig;
use strata_work::vardiff::VardiffConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, PayoutKind, SourceKind};
use crate::ledger::{Ledger, LedgerConfig, ServerId, Synchronous};
use crate::payout::{PayoutMode, PplnsConfig, SoloConfig};
use crate::template::{SourceError, TemplateSource};
use conn::{ConnContext, ConnLinks};
use manager::ManagerConfig;
use session::SessionConfig;
use stats::{Stats, StatsEvent, StatsHandle, WorkerStats};

/// A started pool.
#[derive(Debug)]
pub struct RunningPool {
    /// Where the SV2 server listens.
    pub sv2_addr: SocketAddr,
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    /// Where the Job Declarator Server listens (`[jds]` enabled).
    pub jds_addr: Option<SocketAddr>,
    /// The authority public key miners and proxies pin.
    pub authority: PublicKey,
    /// Cancel to stop the pool.
    pub shutdown: CancellationToken,
    tasks: TaskTracker,
    ledger_thread: Option<crate::ledger::LedgerThread>,
}

impl RunningPool {
    /// Waits until every task ended (after [`RunningPool::shutdown`] was cancelled) and the
    /// ledger flushed.
    pub async fn wait(mut self) {
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(t) = self.ledger_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

fn session_config(cfg: &Config, pool_script: ScriptBuf) -> SessionConfig {
    SessionConfig {
        network: cfg.network,
        pool_script,
        solo_fee_ppm: cfg.payout.fee_ppm,
        solo: cfg.payout.mode == PayoutKind::Solo,
        pool_tag: cfg.pool_tag.as_bytes().to_vec(),
        full_extranonce_len: cfg.extranonce_size,
        channel: ChannelConfig {
            shares_per_minute: cfg.vardiff.shares_per_minute as f32,
            ..ChannelConfig::default()
        },
        vardiff: VardiffConfig {
            shares_per_minute: cfg.vardiff.shares_per_minute,
            min_difficulty: cfg.vardiff.min_difficulty,
            max_difficulty: cfg.vardiff.max_difficulty,
            period: Duration::from_secs(cfg.vardiff.period_secs.max(1)),
            ..VardiffConfig::default()
        },
        max_channels: cfg.max_channels_per_connection,
        server: ServerId::new(cfg.cluster.server_id),
        work_selection: cfg.jds.listen.is_some(),
    }
}

fn payout_mode(cfg: &Config) -> PayoutMode {
    match cfg.payout.mode {
        PayoutKind::Solo => PayoutMode::Solo(SoloConfig {
            fee_ppm: cfg.payout.fee_ppm,
        }),
        PayoutKind::Pplns => PayoutMode::Pplns(PplnsConfig {
            window_shares: cfg.payout.window_shares,
            fee_ppm: cfg.payout.fee_ppm,
            dust_sats: cfg.payout.dust_sats,
            max_outputs: cfg.payout.max_outputs,
        }),
    }
}

/// Starts the pool described by `cfg`: returns once it listens.
pub async fn start(cfg: Config) -> anyhow::Result<RunningPool> {
    cfg.jds.check(cfg.template_source)?;
    let api_auth = strata_net::http_auth::ApiAuth::new(cfg.api_listen, cfg.api_token.as_ref())?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let keys = keys::load_or_create(&cfg.data_dir, cfg.certificate_days)?;
    let authority = keys.authority;
    let pool_script = keys::pool_script(&cfg, &authority)?;
    let payout_rules = crate::api::PayoutRules::new(payout_mode(&cfg), &pool_script, cfg.network);

    let mut lcfg = if cfg.ledger.postgres_url.is_empty() {
        LedgerConfig::new(cfg.data_dir.join("ledger.sqlite"))
    } else {
        LedgerConfig::postgres(cfg.ledger.postgres_url.clone())
    };
    tracing::info!(ledger = %lcfg.backend.describe(), "share ledger");
    lcfg.synchronous = if cfg.ledger.synchronous.eq_ignore_ascii_case("normal") {
        Synchronous::Normal
    } else {
        Synchronous::Full
    };
    lcfg.min_commit_interval = Duration::from_micros(cfg.ledger.min_commit_interval_us);
    if let Some(id) = ServerId::new(cfg.cluster.server_id) {
        tracing::info!(server_id = %id, "cluster server");
        lcfg = lcfg.in_cluster(id);
    }
    let (stats, stats_queue) = stats::channel();
    let committed = stats.clone();
    let (ledger, ledger_thread) = Ledger::open_observed(
        lcfg,
        Box::new(move |workers| committed.send(StatsEvent::Committed(workers))),
    )
    .context("cannot open the share ledger")?;
    let totals = ledger.totals().await.context("cannot read the ledger")?;
    stats::spawn(
        Stats::new(
            totals.shares_accepted,
            totals.blocks_accepted,
            totals
                .workers
                .iter()
                .map(|w| WorkerStats {
                    worker: w.worker.clone(),
                    shares_accepted: w.shares,
                    difficulty_accepted: w.difficulty,
                    last_share_ms: w.last_share_ms,
                    ..WorkerStats::default()
                })
                .collect(),
        ),
        stats_queue,
    );

    let shutdown = CancellationToken::new();
    // a start that fails from here on stops what it started (the manager, the ledger's users)
    let stop_on_failure = shutdown.clone().drop_guard();
    let tasks = TaskTracker::new();
    // the JDS's node (`[rpc]`), whatever the template source
    let jds_node = match cfg.jds.listen {
        Some(_) => Some(
            crate::template::rpc::NodeRpc::new(&rpc_config(&cfg))
                .context("[jds] needs a client of the node at [rpc]")?,
        ),
        None => None,
    };
    let mcfg = ManagerConfig {
        payout: payout_mode(&cfg),
        pool_script: pool_script.clone(),
        network: cfg.network,
        min_block_interval: Duration::from_millis(cfg.min_block_interval_ms),
        // only the rpc source submits whole blocks itself
        whole_blocks: jds_node
            .clone()
            .filter(|_| cfg.template_source != SourceKind::Rpc),
    };
    let (blocks_tx, blocks_rx) = mpsc::channel(64);
    let work_rx = match cfg.template_source {
        SourceKind::Embedded => {
            #[cfg(feature = "embedded")]
            {
                let dir = cfg.data_dir.clone();
                let open = move || {
                    let dir = dir.clone();
                    async move {
                        crate::template::embedded::EmbeddedSource::open(
                            &dir,
                            crate::template::embedded::EmbeddedConfig::default(),
                        )
                    }
                };
                launch(open, mcfg, blocks_rx, &ledger, &stats, &shutdown, &tasks).await?
            }
            #[cfg(not(feature = "embedded"))]
            {
                anyhow::bail!("this build has no embedded node (feature `embedded`)");
            }
        }
        SourceKind::Rpc => {
            crate::budget::CoinbaseBudget::for_config(&cfg, &pool_script)
                .check_reserve(
                    cfg.rpc.block_reserved_weight,
                    crate::budget::CORE_COINBASE_SIGOPS,
                )
                .context("the pool's coinbase does not fit bitcoind's templates")?;
            let rc = rpc_config(&cfg);
            let open = move || {
                let rc = rc.clone();
                async move { crate::template::rpc::RpcSource::new(rc) }
            };
            launch(open, mcfg, blocks_rx, &ledger, &stats, &shutdown, &tasks).await?
        }
        SourceKind::Tdp => {
            let tc = cfg
                .tdp
                .to_config(
                    crate::budget::CoinbaseBudget::for_config(&cfg, &pool_script).constraints(),
                )
                .map_err(|e| anyhow::anyhow!(e))?;
            let open = move || crate::template::tdp::TdpSource::connect(tc.clone());
            launch(open, mcfg, blocks_rx, &ledger, &stats, &shutdown, &tasks).await?
        }
        SourceKind::Ipc => {
            let ic = cfg.ipc.to_config(
                cfg.network,
                crate::budget::CoinbaseBudget::for_config(&cfg, &pool_script).constraints(),
            );
            let open = move || crate::template::ipc::IpcSource::connect(ic.clone());
            launch(open, mcfg, blocks_rx, &ledger, &stats, &shutdown, &tasks).await?
        }
    };

    let signer = keys.renewal.signer();
    let (responder_tx, responder) = watch::channel(Arc::new(keys.responder));
    let stop = shutdown.clone();
    let renewal = keys.renewal;
    tasks.spawn(async move {
        tokio::select! {
            () = strata_net::keys::run_renewal(renewal, responder_tx, CERT_CHECK_INTERVAL) => {}
            () = stop.cancelled() => {}
        }
    });
    let ctx = Arc::new(ConnContext {
        responder: responder.clone(),
        net: Sv2Options::default(),
        session: Arc::new(session_config(&cfg, pool_script.clone())),
        tick: Duration::from_secs(5),
        write_timeout: Duration::from_secs(30),
        setup_timeout: Duration::from_secs(cfg.setup_timeout_secs.max(1)),
    });
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let sv2_addr = listener.local_addr()?;
    let work_view = work_rx.clone();
    let (registry, jds_addr) = match (cfg.jds.listen, jds_node) {
        (Some(listen), Some(node)) => {
            let registry = crate::jds::edge::RegistryHandle::spawn(
                cfg.jds.max_declared_jobs,
                &tasks,
                shutdown.clone(),
            );
            let edge = crate::jds::edge::JdsEdge {
                listen,
                responder: responder.clone(),
                net: Sv2Options::default(),
                limits: cfg.jds.limits(),
                max_connections: cfg.jds.max_connections,
                setup_timeout: Duration::from_secs(cfg.setup_timeout_secs.max(1)),
                work: work_rx.clone(),
                node,
                node_url: cfg.rpc.url.clone(),
                mempool_poll: Duration::from_millis(cfg.jds.mempool_poll_ms.max(10)),
                max_mempool_txs: cfg.jds.max_mempool_txs,
                registry: registry.clone(),
                blocks: blocks_tx.clone(),
                solo: crate::jds::SoloRules {
                    pool_script: pool_script.clone(),
                    fee_ppm: cfg.payout.fee_ppm,
                    network: cfg.network,
                },
                shutdown: shutdown.clone(),
            };
            let addr = crate::jds::edge::start(edge, &tasks).await?;
            (Some(registry), Some(addr))
        }
        _ => (None, None),
    };
    let links = ConnLinks {
        work: work_rx,
        ledger: ledger.clone(),
        blocks: blocks_tx,
        stats: stats.clone(),
        shutdown: shutdown.clone(),
        registry,
    };
    tasks.spawn(accept_loop(
        listener,
        ctx,
        links,
        cfg.max_connections,
        IpLimiter::new("pool", cfg.max_connections_per_ip),
        tasks.clone(),
    ));

    let pool_script_view = pool_script;
    tasks.spawn(history::run(
        stats.clone(),
        ledger.clone(),
        Duration::from_secs(cfg.history.sample_secs.max(1)),
        Duration::from_secs(u64::from(cfg.history.retention_days) * 86_400),
        shutdown.clone(),
    ));

    let api = TcpListener::bind(cfg.api_listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.api_listen))?;
    let api_addr = api.local_addr()?;
    let router = crate::api::router(crate::api::ApiState {
        stats: stats.clone(),
        ledger: ledger.clone(),
        certificate: responder,
        signer,
        payout: payout_rules,
        auth: api_auth,
        work: work_view,
        network: cfg.network,
        pool_script: pool_script_view,
        server: ServerId::new(cfg.cluster.server_id),
        history_sample: Duration::from_secs(cfg.history.sample_secs.max(1)),
    });
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(api, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP API failed");
        }
    });
    drop(ledger);
    tracing::info!(%sv2_addr, %api_addr, authority = %authority, "pool listening");
    stop_on_failure.disarm();
    Ok(RunningPool {
        sv2_addr,
        api_addr,
        jds_addr,
        authority,
        shutdown,
        tasks,
        ledger_thread: Some(ledger_thread),
    })
}

fn rpc_config(cfg: &Config) -> crate::template::rpc::RpcConfig {
    cfg.rpc.to_config(cfg.network)
}

/// Opens the source, waits for its first template, and spawns the manager; returns the
/// work channel connections subscribe to.
async fn launch<S, C, F>(
    mut open: C,
    mcfg: ManagerConfig,
    blocks_rx: mpsc::Receiver<session::FoundBlock>,
    ledger: &Ledger,
    stats: &StatsHandle,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> anyhow::Result<watch::Receiver<Arc<session::Work>>>
where
    S: TemplateSource + 'static,
    C: FnMut() -> F + Send + 'static,
    F: Future<Output = Result<S, SourceError>> + Send + 'static,
{
    let mut backoff = Duration::from_millis(500);
    let (source, first) = loop {
        let attempt = async {
            let mut s = open().await?;
            let t = s.next_template().await?;
            Ok::<_, SourceError>((s, t))
        };
        match attempt.await {
            Ok(x) => break x,
            Err(e) if e.is_permanent() => {
                return Err(anyhow::Error::new(e).context("the template source cannot be used"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "template source not ready; retrying in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => anyhow::bail!("stopped before the first template"),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    };
    tracing::info!(
        source = source.name(),
        height = first.height,
        "first template"
    );
    stats.send(stats::StatsEvent::Height(first.height));
    let work = manager::make_work(0, first, &mcfg, ledger).await;
    let (work_tx, work_rx) = watch::channel(Arc::new(work));
    tasks.spawn(manager::run(
        source,
        open,
        mcfg,
        work_tx,
        blocks_rx,
        ledger.clone(),
        stats.clone(),
        shutdown.clone(),
    ));
    Ok(work_rx)
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<ConnContext>,
    links: ConnLinks,
    max_connections: usize,
    per_ip: IpLimiter,
    tasks: TaskTracker,
) {
    static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = links.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // out of file descriptors and the like: back off instead of spinning
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // refused (and logged at debug) when the address has max_connections_per_ip
        let Some(ip_slot) = per_ip.admit(peer) else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing");
            continue;
        };
        let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        let links = links.clone();
        tasks.spawn(async move {
            conn::serve(stream, peer, conn_id, ctx, links).await;
            drop((permit, ip_slot));
        });
    }
}
