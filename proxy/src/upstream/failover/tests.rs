//! Unit tests of the failover core on simulated time: no sockets, no sleeps.

use std::sync::Arc;

use strata_work::target::Target;

use super::*;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn url(port: u16) -> PoolUrl {
    PoolUrl {
        host: "127.0.0.1".into(),
        port,
        authority: strata_noise::AuthorityKeypair::generate().public_key(),
    }
}

fn config(pools: usize) -> UpstreamConfig {
    UpstreamConfig {
        pools: (0..pools).map(|i| url(3000 + i as u16)).collect(),
        backoff_min: S,
        backoff_max: 8 * S,
        probe_interval: 30 * S,
        stable_for: 60 * S,
        drain_timeout: 5 * S,
        ..UpstreamConfig::default()
    }
}

fn info(index: usize, channel_id: u32) -> ChannelInfo {
    ChannelInfo {
        index,
        channel_id,
        extranonce_prefix: Bytes::from(vec![channel_id as u8; 6]),
        extranonce_size: 10,
        target: Target::MAX,
        group_channel_id: 0,
    }
}

fn work(job_id: u32) -> UpstreamWork {
    let parts = || Bytes::from_static(&[1]);
    UpstreamWork {
        epoch: 0,
        seq: u64::from(job_id),
        job_id,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        version_mask: 0x1fff_e000,
        prev_hash: [1; 32],
        nbits: 0x207f_ffff,
        min_ntime: 1,
        coinbase_prefix: parts(),
        coinbase_suffix: parts(),
        merkle_path: Arc::from(vec![]),
        extended: strata_work::channel::ExtendedWork::new(parts(), parts(), Arc::from(vec![])),
        extranonce_prefix: Bytes::from(vec![0; 6]),
        extranonce_size: 10,
        id_width: 0,
        extranonce2_size: 0,
        upstream_target: Target::MAX,
        clean: false,
        route: None,
    }
}

/// The core with a clock.
struct Sim {
    core: Failover,
    now: Instant,
}

impl Sim {
    fn new(cfg: UpstreamConfig) -> (Self, Vec<Action>) {
        let now = Instant::now();
        let mut core = Failover::new(&cfg, now);
        let mut out = vec![];
        core.on_timer(now, &mut out);
        (Sim { core, now }, out)
    }

    /// Advances the clock by `d` and fires the timer.
    fn after(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        let mut out = vec![];
        self.core.on_timer(self.now, &mut out);
        out
    }

    /// Advances to the core's next wake-up (which must be in the future) and fires.
    fn wake(&mut self) -> Vec<Action> {
        let t = self.core.next_wake().expect("a wake-up");
        assert!(t > self.now, "wake-up in the past");
        self.after(t - self.now)
    }

    fn ev(&mut self, id: u64, ev: ConnEvent) -> Vec<Action> {
        let mut out = vec![];
        self.core.on_conn_event(id, ev, self.now, 0.5, &mut out);
        if let Some(t) = self.core.next_wake() {
            assert!(t > self.now, "wake-up in the past after {out:?}");
        }
        out
    }

    fn cmd(&mut self, cmd: UpstreamCommand) -> Vec<Action> {
        let mut out = vec![];
        self.core.on_command(cmd, self.now, &mut out);
        out
    }

    fn ended(&mut self, id: u64) -> Vec<Action> {
        self.ev(
            id,
            ConnEvent::Ended {
                reason: "connection lost".into(),
                redirect: None,
            },
        )
    }

    /// Connection `id` opens channel 0 and gets work.
    fn up(&mut self, id: u64) -> Vec<Action> {
        let mut out = self.ev(id, ConnEvent::Opened(info(0, id as u32)));
        out.extend(self.ev(
            id,
            ConnEvent::Work {
                channel: 0,
                work: work(1),
            },
        ));
        out
    }
}

/// The (id, pool, role) of each Connect.
fn connects(out: &[Action]) -> Vec<(u64, usize, Role)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Connect { id, pool, role, .. } => Some((*id, *pool, *role)),
            _ => None,
        })
        .collect()
}

