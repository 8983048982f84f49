//! Share validation throughput, one core, one line per measurement:
//!
//! ```text
//! bench share_validate_standard value=N unit=shares/s
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
//! Part of `cargo run --release -p strata-work --example perf [-- FILTER]`.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use binary_sv2::Sv2OptionOwned;
use bitcoin::ScriptBuf;
use channels_sv2::client::extended::ExtendedChannel as SriExtended;
use channels_sv2::client::standard::StandardChannel as SriStandard;
use channels_sv2::extranonce_manager::{ExtranonceAllocator, ExtranoncePrefix};
use channels_sv2::server::standard::StandardChannel as SriServerStandard;
use mining_sv2::{
    NewExtendedMiningJobOwned, NewMiningJobOwned, SetNewPrevHashOwned, SubmitSharesExtendedOwned,
    SubmitSharesStandardOwned,
};
use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};
use strata_protocol::{Seq0_255, B0_32, B0_64K, U256};
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::coinbase::{bip34_height_push, output, Coinbase, CoinbaseParams};
use strata_work::share::BatchValidator;
use strata_work::target::Target;
use template_distribution_sv2::{NewTemplateOwned, SetNewPrevHashOwned as SetNewPrevHashTdp};

const RUNS: usize = 7;
const RUN_TIME: Duration = Duration::from_millis(200);
const CHANNELS: u32 = 1000;
const EXT_CHANNELS: u32 = 100;
const VERSION: u32 = 0x2000_0000;
const MIN_NTIME: u32 = 1_746_839_905;
const NBITS: u32 = 0x1703_a30c;
const BATCH: usize = 256;
/// Shares between two jobs (on every channel): about 10 per channel and job, as a pool
/// sending a job every 30-60 s to channels at 10-20 shares/min sees.
const JOB_EVERY: u32 = 10 * CHANNELS;
/// A new prevhash every this many job segments (about 100 shares per channel and block).
const PREVHASH_SEGMENTS: usize = 10;

fn config() -> ChannelConfig {
    ChannelConfig {
        max_seen_shares: 1 << 22,
        ..ChannelConfig::default()
    }
}

