//! `strata verify-payout`: recompute a found block's reward split from the shares of its
//! window, with the split function the pool builds its coinbases with, and compare it with
//! the block's coinbase.
//!
//! From the pool's API: the block's record and the payout rules
//! (`/api/v1/blocks/{hash}`), and the window's shares (`/api/v1/blocks/{hash}/window`, page
//! by page) unless `--window-file` gives them. The block itself from a node the user trusts
//! (`--node`, `getblock HASH 0`), a file (`--block-file`) or a Bitcoin Core blocks directory
//! (`--blocks-dir`); it must hash to the requested block and its merkle root must commit to
//! its coinbase, so whoever supplies it cannot change what it pays.

mod blk;
mod check;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitcoin::{consensus, Block, BlockHash};
use clap::{ArgGroup, Args};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use strata_work::payout::{PplnsWindow, WindowBuilder};

use check::{BlockInfo, Rules};

/// Most bytes read from one HTTP answer (a window page of `WINDOW_PAGE` shares is a few MB;
/// a hex block at most 8 MB).
const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Most bytes of a `--block-file` or `--window-file`.
const MAX_FILE_BYTES: u64 = 256 << 20;
/// Shares asked for per window page by default (the pool's most).
const WINDOW_PAGE: u64 = 10_000;
/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `strata verify-payout`.
#[derive(Debug, Args)]
#[command(group = ArgGroup::new("source").required(true).args(["node", "block_file", "blocks_dir"]))]
pub(crate) struct VerifyArgs {
    /// The pool's HTTP API, e.g. http://127.0.0.1:34255.
    #[arg(long, value_name = "URL")]
    pool: String,

    /// The block, as its hash in display (RPC) hex.
    #[arg(long, value_name = "HASH")]
    block: String,

    /// The pool API's bearer token, when it requires one.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "STRATA_API_TOKEN",
        hide_env_values = true
    )]
    api_token: Option<String>,

    /// A Bitcoin Core JSON-RPC endpoint to fetch the block from (`getblock HASH 0`), e.g.
    /// http://127.0.0.1:8332. Credentials: --rpc-user/--rpc-password or --rpc-cookie.
    #[arg(long, value_name = "RPC_URL")]
    node: Option<String>,

    /// RPC user (with --rpc-password).
    #[arg(long, requires = "rpc_password", conflicts_with = "rpc_cookie")]
    rpc_user: Option<String>,

    /// RPC password (with --rpc-user).
    #[arg(long, requires = "rpc_user")]
    rpc_password: Option<String>,

    /// The node's cookie file (e.g. ~/.bitcoin/.cookie).
    #[arg(long, value_name = "FILE")]
    rpc_cookie: Option<PathBuf>,

    /// The raw block, as hex or binary.
    #[arg(long, value_name = "PATH")]
    block_file: Option<PathBuf>,

    /// A Bitcoin Core blocks directory (blk*.dat, xor.dat) to find the block in, e.g. the
    /// pool's DATA_DIR/regtest/blocks for its embedded node.
    #[arg(long, value_name = "DIR")]
    blocks_dir: Option<PathBuf>,

    /// Take the window's shares from this JSON file ({"shares": [{"id", "identity",
    /// "difficulty", ...}, ...]}, the pages of /api/v1/blocks/HASH/window joined) instead
    /// of the pool.
    #[arg(long, value_name = "PATH")]
    window_file: Option<PathBuf>,

    /// Shares per window page asked of the pool (it sends at most 10000).
    #[arg(long, value_name = "N", default_value_t = WINDOW_PAGE, value_parser = clap::value_parser!(u64).range(1..))]
    page_shares: u64,
}

/// `/api/v1/blocks/{hash}`.
#[derive(Debug, Deserialize)]
struct BlockAnswer {
    block: BlockInfo,
    payout: Rules,
}

/// One share of a window (page or file).
#[derive(Debug, Deserialize)]
struct WindowShare {
    id: i64,
    /// Whom the share pays.
    identity: String,
    difficulty: f64,
}

/// A page of `/api/v1/blocks/{hash}/window`, or a `--window-file`.
#[derive(Debug, Deserialize)]
struct WindowPage {
    shares: Vec<WindowShare>,
    #[serde(default)]
    next_after: Option<i64>,
}

/// Checks the block; prints one line per finding. A mismatch is an error (exit status 1).
pub(crate) fn run(args: &VerifyArgs) -> Result<()> {
    let hash: BlockHash = args
        .block
        .parse()
        .with_context(|| format!("--block {:?} is not a block hash", args.block))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(verify(args, hash))
}

