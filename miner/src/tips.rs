//! Block-change latency: how long after a new tip every one of many SV2 channels has its
//! `SetNewPrevHash`.
//!
//! [`run_tips`] opens `connections` Noise connections, one standard channel each (or several,
//! as a proxy opens them: a pool may then group them and send one `SetNewPrevHash` for the
//! group), waits until every channel has its first job and `SetNewPrevHash`, then, round
//! after round, makes a new tip and records when each channel receives the `SetNewPrevHash`
//! of it (its own or its group's):
//!
//! * [`Trigger::Submit`]: connection 0 grinds its current job to the network target (regtest:
//!   a few hashes) and submits the block; the clock starts at that submit. For a pool that
//!   builds its own blocks (strata-pool's embedded regtest node).
//! * [`Trigger::Rpc`]: the node mines a block itself (`generatetoaddress` over JSON-RPC); the
//!   clock starts when the call is sent. For any pool fed by that node (strata-pool with
//!   `rpc` or `ipc`, SRI's `pool_sv2` with Bitcoin Core IPC), so the pools compare on equal
//!   terms. With [`TipsConfig::mempool_txs`], the run first fills the node's mempool with
//!   that many payments (coins of its own, [`crate::funds`]) and the node then mines empty
//!   blocks (`generateblock ADDRESS []`), so that every template after every tip carries
//!   those transactions, as on mainnet, where a template holds thousands.
//!
//! A channel's time is the instant its connection's task decoded the `SetNewPrevHash` (this
//! process's clock): the run measures the pool and the kernel's loopback, plus this process's
//! own reading, which is why it should run in a process of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use strata_net::sv2::{initiate, Sv2Options};
use strata_noise::PublicKey;
use strata_protocol::common::SetupConnection;
use strata_protocol::mining::{
    MiningMessage, OpenStandardMiningChannel, SubmitSharesStandard, REQUIRES_STANDARD_JOBS,
};
use strata_protocol::wire::{Str0_255, U256};
use strata_protocol::Message;
use strata_work::header::Header;
use strata_work::target::Target;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Barrier};

use anyhow::{anyhow, bail};
use bitcoin::{Amount, Network};
use futures::{StreamExt, TryStreamExt};
use strata_template::rpc::{NodeRpc, RpcAuth, RpcConfig};

use crate::funds::{coinbase_coin, fan_in, fan_out, Key};

/// How long a round may take before the run gives up.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between rounds, so that each round starts from a quiet pool.
const ROUND_PAUSE: Duration = Duration::from_millis(200);

/// What makes the new tip.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Connection 0 submits a block on its current job.
    Submit,
    /// The node mines one: `generatetoaddress 1 address` over JSON-RPC.
    Rpc {
        /// `http://host:port`.
        url: String,
        /// `user:password` (bitcoind's `.cookie` file holds one).
        credentials: String,
        /// Where the block pays.
        address: String,
    },
}

/// A run.
#[derive(Debug, Clone)]
pub struct TipsConfig {
    /// The pool, `host:port`.
    pub pool: String,
    /// Its authority key.
    pub authority: PublicKey,
    /// Connections.
    pub connections: usize,
    /// Standard channels on each connection: 1, or more as a proxy opens them (a pool may
    /// then group them and send one `SetNewPrevHash` per connection for all of them).
    pub channels_per_connection: usize,
    /// Rounds (new tips) to measure.
    pub rounds: usize,
    /// What makes each tip.
    pub trigger: Trigger,
    /// Connections opened per second (a pool may not take thousands at once within its
    /// handshake timeout).
    pub connect_rate: f64,
    /// The pool's process id, when it runs on this machine: its CPU time over the rounds is
    /// reported (Linux, from `/proc`).
    pub pool_pid: Option<u32>,
    /// [`Trigger::Rpc`] on regtest: payments put into the node's mempool before the rounds
    /// and kept there (0: none, the node mines whatever its mempool holds).
    pub mempool_txs: usize,
}

/// Outputs of each fan-out transaction that funds the mempool's payments (a 500-output
/// transaction is about 16 kvB, well inside standardness).
const FAN_OUT: usize = 500;
/// Fee of each fan-out transaction, in satoshis.
const FAN_OUT_FEE: u64 = 20_000;
/// Fee of each payment, in satoshis (about 9 sat/vB).
const PAYMENT_FEE: u64 = 1_000;
/// Payments sent to the node at once while filling its mempool.
const SENDS_IN_FLIGHT: usize = 16;