/// The (epoch, pool) of each Activate.
fn activates(out: &[Action]) -> Vec<(u64, usize)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Activate { epoch, pool, .. } => Some((*epoch, *pool)),
            _ => None,
        })
        .collect()
}

fn downs(out: &[Action]) -> Vec<(usize, bool)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Emit(UpstreamEvent::Down {
                pool, was_active, ..
            }) => Some((*pool, *was_active)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_primary_is_connected_first_and_its_work_carries_the_epoch() {
    let (mut sim, out) = Sim::new(config(2));
    assert_eq!(connects(&out), vec![(1, 0, Role::Candidate)]);
    assert_eq!(
        sim.core.next_wake(),
        None,
        "nothing to do until the connection answers"
    );
    let out = sim.up(1);
    assert_eq!(activates(&out), vec![(1, 0)]);
    assert!(
        matches!(out.last(), Some(Action::Emit(UpstreamEvent::Work { channel: 0, work })) if work.epoch == 1)
    );
    assert_eq!(sim.core.active(), Some((1, 0)));
    assert_eq!(
        sim.core.next_wake(),
        None,
        "on the preferred pool: no probe"
    );
}

#[test]
fn the_primary_dies_and_the_backup_takes_over_at_once() {
    let (mut sim, _) = Sim::new(config(2));
    sim.up(1);
    sim.after(10 * S);
    let out = sim.ended(1);
    assert_eq!(out[0], Action::Release { id: 1 });
    assert_eq!(downs(&out), vec![(0, true)]);
    // no wait: the backup is connected in the same step
    assert_eq!(connects(&out), vec![(2, 1, Role::Candidate)]);
    let out = sim.up(2);
    assert_eq!(activates(&out), vec![(2, 1)]);
    assert_eq!(sim.core.epoch(), 2);
    // the primary is retried after its backoff (1 s, jitter 0.5 = none)
    assert_eq!(sim.core.retry_at(0), Some(sim.now + S));
}

#[test]
fn back_to_the_preferred_pool_once_it_held_stable_for() {
    let (mut sim, _) = Sim::new(config(2));
    sim.up(1);
    sim.ended(1);
    sim.up(2);
    let on_backup = sim.now;
    // the first probe: once the primary is out of backoff and probe_interval passed
    let out = sim.wake();
    assert_eq!(sim.now, on_backup + 30 * S);
    assert_eq!(connects(&out), vec![(3, 0, Role::Probe)]);
    // the probe opens and gets work: no switch yet
    sim.after(200 * MS);
    let out = sim.up(3);
    assert!(activates(&out).is_empty(), "{out:?}");
    assert!(
        !out.iter().any(|a| matches!(a, Action::Emit(_))),
        "the hub hears nothing of a probe: {out:?}"
    );
    let opened = sim.now;
    assert_eq!(sim.core.next_wake(), Some(opened + 60 * S));
    assert!(activates(&sim.after(59 * S)).is_empty());
    // after stable_for: the probe becomes active with its work (clean), the backup drains
    let out = sim.wake();
    assert_eq!(sim.now, opened + 60 * S);
    assert_eq!(
        out[..2],
        [
            Action::Drain {
                id: 2,
                timeout: 5 * S
            },
            Action::Activate {
                id: 3,
                epoch: 3,
                pool: 0,
                url: sim.core.slots[0].url.to_string(),
                info: info(0, 3),
            }
        ]
    );
    assert!(
        matches!(&out[2], Action::Emit(UpstreamEvent::Work { channel: 0, work }) if work.epoch == 3 && work.clean)
    );
    // the drained backup ends quietly
    let out = sim.ended(2);
    assert_eq!(out, vec![Action::Release { id: 2 }]);
    assert_eq!(sim.core.next_wake(), None);
}

#[test]
fn no_return_to_preferred_when_disabled() {
    let (mut sim, _) = Sim::new(UpstreamConfig {
        return_to_preferred: false,
        ..config(2)
    });
    sim.up(1);
    sim.ended(1);
    sim.up(2);
    assert_eq!(sim.core.next_wake(), None);
    assert!(connects(&sim.after(3600 * S)).is_empty());
}

#[test]
fn a_failing_probe_backs_off_and_leaves_the_backup_alone() {
    let (mut sim, _) = Sim::new(config(2));
    sim.up(1);
    sim.ended(1); // pool 0: 1st failure, 1 s
    sim.up(2);
    let out = sim.wake();
    assert_eq!(connects(&out), vec![(3, 0, Role::Probe)]);
    let out = sim.ended(3); // 2nd failure: 2 s
    assert_eq!(downs(&out), vec![(0, false)]);
    assert!(activates(&out).is_empty());
    assert_eq!(sim.core.active(), Some((2, 1)));
    // the next probe waits for the probe interval (longer than the backoff)
    let t = sim.now;
    let out = sim.wake();
    assert_eq!(sim.now, t + 30 * S);
    assert_eq!(connects(&out), vec![(4, 0, Role::Probe)]);
}

#[test]
fn backoff_doubles_to_the_cap_and_resets_after_a_connection_that_held() {
    let (mut sim, out) = Sim::new(config(1));
    let mut id = connects(&out)[0].0;
    let mut delays = vec![];
    for _ in 0..6 {
        let t = sim.now;
        assert!(connects(&sim.ended(id)).is_empty(), "in backoff");
        let out = sim.wake();
        delays.push((sim.now - t).as_secs());
        id = connects(&out)[0].0;
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 8, 8]);
    assert_eq!(sim.core.failures(0), 6);
    // a connection shorter than stable_for does not reset it
    sim.up(id);
    sim.after(59 * S);
    sim.ended(id);
    assert_eq!(sim.core.retry_at(0), Some(sim.now + 8 * S));
    id = connects(&sim.wake())[0].0;
    // one that held stable_for does: the next delay is the first again
    sim.up(id);
    sim.after(60 * S);
    sim.ended(id);
    assert_eq!(sim.core.failures(0), 1);
    assert_eq!(sim.core.retry_at(0), Some(sim.now + S));
}

