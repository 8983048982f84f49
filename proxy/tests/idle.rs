//! 10,000 idle SV1 connections on one proxy process: the `strata-proxy` binary runs as a
//! child (each process may hold 20,000 file descriptors here; the test holds the client ends)
//! in front of an in-process strata-pool on its embedded regtest chain.
//!
//! 1. Every connection subscribes and authorizes (a few tasks multiplex the sockets) and gets
//!    its subscribe answer and a `mining.notify`.
//! 2. While they idle, one real strata-miner SV1 miner mines: its shares are accepted and
//!    forwarded to the pool.
//! 3. A connection that never reads (and floods subscribes, each answered with a job, so the
//!    proxy's writes block), one that sends an oversized line and one that sends garbage are
//!    closed; the idle ones are not disturbed (the API counts them all; a read with a short
//!    timeout gives no EOF). The proxy gives up on a blocked write after its write timeout
//!    (`sv1.write_timeout_secs`, 5 s here).
//! 4. SIGTERM: every idle connection gets `client.reconnect` and/or EOF, and the proxy exits
//!    cleanly.
//!
//! `STRATA_IDLE_CONNECTIONS` overrides the 10,000 (e.g. where the descriptor limit is lower).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{get_json, pool_config, start_pool, until};
use futures::StreamExt as _;
use strata_miner::pace::Pacing;
use strata_miner::report::Reporter;
use strata_miner::shell::{run_sv1, Endpoint};
use strata_miner::sv1::{Sv1Config, Sv1Miner};
use strata_pool::server::RunningPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const DEFAULT_CONNECTIONS: usize = 10_000;
/// Descriptors each process needs besides the connections (pool, runtime, API, files).
const FD_HEADROOM: u64 = 512;
/// Handshakes in flight per task, and tasks.
const IN_FLIGHT: usize = 128;
const TASKS: usize = 4;

