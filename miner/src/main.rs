//! `strata-miner`: simulated SV2 / SV1 miners and a load generator (see the library docs for
//! the output format).

use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use strata_miner::identity::default_user;
use strata_miner::load::{run_load, LoadConfig, LoadTarget, DEFAULT_LOAD_HASHRATE};
use strata_miner::pace::Pacing;
use strata_miner::shell::{run_sv1, run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv1::{Sv1Config, Sv1Miner};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner, DEFAULT_MIN_EXTRANONCE_SIZE};
use strata_miner::tips::{run_tips, TipsConfig, Trigger};
use strata_miner::{MinerError, MinerStats, Reporter, Sink, Summary, EXIT_PROTOCOL};
use strata_net::sv2::Sv2Options;
use strata_noise::PublicKey;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Exit code for a command line that does not parse (BSD `EX_USAGE`).
const EXIT_USAGE: u8 = 64;

/// Simulated Stratum miners that really hash (SHA-256d from the header midstate) at the
/// difficulty the server gives, and a load generator.
///
/// Output: one line per event on stdout (`share accepted miner=0 channel=1 seq=3 count=1
/// acked=4 acked_total=4`, ...), then a one-line JSON summary. Exit codes: 0 normal end, 1
/// protocol error (e.g. SetupConnection.Error), 2 connection lost, 64 bad command line.
/// Logs go to stderr (RUST_LOG, default `warn`).
#[derive(Debug, Parser)]
#[command(name = "strata-miner", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mine against an SV2 pool (Noise-encrypted unless --plaintext).
    Sv2(Sv2Args),
    /// Mine against an SV1 server (e.g. the proxy).
    Sv1(Sv1Args),
    /// Open many connections submitting real shares at a fixed aggregate rate; print a JSON
    /// report (connections, shares, accepted/s, latency percentiles). For 10 000
    /// connections raise the open-file limit first (`ulimit -n 20000`).
    Load(LoadArgs),
    /// Block-change latency: open many standard channels, make new tips round after round,
    /// and print how long after each tip the first and the last connection had its
    /// SetNewPrevHash (per round on stderr; a JSON report with the medians on stdout).
    Tips(TipsArgs),
}

/// SV2 channel kind.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChannelKindArg {
    /// OpenStandardMiningChannel: header-only jobs (or group extended jobs).
    Standard,
    /// OpenExtendedMiningChannel: the miner rolls its own extranonce.
    Extended,
}

impl ChannelKindArg {
    fn request(self, min_extranonce_size: u16) -> ChannelRequest {
        match self {
            ChannelKindArg::Standard => ChannelRequest::Standard,
            ChannelKindArg::Extended => ChannelRequest::Extended {
                min_extranonce_size,
            },
        }
    }
}

/// When to stop.
#[derive(Debug, Args)]
struct StopArgs {
    /// Stop once this many shares were acknowledged, summed over all miners.
    #[arg(long, value_name = "N")]
    shares: Option<u64>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
}

#[derive(Debug, Args)]
struct Sv2Args {
    /// Pool address, HOST:PORT.
    #[arg(long, value_name = "ADDR:PORT")]
    pool: String,
    /// The pool's authority public key (base58check), pinned in the Noise handshake.
    #[arg(long, value_name = "KEY", required_unless_present = "plaintext")]
    authority_key: Option<String>,
    /// Channel kind to open.
    #[arg(long, value_enum, default_value = "standard")]
    channel: ChannelKindArg,
    /// min_extranonce_size requested for extended channels.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MIN_EXTRANONCE_SIZE)]
    min_extranonce_size: u16,
    /// Number of independent miners (one connection and channel each).
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: usize,
    /// User identity of every miner (default: a fixed regtest address `bcrt1q...` plus
    /// `.sim<index>`).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Hashes per second per miner (a cap: the miner sleeps between batches); also the
    /// advertised nominal_hash_rate.
    #[arg(long, value_name = "H_PER_S", default_value_t = 2e6)]
    hashrate: f64,
    #[command(flatten)]
    stop: StopArgs,
    /// Unencrypted SV2 (no Noise; trusted networks only). --authority-key is then optional.
    #[arg(long)]
    plaintext: bool,
}