/// One round, in milliseconds after its start.
#[derive(Debug, Clone, Serialize)]
pub struct TipRound {
    /// The first channel's `SetNewPrevHash`.
    pub first_ms: f64,
    /// The last channel's.
    pub last_ms: f64,
    /// [`Trigger::Rpc`]: when the node answered the call that mined the block (it has the
    /// block).
    pub trigger_ms: Option<f64>,
}

/// The result: every round, and the medians.
#[derive(Debug, Clone, Serialize)]
pub struct TipsReport {
    /// Connections measured.
    pub connections: usize,
    /// Channels measured (over those connections).
    pub channels: usize,
    /// `SetNewPrevHash` messages received per round over every connection: one per channel,
    /// or one per connection where the pool sends it to the connection's group.
    pub prev_hash_messages_per_round: f64,
    /// Median over the rounds of the first channel's time.
    pub first_ms_median: f64,
    /// Median over the rounds of the last channel's time.
    pub last_ms_median: f64,
    /// The pool process's CPU time (user + system) per round, in milliseconds, when its pid
    /// was given: each round's new tip for every connection, plus what the pool does
    /// meanwhile (the pauses between rounds are 200 ms).
    pub pool_cpu_ms_per_round: Option<f64>,
    /// Every round.
    pub rounds: Vec<TipRound>,
}

/// CPU time of process `pid` in milliseconds (user + system), from `/proc/PID/stat`.
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after the command name, which is in parentheses and may hold spaces
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on
    Some(ticks * 10.0)
}

#[derive(Debug)]
struct Job {
    channel_id: u32,
    job_id: u32,
    version: u32,
    merkle_root: [u8; 32],
}

/// What connection 0 knows of its current work (for [`Trigger::Submit`]).
type Work = (Job, [u8; 32], u32, u32);