#[test]
fn jitter_scales_the_delay_by_three_quarters_to_five_quarters() {
    for (jitter, ms) in [(0.0, 750), (0.5, 1000), (1.0, 1250), (f64::NAN, 1000)] {
        let (mut sim, _) = Sim::new(config(1));
        let mut out = vec![];
        sim.core.on_conn_event(
            1,
            ConnEvent::Ended {
                reason: "refused".into(),
                redirect: None,
            },
            sim.now,
            jitter,
            &mut out,
        );
        let delay = sim.core.retry_at(0).unwrap() - sim.now;
        assert_eq!(delay.as_millis(), ms, "jitter {jitter}");
    }
}

#[test]
fn a_pool_that_never_answers_holds_nothing_up() {
    let (mut sim, out) = Sim::new(config(2));
    assert_eq!(connects(&out), vec![(1, 0, Role::Candidate)]);
    // the connection's own timeouts end it; until then the core waits without spinning
    assert_eq!(sim.core.next_wake(), None);
    assert!(sim.after(4 * S).is_empty());
    sim.after(S);
    let out = sim.ev(
        1,
        ConnEvent::Ended {
            reason: "tcp connect timed out".into(),
            redirect: None,
        },
    );
    assert_eq!(downs(&out), vec![(0, false)]);
    assert_eq!(connects(&out), vec![(2, 1, Role::Candidate)]);
    sim.up(2);
    // a probe of the silent pool hangs as long as it likes: one at a time, the backup
    // stays active and no second probe starts
    let out = sim.wake();
    assert_eq!(connects(&out), vec![(3, 0, Role::Probe)]);
    assert_eq!(sim.core.next_wake(), None);
    assert!(sim.after(600 * S).is_empty());
    assert_eq!(sim.core.active(), Some((2, 1)));
    // events of connections the core does not know are ignored
    assert!(sim.up(99).is_empty());
}

