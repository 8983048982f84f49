//! Share validation throughput, one core, one line per measurement:
//!
//! ```text
//! bench share_validate_standard value=N unit=shares/s
//! bench share_validate_standard_fixed_version value=N unit=shares/s
//! bench share_validate_standard_batch value=N unit=shares/s
//! bench share_validate_standard_sri value=N unit=shares/s         (SRI server channel)
//! bench share_validate_standard_sri_client value=N unit=shares/s  (SRI client channel)
//! bench share_validate_extended value=N unit=shares/s          (batched, lanes across shares)
//! bench share_validate_extended_single value=N unit=shares/s
//! bench share_validate_extended_sri value=N unit=shares/s
//! ```
//!
//! Standard: 1000 channels in a map, each share looked up by channel id, checked, hashed,
//! compared with its job's target and recorded for duplicate detection (every share is
//! accepted: the target is the maximum, so the duplicate sets grow as they would in
//! production). Every channel gets a new job every 10 000 shares (about 10 shares per channel
//! and job) and a new prevhash every 100 000 (about 100 per channel and block: a pool's
//! cadence at 10-20 shares/min), timed with the shares.
//!
//! SRI (`channels_sv2` 8.0.0), on the same shares, channels in a `HashMap`:
//! * `_sri`: its server `StandardChannel` (the pool path). Its jobs come from its own job
//!   factory (`NewTemplate`), so it gets one job per run (built untimed) instead of our job
//!   cadence; its duplicate check is a hash set, like ours.
//! * `_sri_client`: its client `StandardChannel`, fed the very messages ours gets (same job
//!   cadence). Its duplicate check is a linear scan of up to 4096 hashes per channel, so its
//!   cost grows with the shares per channel since the last prevhash (here ~100-1000).
//!
//! Extended: 100 channels, a 12-level merkle path and a
//! coinbase of about 200 bytes. Each value is the median of 7 runs of about 0.2 s; between
//! runs a new prevhash clears the duplicate sets (untimed).
//!
//! `share_validate_standard` rolls version bits (random bits of `0x1fffe000` per share, as
//! BIP320 miners do), so each header's first 64 bytes are new and it costs three SHA-NI
//! compressions; `share_validate_standard_fixed_version` is the same run with every share at
//! its job's version, hashed from the job's cached midstate (two compressions, three for the
//! first share of each job and channel).
//!
//! Medians of 5 runs of `cargo run --release -p strata-work --example perf -- share_validate`
//! on one core of an AMD EPYC (family 26 / Zen 5, SHA-NI + AVX-512, in a VM), 2026-11-24,
//! M shares/s (SRI varied 2.0-2.7 between runs):
//!
//! | measurement | M/s |
//! |---|---|
//! | `share_validate_standard` (rolled versions) | 8.6 |
//! | `share_validate_standard_fixed_version` | 10.7 |
//! | `share_validate_standard_batch` | 12.4 |
//! | `share_validate_standard_sri` | 2.1 |
//! | `share_validate_standard_sri_client` | 2.5 |
//! | `share_validate_extended` (batched) | 1.43 |
//! | `share_validate_extended_single` | 0.60 |
//! | `share_validate_extended_sri` | 0.35 |
//!
//! Part of `cargo run --release -p strata-work --example perf [-- FILTER]`; `-- 'NAME$'` runs
//! the one measurement NAME.
#![allow(clippy::unwrap_used)]

#[path = "../../benches/fixtures/shares.rs"]
mod fixtures;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bitcoin::ScriptBuf;
use channels_sv2::client::extended::ExtendedChannel as SriExtended;
use channels_sv2::client::standard::StandardChannel as SriStandard;
use channels_sv2::extranonce_manager::ExtranonceAllocator;
use channels_sv2::server::standard::StandardChannel as SriServerStandard;
use fixtures::*;
use mining_sv2::{NewMiningJobOwned, SubmitSharesStandardOwned};
use strata_protocol::mining::{NewMiningJob, SubmitSharesExtended, SubmitSharesStandard};
use strata_protocol::{B0_32, U256};
use strata_work::channel::Channels;
use strata_work::coinbase::Coinbase;
use strata_work::share::{AcceptedShare, BatchValidator, Rejection};
use template_distribution_sv2::{NewTemplateOwned, SetNewPrevHashOwned as SetNewPrevHashTdp};

