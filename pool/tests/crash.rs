//! `kill -9` of the pool loses no acknowledged share: miners count every share the pool
//! acknowledged (`SubmitShares.Success`), the pool process is SIGKILLed while they submit,
//! and the ledger it leaves behind holds at least as many shares for each miner.
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::process::PoolProcess;
use strata_miner::identity::default_user;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_pool::ledger::{Ledger, LedgerConfig};
use tokio_util::sync::CancellationToken;

const MINERS: usize = 4;

fn accepted(line: &str) -> Option<(usize, u64)> {
    let rest = line.strip_prefix("share accepted ")?;
    let field = |k: &str| rest.split_whitespace().find_map(|kv| kv.strip_prefix(k));
    Some((
        field("miner=")?.parse().ok()?,
        field("acked=")?.parse().ok()?,
    ))
}

/// One life of the pool: start it on `dir`, mine until `target` acknowledgements, SIGKILL it.
/// Returns the shares acknowledged to each miner.
async fn one_life(dir: &std::path::Path, target: u64) -> [u64; MINERS] {
    let env = [("STRATA_POOL_VARDIFF__SHARES_PER_MINUTE", "600".to_string())];
    let mut pool = PoolProcess::start(dir, &env, false);
    let (addr, key) = (pool.sv2.clone(), pool.key.clone());

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reporter = Reporter::new(Sink::Channel(tx), None, CancellationToken::new());
    let stop = CancellationToken::new();
    let mut handles = vec![];
    for i in 0..MINERS {
        let connect = Sv2Connect {
            endpoint: Endpoint::parse(&addr).unwrap(),
            authority: Some(key.parse().unwrap()),
            options: Sv2Options::default(),
        };
        let cfg = Sv2Config {
            index: i,
            user: default_user(i),
            channel: if i % 2 == 0 {
                ChannelRequest::Standard
            } else {
                ChannelRequest::Extended {
                    min_extranonce_size: 4,
                }
            },
            nominal_hashrate: 20_000.0,
            record_latency: false,
        };
        let reporter = reporter.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let mut miner = Sv2Miner::new(cfg).unwrap();
            let _ = run_sv2(
                &mut miner,
                &connect,
                Pacing::Hashrate(20_000.0),
                &reporter,
                &stop,
            )
            .await;
        }));
    }

    let mut acked = [0u64; MINERS];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while acked.iter().sum::<u64>() < target {
        let line = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("miners get shares acknowledged")
            .unwrap();
        if let Some((i, n)) = accepted(&line) {
            acked[i] = acked[i].max(n);
        }
    }
    // right after an acknowledgement, in the middle of the flow of shares
    pool.kill_9();
    stop.cancel();
    for h in handles {
        h.await.unwrap();
    }
    // acknowledgements that raced with the kill count too
    while let Ok(line) = rx.try_recv() {
        if let Some((i, n)) = accepted(&line) {
            acked[i] = acked[i].max(n);
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_share() {
    let dir = tempfile::tempdir().unwrap();
    // three lives on one data directory: each restart recovers the ledger and the chain
    let mut acked = [0u64; MINERS];
    for _ in 0..3 {
        let life = one_life(dir.path(), 60).await;
        for (a, l) in acked.iter_mut().zip(life) {
            *a += l;
        }
    }
    let (ledger, thread) =
        Ledger::open(LedgerConfig::new(dir.path().join("ledger.sqlite"))).unwrap();
    let totals = ledger.totals().await.unwrap();
    for (i, &n) in acked.iter().enumerate() {
        let user = default_user(i);
        let stored = totals
            .workers
            .iter()
            .find(|w| w.worker == user)
            .map_or(0, |w| w.shares);
        assert!(
            stored >= n,
            "miner {i}: {n} shares acknowledged, {stored} in the ledger"
        );
    }
    assert!(totals.shares_accepted >= acked.iter().sum::<u64>());
    drop(ledger);
    thread.join().unwrap();
}
