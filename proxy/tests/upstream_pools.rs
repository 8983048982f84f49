//! The upstream side against real strata pools (embedded regtest node) on 127.0.0.1:
//! channel and work, shares mined for the work and accepted, failover to a backup and back,
//! a pool with the wrong authority key, a "pool" answering garbage.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{free_port, pool_config};
use strata_pool::server::RunningPool;
use strata_proxy::upstream::{
    run_upstreams, PoolUrl, ShareRoute, UpstreamCommand, UpstreamConfig, UpstreamEvent,
};
use strata_proxy::work::{ForwardShare, UpstreamWork};
use strata_work::coinbase::txid_from_parts;
use strata_work::extranonce::MinerId;
use strata_work::header::Header;
use strata_work::merkle::merkle_root_from_path;
use strata_work::target::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

async fn start_pool(dir: &Path, listen: SocketAddr) -> RunningPool {
    common::start_pool(pool_config(dir, listen)).await
}

fn url(pool: &RunningPool) -> PoolUrl {
    PoolUrl {
        host: "127.0.0.1".into(),
        port: pool.sv2_addr.port(),
        authority: pool.authority,
    }
}

fn config(pools: Vec<PoolUrl>) -> UpstreamConfig {
    UpstreamConfig {
        pools,
        user_identity: "farm".into(),
        // ~1e-5 difficulty at 6 shares/min: a few thousand hashes per share
        nominal_hashrate: 5_000.0,
        backoff_min: Duration::from_millis(500),
        backoff_max: Duration::from_secs(2),
        probe_interval: Duration::from_millis(300),
        stable_for: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(2),
        ..UpstreamConfig::default()
    }
}

struct Upstream {
    events: mpsc::Receiver<UpstreamEvent>,
    commands: mpsc::UnboundedSender<UpstreamCommand>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// The last work seen.
    latest: Option<UpstreamWork>,
    /// The route of the last `Active` seen.
    route: Option<ShareRoute>,
}

fn spawn(cfg: UpstreamConfig) -> Upstream {
    let (etx, events) = mpsc::channel(1024);
    let (commands, crx) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_upstreams(cfg, etx, crx, shutdown.clone()));
    Upstream {
        events,
        commands,
        shutdown,
        task,
        latest: None,
        route: None,
    }
}