const RUNS: usize = 7;
const RUN_TIME: Duration = Duration::from_millis(200);
/// A new prevhash every this many job segments (about 100 shares per channel and block).
const PREVHASH_SEGMENTS: usize = 10;

/// Median shares/s over `RUNS` runs (after one warm-up run) of `n` shares each: before each
/// run, `setup` (untimed) starts a new block on `state` and returns the run's shares; `run`
/// validates them and returns how many were accepted, which must be all of them.
fn measure<S, T>(
    state: &mut S,
    n: usize,
    mut setup: impl FnMut(&mut S) -> Vec<T>,
    mut run: impl FnMut(&mut S, &mut Vec<T>) -> usize,
) -> f64 {
    let mut rates = vec![];
    let mut shares;
    for r in 0..=RUNS {
        shares = setup(state);
        let t = Instant::now();
        let ok = run(state, &mut shares);
        assert_eq!(ok, n);
        let dt = t.elapsed().as_secs_f64();
        if r > 0 {
            rates.push(n as f64 / dt);
        }
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates[rates.len() / 2]
}

/// Shares fitting ~RUN_TIME at `rate` shares/s.
fn count_for(rate: f64) -> usize {
    ((rate * RUN_TIME.as_secs_f64()) as usize).max(1000)
}

/// Accepted shares of `shares`, validated `BATCH` at a time by `validate` into `out`.
fn batched<T>(
    shares: &[T],
    out: &mut Vec<Result<AcceptedShare, Rejection>>,
    mut validate: impl FnMut(&[T], &mut Vec<Result<AcceptedShare, Rejection>>),
) -> usize {
    let mut ok = 0;
    for chunk in shares.chunks(BATCH) {
        out.clear();
        validate(chunk, out);
        ok += out.iter().filter(|r| r.is_ok()).count();
    }
    ok
}

/// Accepted shares of `shares`, each moved into `validate` (SRI's `validate_share` takes the
/// share by value: the drain moves it in) with its index.
fn drained<T>(shares: &mut Vec<T>, mut validate: impl FnMut(usize, T) -> bool) -> usize {
    let mut ok = 0;
    for (i, sh) in shares.drain(..).enumerate() {
        ok += usize::from(validate(i, sh));
    }
    ok
}

struct Std {
    ours: Channels,
    sri: HashMap<u32, SriStandard>,
    job: u32,
}

impl Std {
    fn new() -> Self {
        let mut s = Std {
            ours: Channels::new(),
            sri: HashMap::new(),
            job: 0,
        };
        for id in 1..=CHANNELS {
            s.ours.insert(ours_std_channel(id)).unwrap();
            s.sri.insert(id, sri_std_channel(id));
        }
        s.rotate();
        s
    }

    /// A new future job and prevhash on every channel (clears duplicate sets); the ids of
    /// the previous run's jobs are skipped.
    fn rotate(&mut self) {
        self.job += 1 + 100_000;
        let job = self.job;
        for id in 1..=CHANNELS {
            let root = [id as u8; 32];
            self.ours
                .on_new_mining_job(&NewMiningJob {
                    merkle_root: U256(root),
                    ..std_job(id, job, None)
                })
                .unwrap();
            self.ours.on_set_new_prev_hash(&prevhash(id, job)).unwrap();
            let c = self.sri.get_mut(&id).unwrap();
            c.on_new_mining_job(NewMiningJobOwned {
                merkle_root: root.into(),
                ..sri_std_job(id, job, None)
            })
            .unwrap();
            c.on_set_new_prev_hash(sri_prevhash(id, job)).unwrap();
        }
    }

    /// A new block (untimed) and the next run's `n` shares.
    fn next_run(&mut self, n: usize) -> Vec<SubmitSharesStandard> {
        self.rotate();
        self.shares(n)
    }

    /// The same with every share at the job's version (no version rolling).
    fn next_run_fixed_version(&mut self, n: usize) -> Vec<SubmitSharesStandard> {
        let mut shares = self.next_run(n);
        for s in &mut shares {
            s.version = VERSION;
        }
        shares
    }

    /// The messages before segment `seg` of a run (ours, timed with the shares): an active
    /// job on every channel, or every `PREVHASH_SEGMENTS` segments a future job and its
    /// prevhash.
    fn ours_job(&mut self, job: u32, seg: usize) {
        let new_block = seg > 0 && seg.is_multiple_of(PREVHASH_SEGMENTS);
        for id in 1..=CHANNELS {
            self.ours
                .on_new_mining_job(&std_job(id, job, (!new_block).then_some(MIN_NTIME)))
                .unwrap();
            if new_block {
                self.ours.on_set_new_prev_hash(&prevhash(id, job)).unwrap();
            }
        }
    }

    /// The same for SRI's client channels.
    fn sri_job(&mut self, job: u32, seg: usize) {
        let new_block = seg > 0 && seg.is_multiple_of(PREVHASH_SEGMENTS);
        for id in 1..=CHANNELS {
            let c = self.sri.get_mut(&id).unwrap();
            c.on_new_mining_job(sri_std_job(id, job, (!new_block).then_some(MIN_NTIME)))
                .unwrap();
            if new_block {
                c.on_set_new_prev_hash(sri_prevhash(id, job)).unwrap();
            }
        }
    }

    /// Accepted shares of a run's `shares` on our channels, each `JOB_EVERY`-share segment
    /// after its job messages (`ours_job`) and validated by `validate`.
    fn ours_segments(
        &mut self,
        shares: &[SubmitSharesStandard],
        mut validate: impl FnMut(&mut Channels, &[SubmitSharesStandard]) -> usize,
    ) -> usize {
        let base = self.job + 1;
        let mut ok = 0;
        for (j, seg) in shares.chunks(JOB_EVERY as usize).enumerate() {
            self.ours_job(base + j as u32, j);
            ok += validate(&mut self.ours, seg);
        }
        ok
    }

    /// `n` shares from a random channel each; share `i` is for job `first + i / JOB_EVERY`
    /// (a new job every `JOB_EVERY` shares: about 10 shares per channel and job).
    fn shares(&self, n: usize) -> Vec<SubmitSharesStandard> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n as u32)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                SubmitSharesStandard {
                    channel_id: (x % u64::from(CHANNELS)) as u32 + 1,
                    sequence_number: i,
                    job_id: self.job + 1 + i / JOB_EVERY,
                    nonce: i,
                    ntime: MIN_NTIME + (i & 0xff),
                    version: VERSION | ((x >> 32) as u32 & 0x1fff_e000),
                }
            })
            .collect()
    }
}