/// Runs the measurement; progress on stderr.
pub async fn run_tips(cfg: TipsConfig) -> anyhow::Result<TipsReport> {
    let conns = cfg.connections;
    let per_conn = cfg.channels_per_connection.max(1);
    let n = conns * per_conn;
    let (tips_tx, mut tips_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let ready = Arc::new(Barrier::new(conns + 1));
    let prev_hashes = Arc::new(AtomicUsize::new(0));
    let (work_tx, mut work_rx) = mpsc::unbounded_channel::<Work>();
    let (submit_tx, submit_rx) = mpsc::unbounded_channel::<SubmitSharesStandard>();
    let (fail_tx, mut fail_rx) = mpsc::unbounded_channel::<String>();
    let mut submit_rx = Some(submit_rx);
    let addr: std::net::SocketAddr = tokio::net::lookup_host(&cfg.pool)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| anyhow!("cannot resolve {}", cfg.pool))?;
    // the node that mines each tip, and where its blocks pay ([`Trigger::Rpc`])
    let mut node = match &cfg.trigger {
        Trigger::Submit => None,
        Trigger::Rpc {
            url,
            credentials,
            address,
        } => Some((node_rpc(url, credentials)?, address)),
    };
    if cfg.mempool_txs > 0 {
        let Some((node, _)) = node.as_mut() else {
            bail!("a mempool to fill needs the node's RPC (--node-rpc)");
        };
        fill_mempool(node, cfg.mempool_txs).await?;
    }
    let per_tick = (cfg.connect_rate / 100.0).ceil().max(1.0) as usize;
    for i in 0..conns {
        if i > 0 && i % per_tick == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let conn = Client {
            index: i,
            channels: per_conn,
            // connection 0 grinds blocks on standard jobs; the others take grouped jobs
            // when they share their connection
            standard_jobs: per_conn == 1 || i == 0,
            tips: tips_tx.clone(),
            prev_hashes: prev_hashes.clone(),
            ready: ready.clone(),
            work: (i == 0).then(|| work_tx.clone()),
            submits: if i == 0 { submit_rx.take() } else { None },
        };
        let fail = fail_tx.clone();
        let authority = cfg.authority;
        tokio::spawn(async move {
            if let Err(e) = conn.run(addr, authority).await {
                let _ = fail.send(format!("connection {i}: {e}"));
            }
        });
    }
    drop((tips_tx, fail_tx, work_tx));
    tokio::select! {
        _ = ready.wait() => {}
        Some(e) = fail_rx.recv() => bail!(e),
    }
    eprintln!("{n} channels have their first job");
    let cpu0 = cfg.pool_pid.and_then(cpu_ms);
    let prev_hashes0 = prev_hashes.load(Ordering::Relaxed);
    let mut rounds = Vec::with_capacity(cfg.rounds);
    for round in 0..cfg.rounds {
        tokio::time::sleep(ROUND_PAUSE).await;
        // what arrived while idle (e.g. a pool's periodic new jobs) is not this round's
        while tips_rx.try_recv().is_ok() {}
        let (t0, trigger_ms) = match node.as_mut() {
            None => {
                let mut latest = None;
                while let Ok(w) = work_rx.try_recv() {
                    latest = Some(w);
                }
                let (job, prev, ntime, nbits) = match latest {
                    Some(w) => w,
                    None => work_rx
                        .recv()
                        .await
                        .ok_or_else(|| anyhow!("connection 0 is gone"))?,
                };
                let share = grind(&job, prev, ntime, nbits, round as u32 + 1)?;
                let t0 = Instant::now();
                submit_tx
                    .send(share)
                    .map_err(|_| anyhow!("connection 0 is gone"))?;
                (t0, None)
            }
            Some((node, address)) => {
                let t0 = Instant::now();
                if cfg.mempool_txs > 0 {
                    // an empty block: the mempool's payments stay for the next template
                    node.call("generateblock", serde_json::json!([address, []]))
                        .await?;
                } else {
                    node.call("generatetoaddress", serde_json::json!([1, address]))
                        .await?;
                }
                (t0, Some(ms(t0, Instant::now())))
            }
        };
        let (first, last) = wait_all(&mut tips_rx, n, t0).await?;
        let r = TipRound {
            first_ms: ms(t0, first),
            last_ms: ms(t0, last),
            trigger_ms,
        };
        eprintln!(
            "round {round}: first SetNewPrevHash after {:.2} ms, last after {:.2} ms{}",
            r.first_ms,
            r.last_ms,
            r.trigger_ms
                .map(|t| format!(" (the node answered after {t:.2} ms)"))
                .unwrap_or_default()
        );
        rounds.push(r);
    }
    let prev_hash_messages_per_round =
        (prev_hashes.load(Ordering::Relaxed) - prev_hashes0) as f64 / cfg.rounds as f64;
    let pool_cpu_ms_per_round = match (cpu0, cfg.pool_pid.and_then(cpu_ms)) {
        (Some(a), Some(b)) => Some((b - a) / cfg.rounds as f64),
        _ => None,
    };
    let median = |f: fn(&TipRound) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    Ok(TipsReport {
        connections: conns,
        channels: n,
        prev_hash_messages_per_round,
        first_ms_median: median(|r| r.first_ms),
        last_ms_median: median(|r| r.last_ms),
        pool_cpu_ms_per_round,
        rounds,
    })
}

fn ms(t0: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64() * 1e3
}

/// A block share on `job`: the nonce that meets the network target.
fn grind(
    job: &Job,
    prev: [u8; 32],
    ntime: u32,
    nbits: u32,
    seq: u32,
) -> anyhow::Result<SubmitSharesStandard> {
    let target = Target::from_compact(nbits).map_err(|e| anyhow!("nbits {nbits:08x}: {e}"))?;
    let mut h = Header {
        version: job.version,
        prev_hash: prev,
        merkle_root: job.merkle_root,
        ntime,
        nbits,
        nonce: 0,
    };
    while !h.meets(&target) {
        h.nonce = h
            .nonce
            .checked_add(1)
            .ok_or_else(|| anyhow!("no nonce meets the network target (not regtest?)"))?;
    }
    Ok(SubmitSharesStandard {
        channel_id: job.channel_id,
        sequence_number: seq,
        job_id: job.job_id,
        nonce: h.nonce,
        ntime: h.ntime,
        version: h.version,
    })
}

/// The node's JSON-RPC client for `user:password` at `url` (the pool's own client: bitcoind's
/// errors, and a refusal told apart from them).
fn node_rpc(url: &str, credentials: &str) -> anyhow::Result<NodeRpc> {
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let auth = RpcAuth::UserPass {
        user: user.to_owned(),
        password: password.to_owned(),
    };
    // the network is what `check_chain` would check, which the run does not call
    Ok(NodeRpc::new(&RpcConfig::new(url, auth, Network::Regtest))?)
}