async fn verify(args: &VerifyArgs, hash: BlockHash) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("http client")?;
    let pool = Pool {
        http: &http,
        base: args.pool.trim_end_matches('/'),
        token: args.api_token.as_deref(),
        page: args.page_shares,
    };
    let answer: BlockAnswer = pool.get(&format!("/api/v1/blocks/{hash}")).await?;
    let window = match &args.window_file {
        Some(path) => {
            let page: WindowPage = serde_json::from_slice(&read_bounded(path)?)
                .with_context(|| format!("{} is not a window", path.display()))?;
            let mut builder = WindowBuilder::default();
            add_shares(&mut builder, page.shares, answer.block.window)?;
            builder.finish()
        }
        None => pool.window(hash, answer.block.window).await?,
    };
    let network = answer.payout.network()?;
    let raw = if let Some(url) = &args.node {
        node_block(&http, url, args, hash).await?
    } else if let Some(path) = &args.block_file {
        block_from_file(path)?
    } else if let Some(dir) = &args.blocks_dir {
        blk::find_block(dir, network.magic(), hash)?
    } else {
        bail!("no block source (--node, --block-file or --blocks-dir)");
    };
    let block: Block = consensus::deserialize(&raw).context("the block does not decode")?;
    if block.block_hash() != hash {
        bail!("the block supplied is {}, not {hash}", block.block_hash());
    }
    if block.header.validate_pow(block.header.target()).is_err() {
        bail!("block {hash}: its header does not meet its own target");
    }
    if !block.check_merkle_root() {
        bail!("block {hash}: its transactions do not match its merkle root");
    }
    let report = check::check(&block, &answer.block, &answer.payout, &window)?;
    for line in &report.lines {
        println!("{line}");
    }
    if report.mismatches > 0 {
        bail!(
            "block {hash}: the payout does not match ({} mismatches, {} outputs match)",
            report.mismatches,
            report.matched
        );
    }
    println!(
        "block {hash}: the payout matches ({} outputs)",
        report.matched
    );
    Ok(())
}

/// The pool's API.
struct Pool<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    token: Option<&'a str>,
    /// Shares per window page.
    page: u64,
}

impl Pool<'_> {
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url);
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = read_body(response)
            .await
            .with_context(|| format!("GET {url}"))?;
        if !status.is_success() {
            bail!(
                "GET {url}: http {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        serde_json::from_slice(&body).with_context(|| format!("GET {url}: unexpected answer"))
    }

    /// Every page of the block's window, summed as the pool sums it.
    async fn window(&self, hash: BlockHash, range: Option<(i64, i64)>) -> Result<PplnsWindow> {
        let mut builder = WindowBuilder::default();
        let mut after: Option<i64> = None;
        loop {
            let limit = self.page;
            let path = match after {
                Some(a) => format!("/api/v1/blocks/{hash}/window?limit={limit}&after={a}"),
                None => format!("/api/v1/blocks/{hash}/window?limit={limit}"),
            };
            let page: WindowPage = self.get(&path).await?;
            add_shares(&mut builder, page.shares, range)?;
            match page.next_after {
                // each page must move on, or a pool could keep us here
                Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
                Some(next) => bail!("the pool's window pages do not advance (after {next})"),
                None => return Ok(builder.finish()),
            }
        }
    }
}

/// Adds shares, which must come in ascending id order inside the block's window.
fn add_shares(
    builder: &mut WindowBuilder,
    shares: Vec<WindowShare>,
    range: Option<(i64, i64)>,
) -> Result<()> {
    for s in shares {
        let Some((first, last)) = range else {
            bail!(
                "share {} for a block the pool records without a window",
                s.id
            );
        };
        if s.id < first || s.id > last {
            bail!(
                "share {} is outside the block's window {first}..={last}",
                s.id
            );
        }
        if builder.shares() > 0 && s.id <= builder.last_id() {
            bail!(
                "share {} comes after share {}: not in id order",
                s.id,
                builder.last_id()
            );
        }
        builder.push(s.id, &s.identity, s.difficulty);
    }
    Ok(())
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            bail!("the answer is larger than {MAX_RESPONSE_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!("{} is larger than {MAX_FILE_BYTES} bytes", path.display());
    }
    Ok(bytes)
}

/// A raw block file: hex (whitespace ignored) or binary.
fn block_from_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_bounded(path)?;
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !text.is_empty() && text.iter().all(u8::is_ascii_hexdigit) {
        hex::decode(&text).with_context(|| format!("{}: odd hex", path.display()))
    } else {
        Ok(bytes)
    }
}

/// `getblock HASH 0` from a Bitcoin Core node.
async fn node_block(
    http: &reqwest::Client,
    url: &str,
    args: &VerifyArgs,
    hash: BlockHash,
) -> Result<Vec<u8>> {
    let (user, password) = match (&args.rpc_user, &args.rpc_password, &args.rpc_cookie) {
        (Some(user), Some(password), _) => (user.clone(), password.clone()),
        (_, _, Some(cookie)) => {
            let text = std::fs::read_to_string(cookie)
                .with_context(|| format!("cannot read {}", cookie.display()))?;
            let (user, password) = text
                .trim_end()
                .split_once(':')
                .with_context(|| format!("{} is not user:password", cookie.display()))?;
            (user.to_owned(), password.to_owned())
        }
        _ => bail!("--node needs --rpc-user and --rpc-password, or --rpc-cookie"),
    };
    let body =
        json!({"jsonrpc": "1.0", "id": 1, "method": "getblock", "params": [hash.to_string(), 0]});
    let response = http
        .post(url)
        .basic_auth(user, Some(password))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("getblock from {url}"))?;
    let status = response.status();
    let body = read_body(response).await?;
    #[derive(Deserialize)]
    struct RpcAnswer {
        #[serde(default)]
        result: Option<String>,
        #[serde(default)]
        error: serde_json::Value,
    }
    let answer: RpcAnswer = serde_json::from_slice(&body)
        .map_err(|_| anyhow::anyhow!("getblock from {url}: http {status}"))?;
    if !answer.error.is_null() {
        bail!("getblock from {url}: {}", answer.error);
    }
    let hex_block = answer
        .result
        .with_context(|| format!("getblock from {url}: no result"))?;
    hex::decode(hex_block.trim()).with_context(|| format!("getblock from {url}: not hex"))
}