/// SRI's server (pool) channels: jobs come from its own job factory (a `NewTemplate`), so the
/// shares carry the job ids it assigned.
struct SriServer {
    chans: HashMap<u32, SriServerStandard>,
    template: u64,
    job_ids: HashMap<u32, u32>,
}

impl SriServer {
    fn new() -> Self {
        let mut alloc = ExtranonceAllocator::new(vec![1], 8, CHANNELS * 2).unwrap();
        let chans = (1..=CHANNELS)
            .map(|id| {
                let c = SriServerStandard::new_for_pool(
                    id,
                    "u".into(),
                    alloc.allocate_standard().unwrap(),
                    bitcoin::Target::from_le_bytes([0xff; 32]),
                    1.0,
                    100,
                    1e9,
                    "strata".into(),
                    None,
                )
                .unwrap();
                (id, c)
            })
            .collect();
        let mut s = SriServer {
            chans,
            template: 0,
            job_ids: HashMap::new(),
        };
        s.rotate();
        s
    }

    /// A future template and its prevhash on every channel (untimed): SRI's factory builds
    /// each channel's coinbase and merkle root here.
    fn rotate(&mut self) {
        self.template += 1;
        let t = self.template;
        let template = NewTemplateOwned {
            template_id: t,
            future_template: true,
            version: VERSION,
            coinbase_tx_version: 2,
            coinbase_prefix: vec![3, 0x40, 0xd2, 0x0c].try_into().unwrap(),
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: 312_500_000,
            coinbase_tx_outputs_count: 0,
            coinbase_tx_outputs: Vec::new().try_into().unwrap(),
            coinbase_tx_locktime: 0,
            merkle_path: Vec::new().try_into().unwrap(),
        };
        let outputs = vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(312_500_000),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }];
        for (id, c) in self.chans.iter_mut() {
            c.on_new_template(template.clone(), outputs.clone())
                .unwrap();
            c.on_set_new_prev_hash(SetNewPrevHashTdp {
                template_id: t,
                prev_hash: [t as u8; 32].into(),
                header_timestamp: MIN_NTIME,
                n_bits: NBITS,
                target: [0; 32].into(),
            })
            .unwrap();
            self.job_ids
                .insert(*id, c.get_active_job().unwrap().get_job_id());
        }
    }
}

