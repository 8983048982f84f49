//! The running proxy: upstream task (pools with failover), hub, SV1 and SV2 listeners, API.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::{self, HubConfig};
use crate::upstream::{self, PoolUrl, UpstreamConfig};

/// A started proxy.
#[derive(Debug)]
pub struct RunningProxy {
    /// Where SV1 miners connect.
    pub sv1_addr: SocketAddr,
    /// Where SV2 miners connect, if enabled.
    pub sv2_addr: Option<SocketAddr>,
    /// The HTTP API.
    pub api_addr: SocketAddr,
    /// The proxy's own authority key (SV2 miners pin it), if SV2 is enabled.
    pub authority: Option<strata_noise::PublicKey>,
    /// Cancel to stop the proxy (miners are told to reconnect).
    pub shutdown: CancellationToken,
    /// The Job Declarator Client's mode and latencies, with `[jdc]`.
    pub jdc: Option<tokio::sync::watch::Receiver<crate::jdc::JdcStats>>,
    tasks: TaskTracker,
}

impl RunningProxy {
    /// Waits until every task ended after [`RunningProxy::shutdown`] was cancelled.
    pub async fn wait(self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// The history file's name in `data_dir`.
pub const HISTORY_FILE: &str = "history.sqlite";

/// The hub's monitor (history sampler, alerts, failover log) with its history thread and
/// webhook task started (both tracked by `tasks`), and the API's way to the history.
fn monitor_parts(
    cfg: &Config,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> anyhow::Result<(
    crate::monitor::Monitor,
    Option<crate::history::HistoryHandle>,
)> {
    use crate::alerts::{webhook, AlertConfig, Alerts};
    use crate::monitor::{unix_now, Monitor, MonitorParts};
    let now = unix_now();
    let a = &cfg.alerts;
    let mut alerts = Alerts::new(AlertConfig::from(a));
    let h = &cfg.history;
    let resolution = h.resolution_secs.max(1);
    let history = if h.enabled {
        let retention = h.retention_hours.saturating_mul(3600).max(resolution);
        let path = cfg.data_dir.join(HISTORY_FILE);
        let store = crate::history::Store::open(&path, retention)
            .with_context(|| format!("cannot open the history file {}", path.display()))?;
        // the drop rule judges with the farm's history of the last run
        let span = a.drop_recent_secs.saturating_add(a.drop_baseline_secs);
        alerts.seed_farm(store.farm_rows(now.saturating_sub(span))?);
        // and the silent rule with the workers seen lately
        alerts.seed_workers(
            store.workers(now.saturating_sub(a.forget_after_secs), a.max_miners)?,
            now,
        );
        let (handle, thread) = crate::history::spawn(store, h.queue, resolution, retention)
            .context("cannot start the history thread")?;
        tasks.spawn(async move {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        });
        tracing::info!(path = %path.display(), retention_secs = retention, resolution_secs = resolution, "history file open");
        Some(handle)
    } else {
        None
    };
    let webhook = match &a.webhook_url {
        Some(url) => {
            let url = webhook::check_url(url)?;
            let (w, task) = webhook::spawn(
                url,
                std::time::Duration::from_secs(a.webhook_timeout_secs.max(1)),
                a.webhook_queue,
                shutdown.clone(),
            );
            tasks.spawn(async move {
                let _ = task.await;
            });
            Some(w)
        }
        None => None,
    };
    let monitor = Monitor::new(MonitorParts {
        sampler: crate::history::Sampler::new(resolution, h.max_miners, now),
        alerts,
        max_failovers: cfg.max_failovers,
        history: history.clone(),
        webhook,
    });
    Ok((monitor, history))
}

/// The JDC's parameters from `[jdc]`, if it is on (`pools`: how many upstreams there are).
fn jdc_params(cfg: &Config, pools: usize) -> anyhow::Result<Option<crate::jdc::edge::JdcParams>> {
    use crate::config::JdcSource;
    use crate::jdc::edge::{JdcParams, NodeSource};
    let j = &cfg.jdc;
    if !j.enabled() {
        return Ok(None);
    }
    let jds: PoolUrl = j
        .jds_url
        .parse()
        .with_context(|| format!("jdc.jds_url {}", j.jds_url))?;
    anyhow::ensure!(
        !j.solo_address.is_empty(),
        "[jdc] needs solo_address (where solo blocks pay)"
    );
    let solo_script = j
        .solo_address
        .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
        .context("jdc.solo_address")?
        .require_network(j.network)
        .context("jdc.solo_address is not of jdc.network")?
        .script_pubkey();
    let constraints = strata_template::CoinbaseConstraints::default();
    let source = match j.source {
        JdcSource::Rpc => NodeSource::Rpc(j.rpc.to_config(j.network)),
        JdcSource::Ipc => {
            let mut ic = j.ipc.to_config(j.network, constraints);
            // Full-Template declarations need the templates' transactions
            ic.transactions = j.mode == crate::jdc::DeclareMode::FullTemplate;
            NodeSource::Ipc(ic)
        }
        JdcSource::Tdp => NodeSource::Tdp(
            j.tdp
                .to_config(constraints)
                .map_err(|e| anyhow::anyhow!("[jdc] {e}"))?,
        ),
    };
    let ms = std::time::Duration::from_millis;
    let core = crate::jdc::JdcConfig {
        mode: j.mode,
        user_identifier: j
            .user_identifier
            .clone()
            .unwrap_or_else(|| cfg.upstream.user_identity.clone()),
        solo_script,
        network: j.network,
        coinbase_tag: j.coinbase_tag.as_bytes().to_vec(),
        solo_extranonce_size: cfg.solo_extranonce_size(),
        startup_grace: ms(j.startup_grace_ms),
        retry_min: ms(j.retry_min_ms.max(10)),
        retry_max: std::time::Duration::from_secs(j.retry_max_secs.max(1)),
        token_max_age: std::time::Duration::from_secs(j.token_max_age_secs.max(1)),
        max_tokens: j.max_tokens.max(1),
        answer_timeout: ms(j.answer_timeout_ms.max(100)),
        max_jobs: j.max_jobs.max(1),
        ..crate::jdc::JdcConfig::default()
    };
    Ok(Some(JdcParams {
        core,
        jds,
        source,
        solo_pool: pools,
        connect_timeout: std::time::Duration::from_secs(5),
    }))
}

/// Starts the proxy described by `cfg`; returns once it listens.
pub async fn start(cfg: Config) -> anyhow::Result<RunningProxy> {
    let pools: Vec<PoolUrl> = cfg
        .upstreams
        .iter()
        .map(|u| u.parse().with_context(|| format!("upstream {u}")))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!pools.is_empty(), "at least one --upstream is needed");
    let api_auth = strata_net::http_auth::ApiAuth::new(cfg.api_listen, cfg.api_token.as_ref())?;
    // the SV2 keys first: a refused certificate stops the start before anything runs
    let keys = match cfg.sv2_listen {
        Some(_) => {
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
            Some(
                crate::downstream::keys::load_or_create(&cfg.data_dir, 365)
                    .context("cannot load the proxy's SV2 keys")?,
            )
        }
        None => None,
    };
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    // before any task: a history file or webhook URL that cannot be used stops the start
    let (monitor, history) = monitor_parts(&cfg, &shutdown, &tasks)?;

    let (events_tx, events_rx) = mpsc::channel(1024);
    // unbounded: see the hub's `commands`
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let jdc = jdc_params(&cfg, pools.len())?;
    let ucfg = UpstreamConfig {
        pools,
        user_identity: cfg.upstream.user_identity.clone(),
        min_extranonce_size: cfg.upstream_min_extranonce_size(),
        return_to_preferred: cfg.upstream.return_to_preferred,
        stable_for: std::time::Duration::from_secs(cfg.upstream.stable_secs),
        probe_interval: std::time::Duration::from_secs(cfg.upstream.stable_secs.clamp(1, 30)),
        nominal_hashrate: cfg.upstream.nominal_hashrate,
        work_selection: jdc.is_some(),
        ..UpstreamConfig::default()
    };
    let mut hub_pools = cfg.upstreams.clone();
    let mut jdc_stats = None;
    let (events_rx, commands_tx) = match jdc {
        // the JDC sits between the upstream side and the hub
        Some(params) => {
            let (hub_events_tx, hub_events_rx) = mpsc::channel(1024);
            let (hub_commands_tx, hub_commands_rx) = mpsc::unbounded_channel();
            hub_pools.push(crate::jdc::SOLO_POOL.into());
            let (stats, stats_rx) = tokio::sync::watch::channel(Default::default());
            jdc_stats = Some(stats_rx);
            tasks.spawn(crate::jdc::edge::run(
                params,
                crate::jdc::edge::JdcQueues {
                    upstream_events: events_rx,
                    upstream_commands: commands_tx,
                    hub_events: hub_events_tx,
                    hub_commands: hub_commands_rx,
                    stats,
                },
                tasks.clone(),
                shutdown.clone(),
            ));
            (hub_events_rx, hub_commands_tx)
        }
        None => (events_rx, commands_tx),
    };
    tasks.spawn(upstream::run_upstreams(
        ucfg,
        events_tx,
        commands_rx,
        shutdown.clone(),
    ));
    let (hub, queries) = hub::spawn(
        HubConfig {
            split: cfg.split(),
            pools: hub_pools,
            miners_per_channel: cfg.upstream.miners_per_channel,
            update_interval: std::time::Duration::from_secs(
                cfg.upstream.update_interval_secs.max(1),
            ),
            update_threshold: cfg.upstream.update_threshold,
        },
        monitor,
        events_rx,
        commands_tx,
        shutdown.clone(),
    );

    let report_interval = std::time::Duration::from_secs(cfg.report_interval_secs.max(1));
    let sv1_cfg = Arc::new(crate::downstream::sv1::Sv1Config::from_settings(
        &cfg.sv1,
        report_interval,
    ));
    let sv1 = TcpListener::bind(cfg.sv1_listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.sv1_listen))?;
    let sv1_addr = sv1.local_addr()?;
    tasks.spawn(crate::downstream::sv1_conn::listen_sv1(
        sv1,
        hub.clone(),
        sv1_cfg,
        cfg.sv1.max_per_ip,
        shutdown.clone(),
    ));

    let mut certificate = None;
    let (sv2_addr, authority) = match (cfg.sv2_listen, keys) {
        (Some(addr), Some(keys)) => {
            let authority = keys.authority;
            let signer = keys.renewal.signer();
            let renewal = keys.renewal;
            // the renewal task publishes new certificates; connections read the current one
            let (responder_tx, responder) =
                tokio::sync::watch::channel(std::sync::Arc::new(keys.responder));
            let mut ctx = crate::downstream::sv2_conn::Sv2DownContext::new(responder.clone());
            let stop = shutdown.clone();
            tasks.spawn(async move {
                tokio::select! {
                    () = strata_net::keys::run_renewal(
                        renewal,
                        responder_tx,
                        strata_net::keys::CERT_CHECK_INTERVAL,
                    ) => {}
                    () = stop.cancelled() => {}
                }
            });
            certificate = Some((responder, signer));
            ctx.plaintext = cfg.sv2_plaintext;
            ctx.report_interval = report_interval;
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let a = l.local_addr()?;
            tasks.spawn(crate::downstream::sv2_conn::listen_sv2(
                l,
                hub.clone(),
                Arc::new(ctx),
                cfg.sv1.max_per_ip,
                shutdown.clone(),
            ));
            (Some(a), Some(authority))
        }
        _ => (None, None),
    };

    let api = TcpListener::bind(cfg.api_listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.api_listen))?;
    let api_addr = api.local_addr()?;
    let router = crate::api::router(crate::api::ApiState {
        hub: queries,
        max_miner_series: cfg.max_miner_series,
        certificate,
        auth: api_auth,
        history,
    });
    let stop = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = axum::serve(api, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "HTTP API failed");
        }
    });
    tracing::info!(%sv1_addr, ?sv2_addr, %api_addr, "proxy listening");
    Ok(RunningProxy {
        sv1_addr,
        sv2_addr,
        api_addr,
        authority,
        shutdown,
        jdc: jdc_stats,
        tasks,
    })
}