#[test]
fn every_pool_down_then_one_returns() {
    let (mut sim, out) = Sim::new(config(3));
    let mut id = connects(&out)[0].0;
    // each pool fails in turn, then all are in backoff: the timer waits for the earliest
    let mut tried = vec![];
    for _ in 0..3 {
        let out = sim.ended(id);
        if let Some(&(next, pool, _)) = connects(&out).first() {
            tried.push(pool);
            id = next;
        }
    }
    assert_eq!(tried, vec![1, 2]);
    assert_eq!(sim.core.connections().count(), 0);
    assert_eq!(sim.core.next_wake(), Some(sim.now + S));
    // pool 0 is retried first (its backoff ends first), and fails again
    let out = sim.wake();
    assert_eq!(connects(&out)[0].1, 0);
    let out = sim.ended(connects(&out)[0].0);
    // then at once pool 1 (out of backoff too), which is back: it becomes active
    let (id, pool, _) = connects(&out)[0];
    assert_eq!(pool, 1);
    let out = sim.up(id);
    assert_eq!(activates(&out), vec![(1, 1)]);
    // and pool 0 is probed from there
    assert!(sim.core.next_wake().is_some());
}

#[test]
fn a_reconnect_request_is_followed_at_once_to_the_new_address() {
    let (mut sim, _) = Sim::new(config(2));
    sim.up(1);
    let out = sim.ev(
        1,
        ConnEvent::Ended {
            reason: "reconnect".into(),
            redirect: Some(("10.0.0.9".into(), 0)),
        },
    );
    assert_eq!(downs(&out), vec![(0, true)]);
    let Some(Action::Connect { pool, url, .. }) =
        out.iter().find(|a| matches!(a, Action::Connect { .. }))
    else {
        panic!("{out:?}")
    };
    assert_eq!(*pool, 0);
    assert_eq!(url.host, "10.0.0.9");
    assert_eq!(url.port, sim.core.slots[0].url.port);
    assert_eq!(sim.core.failures(0), 0);
}

#[test]
fn hashrate_updates_go_to_the_active_pool_and_open_later_channels() {
    let (mut sim, _) = Sim::new(UpstreamConfig {
        nominal_hashrate: 100.0,
        ..config(2)
    });
    // before any pool is active: remembered, and the connecting candidate opens with it
    assert_eq!(
        sim.cmd(UpstreamCommand::UpdateHashrate {
            channel: 1,
            hashrate: 5e12,
        }),
        vec![Action::UpdateHashrate {
            id: 1,
            channel: 1,
            hashrate: 5e12
        }]
    );
    sim.up(1);
    let out = sim.cmd(UpstreamCommand::UpdateHashrate {
        channel: 0,
        hashrate: 7e12,
    });
    assert_eq!(
        out,
        vec![Action::UpdateHashrate {
            id: 1,
            channel: 0,
            hashrate: 7e12
        }]
    );
    // nonsense is dropped
    for h in [f64::NAN, -1.0, f64::INFINITY] {
        assert!(sim
            .cmd(UpstreamCommand::UpdateHashrate {
                channel: 0,
                hashrate: h,
            })
            .is_empty());
    }
    // more channels: every connection follows; fewer: nothing
    assert_eq!(
        sim.cmd(UpstreamCommand::Channels(3)),
        vec![Action::Channels(3)]
    );
    assert!(sim.cmd(UpstreamCommand::Channels(2)).is_empty());
    // the backup opens as many channels, each at its last announced hashrate
    let out = sim.ended(1);
    let Some(Action::Connect {
        channels,
        hashrates,
        ..
    }) = out.iter().find(|a| matches!(a, Action::Connect { .. }))
    else {
        panic!("{out:?}")
    };
    assert_eq!(*channels, 3);
    assert_eq!(hashrates, &vec![7e12, 5e12]);
}