#[derive(Debug, Args)]
struct Sv1Args {
    /// Server URL, stratum+tcp://HOST:PORT (or HOST:PORT).
    #[arg(long, value_name = "URL")]
    url: String,
    /// Number of independent miners (one connection each).
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: usize,
    /// Worker name for mining.authorize (default: a fixed regtest address `bcrt1q...` plus
    /// `.sim<index>`).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Password for mining.authorize.
    #[arg(long, value_name = "X", default_value = "x")]
    password: String,
    /// Hashes per second per miner (a cap: the miner sleeps between batches). The
    /// minimum-difficulty sent in mining.configure is the difficulty of one share per second
    /// at this rate.
    #[arg(long, value_name = "H_PER_S", default_value_t = 2e6)]
    hashrate: f64,
    #[command(flatten)]
    stop: StopArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("server").required(true).args(["pool", "url"])))]
struct LoadArgs {
    /// SV2 pool address, HOST:PORT (one of --pool / --url).
    #[arg(long, value_name = "ADDR:PORT")]
    pool: Option<String>,
    /// SV1 server URL, stratum+tcp://HOST:PORT (one of --pool / --url).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The pool's authority public key (base58check); required with --pool unless
    /// --plaintext.
    #[arg(long, value_name = "KEY")]
    authority_key: Option<String>,
    /// Unencrypted SV2 (no Noise).
    #[arg(long)]
    plaintext: bool,
    /// Connections to open (one channel or session each).
    #[arg(long, value_name = "N")]
    connections: usize,
    /// Aggregate shares per second over all connections (not with --closed-loop).
    #[arg(
        long,
        value_name = "SHARES_PER_S",
        required_unless_present = "closed_loop"
    )]
    rate: Option<f64>,
    /// SV1 (--url) only: each connection submits its next share as soon as the last one is
    /// answered, as fast as the server answers (a burst; set the server's difficulty so
    /// that a share takes few hashes).
    #[arg(long, conflicts_with = "rate")]
    closed_loop: bool,
    /// Seconds to run, from the first connection.
    #[arg(long, value_name = "SECS")]
    duration: f64,
    /// SV2 channel kind.
    #[arg(long, value_enum, default_value = "standard")]
    channel: ChannelKindArg,
    /// Connections opened per second.
    #[arg(long, value_name = "PER_S", default_value_t = 1000.0)]
    connect_rate: f64,
    /// nominal_hash_rate each SV2 connection advertises (tiny: easy targets).
    #[arg(long, value_name = "H_PER_S", default_value_t = DEFAULT_LOAD_HASHRATE)]
    nominal_hashrate: f32,
    /// Also write every measured share to FILE, in submit order, one per line:
    /// `SUBMIT_MS LATENCY_US` (milliseconds from the start of the run; microseconds, as the
    /// report's `latency_ms`): when the latency tail happened.
    #[arg(long, value_name = "FILE")]
    timeline: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct TipsArgs {
    /// SV2 pool address, HOST:PORT.
    #[arg(long, value_name = "ADDR:PORT")]
    pool: String,
    /// The pool's authority public key (base58check).
    #[arg(long, value_name = "KEY")]
    authority_key: String,
    /// Connections to open.
    #[arg(long, value_name = "N")]
    connections: usize,
    /// Standard channels on each connection. With more than one, every connection but the
    /// first accepts grouped jobs (no `REQUIRES_STANDARD_JOBS`), as a proxy does.
    #[arg(long, value_name = "K", default_value_t = 1)]
    channels_per_connection: usize,
    /// New tips to measure.
    #[arg(long, value_name = "N", default_value_t = 7)]
    rounds: usize,
    /// Make each tip with the node's `generatetoaddress` at this JSON-RPC URL
    /// (http://HOST:PORT); without it, connection 0 submits a block (regtest pools that
    /// build their own blocks).
    #[arg(long, value_name = "URL")]
    node_rpc: Option<String>,
    /// The node's RPC credentials: its cookie file (`user:password` on one line).
    #[arg(long, value_name = "FILE", requires = "node_rpc")]
    node_cookie: Option<std::path::PathBuf>,
    /// Where the node's blocks pay (with --node-rpc).
    #[arg(long, value_name = "ADDRESS", requires = "node_rpc")]
    node_address: Option<String>,
    /// Connections opened per second.
    #[arg(long, value_name = "PER_S", default_value_t = 2000.0)]
    connect_rate: f64,
    /// The pool's process id (same machine): report its CPU time per round.
    #[arg(long, value_name = "PID")]
    pool_pid: Option<u32>,
    /// Regtest, with --node-rpc: first put N payments (coins mined to a key of this
    /// process) into the node's mempool, then make each tip with an empty block
    /// (`generateblock ADDRESS []`) so that every template carries them.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "node_rpc")]
    mempool_txs: usize,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn parse_key(key: Option<&str>, plaintext: bool) -> Result<Option<PublicKey>, String> {
    match (key, plaintext) {
        (_, true) => Ok(None),
        (Some(k), false) => PublicKey::from_str(k)
            .map(Some)
            .map_err(|e| format!("invalid --authority-key: {e}")),
        (None, false) => Err("--authority-key is required unless --plaintext".into()),
    }
}

fn positive(what: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{what} must be a positive number, got {v}"))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::from(EXIT_PROTOCOL as u8);
        }
    };
    rt.block_on(async move {
        match cli.command {
            Command::Sv2(a) => sv2(a).await,
            Command::Sv1(a) => sv1(a).await,
            Command::Load(a) => load(a).await,
            Command::Tips(a) => tips(a).await,
        }
    })
}