/// Sends `tx` to the node's mempool.
async fn send(node: &mut NodeRpc, tx: &bitcoin::Transaction) -> anyhow::Result<()> {
    let hex = bitcoin::consensus::encode::serialize_hex(tx);
    node.call("sendrawtransaction", serde_json::json!([hex]))
        .await?;
    Ok(())
}

/// Puts `payments` one-input, one-output transactions into the node's mempool (regtest):
/// mines coins to a key of its own, matures them, splits them into confirmed outputs
/// ([`FAN_OUT`] each), and spends each of those alone, so that no payment has an ancestor
/// in the mempool.
async fn fill_mempool(node: &mut NodeRpc, payments: usize) -> anyhow::Result<()> {
    let key = Key::new(0x5a);
    let address = key.address.to_string();
    let parents = payments.div_ceil(FAN_OUT);
    let started = Instant::now();
    let hashes = node
        .call(
            "generatetoaddress",
            serde_json::json!([parents + 100, address]),
        )
        .await?;
    let hashes = hashes
        .as_array()
        .ok_or_else(|| anyhow!("generatetoaddress: no list of block hashes"))?;
    let mut coins = Vec::with_capacity(parents * FAN_OUT);
    for hash in hashes.iter().take(parents) {
        let block = node.call("getblock", serde_json::json!([hash, 2])).await?;
        let coin = coinbase_coin(&block, &key)
            .ok_or_else(|| anyhow!("block {hash} does not pay the funding key"))?;
        let (tx, outputs) = fan_out(&key, coin, FAN_OUT, Amount::from_sat(FAN_OUT_FEE));
        send(node, &tx).await?;
        coins.extend(outputs);
    }
    // confirmed, so that each payment is a mempool transaction without ancestors there
    node.call("generatetoaddress", serde_json::json!([1, address]))
        .await?;
    // independent of each other: several in flight (the node validates each on its own)
    let sends = coins
        .into_iter()
        .take(payments)
        .map(|coin| fan_in(&key, coin, Amount::from_sat(PAYMENT_FEE)))
        .collect::<Vec<_>>();
    futures::stream::iter(sends.iter().map(|tx| {
        let mut node = node.clone();
        async move { send(&mut node, tx).await }
    }))
    .buffer_unordered(SENDS_IN_FLIGHT)
    .try_collect::<Vec<()>>()
    .await?;
    let info = node.call("getmempoolinfo", serde_json::json!([])).await?;
    eprintln!(
        "the node's mempool holds {} transactions, {} bytes (filled in {:.1} s)",
        info["size"],
        info["bytes"],
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until every connection saw a new tip; (first, last) instants.
async fn wait_all(
    tips_rx: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    n: usize,
    t0: Instant,
) -> anyhow::Result<(Instant, Instant)> {
    let mut seen = vec![false; n];
    let mut count = 0;
    let mut first = None;
    let mut last = t0;
    while count < n {
        let got = tokio::time::timeout(ROUND_TIMEOUT, tips_rx.recv()).await;
        let Ok(Some((i, t))) = got else {
            return Err(anyhow!(
                "only {count} of {n} channels got the new tip within {ROUND_TIMEOUT:?}"
            ));
        };
        if t >= t0 && !seen[i] {
            seen[i] = true;
            count += 1;
            first = Some(first.map_or(t, |f: Instant| f.min(t)));
            last = last.max(t);
        }
    }
    Ok((first.unwrap_or(t0), last))
}

struct Client {
    index: usize,
    /// Standard channels to open on this connection.
    channels: usize,
    /// Whether the client asks for standard jobs (`REQUIRES_STANDARD_JOBS`); without it a
    /// pool may put the channels into a group and send each new tip once for all of them.
    standard_jobs: bool,
    tips: mpsc::UnboundedSender<(usize, Instant)>,
    /// `SetNewPrevHash` messages received after the start, over every connection.
    prev_hashes: Arc<AtomicUsize>,
    ready: Arc<Barrier>,
    work: Option<mpsc::UnboundedSender<Work>>,
    submits: Option<mpsc::UnboundedReceiver<SubmitSharesStandard>>,
}

impl Client {
    async fn run(mut self, addr: std::net::SocketAddr, authority: PublicKey) -> Result<(), String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let (rd, wr) = tcp.into_split();
        let (mut reader, mut writer) = initiate(rd, wr, authority, &Sv2Options::default())
            .await
            .map_err(|e| e.to_string())?;
        writer
            .send(&SetupConnection {
                protocol: 0,
                min_version: 2,
                max_version: 2,
                flags: if self.standard_jobs {
                    REQUIRES_STANDARD_JOBS
                } else {
                    0
                },
                endpoint_host: Str0_255::new(addr.ip().to_string()).map_err(|e| e.to_string())?,
                endpoint_port: addr.port(),
                vendor: Str0_255::new("strata-miner tips").map_err(|e| e.to_string())?,
                hardware_version: Str0_255::default(),
                firmware: Str0_255::default(),
                device_id: Str0_255::default(),
            })
            .await
            .map_err(|e| e.to_string())?;
        for c in 0..self.channels {
            writer
                .send(&OpenStandardMiningChannel {
                    request_id: c as u32 + 1,
                    user_identity: Str0_255::new(format!("tips.{}.{c}", self.index))
                        .map_err(|e| e.to_string())?,
                    nominal_hash_rate: 1.0,
                    max_target: U256([0xff; 32]),
                })
                .await
                .map_err(|e| e.to_string())?;
        }
        // this connection's channels as the pool opened them: channel id, the run's index,
        // whether it had its first SetNewPrevHash (the start, not measured); the group a pool
        // put them in
        let mut opened: Vec<(u32, usize, bool)> = Vec::with_capacity(self.channels);
        let mut group: Option<u32> = None;
        let mut ready = false;
        let mut job: Option<Job> = None;
        let mut prev: Option<([u8; 32], u32, u32)> = None;
        loop {
            tokio::select! {
                m = reader.read_message() => {
                    let Some((_, msg)) = m.map_err(|e| e.to_string())? else {
                        return Err("closed by the pool".into());
                    };
                    match msg {
                        Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(o)) => {
                            let local = o.request_id.wrapping_sub(1) as usize;
                            opened.push((o.channel_id, self.index * self.channels + local, false));
                            if o.group_channel_id != 0 {
                                group = Some(o.group_channel_id);
                            }
                        }
                        Message::Mining(MiningMessage::NewMiningJob(j)) => {
                            let active = j.min_ntime;
                            let new = Job {
                                channel_id: j.channel_id,
                                job_id: j.job_id,
                                version: j.version,
                                merkle_root: j.merkle_root.0,
                            };
                            // a job for the current tip replaces the work at once; a future
                            // one waits for its SetNewPrevHash
                            match (active, prev, &self.work) {
                                (Some(t), Some((hash, ntime, nbits)), Some(tx)) => {
                                    let _ = tx.send((new, hash, ntime.max(t), nbits));
                                }
                                _ => job = Some(new),
                            }
                        }
                        Message::Mining(MiningMessage::SetNewPrevHash(p)) => {
                            let now = Instant::now();
                            if ready {
                                self.prev_hashes.fetch_add(1, Ordering::Relaxed);
                            }
                            // one channel's, or its group's for every member
                            for (id, index, started) in &mut opened {
                                if *id != p.channel_id && group != Some(p.channel_id) {
                                    continue;
                                }
                                if *started {
                                    let _ = self.tips.send((*index, now));
                                } else {
                                    *started = true;
                                }
                            }
                            if !ready
                                && opened.len() == self.channels
                                && opened.iter().all(|c| c.2)
                            {
                                ready = true;
                                self.ready.wait().await;
                            }
                            prev = Some((p.prev_hash.0, p.min_ntime, p.nbits));
                            if let (Some(tx), Some(j)) = (&self.work, job.take()) {
                                let _ = tx.send((j, p.prev_hash.0, p.min_ntime, p.nbits));
                            }
                        }
                        Message::Mining(MiningMessage::OpenMiningChannelError(e)) => {
                            return Err(format!("channel refused: {}", e.error_code.as_str()));
                        }
                        _ => {}
                    }
                }
                Some(s) = async {
                    match self.submits.as_mut() {
                        Some(r) => r.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    writer.send(&s).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
}
