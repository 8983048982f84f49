//! `strata-pool`: the Stratum V2 pool server.
//!
//! With no options it mines a regtest chain of its own (the embedded node) in
//! `./strata-pool-data`, listens for SV2 miners on 0.0.0.0:34254 and serves its API on
//! 127.0.0.1:34255. See `strata-pool --help`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use strata_pool::config::{Config, SourceKind};

/// Stratum V2 pool server.
///
/// Settings come from (lowest to highest priority): built-in defaults, the TOML file given
/// with --config, STRATA_POOL_* environment variables (e.g. STRATA_POOL_PAYOUT__MODE=solo;
/// `__` separates a table from its key), and these flags.
#[derive(Debug, Parser)]
#[command(name = "strata-pool", version, about, long_about)]
struct Cli {
    /// TOML configuration file (every key is optional; see README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory: chain (embedded source), share ledger, keys, authority.pub.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address for SV2 miners and proxies [default: 0.0.0.0:34254].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Address of the HTTP API (stats, workers, blocks, /metrics) [default: 127.0.0.1:34255].
    #[arg(long, value_name = "ADDR:PORT")]
    api_listen: Option<SocketAddr>,
    /// Where templates come from: embedded (a regtest chain inside the pool), rpc (bitcoind),
    /// tdp (a Template Provider) [default: embedded].
    #[arg(long, value_enum)]
    template_source: Option<SourceKind>,
    /// Log filter (tracing env-filter syntax), e.g. "info" or "strata_pool=debug".
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let mut cfg = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(d) = cli.data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = cli.listen {
        cfg.listen = l;
    }
    if let Some(l) = cli.api_listen {
        cfg.api_listen = l;
    }
    if let Some(s) = cli.template_source {
        cfg.template_source = s;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(run(cfg))
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir.clone();
    let pool = strata_pool::server::start(cfg).await?;
    println!(
        "strata-pool listening on {} (API http://{}); authority key {} (also in {})",
        pool.sv2_addr,
        pool.api_addr,
        pool.authority,
        data_dir.join("authority.pub").display()
    );
    let stop = pool.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    pool.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