/// Cancels `stop` after `duration` seconds or on Ctrl-C.
fn stop_on(duration: Option<f64>, stop: &CancellationToken) {
    let s = stop.clone();
    tokio::spawn(async move {
        let timer = async {
            match duration {
                Some(d) => tokio::time::sleep(Duration::from_secs_f64(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = timer => s.cancel(),
            r = tokio::signal::ctrl_c() => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
                s.cancel();
            }
            () = s.cancelled() => {}
        }
    });
}

/// Joins the miners, prints the summary, picks the exit code: 1 if any miner ended with a
/// protocol error, else 2 if any lost its connection, else 0.
async fn finish(
    mut set: JoinSet<(MinerStats, Result<(), MinerError>)>,
    miners: usize,
    start: Instant,
    stop: CancellationToken,
) -> ExitCode {
    let mut total = MinerStats::default();
    let mut failed = 0;
    let mut code = 0;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((stats, r)) => {
                total.merge(&stats);
                if let Err(e) = r {
                    failed += 1;
                    code = if code == EXIT_PROTOCOL || e.exit_code() == EXIT_PROTOCOL {
                        EXIT_PROTOCOL
                    } else {
                        e.exit_code()
                    };
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "miner task");
                failed += 1;
                code = EXIT_PROTOCOL;
            }
        }
    }
    stop.cancel();
    let summary = Summary::new(&total, miners, failed, start.elapsed().as_secs_f64());
    println!("{}", summary.to_json_line());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn sv2(a: Sv2Args) -> ExitCode {
    let authority = match parse_key(a.authority_key.as_deref(), a.plaintext) {
        Ok(k) => k,
        Err(e) => return usage(e),
    };
    let endpoint = match Endpoint::parse(&a.pool) {
        Ok(e) => e,
        Err(e) => return usage(e),
    };
    if let Err(e) = positive("--hashrate", a.hashrate) {
        return usage(e);
    }
    let connect = Sv2Connect {
        endpoint,
        authority,
        options: Sv2Options::default(),
    };
    let mut miners = Vec::with_capacity(a.count);
    for index in 0..a.count {
        let config = Sv2Config {
            index,
            user: a.user.clone().unwrap_or_else(|| default_user(index)),
            channel: a.channel.request(a.min_extranonce_size),
            nominal_hashrate: a.hashrate as f32,
            record_latency: false,
        };
        match Sv2Miner::new(config) {
            Ok(m) => miners.push(m),
            Err(e) => return usage(e),
        }
    }
    let start = Instant::now();
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Stdout, a.stop.shares, stop.clone());
    stop_on(a.stop.duration, &stop);
    let mut set = JoinSet::new();
    for mut miner in miners {
        let (connect, reporter, stop) = (connect.clone(), reporter.clone(), stop.clone());
        let pacing = Pacing::Hashrate(a.hashrate);
        set.spawn(async move {
            let r = run_sv2(&mut miner, &connect, pacing, &reporter, &stop).await;
            (miner.stats().clone(), r)
        });
    }
    finish(set, a.count, start, stop).await
}

