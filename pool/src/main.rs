//! `strata-pool`: the Stratum V2 pool server.
//!
//! With no options it mines a regtest chain of its own (the embedded node) in
//! `./strata-pool-data`, listens for SV2 miners on 0.0.0.0:34254 and serves its API on
//! 127.0.0.1:34255. See `strata-pool --help`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use strata_pool::config::{Config, SourceKind, VardiffSettings};

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
    /// Data directory: chain (embedded source), share ledger, keys, authority.pub
    /// [default: strata-pool-data].
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
    /// Also run this many built-in simulated SV2 miners against the pool (half on standard
    /// channels, half on extended channels; 1 MH/s each), and print the pool's figures every
    /// 5 seconds: the one-command regtest demo. `--demo` alone means 2.
    #[arg(long, value_name = "MINERS", num_args = 0..=1, default_missing_value = "2")]
    demo: Option<usize>,
    /// Log filter (tracing env-filter syntax), e.g. "info" or "strata_pool=debug".
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
    if cli.demo.is_some()
        && cfg.vardiff.shares_per_minute == VardiffSettings::default().shares_per_minute
    {
        // a block every few seconds (on regtest every share is a block)
        cfg.vardiff.shares_per_minute = 30.0;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if cfg.worker_threads > 0 {
        builder.worker_threads(cfg.worker_threads);
    }
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(run(cfg, cli.demo.unwrap_or(0)))
}

async fn run(cfg: Config, demo_miners: usize) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir.clone();
    let pool = strata_pool::server::start(cfg).await?;
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
    if demo_miners > 0 {
        demo(&pool, demo_miners);
    }
    let stop = pool.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    pool.wait().await;
    Ok(())
}

/// Built-in simulated miners and a status line every 5 s.
fn demo(pool: &strata_pool::server::RunningPool, miners: usize) {
    use strata_miner::pace::Pacing;
    use strata_miner::report::{Reporter, Sink};
    use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
    use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};

    const HASHRATE: f64 = 1e6;
    let host = if pool.sv2_addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], pool.sv2_addr.port()))
    } else {
        pool.sv2_addr
    };
    let reporter = Reporter::new(Sink::Silent, None, pool.shutdown.clone());
    for i in 0..miners {
        let endpoint = match Endpoint::parse(&host.to_string()) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "demo miner endpoint");
                return;
            }
        };
        let connect = Sv2Connect {
            endpoint,
            authority: Some(pool.authority),
            options: strata_net::sv2::Sv2Options::default(),
        };
        let cfg = Sv2Config {
            index: i,
            user: strata_miner::identity::default_user(i),
            channel: if i % 2 == 0 {
                ChannelRequest::Standard
            } else {
                ChannelRequest::Extended {
                    min_extranonce_size: 8,
                }
            },
            nominal_hashrate: HASHRATE as f32,
            record_latency: false,
        };
        let reporter = reporter.clone();
        let stop = pool.shutdown.clone();
        tokio::spawn(async move {
            match Sv2Miner::new(cfg) {
                Ok(mut miner) => {
                    if let Err(e) = run_sv2(
                        &mut miner,
                        &connect,
                        Pacing::Hashrate(HASHRATE),
                        &reporter,
                        &stop,
                    )
                    .await
                    {
                        tracing::error!(miner = i, error = %e, "demo miner stopped");
                    }
                }
                Err(e) => tracing::error!(miner = i, error = %e, "demo miner"),
            }
        });
    }
    let api = pool.api_addr;
    let stop = pool.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let url = format!("http://{api}/api/v1/stats");
            let Ok(resp) = reqwest::get(&url).await else {
                continue;
            };
            let Ok(s) = resp.json::<serde_json::Value>().await else {
                continue;
            };
            println!(
                "height {}  blocks found {}  shares accepted {} rejected {}  miners {}  hashrate {:.2} MH/s",
                s["height"], s["blocks_found"], s["shares_accepted"], s["shares_rejected"],
                s["connections"], s["hashrate"].as_f64().unwrap_or(0.0) / 1e6
            );
        }
    });
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
