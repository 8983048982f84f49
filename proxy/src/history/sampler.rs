//! The sans-IO sampler: fed every miner report the hub gets and the time, it closes one
//! row batch per resolution step (a row per worker name, and the farm total).
//!
//! Reports carry cumulative counters per connection; the sampler keeps each connection's
//! last counters and adds the difference to the open step of the connection's worker name
//! (several connections of one worker name add up). A step's row for a worker connected
//! through it has zero shares rather than no row, so that silence is visible. Steps are
//! aligned on multiples of the resolution in UNIX time; the first step after a start
//! covers less (its row says how many seconds: [`Row::secs`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::hub::MinerReport;

use super::{Batch, Row};

/// A connection as the hub keys it: (channel index, miner id).
pub type ConnKey = (usize, u32);

/// Cumulative counters of one connection at its last report.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    accepted: u64,
    rejected: u64,
    stale: u64,
    work: f64,
}

impl Counters {
    fn of(r: &MinerReport) -> Self {
        Counters {
            accepted: r.accepted,
            rejected: r.rejected.values().sum(),
            stale: r.stale,
            work: r.accepted_work,
        }
    }
}

/// What one step adds up for a worker (or the farm).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Delta {
    /// Summed difficulty of the accepted shares.
    pub work: f64,
    /// Accepted shares.
    pub accepted: u64,
    /// Rejected shares (stale included).
    pub rejected: u64,
    /// Stale shares.
    pub stale: u64,
}

impl Delta {
    fn add(&mut self, d: &Delta) {
        self.work += d.work;
        self.accepted += d.accepted;
        self.rejected += d.rejected;
        self.stale += d.stale;
    }
}

#[derive(Debug)]
struct Conn {
    worker: String,
    last: Counters,
}

/// The open step as [`Sampler::live`] shows it (for hashrate windows that include it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// When the open step's accounting began (UNIX seconds).
    pub from: u64,
    /// Work so far per worker.
    pub workers: HashMap<String, f64>,
    /// Work so far of the farm.
    pub farm: f64,
}

/// The sampler (see the module docs).
#[derive(Debug)]
pub struct Sampler {
    resolution: u64,
    max_miners: usize,
    conns: HashMap<ConnKey, Conn>,
    /// Start of the open step (a multiple of the resolution).
    step: u64,
    /// When its accounting began (later than `step` for the first step).
    from: u64,
    workers: BTreeMap<String, Delta>,
    farm: Delta,
    /// Workers of the open step beyond `max_miners` (at most `max_miners` of them).
    overflow: HashSet<String>,
    /// Worker rows left out of batches for `max_miners` (counted in the farm row).
    left_out: u64,
}

impl Sampler {
    /// A sampler of `resolution` seconds per step (at least 1) keeping at most
    /// `max_miners` worker rows per step, starting at `now` (UNIX seconds).
    pub fn new(resolution: u64, max_miners: usize, now: u64) -> Self {
        let resolution = resolution.max(1);
        Sampler {
            resolution,
            max_miners,
            conns: HashMap::new(),
            step: now - now % resolution,
            from: now,
            workers: BTreeMap::new(),
            farm: Delta::default(),
            overflow: HashSet::new(),
            left_out: 0,
        }
    }

    /// Seconds per step.
    pub fn resolution(&self) -> u64 {
        self.resolution
    }

    /// When the open step closes (UNIX seconds): call [`Sampler::tick`] then.
    pub fn next_tick(&self) -> u64 {
        self.step + self.resolution
    }

    /// Worker rows left out of batches so far because of `max_miners`.
    pub fn left_out(&self) -> u64 {
        self.left_out
    }

    /// A report of connection `key`: what it added since its last one goes to its worker's
    /// open step. A report with `connected: false` ends the connection.
    pub fn on_report(&mut self, key: ConnKey, report: &MinerReport) {
        let now = Counters::of(report);
        let conn = self.conns.entry(key).or_insert_with(|| Conn {
            worker: report.worker.clone(),
            last: Counters::default(),
        });
        // the worker name can come after the first report (SV1: authorize after subscribe)
        conn.worker.clone_from(&report.worker);
        let last = conn.last;
        conn.last = now;
        let d = Delta {
            accepted: now.accepted.saturating_sub(last.accepted),
            rejected: now.rejected.saturating_sub(last.rejected),
            stale: now.stale.saturating_sub(last.stale),
            work: (now.work - last.work).max(0.0),
        };
        self.farm.add(&d);
        if !report.worker.is_empty() {
            let room = self.workers.len() < self.max_miners;
            if let Some(w) = self.workers.get_mut(&report.worker) {
                w.add(&d);
            } else if room {
                self.workers.insert(report.worker.clone(), d);
            } else if self.overflow.len() < self.max_miners {
                self.overflow.insert(report.worker.clone());
            }
        }
        if !report.connected {
            self.conns.remove(&key);
        }
    }

    /// Connection `key` is gone (its last report, if any, was taken).
    pub fn on_leave(&mut self, key: ConnKey) {
        self.conns.remove(&key);
    }

    /// At `now` (UNIX seconds): the batch of the step that ended, if one did. A step the
    /// hub missed altogether (a stall longer than a step) has no batch; the one closed
    /// covers the time since the last.
    pub fn tick(&mut self, now: u64) -> Option<Batch> {
        if now < self.next_tick() {
            return None;
        }
        let next = now - now % self.resolution;
        Some(self.close(self.step, next, next))
    }

    /// The open step, closed early at `now` (at shutdown: its shares are written rather
    /// than lost; a restart in the same step adds to its rows).
    pub fn flush(&mut self, now: u64) -> Batch {
        let step = self.step;
        self.close(step, now.max(self.from), now)
    }

