//! `strata-pool`: the Stratum V2 pool server.
//!
//! With no options it mines a regtest chain of its own (the embedded node) in
//! `./strata-pool-data`, listens for SV2 miners on 0.0.0.0:34254 and serves its API on
//! 127.0.0.1:34255. See `strata-pool --help`; `strata-demo` runs it with simulated miners.

use clap::Parser;
use strata_pool::cli::PoolArgs;

/// Stratum V2 pool server.
///
/// Settings come from (lowest to highest priority): built-in defaults, the TOML file given
/// with --config, STRATA_POOL_* environment variables (e.g. STRATA_POOL_PAYOUT__MODE=solo;
/// `__` separates a table from its key), and these flags.
#[derive(Debug, Parser)]
#[command(name = "strata-pool", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    pool: PoolArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.pool.init()?;
    strata_pool::cli::runtime(&cfg)?.block_on(async move {
        let pool = strata_pool::cli::start(cfg).await?;
        strata_pool::cli::run_until_signal(pool).await;
        Ok(())
    })
}
