//! The load generator: many connections, one channel (SV2) or session (SV1) each, submitting
//! real shares at an aggregate rate, with submit-to-acknowledgement latencies.
//!
//! Each connection is one tokio task running the same shell as a single miner
//! ([`crate::shell`]) with [`Pacing::ShareRate`]`(rate / connections)`: when a share is due it
//! hashes (at the target the server gave) until it finds one, submits it, and waits for the
//! next due time on an [`crate::alarm::Alarm`] (sub-millisecond: tokio's 1 ms timer ticks
//! would make the connections submit in bursts, one per tick). The SV2 miners advertise a tiny nominal hashrate so the pool hands out easy
//! targets; if the pool's vardiff raises the difficulty (it sees more shares than the nominal
//! hashrate explains), each share costs more hashes and the achieved rate may fall short of
//! the requested one on a small machine: the report shows what was achieved.
//!
//! Connections are opened at `connect_rate` per second. Scaling: one task and two sockets'
//! worth of buffers (~20 KiB) per connection; 10 000 connections need `ulimit -n` above
//! 10 000 (each connection is one file descriptor), e.g. `ulimit -n 20000` before starting.
//!
//! Latency: SV2 `SubmitShares.Success` acknowledges every sequence number up to
//! `last_sequence_number`; each share's latency runs from its submit to the first success
//! covering it. SV1: from `mining.submit` to the arrival of the response with its id at the
//! miner's socket (the kernel's receive timestamp, `SO_TIMESTAMPNS`), as an ASIC with its own
//! CPU would see it: thousands of simulated miners share this process's few threads, and the
//! time a response waits for one of them is the generator's delay, not the server's. That
//! time is in the report too: `read_latency_ms` runs to the generator reading the response.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::MinerError;
use crate::identity::default_address;
use crate::pace::Pacing;
use crate::report::{since_clock_base, MinerStats, Reporter};
use crate::shell::{run_sv1, run_sv2, Endpoint, Sv2Connect};
use crate::sv1::{Sv1Config, Sv1Miner};
use crate::sv2::{ChannelRequest, Sv2Config, Sv2Miner};

/// Default `nominal_hash_rate` of load connections (h/s): tiny, for easy targets.
pub const DEFAULT_LOAD_HASHRATE: f32 = 1.0;
/// How long stopped connections get to wind down before the report is written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Granularity of the connection ramp.
const RAMP_TICK: Duration = Duration::from_millis(10);

/// What the load goes to.
#[derive(Debug, Clone)]
pub enum LoadTarget {
    /// An SV2 pool.
    Sv2 {
        /// How to connect.
        connect: Sv2Connect,
        /// The channel each connection opens.
        channel: ChannelRequest,
    },
    /// An SV1 server (the proxy).
    Sv1 {
        /// The server.
        endpoint: Endpoint,
    },
}

/// A load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server.
    pub target: LoadTarget,
    /// Connections to open.
    pub connections: usize,
    /// Aggregate shares per second.
    pub rate: f64,
    /// How long to run (from the first connection).
    pub duration: Duration,
    /// Connections opened per second.
    pub connect_rate: f64,
    /// SV2 `nominal_hash_rate` advertised by each connection.
    pub nominal_hashrate: f32,
    /// SV1 only (an SV2 target keeps `rate`): each connection submits its next share as
    /// soon as the last one is answered (`rate` is then not used).
    pub closed_loop: bool,
}

/// Connection counts of a [`LoadReport`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConnectionCounts {
    /// Connections opened (SV2: channel open; SV1: subscribed and authorized).
    pub established: u64,
    /// Connections that never got that far.
    pub failed: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Acknowledged shares measured.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// Percentiles (nearest rank) of latencies in microseconds.
    pub fn from_micros(mut us: Vec<u32>) -> Self {
        if us.is_empty() {
            return Latency::default();
        }
        us.sort_unstable();
        let n = us.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            f64::from(us[rank - 1]) / 1000.0
        };
        Latency {
            samples: n as u64,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: f64::from(us[n - 1]) / 1000.0,
        }
    }
}

/// The JSON report of a load run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadReport {
    /// Connections established / failed.
    pub connections: ConnectionCounts,
    /// Shares submitted.
    pub submitted: u64,
    /// Shares acknowledged.
    pub acknowledged: u64,
    /// Rejected shares by error code.
    pub rejected: BTreeMap<String, u64>,
    /// Acknowledged shares per second over the run.
    pub accepted_per_s: f64,
    /// Submit-to-acknowledgement latency (SV1: to the response's arrival at the socket).
    pub latency_ms: Latency,
    /// SV1: submit to the generator reading the response (includes the generator's own
    /// delay); absent where the arrival time is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_latency_ms: Option<Latency>,
    /// Errors that ended connections, by kind ([`MinerError::kind`]).
    pub errors: BTreeMap<String, u64>,
    /// Seconds the run lasted.
    pub elapsed_s: f64,
    /// Hashes computed.
    pub hashes: u64,
    /// Every measured share in submit order: (microseconds from the start of the run to its
    /// submit, saturating after 71 minutes; its latency in microseconds, as in
    /// `latency_ms`). Not in the JSON: written
    /// apart by [`LoadReport::write_timeline`] (`strata-miner load --timeline FILE`).
    #[serde(skip)]
    pub timeline: Vec<(u32, u32)>,
}