/// Median shares/s over `RUNS` runs; `setup(run)` (untimed) prepares a run and returns the
/// share count, `run()` validates them.
fn measure(mut setup: impl FnMut(usize) -> usize, mut run: impl FnMut()) -> f64 {
    let mut rates = vec![];
    for r in 0..=RUNS {
        let n = setup(r);
        let t = Instant::now();
        run();
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
            s.ours
                .insert(
                    Channel::new_standard(id, &id.to_le_bytes(), Target::MAX, config()).unwrap(),
                )
                .unwrap();
            s.sri.insert(
                id,
                SriStandard::new(
                    id,
                    "u".into(),
                    ExtranoncePrefix::from_wire(id.to_le_bytes().to_vec()).unwrap(),
                    bitcoin::Target::from_le_bytes([0xff; 32]),
                    1.0,
                    None,
                )
                .unwrap(),
            );
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
            let prev = [job as u8; 32];
            self.ours
                .on_new_mining_job(&NewMiningJob {
                    channel_id: id,
                    job_id: job,
                    min_ntime: None,
                    version: VERSION,
                    merkle_root: U256(root),
                })
                .unwrap();
            self.ours
                .on_set_new_prev_hash(&SetNewPrevHash {
                    channel_id: id,
                    job_id: job,
                    prev_hash: U256(prev),
                    min_ntime: MIN_NTIME,
                    nbits: NBITS,
                })
                .unwrap();
            let c = self.sri.get_mut(&id).unwrap();
            c.on_new_mining_job(NewMiningJobOwned {
                channel_id: id,
                job_id: job,
                min_ntime: Sv2OptionOwned::new(None),
                version: VERSION,
                merkle_root: root.into(),
            })
            .unwrap();
            c.on_set_new_prev_hash(SetNewPrevHashOwned {
                channel_id: id,
                job_id: job,
                prev_hash: prev.into(),
                min_ntime: MIN_NTIME,
                nbits: NBITS,
            })
            .unwrap();
        }
    }

    /// The messages before segment `seg` of a run (ours, timed with the shares): an active
    /// job on every channel, or every `PREVHASH_EVERY / JOB_EVERY` segments a future job and
    /// its prevhash.
    fn ours_job(&mut self, job: u32, seg: usize) {
        let new_block = seg > 0 && seg.is_multiple_of(PREVHASH_SEGMENTS);
        for id in 1..=CHANNELS {
            self.ours
                .on_new_mining_job(&NewMiningJob {
                    channel_id: id,
                    job_id: job,
                    min_ntime: (!new_block).then_some(MIN_NTIME),
                    version: VERSION,
                    merkle_root: U256([job as u8 ^ id as u8; 32]),
                })
                .unwrap();
            if new_block {
                self.ours
                    .on_set_new_prev_hash(&SetNewPrevHash {
                        channel_id: id,
                        job_id: job,
                        prev_hash: U256([job as u8; 32]),
                        min_ntime: MIN_NTIME,
                        nbits: NBITS,
                    })
                    .unwrap();
            }
        }
    }

    /// The same for SRI's client channels.
    fn sri_job(&mut self, job: u32, seg: usize) {
        let new_block = seg > 0 && seg.is_multiple_of(PREVHASH_SEGMENTS);
        for id in 1..=CHANNELS {
            let c = self.sri.get_mut(&id).unwrap();
            c.on_new_mining_job(NewMiningJobOwned {
                channel_id: id,
                job_id: job,
                min_ntime: Sv2OptionOwned::new((!new_block).then_some(MIN_NTIME)),
                version: VERSION,
                merkle_root: [job as u8 ^ id as u8; 32].into(),
            })
            .unwrap();
            if new_block {
                c.on_set_new_prev_hash(SetNewPrevHashOwned {
                    channel_id: id,
                    job_id: job,
                    prev_hash: [job as u8; 32].into(),
                    min_ntime: MIN_NTIME,
                    nbits: NBITS,
                })
                .unwrap();
            }
        }
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

fn ext_coinbase() -> Coinbase {
    Coinbase::build(&CoinbaseParams {
        version: 2,
        script_sig_prefix: bip34_height_push(840_000),
        pool_tag: b"/strata pool/".to_vec(),
        extranonce_len: 12,
        sequence: u32::MAX,
        pool_outputs: vec![
            output(312_500_000, ScriptBuf::from_bytes(vec![0x00; 22])),
            output(1000, ScriptBuf::from_bytes(vec![0x51; 34])),
        ],
        template_outputs: vec![output(0, ScriptBuf::from_bytes(vec![0x6a; 38]))],
        lock_time: 0,
        witness_reserved_value: [0; 32],
    })
    .unwrap()
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
            path: (0..12u8).map(|i| [i.wrapping_mul(29); 32]).collect(),
        };
        for id in 1..=EXT_CHANNELS {
            s.ours
                .insert(
                    Channel::new_extended(id, &id.to_le_bytes(), 8, Target::MAX, config()).unwrap(),
                )
                .unwrap();
            s.sri.insert(
                id,
                SriExtended::new(
                    id,
                    "u".into(),
                    ExtranoncePrefix::from_wire(id.to_le_bytes().to_vec()).unwrap(),
                    bitcoin::Target::from_le_bytes([0xff; 32]),
                    1.0,
                    true,
                    8,
                    None,
                )
                .unwrap(),
            );
        }
        s.rotate();
        s
    }

    fn rotate(&mut self) {
        self.job += 1;
        let job = self.job;
        let prev = [job as u8; 32];
        for id in 1..=EXT_CHANNELS {
            self.ours
                .on_new_extended_mining_job(&NewExtendedMiningJob {
                    channel_id: id,
                    job_id: job,
                    min_ntime: None,
                    version: VERSION,
                    version_rolling_allowed: true,
                    merkle_path: Seq0_255::new(self.path.iter().map(|h| U256(*h)).collect())
                        .unwrap(),
                    coinbase_tx_prefix: B0_64K::new(self.cb.prefix().to_vec()).unwrap(),
                    coinbase_tx_suffix: B0_64K::new(self.cb.suffix().to_vec()).unwrap(),
                })
                .unwrap();
            self.ours
                .on_set_new_prev_hash(&SetNewPrevHash {
                    channel_id: id,
                    job_id: job,
                    prev_hash: U256(prev),
                    min_ntime: MIN_NTIME,
                    nbits: NBITS,
                })
                .unwrap();
            let c = self.sri.get_mut(&id).unwrap();
            c.on_new_extended_mining_job(NewExtendedMiningJobOwned {
                channel_id: id,
                job_id: job,
                min_ntime: Sv2OptionOwned::new(None),
                version: VERSION,
                version_rolling_allowed: true,
                merkle_path: self
                    .path
                    .iter()
                    .map(|h| (*h).into())
                    .collect::<Vec<_>>()
                    .try_into()
                    .unwrap(),
                coinbase_tx_prefix: self.cb.prefix().to_vec().try_into().unwrap(),
                coinbase_tx_suffix: self.cb.suffix().to_vec().try_into().unwrap(),
            })
            .unwrap();
            c.on_set_new_prev_hash(SetNewPrevHashOwned {
                channel_id: id,
                job_id: job,
                prev_hash: prev.into(),
                min_ntime: MIN_NTIME,
                nbits: NBITS,
            })
            .unwrap();
        }
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
    if name.contains(filter) {
        let v = f();
        println!("bench {name} value={v:.0} unit=shares/s");
    }
}