/// The proxy child; killed (SIGKILL) if the test ends before it exited.
struct ProxyChild {
    child: Child,
    sv1: SocketAddr,
    api: SocketAddr,
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn pool(dir: &std::path::Path) -> RunningPool {
    let mut c = pool_config(dir, "127.0.0.1:0".parse().unwrap());
    // every share is a block on regtest: few new tips, so few job broadcasts to 10,000
    c.min_block_interval_ms = 30_000;
    c.vardiff.shares_per_minute = 120.0;
    start_pool(c).await
}

/// Starts the proxy binary toward `pool`; its addresses come from its first stdout line.
fn spawn_proxy(pool: &RunningPool, dir: &std::path::Path) -> ProxyChild {
    let log = std::fs::File::create(dir.join("proxy.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata-proxy"))
        .arg("--upstream")
        .arg(format!(
            "stratum2+tcp://{}/{}",
            pool.sv2_addr, pool.authority
        ))
        .args(["--sv1-listen", "127.0.0.1:0"])
        .args(["--sv2-listen", "127.0.0.1:0"])
        .args(["--api-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join("proxy"))
        .env("STRATA_PROXY_SV1__MAX_PER_IP", "20000")
        .env("STRATA_PROXY_SV1__WRITE_TIMEOUT_SECS", "5")
        .env("STRATA_PROXY_SV1__INITIAL_DIFFICULTY", "1e-5")
        .env("STRATA_PROXY_SV1__SHARES_PER_MINUTE", "30.0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // "strata-proxy: SV1 on A, SV2 on B, API http://C; SV2 authority key K"
    let field = |after: &str, until: &[char]| -> SocketAddr {
        let rest = first
            .split(after)
            .nth(1)
            .unwrap_or_else(|| panic!("{first}"));
        let end = rest.find(until).unwrap_or(rest.len());
        rest[..end]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {first}"))
    };
    let sv1 = field("SV1 on ", &[',']);
    let api = field("API http://", &[';', '\n']);
    ProxyChild { child, sv1, api }
}

/// What a connection saw of its handshake.
#[derive(Debug, Default)]
struct Handshake {
    subscribed: bool,
    authorized: bool,
    notified: bool,
}

impl Handshake {
    fn done(&self) -> bool {
        self.subscribed && self.authorized && self.notified
    }

    fn line(&mut self, line: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            return;
        };
        match (&v["id"], v["method"].as_str()) {
            (_, Some("mining.notify")) => self.notified = true,
            (id, None) if id == 1 => self.subscribed = v["result"].is_array(),
            (id, None) if id == 2 => self.authorized = v["result"] == true,
            _ => {}
        }
    }
}

/// Connects, subscribes and authorizes as worker `idle.<i>`, reads until the subscribe
/// answer, the authorize answer and a `mining.notify` arrived.
async fn idle_connection(addr: SocketAddr, i: usize) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {i}: {e}"))?;
    let hello = format!(
        "{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"idle/1.0\"]}}\n\
         {{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"idle.{i}\",\"x\"]}}\n"
    );
    s.write_all(hello.as_bytes())
        .await
        .map_err(|e| format!("write {i}: {e}"))?;
    let mut seen = Handshake::default();
    let mut buf = Vec::with_capacity(2048);
    let read = async {
        while !seen.done() {
            let n = s.read_buf(&mut buf).await.map_err(|e| format!("{e}"))?;
            if n == 0 {
                return Err("eof".to_string());
            }
            while let Some(p) = buf.iter().position(|&b| b == b'\n') {
                seen.line(&buf[..p]);
                buf.drain(..=p);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(60), read).await {
        Ok(Ok(())) => Ok(s),
        Ok(Err(e)) => Err(format!("connection {i}: {e} after {seen:?}")),
        Err(_) => Err(format!("connection {i}: no handshake in 60 s: {seen:?}")),
    }
}

/// `n` idle connections, handshakes run by [`TASKS`] tasks, [`IN_FLIGHT`] at once each.
async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            tokio::spawn(async move {
                futures::stream::iter((t..n).step_by(TASKS))
                    .map(|i| idle_connection(addr, i))
                    .buffer_unordered(IN_FLIGHT)
                    .collect::<Vec<_>>()
                    .await
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(n);
    for t in tasks {
        for r in t.await.unwrap() {
            streams.push(r.unwrap_or_else(|e| panic!("{e}")));
        }
    }
    streams
}

/// Whether each stream is still open: reads (draining what the proxy sent) until a read
/// times out (open) or gives EOF / an error (closed).
async fn still_open(streams: &mut [TcpStream]) -> Vec<bool> {
    futures::stream::iter(streams.iter_mut())
        .map(|s| async move {
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                    Err(_) => return true,
                    Ok(Ok(0) | Err(_)) => return false,
                    Ok(Ok(_)) => {}
                }
            }
        })
        .buffered(2_000)
        .collect()
        .await
}

/// What each stream got until EOF (or `limit`): (saw `client.reconnect`, saw EOF / reset).
async fn drain_to_close(streams: Vec<TcpStream>, limit: Duration) -> Vec<(bool, bool)> {
    futures::stream::iter(streams)
        .map(|mut s| async move {
            let mut got = Vec::new();
            let eof = tokio::time::timeout(limit, async {
                let mut buf = [0u8; 2048];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await
            .is_ok();
            let reconnect = got
                .windows(b"client.reconnect".len())
                .any(|w| w == b"client.reconnect");
            (reconnect, eof)
        })
        .buffer_unordered(20_000)
        .collect()
        .await
}

/// Reads until EOF or a reset, at most `limit`: whether the proxy closed the connection.
async fn closed_within(s: &mut (impl tokio::io::AsyncRead + Unpin), limit: Duration) -> bool {
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_a_miner_and_bad_peers() {
    let t0 = Instant::now();
    let n: usize = std::env::var("STRATA_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CONNECTIONS);
    // the child proxy inherits this soft limit
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= n as u64 + FD_HEADROOM,
        "RLIMIT_NOFILE is {limit}: {n} connections need {} descriptors in this process and \
         in the proxy; raise the hard limit or set STRATA_IDLE_CONNECTIONS lower",
        n as u64 + FD_HEADROOM
    );
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    let proxy = spawn_proxy(&pool, dir.path());
    let api = proxy.api;
    until("the proxy's upstream", 30, async || {
        get_json(format!("http://{api}/api/v1/stats")).await["active_pool"].as_u64() == Some(0)
    })
    .await;
    eprintln!("proxy up after {:?}", t0.elapsed());

    // a miner that never reads and floods subscribes (each answered with a job): the proxy's
    // writes fill our small receive buffer and its send buffer, then block
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stuck = sock.connect(proxy.sv1).await.unwrap();
    let mut flood = String::from(
        "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n\
         {\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"stuck\",\"x\"]}\n",
    );
    for i in 0..20_000 {
        flood.push_str(&format!(
            "{{\"id\":{},\"method\":\"mining.subscribe\",\"params\":[]}}\n",
            i + 3
        ));
    }
    let (mut stuck, mut stuck_wr) = stuck.into_split();
    // the proxy stops reading once its writes block, and so will this write
    let flooding = tokio::spawn(async move {
        let _ = tokio::time::timeout(
            Duration::from_secs(90),
            stuck_wr.write_all(flood.as_bytes()),
        )
        .await;
        stuck_wr
    });
    let stuck_since = Instant::now();

    // the idle connections
    let t = Instant::now();
    let mut idle = idle_connections(proxy.sv1, n).await;
    let connect_s = t.elapsed().as_secs_f64();
    eprintln!(
        "{n} idle connections subscribed, authorized and notified in {connect_s:.1} s ({:.0}/s)",
        n as f64 / connect_s
    );

    if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", proxy.child.id())) {
        if let Some(rss) = status.lines().find(|l| l.starts_with("VmRSS")) {
            eprintln!("proxy (debug build) with {n} idle miners: {rss}");
        }
    }

    // one real miner mines through the proxy while they idle
    let stop = CancellationToken::new();
    let miner = {
        let endpoint = Endpoint::parse(&proxy.sv1.to_string()).unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut m = Sv1Miner::new(Sv1Config::new(0, "farm.real"));
            let r = run_sv1(
                &mut m,
                &endpoint,
                Pacing::Hashrate(50_000.0),
                &Reporter::silent(),
                &stop,
            )
            .await;
            (m, r)
        })
    };
    until(
        "the real miner's shares forwarded and acknowledged",
        60,
        async || {
            let s = get_json(format!("http://{api}/api/v1/stats")).await;
            s["shares_accepted"].as_u64().unwrap_or(0) > 0
                && s["upstream_accepted"].as_u64().unwrap_or(0) > 0
        },
    )
    .await;
    eprintln!(
        "real miner's shares acknowledged upstream at {:?}",
        t0.elapsed()
    );

    // bad peers: an oversized line, and garbage past the malformed-line budget
    let mut oversized = TcpStream::connect(proxy.sv1).await.unwrap();
    let mut long = vec![b'a'; 5000];
    long.push(b'\n');
    oversized.write_all(&long).await.unwrap();
    let mut garbage = TcpStream::connect(proxy.sv1).await.unwrap();
    garbage
        .write_all("this is not json\n".repeat(20).as_bytes())
        .await
        .unwrap();
    assert!(
        closed_within(&mut oversized, Duration::from_secs(10)).await,
        "the oversized line closes its connection"
    );
    assert!(
        closed_within(&mut garbage, Duration::from_secs(10)).await,
        "garbage closes its connection"
    );

    // the never-reading miner is dropped after the proxy's write timeout
    until("the never-reading miner closed", 60, async || {
        let miners = get_json(format!("http://{api}/api/v1/stats")).await["miners"]
            .as_u64()
            .unwrap();
        miners == n as u64 + 1
    })
    .await;
    eprintln!(
        "never-reading miner dropped {:?} after it stopped reading",
        stuck_since.elapsed()
    );
    assert!(
        closed_within(&mut stuck, Duration::from_secs(10)).await,
        "the never-reading connection is closed"
    );
    drop(flooding.await.unwrap());

    // the idle ones are undisturbed: all listed, all open; the real miner's shares were
    // accepted and acknowledged by the pool (its figures arrive with its periodic report)
    until("the real miner's figures in the API", 30, async || {
        let miners = get_json(format!("http://{api}/api/v1/miners")).await;
        let miners = miners.as_array().unwrap();
        assert_eq!(miners.len(), n + 1, "idle miners + the real one");
        miners.iter().any(|m| {
            m["worker"] == "farm.real"
                && m["accepted"].as_u64().unwrap_or(0) > 0
                && m["upstream_accepted"].as_u64().unwrap_or(0) > 0
        })
    })
    .await;
    let open = still_open(&mut idle).await;
    let closed = open.iter().filter(|o| !**o).count();
    assert_eq!(closed, 0, "{closed} of {n} idle connections were closed");
    stop.cancel();
    let (m, r) = miner.await.unwrap();
    r.unwrap();
    assert!(m.stats().acknowledged > 0, "{:?}", m.stats());

    // graceful shutdown: client.reconnect and / or EOF for every idle connection
    let mut proxy = proxy;
    let t = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &proxy.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let seen = drain_to_close(idle, Duration::from_secs(30)).await;
    let reconnects = seen.iter().filter(|s| s.0).count();
    let eofs = seen.iter().filter(|s| s.1).count();
    eprintln!(
        "after SIGTERM: {reconnects} of {n} got client.reconnect, {eofs} EOF, in {:?}",
        t.elapsed()
    );
    assert!(
        seen.iter().all(|(reconnect, eof)| *reconnect || *eof),
        "every idle connection is told to reconnect or closed"
    );
    let exit = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = proxy.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let exit = exit.expect("the proxy exits within 30 s of SIGTERM");
    assert!(exit.success(), "proxy exit status {exit}");
    let log = std::fs::read_to_string(dir.path().join("proxy.log")).unwrap();
    assert!(!log.contains("panicked"), "the proxy panicked:\n{log}");
    eprintln!("total wall time {:?}", t0.elapsed());

    pool.shutdown.cancel();
    pool.wait().await;
}