    /// Closes the step at `step` whose accounting ends at `end`; the next begins at `next`.
    fn close(&mut self, step: u64, end: u64, next: u64) -> Batch {
        let secs = end.saturating_sub(self.from).max(1);
        let mut workers = std::mem::take(&mut self.workers);
        let mut overflow = std::mem::take(&mut self.overflow);
        for c in self.conns.values() {
            if c.worker.is_empty() || workers.contains_key(&c.worker) {
                continue;
            }
            if workers.len() < self.max_miners {
                workers.insert(c.worker.clone(), Delta::default());
            } else {
                overflow.insert(c.worker.clone());
            }
        }
        self.left_out += overflow.len() as u64;
        let row = |d: Delta| Row {
            t: step,
            secs,
            work: d.work,
            accepted: d.accepted,
            rejected: d.rejected,
            stale: d.stale,
        };
        let batch = Batch {
            t: step,
            miners: workers.into_iter().map(|(w, d)| (w, row(d))).collect(),
            farm: row(std::mem::take(&mut self.farm)),
        };
        self.step = next;
        self.from = next.max(end);
        batch
    }

    /// The open step so far (for hashrate windows that include it).
    pub fn live(&self) -> Live {
        Live {
            from: self.from,
            workers: self
                .workers
                .iter()
                .map(|(w, d)| (w.clone(), d.work))
                .collect(),
            farm: self.farm.work,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(worker: &str, accepted: u64, work: f64, connected: bool) -> MinerReport {
        MinerReport {
            worker: worker.into(),
            protocol: "sv1",
            difficulty: 1.0,
            accepted,
            accepted_work: work,
            rejected: [("low-difficulty".to_string(), 1)].into_iter().collect(),
            connected,
            ..MinerReport::joined(
                strata_work::extranonce::MinerId(0),
                "10.0.0.1:4000".into(),
                0,
            )
        }
    }

    #[test]
    fn one_batch_per_step_with_the_shares_of_each_step() {
        // starts 10 s into a 60 s step: the first step covers 50 s
        let mut s = Sampler::new(60, 100, 6_010);
        assert_eq!(s.next_tick(), 6_060);
        s.on_report((0, 1), &report("rig412", 3, 300.0, true));
        s.on_report((0, 2), &report("rig7", 1, 100.0, true));
        assert!(s.tick(6_059).is_none());
        let b = s.tick(6_060).expect("a step ended");
        assert_eq!(b.t, 6_000);
        assert_eq!(b.miners.len(), 2);
        let r = &b.miners["rig412"];
        assert_eq!((r.t, r.secs, r.accepted, r.rejected), (6_000, 50, 3, 1));
        assert_eq!(r.work, 300.0);
        assert_eq!(b.farm.accepted, 4);
        assert_eq!(b.farm.work, 400.0);
        // the next step has only what was added since, and a row for a connected miner
        // that sent nothing
        s.on_report((0, 1), &report("rig412", 5, 500.0, true));
        let b = s.tick(6_121).expect("next step");
        assert_eq!(b.t, 6_060);
        assert_eq!(b.miners["rig412"].accepted, 2);
        assert_eq!(b.miners["rig412"].work, 200.0);
        assert_eq!(b.miners["rig412"].secs, 60);
        assert_eq!(b.miners["rig7"].accepted, 0);
        assert_eq!(b.farm.accepted, 2);
        assert_eq!(s.next_tick(), 6_180);
    }

    #[test]
    fn connections_of_one_worker_add_up_and_a_departed_one_leaves_no_row() {
        let mut s = Sampler::new(60, 100, 0);
        s.on_report((0, 1), &report("rig", 2, 20.0, true));
        s.on_report((1, 1), &report("rig", 3, 30.0, true));
        let b = s.tick(60).expect("step");
        assert_eq!(b.miners["rig"].accepted, 5);
        // one leaves with a last share, the other without a last report
        s.on_report((0, 1), &report("rig", 3, 30.0, false));
        s.on_leave((1, 1));
        let b = s.tick(120).expect("step");
        assert_eq!(b.miners["rig"].accepted, 1);
        let b = s.tick(180).expect("step");
        assert!(b.miners.is_empty());
        // a new connection under the same key starts from zero
        s.on_report((0, 1), &report("rig", 1, 10.0, true));
        assert_eq!(s.tick(240).expect("step").miners["rig"].accepted, 1);
    }

    #[test]
    fn at_most_max_miners_rows_the_farm_counts_everyone() {
        let mut s = Sampler::new(60, 2, 0);
        for i in 0..5u32 {
            s.on_report((0, i), &report(&format!("rig{i}"), 1, 1.0, true));
        }
        let b = s.tick(60).expect("step");
        assert_eq!(b.miners.len(), 2);
        assert_eq!(b.farm.accepted, 5);
        assert_eq!(s.left_out(), 3);
    }

    #[test]
    fn a_stall_closes_one_step_and_flush_closes_the_open_one() {
        let mut s = Sampler::new(60, 10, 0);
        s.on_report((0, 1), &report("rig", 4, 4.0, true));
        // the hub stalled for three steps: one batch, the time since the last
        let b = s.tick(200).expect("step");
        assert_eq!((b.t, b.miners["rig"].secs), (0, 180));
        assert_eq!(s.next_tick(), 240);
        s.on_report((0, 1), &report("rig", 6, 6.0, true));
        let live = s.live();
        assert_eq!((live.from, live.workers["rig"], live.farm), (180, 2.0, 2.0));
        let b = s.flush(190);
        assert_eq!(
            (b.t, b.miners["rig"].secs, b.miners["rig"].accepted),
            (180, 10, 2)
        );
    }
}