/// Run the share-validation measurements whose names contain `filter`.
pub(crate) fn run(filter: &str) {
    let filter = filter.to_owned();
    let std = std::cell::RefCell::new(Std::new());
    let shares = std::cell::RefCell::new(vec![]);
    let sink = std::cell::Cell::new(0usize);

    report(&filter, "share_validate_standard", || {
        let n = count_for(6e6);
        measure(
            |_| {
                std.borrow_mut().rotate();
                *shares.borrow_mut() = std.borrow().shares(n);
                n
            },
            || {
                let mut s = std.borrow_mut();
                let base = s.job + 1;
                let mut ok = 0;
                for (j, seg) in shares.borrow().chunks(JOB_EVERY as usize).enumerate() {
                    s.ours_job(base + j as u32, j);
                    for sh in seg {
                        ok += usize::from(s.ours.validate_standard(sh, 0).is_ok());
                    }
                }
                assert_eq!(ok, n);
                sink.set(sink.get() + ok);
            },
        )
    });
    report(&filter, "share_validate_standard_batch", || {
        let n = count_for(8e6);
        let mut v = BatchValidator::new();
        let mut out = Vec::with_capacity(BATCH);
        measure(
            |_| {
                std.borrow_mut().rotate();
                *shares.borrow_mut() = std.borrow().shares(n);
                n
            },
            || {
                let mut s = std.borrow_mut();
                let base = s.job + 1;
                let mut ok = 0;
                for (j, seg) in shares.borrow().chunks(JOB_EVERY as usize).enumerate() {
                    s.ours_job(base + j as u32, j);
                    for chunk in seg.chunks(BATCH) {
                        out.clear();
                        v.validate_standard(&mut s.ours, chunk, 0, &mut out);
                        ok += out.iter().filter(|r| r.is_ok()).count();
                    }
                }
                assert_eq!(ok, n);
            },
        )
    });
    report(&filter, "share_validate_standard_sri", || {
        // SRI's pool path: server channel, one job per run (its jobs come from templates)
        let n = count_for(2.5e6);
        let server = std::cell::RefCell::new(SriServer::new());
        let owned = std::cell::RefCell::new(vec![]);
        let gen = std.borrow().shares(n);
        measure(
            |_| {
                server.borrow_mut().rotate();
                let server = server.borrow();
                *owned.borrow_mut() = gen
                    .iter()
                    .map(|s| SubmitSharesStandardOwned {
                        channel_id: s.channel_id,
                        sequence_number: s.sequence_number,
                        job_id: server.job_ids[&s.channel_id],
                        nonce: s.nonce,
                        ntime: s.ntime,
                        version: s.version,
                    })
                    .collect();
                n
            },
            || {
                let mut ok = 0;
                let mut server = server.borrow_mut();
                for sh in owned.borrow_mut().drain(..) {
                    let c = server.chans.get_mut(&sh.channel_id).unwrap();
                    ok += usize::from(c.validate_share(sh).is_ok());
                }
                assert_eq!(ok, n);
            },
        )
    });
    report(&filter, "share_validate_standard_sri_client", || {
        let n = count_for(2.5e6);
        let owned = std::cell::RefCell::new(vec![]);
        measure(
            |_| {
                std.borrow_mut().rotate();
                *owned.borrow_mut() = std
                    .borrow()
                    .shares(n)
                    .into_iter()
                    .map(|s| SubmitSharesStandardOwned {
                        channel_id: s.channel_id,
                        sequence_number: s.sequence_number,
                        job_id: s.job_id,
                        nonce: s.nonce,
                        ntime: s.ntime,
                        version: s.version,
                    })
                    .collect();
                n
            },
            || {
                let mut s = std.borrow_mut();
                let base = s.job + 1;
                let mut ok = 0;
                // SRI's validate_share takes the share by value: the drain moves it in
                for (i, sh) in owned.borrow_mut().drain(..).enumerate() {
                    if (i as u32).is_multiple_of(JOB_EVERY) {
                        let seg = i / JOB_EVERY as usize;
                        s.sri_job(base + seg as u32, seg);
                    }
                    let c = s.sri.get_mut(&sh.channel_id).unwrap();
                    ok += usize::from(c.validate_share(sh).is_ok());
                }
                assert_eq!(ok, n);
            },
        )
    });

    let ext = std::cell::RefCell::new(Ext::new());
    let eshares = std::cell::RefCell::new(vec![]);
    report(&filter, "share_validate_extended", || {
        let n = count_for(1.5e6);
        let mut v = BatchValidator::new();
        let mut out = Vec::with_capacity(BATCH);
        measure(
            |_| {
                ext.borrow_mut().rotate();
                *eshares.borrow_mut() = ext.borrow().shares(n);
                n
            },
            || {
                let mut e = ext.borrow_mut();
                let mut ok = 0;
                for chunk in eshares.borrow().chunks(BATCH) {
                    out.clear();
                    v.validate_extended(&mut e.ours, chunk, 0, &mut out);
                    ok += out.iter().filter(|r| r.is_ok()).count();
                }
                assert_eq!(ok, n);
            },
        )
    });
    report(&filter, "share_validate_extended_single", || {
        let n = count_for(6e5);
        measure(
            |_| {
                ext.borrow_mut().rotate();
                *eshares.borrow_mut() = ext.borrow().shares(n);
                n
            },
            || {
                let mut e = ext.borrow_mut();
                let mut ok = 0;
                for sh in eshares.borrow().iter() {
                    ok += usize::from(e.ours.validate_extended(sh, 0).is_ok());
                }
                assert_eq!(ok, n);
            },
        )
    });
    report(&filter, "share_validate_extended_sri", || {
        let n = count_for(4e5);
        let owned = std::cell::RefCell::new(vec![]);
        measure(
            |_| {
                ext.borrow_mut().rotate();
                *owned.borrow_mut() = ext
                    .borrow()
                    .shares(n)
                    .into_iter()
                    .map(|s| SubmitSharesExtendedOwned {
                        channel_id: s.channel_id,
                        sequence_number: s.sequence_number,
                        job_id: s.job_id,
                        nonce: s.nonce,
                        ntime: s.ntime,
                        version: s.version,
                        extranonce: s.extranonce.as_slice().to_vec().try_into().unwrap(),
                    })
                    .collect();
                n
            },
            || {
                let mut e = ext.borrow_mut();
                let mut ok = 0;
                for sh in owned.borrow_mut().drain(..) {
                    let c = e.sri.get_mut(&sh.channel_id).unwrap();
                    ok += usize::from(c.validate_share(sh).is_ok());
                }
                assert_eq!(ok, n);
            },
        )
    });
    eprintln!("({} shares)", sink.get());
}