struct Ext {
    ours: Channels,
    sri: HashMap<u32, SriExtended>,
    job: u32,
    cb: Coinbase,
    path: Vec<[u8; 32]>,
}

impl Ext {
    fn new() -> Self {
        let mut s = Ext {
            ours: Channels::new(),
            sri: HashMap::new(),
            job: 0,
            cb: ext_coinbase(),
            path: path(),
        };
        for id in 1..=EXT_CHANNELS {
            s.ours.insert(ours_ext_channel(id)).unwrap();
            s.sri.insert(id, sri_ext_channel(id));
        }
        s.rotate();
        s
    }

    fn rotate(&mut self) {
        self.job += 1;
        let job = self.job;
        for id in 1..=EXT_CHANNELS {
            self.ours
                .on_new_extended_mining_job(&ext_job(id, job, &self.cb, &self.path))
                .unwrap();
            self.ours.on_set_new_prev_hash(&prevhash(id, job)).unwrap();
            let c = self.sri.get_mut(&id).unwrap();
            c.on_new_extended_mining_job(sri_ext_job(id, job, &self.cb, &self.path))
                .unwrap();
            c.on_set_new_prev_hash(sri_prevhash(id, job)).unwrap();
        }
    }

    /// A new block (untimed) and the next run's `n` shares.
    fn next_run(&mut self, n: usize) -> Vec<SubmitSharesExtended> {
        self.rotate();
        self.shares(n)
    }

    fn shares(&self, n: usize) -> Vec<SubmitSharesExtended> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n as u64)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                SubmitSharesExtended {
                    channel_id: (x % u64::from(EXT_CHANNELS)) as u32 + 1,
                    sequence_number: i as u32,
                    job_id: self.job,
                    nonce: x as u32,
                    ntime: MIN_NTIME,
                    version: VERSION,
                    extranonce: B0_32::new(&i.to_le_bytes()).unwrap(),
                }
            })
            .collect()
    }
}

fn report(filter: &str, name: &str, f: impl FnOnce() -> f64) {
    if crate::selected(filter, name) {
        let v = f();
        println!("bench {name} value={v:.0} unit=shares/s");
    }
}

/// Our standard-share validation, one share at a time: the shares of `seg` accepted.
#[inline]
fn one_at_a_time(chans: &mut Channels, seg: &[SubmitSharesStandard]) -> usize {
    let mut ok = 0;
    for sh in seg {
        ok += usize::from(chans.validate_standard(sh, 0).is_ok());
    }
    ok
}

