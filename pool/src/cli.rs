//! The command line shared by the `strata-pool` binary and the regtest demo (`strata-demo`):
//! the pool's flags, the configuration they make, the runtime, and running until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::config::{Config, SourceKind};

/// The pool's flags. Settings come from (lowest to highest priority): built-in defaults, the
/// TOML file given with --config, STRATA_POOL_* environment variables (e.g.
/// STRATA_POOL_PAYOUT__MODE=solo; `__` separates a table from its key), and these flags.
#[derive(Debug, Args)]
pub struct PoolArgs {
    /// TOML configuration file (every key is optional; see README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: chain (embedded source), share ledger, keys, authority.pub
    /// [default: strata-pool-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for SV2 miners and proxies [default: 0.0.0.0:34254].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Address of the HTTP API (stats, workers, blocks, /metrics) [default: 127.0.0.1:34255].
    #[arg(long, value_name = "ADDR:PORT")]
    pub api_listen: Option<SocketAddr>,
    /// Where templates come from: embedded (a regtest chain inside the pool), rpc (bitcoind),
    /// tdp (a Template Provider), ipc (Bitcoin Core's mining interface) [default: embedded].
    #[arg(long, value_enum)]
    pub template_source: Option<SourceKind>,
    /// Log filter (tracing env-filter syntax), e.g. "info" or "strata_pool=debug".
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

impl PoolArgs {
    /// Starts logging (to stderr) and loads the configuration: defaults, file, environment,
    /// then these flags.
    pub fn init(&self) -> anyhow::Result<Config> {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(&self.log))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
        let mut cfg = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(l) = self.listen {
            cfg.listen = l;
        }
        if let Some(l) = self.api_listen {
            cfg.api_listen = l;
        }
        if let Some(s) = self.template_source {
            cfg.template_source = s;
        }
        Ok(cfg)
    }
}

/// The runtime the pool runs on (`worker_threads` from the configuration; 0 = one per core).
pub fn runtime(cfg: &Config) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if cfg.worker_threads > 0 {
        builder.worker_threads(cfg.worker_threads);
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Starts the pool and prints where it listens (stdout, one line:
/// `strata-pool listening on ADDR (API http://ADDR); authority key KEY ...`).
pub async fn start(cfg: Config) -> anyhow::Result<crate::server::RunningPool> {
    let data_dir = cfg.data_dir.clone();
    let pool = crate::server::start(cfg).await?;
    let pub_file = data_dir.join("authority.pub");
    let pub_note = if pub_file.exists() {
        format!(" (also in {})", pub_file.display())
    } else {
        String::new()
    };
    println!(
        "strata-pool listening on {} (API http://{}); authority key {}{pub_note}",
        pool.sv2_addr, pool.api_addr, pool.authority,
    );
    Ok(pool)
}

/// Runs `pool` until Ctrl-C or SIGTERM, then shuts it down and waits for it.
pub async fn run_until_signal(pool: crate::server::RunningPool) {
    let stop = pool.shutdown.clone();
    tokio::spawn(async move {
        strata_net::signal::shutdown().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    pool.wait().await;
}