async fn sv1(a: Sv1Args) -> ExitCode {
    let endpoint = match Endpoint::parse(&a.url) {
        Ok(e) => e,
        Err(e) => return usage(e),
    };
    if let Err(e) = positive("--hashrate", a.hashrate) {
        return usage(e);
    }
    let start = Instant::now();
    let stop = CancellationToken::new();
    let reporter = Reporter::new(Sink::Stdout, a.stop.shares, stop.clone());
    stop_on(a.stop.duration, &stop);
    let mut set = JoinSet::new();
    for index in 0..a.count {
        let mut config =
            Sv1Config::new(index, a.user.clone().unwrap_or_else(|| default_user(index)));
        config.password = Some(a.password.clone());
        config.minimum_difficulty = Some(a.hashrate / 4_294_967_296.0);
        let mut miner = Sv1Miner::new(config);
        let (endpoint, reporter, stop) = (endpoint.clone(), reporter.clone(), stop.clone());
        let pacing = Pacing::Hashrate(a.hashrate);
        set.spawn(async move {
            let r = run_sv1(&mut miner, &endpoint, pacing, &reporter, &stop).await;
            (miner.stats().clone(), r)
        });
    }
    finish(set, a.count, start, stop).await
}

async fn load(a: LoadArgs) -> ExitCode {
    let target = match (&a.pool, &a.url) {
        (Some(pool), None) => {
            let authority = match parse_key(a.authority_key.as_deref(), a.plaintext) {
                Ok(k) => k,
                Err(e) => return usage(e),
            };
            let endpoint = match Endpoint::parse(pool) {
                Ok(e) => e,
                Err(e) => return usage(e),
            };
            LoadTarget::Sv2 {
                connect: Sv2Connect {
                    endpoint,
                    authority,
                    options: Sv2Options::default(),
                },
                channel: a.channel.request(DEFAULT_MIN_EXTRANONCE_SIZE),
            }
        }
        (None, Some(url)) => match Endpoint::parse(url) {
            Ok(endpoint) => LoadTarget::Sv1 { endpoint },
            Err(e) => return usage(e),
        },
        _ => return usage("exactly one of --pool / --url"),
    };
    if a.closed_loop && !matches!(target, LoadTarget::Sv1 { .. }) {
        return usage("--closed-loop is for an SV1 server (--url)");
    }
    let rate = a.rate.unwrap_or(1.0);
    for (what, v) in [
        ("--rate", rate),
        ("--duration", a.duration),
        ("--connect-rate", a.connect_rate),
    ] {
        if let Err(e) = positive(what, v) {
            return usage(e);
        }
    }
    if a.connections == 0 {
        return usage("--connections must be at least 1");
    }
    let config = LoadConfig {
        target,
        connections: a.connections,
        rate,
        duration: Duration::from_secs_f64(a.duration),
        connect_rate: a.connect_rate,
        nominal_hashrate: a.nominal_hashrate,
        closed_loop: a.closed_loop,
    };
    let stop = CancellationToken::new();
    stop_on(None, &stop);
    let report = run_load(config, stop).await;
    println!("{}", report.to_json_line());
    if let Some(path) = &a.timeline {
        let written = std::fs::File::create(path)
            .and_then(|f| report.write_timeline(&mut std::io::BufWriter::new(f)));
        if let Err(e) = written {
            eprintln!(
                "error: cannot write the timeline to {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn tips(a: TipsArgs) -> ExitCode {
    let authority = match parse_key(Some(&a.authority_key), false) {
        Ok(Some(k)) => k,
        Ok(None) => return usage("--authority-key is required"),
        Err(e) => return usage(e),
    };
    if a.connections == 0 || a.rounds == 0 || a.channels_per_connection == 0 {
        return usage("--connections, --channels-per-connection and --rounds must be at least 1");
    }
    if let Err(e) = positive("--connect-rate", a.connect_rate) {
        return usage(e);
    }
    let trigger = match a.node_rpc {
        None => Trigger::Submit,
        Some(url) => {
            let (Some(cookie), Some(address)) = (a.node_cookie, a.node_address) else {
                return usage("--node-rpc needs --node-cookie and --node-address");
            };
            let credentials = match std::fs::read_to_string(&cookie) {
                Ok(c) => c.trim().to_string(),
                Err(e) => return usage(format!("cannot read {}: {e}", cookie.display())),
            };
            Trigger::Rpc {
                url,
                credentials,
                address,
            }
        }
    };
    let cfg = TipsConfig {
        pool: a.pool,
        authority,
        connections: a.connections,
        channels_per_connection: a.channels_per_connection,
        rounds: a.rounds,
        trigger,
        connect_rate: a.connect_rate,
        pool_pid: a.pool_pid,
        mempool_txs: a.mempool_txs,
    };
    match run_tips(cfg).await {
        Ok(report) => {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("error: {e}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_PROTOCOL as u8)
        }
    }
}