#[test]
fn a_probe_hears_the_hashrate_announced_while_it_waits_to_take_over() {
    let (mut sim, _) = Sim::new(config(2));
    sim.ended(1);
    sim.up(2);
    let probe = connects(&sim.wake())[0].0;
    sim.up(probe);
    let out = sim.cmd(UpstreamCommand::UpdateHashrate {
        channel: 0,
        hashrate: 3e12,
    });
    let ids: Vec<u64> = out
        .iter()
        .filter_map(|a| match a {
            Action::UpdateHashrate { id, hashrate, .. } if *hashrate == 3e12 => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![2, probe], "the active pool and the probe");
    // once the probe took over, the drained connection hears nothing more
    sim.wake();
    let out = sim.cmd(UpstreamCommand::UpdateHashrate {
        channel: 0,
        hashrate: 4e12,
    });
    assert_eq!(
        out,
        vec![Action::UpdateHashrate {
            id: probe,
            channel: 0,
            hashrate: 4e12
        }]
    );
}

#[test]
fn the_backup_comes_back_with_its_other_channels_and_refusals() {
    let (mut sim, _) = Sim::new(config(2));
    sim.cmd(UpstreamCommand::Channels(3));
    let mut out = sim.up(1);
    out.extend(sim.ev(1, ConnEvent::Opened(info(1, 11))));
    out.extend(sim.ev(
        1,
        ConnEvent::Refused {
            channel: 2,
            code: "no".into(),
        },
    ));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Emit(UpstreamEvent::ChannelOpened {
            epoch: 1,
            channel: 1,
            ..
        })
    )));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Emit(UpstreamEvent::ChannelRefused {
            epoch: 1,
            channel: 2,
            ..
        })
    )));
    // a probe's channels are replayed to the hub when it takes over
    sim.ended(1);
    sim.up(2);
    let out = sim.wake();
    let probe = connects(&out)[0].0;
    sim.up(probe);
    sim.ev(probe, ConnEvent::Opened(info(1, 21)));
    sim.ev(
        probe,
        ConnEvent::ExtranoncePrefix {
            channel: 1,
            prefix: Bytes::from_static(&[7; 6]),
        },
    );
    let out = sim.wake();
    assert_eq!(activates(&out), vec![(3, 0)]);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Emit(UpstreamEvent::ChannelOpened { epoch: 3, channel: 1, extranonce_prefix, .. })
            if extranonce_prefix[..] == [7; 6]
    )));
}

#[test]
fn a_probe_open_without_work_does_not_make_the_timer_spin() {
    let (mut sim, _) = Sim::new(UpstreamConfig {
        stable_for: S,
        ..config(2)
    });
    sim.up(1);
    sim.ended(1);
    sim.up(2);
    let probe = connects(&sim.wake())[0].0;
    sim.ev(probe, ConnEvent::Opened(info(0, 9)));
    sim.after(10 * S);
    // no work yet: nothing to wait for (the work itself replans)
    assert_eq!(sim.core.next_wake(), None);
    let out = sim.ev(
        probe,
        ConnEvent::Work {
            channel: 0,
            work: work(2),
        },
    );
    assert_eq!(activates(&out), vec![(3, 0)]);
}

#[test]
fn the_active_pool_dying_while_a_probe_is_open_promotes_the_probe() {
    let (mut sim, _) = Sim::new(config(3));
    sim.ended(1);
    let out = sim.ended(2);
    let id = connects(&out)[0].0;
    sim.up(id);
    assert_eq!(sim.core.active(), Some((id, 2)));
    // probe of pool 0 (after the probe interval), open but not yet stable
    let out = sim.wake();
    let probe = connects(&out)[0];
    assert_eq!(probe.1, 0);
    sim.up(probe.0);
    // the active pool dies: the open probe takes over at once
    let active = sim.core.active().unwrap().0;
    let out = sim.ended(active);
    assert_eq!(activates(&out).len(), 1);
    assert_eq!(activates(&out)[0].1, 0);
    assert!(connects(&out).is_empty());
}
