//! `strata-proxy`: the farm proxy. See `strata-proxy --help`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use strata_proxy::config::Config;

/// Stratum farm proxy: SV1 and SV2 miners on the LAN, aggregated into SV2 extended channels
/// toward the first working pool of a priority list.
///
/// Settings come from (lowest to highest priority): built-in defaults, the TOML file given
/// with --config, STRATA_PROXY_* environment variables (e.g. STRATA_PROXY_SV1__POWER_OF_TWO=true;
/// `__` separates a table from its key; STRATA_PROXY_UPSTREAMS takes a comma-separated
/// list), and these flags.
#[derive(Debug, Parser)]
#[command(name = "strata-proxy", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A pool, `stratum2+tcp://host:port/AUTHORITY_KEY`; repeat in priority order (the first
    /// working one is used; the proxy returns to a more preferred one when it is back).
    #[arg(long = "upstream", value_name = "URL")]
    upstreams: Vec<String>,
    /// Address for SV1 miners [default: 0.0.0.0:3333].
    #[arg(long, value_name = "ADDR:PORT")]
    sv1_listen: Option<SocketAddr>,
    /// Address for SV2 miners (Noise, the proxy's own certificate) [default: 0.0.0.0:34256].
    #[arg(long, value_name = "ADDR:PORT")]
    sv2_listen: Option<SocketAddr>,
    /// Address of the HTTP API (miners, upstreams, stats, /metrics) [default: 127.0.0.1:34257].
    #[arg(long, value_name = "ADDR:PORT")]
    api_listen: Option<SocketAddr>,
    /// Directory of the proxy's keys for SV2 miners; the authority public key they pin is
    /// written to DIR/downstream-authority.pub [default: strata-proxy-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Miners per upstream extended channel: 0 puts every miner in one channel; N > 0 opens
    /// one more channel each time N more miners connect [default: 0].
    #[arg(long, value_name = "N")]
    miners_per_channel: Option<u32>,
    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut cfg = Config::load(cli.config.as_deref(), std::env::vars())?;
    if !cli.upstreams.is_empty() {
        cfg.upstreams = cli.upstreams;
    }
    if let Some(a) = cli.sv1_listen {
        cfg.sv1_listen = a;
    }
    if let Some(a) = cli.sv2_listen {
        cfg.sv2_listen = Some(a);
    }
    if let Some(a) = cli.api_listen {
        cfg.api_listen = a;
    }
    if let Some(d) = cli.data_dir {
        cfg.data_dir = d;
    }
    if let Some(n) = cli.miners_per_channel {
        cfg.upstream.miners_per_channel = n;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let proxy = strata_proxy::server::start(cfg).await?;
        println!(
            "strata-proxy: SV1 on {}, SV2 on {}, API http://{}{}",
            proxy.sv1_addr,
            proxy
                .sv2_addr
                .map_or_else(|| "(off)".to_string(), |a| a.to_string()),
            proxy.api_addr,
            proxy
                .authority
                .map_or_else(String::new, |k| format!("; SV2 authority key {k}"))
        );
        let stop = proxy.shutdown.clone();
        tokio::spawn(async move {
            strata_net::signal::shutdown().await;
            tracing::info!("shutting down: miners are told to reconnect");
            stop.cancel();
        });
        proxy.wait().await;
        Ok(())
    })
}
