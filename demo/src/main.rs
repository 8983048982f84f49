//! `strata-demo`: the pool on its embedded regtest chain with simulated SV2 miners that
//! really hash (half on standard channels, half on extended channels; 1 MH/s each), and the
//! pool's figures every 5 seconds. Every `strata-pool` flag works here too (e.g.
//! `--template-source rpc` to mine on a bitcoind of your own).
//!
//! The pool binary itself carries no miner: the demo is this separate program built from
//! both libraries.

use clap::Parser;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_pool::cli::PoolArgs;
use strata_pool::config::VardiffSettings;
use strata_pool::server::RunningPool;

/// Each simulated miner's hashrate (h/s).
const HASHRATE: f64 = 1e6;
/// Shares per minute the demo asks of each miner unless configured otherwise: on regtest
/// every share is a block, so a block every few seconds.
const DEMO_SHARES_PER_MINUTE: f64 = 30.0;

/// strata-pool with simulated miners: a regtest SV2 pool mining real blocks.
///
/// Settings as for strata-pool: built-in defaults, the TOML file given with --config,
/// STRATA_POOL_* environment variables, and these flags.
#[derive(Debug, Parser)]
#[command(name = "strata-demo", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    pool: PoolArgs,
    /// Simulated SV2 miners to run against the pool.
    #[arg(long, value_name = "N", default_value_t = 2)]
    miners: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut cfg = cli.pool.init()?;
    if cfg.vardiff.shares_per_minute == VardiffSettings::default().shares_per_minute {
        cfg.vardiff.shares_per_minute = DEMO_SHARES_PER_MINUTE;
    }
    strata_pool::cli::runtime(&cfg)?.block_on(async move {
        let pool = strata_pool::cli::start(cfg).await?;
        miners(&pool, cli.miners)?;
        report(&pool);
        strata_pool::cli::run_until_signal(pool).await;
        Ok(())
    })
}

/// Starts `n` simulated miners against `pool`; they stop with it.
fn miners(pool: &RunningPool, n: usize) -> anyhow::Result<()> {
    let host = if pool.sv2_addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], pool.sv2_addr.port()))
    } else {
        pool.sv2_addr
    };
    let endpoint = Endpoint::parse(&host.to_string()).map_err(anyhow::Error::msg)?;
    let reporter = Reporter::new(Sink::Silent, None, pool.shutdown.clone());
    for i in 0..n {
        let connect = Sv2Connect {
            endpoint: endpoint.clone(),
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
        let mut miner = Sv2Miner::new(cfg)?;
        let reporter = reporter.clone();
        let stop = pool.shutdown.clone();
        tokio::spawn(async move {
            let pace = Pacing::Hashrate(HASHRATE);
            if let Err(e) = run_sv2(&mut miner, &connect, pace, &reporter, &stop).await {
                tracing::error!(miner = i, error = %e, "demo miner stopped");
            }
        });
    }
    Ok(())
}

/// Prints where the pool's pages are, then its figures (from its API) every 5 seconds.
fn report(pool: &RunningPool) {
    let api = pool.api_addr;
    println!("pages: http://{api}/ (the overview; a miner's page from there)");
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