/// Run the share-validation measurements whose names contain `filter`.
pub(crate) fn run(filter: &str) {
    let mut std = Std::new();
    let mut sink = 0usize;

    report(filter, "share_validate_standard", || {
        let n = count_for(6e6);
        measure(
            &mut std,
            n,
            |s| s.next_run(n),
            |s, shares| {
                let ok = s.ours_segments(shares, one_at_a_time);
                sink += ok;
                ok
            },
        )
    });
    report(filter, "share_validate_standard_fixed_version", || {
        let n = count_for(8e6);
        measure(
            &mut std,
            n,
            |s| s.next_run_fixed_version(n),
            |s, shares| {
                let ok = s.ours_segments(shares, one_at_a_time);
                sink += ok;
                ok
            },
        )
    });
    report(filter, "share_validate_standard_batch", || {
        let n = count_for(8e6);
        let mut v = BatchValidator::new();
        let mut out = Vec::with_capacity(BATCH);
        measure(
            &mut std,
            n,
            |s| s.next_run(n),
            |s, shares| {
                s.ours_segments(shares, |chans, seg| {
                    batched(seg, &mut out, |chunk, out| {
                        v.validate_standard(chans, chunk, 0, out)
                    })
                })
            },
        )
    });
    report(filter, "share_validate_standard_sri", || {
        // SRI's pool path: server channel, one job per run (its jobs come from templates)
        let n = count_for(2.5e6);
        let mut server = SriServer::new();
        let gen = std.shares(n);
        measure(
            &mut server,
            n,
            |server| {
                server.rotate();
                gen.iter()
                    .map(|s| SubmitSharesStandardOwned {
                        job_id: server.job_ids[&s.channel_id],
                        ..sri_std_share(s)
                    })
                    .collect()
            },
            |server, owned| {
                drained(owned, |_, sh| {
                    let c = server.chans.get_mut(&sh.channel_id).unwrap();
                    c.validate_share(sh).is_ok()
                })
            },
        )
    });
    report(filter, "share_validate_standard_sri_client", || {
        let n = count_for(2.5e6);
        measure(
            &mut std,
            n,
            |s| s.next_run(n).iter().map(sri_std_share).collect(),
            |s, owned| {
                let base = s.job + 1;
                drained(owned, |i, sh| {
                    if (i as u32).is_multiple_of(JOB_EVERY) {
                        let seg = i / JOB_EVERY as usize;
                        s.sri_job(base + seg as u32, seg);
                    }
                    let c = s.sri.get_mut(&sh.channel_id).unwrap();
                    c.validate_share(sh).is_ok()
                })
            },
        )
    });

    let mut ext = Ext::new();
    report(filter, "share_validate_extended", || {
        let n = count_for(1.5e6);
        let mut v = BatchValidator::new();
        let mut out = Vec::with_capacity(BATCH);
        measure(
            &mut ext,
            n,
            |e| e.next_run(n),
            |e, shares| {
                batched(shares, &mut out, |chunk, out| {
                    v.validate_extended(&mut e.ours, chunk, 0, out)
                })
            },
        )
    });
    report(filter, "share_validate_extended_single", || {
        let n = count_for(6e5);
        measure(
            &mut ext,
            n,
            |e| e.next_run(n),
            |e, shares| {
                let mut ok = 0;
                for sh in shares.iter() {
                    ok += usize::from(e.ours.validate_extended(sh, 0).is_ok());
                }
                ok
            },
        )
    });
    report(filter, "share_validate_extended_sri", || {
        let n = count_for(4e5);
        measure(
            &mut ext,
            n,
            |e| e.next_run(n).iter().map(sri_ext_share).collect(),
            |e, owned| {
                drained(owned, |_, sh| {
                    let c = e.sri.get_mut(&sh.channel_id).unwrap();
                    c.validate_share(sh).is_ok()
                })
            },
        )
    });
    eprintln!("({sink} shares)");
}