impl LoadReport {
    /// Writes [`LoadReport::timeline`], one share per line: `SUBMIT_MS LATENCY_US` (submit
    /// time in milliseconds from the start of the run, three decimals). Shows whether a
    /// latency tail is spread over the run or comes in bursts, and when.
    pub fn write_timeline(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for &(at_us, latency_us) in &self.timeline {
            writeln!(out, "{}.{:03} {latency_us}", at_us / 1000, at_us % 1000)?;
        }
        out.flush()
    }

    /// One line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The result of one connection.
type ConnResult = (MinerStats, Result<(), MinerError>);

async fn one_connection(
    index: usize,
    target: Arc<LoadTarget>,
    pacing: Pacing,
    nominal_hashrate: f32,
    stop: CancellationToken,
) -> ConnResult {
    let user = format!("{}.load{index}", default_address());
    let reporter = Reporter::silent();
    match &*target {
        LoadTarget::Sv2 { connect, channel } => {
            let config = Sv2Config {
                index,
                user,
                channel: *channel,
                nominal_hashrate,
                record_latency: true,
            };
            let mut miner = match Sv2Miner::new(config) {
                Ok(m) => m,
                Err(e) => return (MinerStats::default(), Err(e)),
            };
            let r = run_sv2(&mut miner, connect, pacing, &reporter, &stop).await;
            (miner.stats().clone(), r)
        }
        LoadTarget::Sv1 { endpoint } => {
            let mut config = Sv1Config::new(index, user);
            config.record_latency = true;
            let mut miner = Sv1Miner::new(config);
            let r = run_sv1(&mut miner, endpoint, pacing, &reporter, &stop).await;
            (miner.stats().clone(), r)
        }
    }
}

/// Runs a load test until `config.duration` elapsed or `stop` is cancelled, and reports.
pub async fn run_load(config: LoadConfig, stop: CancellationToken) -> LoadReport {
    // the timeline's clock starts no later than the run
    crate::report::clock_base();
    let start = Instant::now();
    let n = config.connections;
    let per_conn_rate = config.rate / n.max(1) as f64;
    // the closed loop holds a connection's hashing while its share waits (SV1 only)
    let closed = config.closed_loop && matches!(config.target, LoadTarget::Sv1 { .. });
    let pacing = if closed {
        Pacing::ClosedLoop
    } else {
        Pacing::ShareRate(per_conn_rate)
    };
    let target = Arc::new(config.target.clone());
    let mut tasks: JoinSet<ConnResult> = JoinSet::new();
    let deadline = tokio::time::Instant::from_std(start + config.duration);
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => stop.cancel(),
                () = stop.cancelled() => {}
            }
        })
    };
    // ramp: `connect_rate` per second, in ticks of RAMP_TICK
    let per_tick = (config.connect_rate * RAMP_TICK.as_secs_f64()).max(1e-9);
    let mut credit = 1.0f64;
    let mut spawned = 0usize;
    let mut ticker = tokio::time::interval(RAMP_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while spawned < n && !stop.is_cancelled() {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => break,
        }
        credit += per_tick;
        while credit >= 1.0 && spawned < n {
            credit -= 1.0;
            tasks.spawn(one_connection(
                spawned,
                target.clone(),
                pacing,
                config.nominal_hashrate,
                stop.clone(),
            ));
            spawned += 1;
        }
    }
    stop.cancelled().await;
    let elapsed = start.elapsed();
    let mut total = MinerStats::default();
    let mut counts = ConnectionCounts::default();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((stats, r)) => {
                    if stats.established {
                        counts.established += 1;
                    } else {
                        counts.failed += 1;
                    }
                    if let Err(e) = r {
                        *errors.entry(e.kind().to_owned()).or_default() += 1;
                    }
                    total.merge(&stats);
                }
                Err(e) => {
                    counts.failed += 1;
                    *errors.entry(format!("task: {e}")).or_default() += 1;
                }
            }
        }
    })
    .await;
    if drained.is_err() {
        let left = tasks.len() as u64;
        counts.failed += left;
        *errors.entry("shutdown-timeout".into()).or_default() += left;
        tasks.abort_all();
    }
    timer.abort();
    let secs = elapsed.as_secs_f64();
    let start_us = since_clock_base(start);
    let mut timeline: Vec<(u32, u32)> = total
        .latency_at_us
        .iter()
        .map(|at| at.saturating_sub(start_us))
        .zip(total.latencies_us.iter().copied())
        .collect();
    timeline.sort_unstable();
    LoadReport {
        connections: counts,
        submitted: total.submitted,
        acknowledged: total.acknowledged,
        rejected: total.rejected.clone(),
        accepted_per_s: if secs > 0.0 {
            ((total.acknowledged as f64 / secs) * 1000.0).round() / 1000.0
        } else {
            0.0
        },
        latency_ms: Latency::from_micros(std::mem::take(&mut total.latencies_us)),
        read_latency_ms: (!total.read_latencies_us.is_empty())
            .then(|| Latency::from_micros(std::mem::take(&mut total.read_latencies_us))),
        errors,
        elapsed_s: (secs * 1000.0).round() / 1000.0,
        hashes: total.hashes,
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let l = Latency::from_micros((1..=100).map(|i| i * 1000).collect());
        assert_eq!(l.samples, 100);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        let l = Latency::from_micros(vec![1500]);
        assert_eq!((l.p50, l.max), (1.5, 1.5));
        assert_eq!(Latency::from_micros(vec![]), Latency::default());
    }
}