impl Upstream {
    /// The next event matching `f` within `secs` (others are skipped, and returned too).
    async fn wait_for(
        &mut self,
        secs: u64,
        what: &str,
        mut f: impl FnMut(&UpstreamEvent) -> bool,
    ) -> (UpstreamEvent, Vec<UpstreamEvent>) {
        let mut skipped = vec![];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let next = tokio::time::timeout_at(deadline, self.events.recv()).await;
            if let Ok(Some(e)) = &next {
                self.note(e);
            }
            match next {
                Ok(Some(ev)) if f(&ev) => return (ev, skipped),
                Ok(Some(ev)) => skipped.push(ev),
                Ok(None) => panic!("upstream task ended while waiting for {what}"),
                Err(_) => panic!("no {what} within {secs} s; saw {skipped:#?}"),
            }
        }
    }

    /// Waits for `Active` on `pool`; returns its epoch, the event and what came before.
    async fn active(&mut self, pool: usize, secs: u64) -> (u64, UpstreamEvent, Vec<UpstreamEvent>) {
        let (ev, skipped) = self
            .wait_for(
                secs,
                &format!("Active on pool {pool}"),
                |e| matches!(e, UpstreamEvent::Active { pool: p, .. } if *p == pool),
            )
            .await;
        let UpstreamEvent::Active { epoch, .. } = ev else {
            unreachable!()
        };
        (epoch, ev, skipped)
    }

    async fn work(&mut self, epoch: u64) -> UpstreamWork {
        let (ev, _) = self
            .wait_for(
                20,
                "work",
                |e| matches!(e, UpstreamEvent::Work { channel: 0, work: w } if w.epoch == epoch),
            )
            .await;
        let UpstreamEvent::Work { work: w, .. } = ev else {
            unreachable!()
        };
        w
    }

    /// Submits `share` through the route of the last `Active` seen; returns its result.
    async fn submit(&mut self, share: ForwardShare) -> (bool, Option<String>) {
        let route = self.route.as_ref().expect("an Active event seen");
        if let Err((_, code)) = route.submit(share.clone()) {
            return (false, Some(code.to_string()));
        }
        let (ev, _) = self
            .wait_for(
                20,
                "share result",
                |e| matches!(e, UpstreamEvent::ShareResult { share: s, .. } if *s == share),
            )
            .await;
        let UpstreamEvent::ShareResult { accepted, code, .. } = ev else {
            unreachable!()
        };
        (accepted, code)
    }

    /// Events that arrived so far (the latest work is remembered).
    fn drain(&mut self) -> Vec<UpstreamEvent> {
        let mut events = vec![];
        while let Ok(e) = self.events.try_recv() {
            self.note(&e);
            events.push(e);
        }
        events
    }

    /// Remembers the latest work of channel 0 and the latest route.
    fn note(&mut self, e: &UpstreamEvent) {
        match e {
            UpstreamEvent::Work {
                channel: 0,
                work: w,
            } => self.latest = Some(w.clone()),
            UpstreamEvent::Active { route, .. } => self.route = Some(route.clone()),
            _ => {}
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Mines a share for `work` the way a miner behind the proxy would: coinbase prefix ‖
/// upstream extranonce prefix ‖ our extranonce ‖ suffix, merkle root up the path, nonce
/// ground until the header meets the upstream target.
fn mine(work: &UpstreamWork, tag: u32, worker: &str) -> ForwardShare {
    let mut extranonce = vec![0u8; usize::from(work.extranonce_size)];
    extranonce[..4].copy_from_slice(&tag.to_be_bytes());
    let txid = txid_from_parts(
        &work.coinbase_prefix,
        &[&work.extranonce_prefix, &extranonce],
        &work.coinbase_suffix,
    );
    let mut h = Header {
        version: work.version,
        prev_hash: work.prev_hash,
        merkle_root: merkle_root_from_path(txid, work.merkle_path.iter()),
        ntime: work.min_ntime,
        nbits: work.nbits,
        nonce: 0,
    };
    while !h.meets(&work.upstream_target) {
        h.nonce += 1;
    }
    ForwardShare {
        channel: 0,
        miner: MinerId(tag),
        worker: worker.into(),
        epoch: work.epoch,
        job_id: work.job_id,
        nonce: h.nonce,
        ntime: h.ntime,
        version: h.version,
        extranonce: Bytes::from(extranonce),
        difficulty: work.upstream_target.difficulty(),
        received: std::time::Instant::now(),
    }
}

/// A nonce that does not meet the target (for a rejection).
fn miss(work: &UpstreamWork, tag: u32) -> ForwardShare {
    let mut s = mine(work, tag, "rig-bad");
    let mut h = Header {
        version: s.version,
        prev_hash: work.prev_hash,
        merkle_root: merkle_root_from_path(
            txid_from_parts(
                &work.coinbase_prefix,
                &[&work.extranonce_prefix, &s.extranonce],
                &work.coinbase_suffix,
            ),
            work.merkle_path.iter(),
        ),
        ntime: s.ntime,
        nbits: work.nbits,
        nonce: 0,
    };
    // on regtest the network target is easier than a share target: a hash that met it would
    // be a block, which the pool accepts whatever the share target
    let network = Target::from_compact(work.nbits).unwrap();
    while h.meets(&work.upstream_target) || h.meets(&network) {
        h.nonce += 1;
    }
    s.nonce = h.nonce;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_gets_work_and_a_mined_share_is_accepted_with_the_worker_name() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let mut up = spawn(config(vec![url(&pool)]));

    let (epoch, active, _) = up.active(0, 20).await;
    let UpstreamEvent::Active {
        channel_id,
        extranonce_prefix,
        extranonce_size,
        url: u,
        ..
    } = &active
    else {
        unreachable!()
    };
    assert_eq!(*extranonce_size, 10, "pool default: 16 - 6 prefix bytes");
    assert_eq!(extranonce_prefix.len(), 6);
    assert_ne!(*channel_id, 0);
    assert_eq!(u, &url(&pool).to_string());

    let work = up.work(epoch).await;
    assert!(work.clean);
    assert_eq!(&work.extranonce_prefix, extranonce_prefix);
    assert_eq!(work.extranonce_size, 10);
    assert!(!work.coinbase_prefix.is_empty() && !work.coinbase_suffix.is_empty());

    // a share above the target: the pool's own error code comes back
    let (accepted, code) = up.submit(miss(&work, 1)).await;
    assert!(!accepted);
    assert_eq!(code.as_deref(), Some("difficulty-too-low"));
    // a share of an unknown epoch is never forwarded
    let mut old = mine(&work, 2, "rig1");
    old.epoch = epoch + 100;
    assert_eq!(
        up.submit(old).await,
        (false, Some("stale-upstream".to_string()))
    );
    // a real share: accepted (the pool checked header, coinbase and merkle root)
    let (accepted, code) = up.submit(mine(&work, 3, "rig1")).await;
    assert!(accepted, "{code:?}");

    // the pool credited it to farm/rig1 (extension 0x0002 user identity)
    let workers: serde_json::Value =
        reqwest::get(format!("http://{}/api/v1/workers", pool.api_addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        workers
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker"] == "farm/rig1"),
        "{workers}"
    );

    up.stop().await;
    pool.shutdown.cancel();
    pool.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_backup_and_returns_to_the_restarted_primary() {
    logs();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let port = free_port();
    let primary_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let primary = start_pool(d1.path(), primary_addr).await;
    let backup = start_pool(d2.path(), "127.0.0.1:0".parse().unwrap()).await;
    let mut up = spawn(config(vec![url(&primary), url(&backup)]));

    let (e1, _, _) = up.active(0, 20).await;
    let w1 = up.work(e1).await;
    let stale_later = mine(&w1, 10, "rig1");
    assert!(up.submit(mine(&w1, 11, "rig1")).await.0);

    // the primary dies: Down, then Active on the backup within seconds
    let killed = tokio::time::Instant::now();
    primary.shutdown.cancel();
    primary.wait().await;
    let (e2, _, skipped) = up.active(1, 10).await;
    let switch = killed.elapsed();
    assert!(switch < Duration::from_secs(5), "switch took {switch:?}");
    assert!(
        skipped.iter().any(|e| matches!(
            e,
            UpstreamEvent::Down {
                pool: 0,
                was_active: true,
                ..
            }
        )),
        "{skipped:#?}"
    );
    assert!(e2 > e1);
    let w2 = up.work(e2).await;
    assert!(w2.clean);
    // a share of the old epoch is refused without reaching any pool
    assert_eq!(
        up.submit(stale_later).await,
        (false, Some("stale-upstream".to_string()))
    );
    assert!(up.submit(mine(&w2, 12, "rig1")).await.0);

    // the primary comes back on the same port: after `stable_for` the upstream returns
    let primary = start_pool(d1.path(), primary_addr).await;
    let back = tokio::time::Instant::now();
    let (e3, _, _) = up.active(0, 30).await;
    assert!(
        back.elapsed() >= Duration::from_secs(1),
        "switched back before stable_for: {:?}",
        back.elapsed()
    );
    assert!(e3 > e2);
    let w3 = up.work(e3).await;
    assert!(w3.clean);
    assert!(up.submit(mine(&w3, 13, "rig1")).await.0);

    up.stop().await;
    for p in [primary, backup] {
        p.shutdown.cancel();
        p.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_the_wrong_authority_key_is_skipped_with_a_clear_error() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let mut wrong = url(&pool);
    wrong.authority = strata_noise::AuthorityKeypair::generate().public_key();
    let mut up = spawn(config(vec![wrong, url(&pool)]));

    let (epoch, _, skipped) = up.active(1, 15).await;
    let reason = skipped
        .iter()
        .find_map(|e| match e {
            UpstreamEvent::Down {
                pool: 0,
                reason,
                was_active: false,
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .expect("pool 0 reported down");
    assert!(
        reason.contains("noise handshake") && reason.contains("authority key"),
        "{reason}"
    );
    let work = up.work(epoch).await;
    // probes of pool 0 keep failing; pool 1 stays active and takes shares
    assert!(up.submit(mine(&work, 1, "rig1")).await.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = up.drain();
    assert!(
        !events.iter().any(|e| matches!(
            e,
            UpstreamEvent::Active { .. } | UpstreamEvent::Down { pool: 1, .. }
        )),
        "{events:#?}"
    );
    up.stop().await;
    pool.shutdown.cancel();
    pool.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_answering_garbage_is_marked_down_without_hammering_or_affecting_the_other() {
    logs();
    // a "pool" that answers every connection with junk
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let fake_task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = fake.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut act1 = [0u8; 64];
                let _ = s.read_exact(&mut act1).await;
                let _ = s.write_all(&[0x5a; 512]).await;
                let _ = s.flush().await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let garbage = PoolUrl {
        host: "127.0.0.1".into(),
        port: fake_addr.port(),
        authority: pool.authority,
    };
    let mut up = spawn(config(vec![garbage, url(&pool)]));

    let (epoch, _, skipped) = up.active(1, 15).await;
    assert!(
        skipped.iter().any(|e| matches!(
            e,
            UpstreamEvent::Down { pool: 0, reason, .. } if reason.contains("noise")
        )),
        "{skipped:#?}"
    );
    let work = up.work(epoch).await;
    assert!(up.submit(mine(&work, 1, "rig1")).await.0);

    // probes go on with backoff (0.5 s doubling to 2 s, jittered): a handful of
    // connections in 3 s, not hundreds
    let before = accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let probes = accepted.load(Ordering::SeqCst) - before;
    assert!((1..=6).contains(&probes), "{probes} connections in 3 s");
    // and the good pool is still the active one, untouched
    let events = up.drain();
    assert!(
        !events.iter().any(|e| matches!(
            e,
            UpstreamEvent::Active { .. } | UpstreamEvent::Down { pool: 1, .. }
        )),
        "{events:#?}"
    );
    let w = up.latest.clone().unwrap();
    assert_eq!(w.epoch, work.epoch);
    assert!(up.submit(mine(&w, 2, "rig1")).await.0);

    up.stop().await;
    fake_task.abort();
    pool.shutdown.cancel();
    pool.wait().await;
}

/// Mines a share on channel `channel` of `epoch` and submits it until the pool accepts one
/// (on regtest a share may find a block, which makes the other channels' work stale).
async fn accepted_on(up: &mut Upstream, seen: &mut Vec<UpstreamEvent>, channel: usize, epoch: u64) {
    for attempt in 0..5u32 {
        seen.extend(up.drain());
        let latest = seen.iter().rev().find_map(|e| match e {
            UpstreamEvent::Work { channel: c, work } if *c == channel && work.epoch == epoch => {
                Some(work.clone())
            }
            _ => None,
        });
        let work = match latest {
            Some(w) => w,
            None => {
                let (ev, skipped) = up
                    .wait_for(20, &format!("work of channel {channel}"), |e| {
                        matches!(e, UpstreamEvent::Work { channel: c, work } if *c == channel && work.epoch == epoch)
                    })
                    .await;
                seen.extend(skipped);
                seen.push(ev.clone());
                let UpstreamEvent::Work { work, .. } = ev else {
                    unreachable!()
                };
                work
            }
        };
        let mut share = mine(&work, 100 * channel as u32 + attempt, "rig");
        share.channel = channel;
        let route = up.route.as_ref().expect("an Active event seen");
        if let Err((_, code)) = route.submit(share.clone()) {
            panic!("share refused before reaching the pool: {code}");
        }
        let (ev, skipped) = up
            .wait_for(
                20,
                "share result",
                |e| matches!(e, UpstreamEvent::ShareResult { share: s, .. } if *s == share),
            )
            .await;
        // work that came meanwhile is kept for the next attempt
        seen.extend(skipped);
        match ev {
            UpstreamEvent::ShareResult { accepted: true, .. } => return,
            UpstreamEvent::ShareResult {
                code: Some(code), ..
            } if code == "stale-share" => {
                // a block was found meanwhile: wait for the new work if it is not there yet
                let fresh = seen.iter().any(|e| {
                    matches!(e, UpstreamEvent::Work { channel: c, work: w }
                        if *c == channel && w.clean && w.prev_hash != work.prev_hash)
                });
                if !fresh {
                    let (ev, skipped) = up
                        .wait_for(20, "new work after a block", |e| {
                            matches!(e, UpstreamEvent::Work { channel: c, work: w }
                                if *c == channel && w.prev_hash != work.prev_hash)
                        })
                        .await;
                    seen.extend(skipped);
                    seen.push(ev);
                }
            }
            other => panic!("channel {channel}: {other:?}"),
        }
    }
    panic!("no share accepted on channel {channel}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_channels_on_one_connection_each_with_its_work_and_shares_and_all_reopen_after_failover(
) {
    logs();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = start_pool(d1.path(), "127.0.0.1:0".parse().unwrap()).await;
    let backup = start_pool(d2.path(), "127.0.0.1:0".parse().unwrap()).await;
    let mut up = spawn(UpstreamConfig {
        return_to_preferred: false,
        ..config(vec![url(&primary), url(&backup)])
    });
    let (epoch, active, _) = up.active(0, 20).await;
    let UpstreamEvent::Active {
        channel_id: ch0, ..
    } = active
    else {
        unreachable!()
    };

    // the hub asks for three channels: two more open on the same connection
    up.commands.send(UpstreamCommand::Channels(3)).unwrap();
    let mut opened = vec![];
    let mut seen = vec![];
    while opened.len() < 2 {
        let (ev, skipped) = up
            .wait_for(20, "further channels", |e| {
                matches!(e, UpstreamEvent::ChannelOpened { .. })
            })
            .await;
        seen.extend(skipped);
        let UpstreamEvent::ChannelOpened {
            epoch: e,
            channel,
            channel_id,
            extranonce_prefix,
            ..
        } = ev
        else {
            unreachable!()
        };
        assert_eq!(e, epoch);
        opened.push((channel, channel_id, extranonce_prefix));
    }
    opened.sort_by_key(|o| o.0);
    assert_eq!(opened.iter().map(|o| o.0).collect::<Vec<_>>(), vec![1, 2]);
    let mut ids = vec![ch0, opened[0].1, opened[1].1];
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct upstream channels");
    let stats: serde_json::Value =
        reqwest::get(format!("http://{}/api/v1/stats", primary.api_addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        stats["connections"].as_u64(),
        Some(1),
        "one connection: {stats}"
    );

    // each channel has its own work (its own extranonce prefix); a share mined for it is
    // accepted on it
    seen.extend(up.drain());
    for (channel, _, prefix) in &opened {
        let w = seen.iter().rev().find_map(|e| match e {
            UpstreamEvent::Work { channel: c, work } if c == channel => Some(work),
            _ => None,
        });
        if let Some(w) = w {
            assert_eq!(&w.extranonce_prefix, prefix);
        }
    }
    for channel in 0..3 {
        accepted_on(&mut up, &mut seen, channel, epoch).await;
    }
    // per-channel UpdateChannel is accepted silently
    up.commands
        .send(UpstreamCommand::UpdateHashrate {
            channel: 2,
            hashrate: 9_000.0,
        })
        .unwrap();

    // the primary dies: all three channels reopen on the backup
    primary.shutdown.cancel();
    primary.wait().await;
    let (epoch2, _, _) = up.active(1, 30).await;
    assert!(epoch2 > epoch);
    let mut reopened = vec![];
    let mut seen = vec![];
    while reopened.len() < 2 {
        let (ev, skipped) = up
            .wait_for(
                20,
                "channels on the backup",
                |e| matches!(e, UpstreamEvent::ChannelOpened { epoch: e, .. } if *e == epoch2),
            )
            .await;
        seen.extend(skipped);
        if let UpstreamEvent::ChannelOpened { channel, .. } = ev {
            reopened.push(channel);
        }
    }
    reopened.sort_unstable();
    assert_eq!(reopened, vec![1, 2]);
    for channel in 0..3 {
        accepted_on(&mut up, &mut seen, channel, epoch2).await;
    }

    up.stop().await;
    backup.shutdown.cancel();
    backup.wait().await;
}
