//! Alerts an operator can wire: the sans-IO core [`Alerts`] (history batches, failovers and
//! the time in; fired and resolved alerts out), and the webhook ([`webhook`]).
//!
//! The rules (`[alerts]` in the configuration; a threshold of 0 turns a rule off):
//!
//! * `miner_silent` (subject: the worker name): no accepted share for `miner_silent_secs`,
//!   counted from its last step with an accepted share, or from when it was first seen.
//!   Resolves at its next accepted share; a worker silent for `forget_after_secs` is
//!   forgotten (its alert resolves). At most `max_miners` workers are tracked. The workers
//!   of the history (seen within `forget_after_secs`) are known from the start on: a rig
//!   that does not come back after a restart is silent `miner_silent_secs` after it.
//! * `hashrate_drop`: the farm's hashrate over the last `drop_recent_secs` (summed
//!   accepted work of the farm rows ending in that span over their seconds) is below its
//!   hashrate over the `drop_baseline_secs` before them by more than
//!   `hashrate_drop_percent` %; judged only when both spans are at least half covered by
//!   rows and the baseline is above 0. Active while that holds: a drop that lasts resolves
//!   once the baseline span has moved onto the lower level (after about
//!   `drop_baseline_secs`).
//! * `failover` (subject: the new pool's URL): each change of the active pool (the active
//!   one went down, or the return to a preferred one), active for `failover_active_secs`
//!   (a newer failover resolves the older one).
//!
//! Rules are judged at each history step (the resolution bounds how soon an alert fires).

pub mod webhook;

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use crate::history::{Batch, HASHES_PER_DIFFICULTY};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A miner sent no accepted share for a while.
    MinerSilent,
    /// The farm's hashrate dropped.
    HashrateDrop,
    /// The active pool changed.
    Failover,
}

impl AlertKind {
    /// Every kind (for series that list each).
    pub const ALL: [AlertKind; 3] = [
        AlertKind::MinerSilent,
        AlertKind::HashrateDrop,
        AlertKind::Failover,
    ];

    /// Its name in JSON and in Prometheus labels.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::MinerSilent => "miner_silent",
            AlertKind::HashrateDrop => "hashrate_drop",
            AlertKind::Failover => "failover",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// The worker name (`miner_silent`) or the new pool's URL (`failover`).
    pub subject: Option<String>,
    /// What happened, for a person.
    pub message: String,
    /// When it fired (UNIX seconds).
    pub since: u64,
    /// When it resolved (UNIX seconds), `None` while active.
    pub resolved_at: Option<u64>,
}

/// A change of the active pool (`GET /api/v1/failovers`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverRecord {
    /// When (UNIX seconds).
    pub t: u64,
    /// The pool left (`None`: none was active since the start).
    pub from: Option<String>,
    /// The new active pool.
    pub to: String,
    /// `return-to-preferred`, or `down: <why the pool left went down>`.
    pub reason: String,
}

/// What the core reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// `fired` or `resolved`.
    pub status: &'static str,
    /// The alert (with `resolved_at` set when resolved).
    #[serde(flatten)]
    pub alert: Alert,
}

/// The rules' settings (see the module docs; 0 turns a rule off).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// `miner_silent` after this many seconds without an accepted share.
    pub miner_silent_secs: u64,
    /// A silent worker is forgotten after this many seconds.
    pub forget_after_secs: u64,
    /// `hashrate_drop` beyond this percentage.
    pub hashrate_drop_percent: f64,
    /// The recent span of the drop rule (seconds).
    pub drop_recent_secs: u64,
    /// The baseline span just before it (seconds).
    pub drop_baseline_secs: u64,
    /// How long a `failover` alert stays active (seconds).
    pub failover_active_secs: u64,
    /// Fired and resolved alerts kept.
    pub max_recent: usize,
    /// Workers tracked at most.
    pub max_miners: usize,
}

impl From<&crate::config::AlertSettings> for AlertConfig {
    fn from(s: &crate::config::AlertSettings) -> Self {
        AlertConfig {
            miner_silent_secs: s.miner_silent_secs,
            forget_after_secs: s.forget_after_secs,
            hashrate_drop_percent: s.hashrate_drop_percent,
            drop_recent_secs: s.drop_recent_secs,
            drop_baseline_secs: s.drop_baseline_secs,
            failover_active_secs: s.failover_active_secs,
            max_recent: s.max_recent,
            max_miners: s.max_miners,
        }
    }
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AlertsView {
    /// Active alerts, oldest first.
    pub active: Vec<Alert>,
    /// Fired and resolved alerts, newest first (at most `max_recent`).
    pub recent: Vec<Notice>,
}

/// A farm row as the drop rule keeps it: (end of its step, seconds, work).
type FarmPoint = (u64, u64, f64);

/// The alert core (see the module docs).
#[derive(Debug)]
pub struct Alerts {
    cfg: AlertConfig,
    /// Per worker: the end of its last step with an accepted share (or when first seen).
    workers: HashMap<String, u64>,
    farm: VecDeque<FarmPoint>,
    active: BTreeMap<(AlertKind, Option<String>), Alert>,
    recent: VecDeque<Notice>,
    fired: BTreeMap<AlertKind, u64>,
    failover_until: u64,
}

impl Alerts {
    /// A core with no history.
    pub fn new(cfg: AlertConfig) -> Self {
        Alerts {
            cfg,
            workers: HashMap::new(),
            farm: VecDeque::new(),
            active: BTreeMap::new(),
            recent: VecDeque::new(),
            fired: BTreeMap::new(),
            failover_until: 0,
        }
    }

    /// Alerts fired since the start, by kind.
    pub fn fired_total(&self, kind: AlertKind) -> u64 {
        self.fired.get(&kind).copied().unwrap_or(0)
    }

    /// Active alerts of a kind.
    pub fn active_count(&self, kind: AlertKind) -> usize {
        self.active.keys().filter(|(k, _)| *k == kind).count()
    }

    /// The active and recent alerts.
    pub fn view(&self) -> AlertsView {
        let mut active: Vec<Alert> = self.active.values().cloned().collect();
        active.sort_by_key(|a| a.since);
        AlertsView {
            active,
            recent: self.recent.iter().rev().cloned().collect(),
        }
    }

    /// Farm rows of earlier runs (read from the history at start), for the drop rule.
    pub fn seed_farm(&mut self, rows: impl IntoIterator<Item = crate::history::Row>) {
        for r in rows {
            self.farm.push_back((r.t + r.secs, r.secs, r.work));
        }
    }

    /// Workers of earlier runs (from the history at start), known from `now` on: one that
    /// does not come back is silent `miner_silent_secs` after the start (the proxy cannot
    /// tell what it did while the proxy was down).
    pub fn seed_workers(&mut self, workers: impl IntoIterator<Item = String>, now: u64) {
        for w in workers {
            if self.workers.len() >= self.cfg.max_miners {
                break;
            }
            self.workers.entry(w).or_insert(now);
        }
    }

    fn notify(&mut self, status: &'static str, alert: Alert, out: &mut Vec<Notice>) {
        let n = Notice { status, alert };
        if self.cfg.max_recent > 0 {
            if self.recent.len() >= self.cfg.max_recent {
                self.recent.pop_front();
            }
            self.recent.push_back(n.clone());
        }
        out.push(n);
    }

    fn fire(
        &mut self,
        kind: AlertKind,
        subject: Option<String>,
        message: String,
        now: u64,
        out: &mut Vec<Notice>,
    ) {
        let key = (kind, subject.clone());
        if self.active.contains_key(&key) {
            return;
        }
        let alert = Alert {
            kind,
            subject,
            message,
            since: now,
            resolved_at: None,
        };
        *self.fired.entry(kind).or_default() += 1;
        self.active.insert(key, alert.clone());
        self.notify("fired", alert, out);
    }

    fn resolve(
        &mut self,
        kind: AlertKind,
        subject: Option<String>,
        now: u64,
        out: &mut Vec<Notice>,
    ) {
        if let Some(mut a) = self.active.remove(&(kind, subject)) {
            a.resolved_at = Some(now);
            self.notify("resolved", a, out);
        }
    }

    /// A closed history step, judged at `now` (UNIX seconds).
    pub fn on_batch(&mut self, b: &Batch, now: u64, out: &mut Vec<Notice>) {
        for (w, r) in &b.miners {
            if r.accepted > 0 {
                if let Some(last) = self.workers.get_mut(w) {
                    *last = r.t + r.secs;
                } else if self.workers.len() < self.cfg.max_miners {
                    self.workers.insert(w.clone(), r.t + r.secs);
                }
            } else if !self.workers.contains_key(w) && self.workers.len() < self.cfg.max_miners {
                self.workers.insert(w.clone(), r.t);
            }
        }
        self.farm
            .push_back((b.farm.t + b.farm.secs, b.farm.secs, b.farm.work));
        self.judge(now, out);
    }

    /// The active pool changed.
    pub fn on_failover(&mut self, f: &FailoverRecord, now: u64, out: &mut Vec<Notice>) {
        if self.cfg.failover_active_secs == 0 {
            return;
        }
        let old: Vec<Option<String>> = self
            .active
            .keys()
            .filter(|(k, _)| *k == AlertKind::Failover)
            .map(|(_, s)| s.clone())
            .collect();
        for s in old {
            self.resolve(AlertKind::Failover, s, now, out);
        }
        let message = match &f.from {
            Some(from) => format!("upstream switched from {from} to {} ({})", f.to, f.reason),
            None => format!("upstream {} active ({})", f.to, f.reason),
        };
        self.fire(AlertKind::Failover, Some(f.to.clone()), message, now, out);
        self.failover_until = now + self.cfg.failover_active_secs;
    }

    /// Judges every rule at `now`.
    pub fn judge(&mut self, now: u64, out: &mut Vec<Notice>) {
        self.judge_silent(now, out);
        self.judge_drop(now, out);
        if now >= self.failover_until {
            let old: Vec<Option<String>> = self
                .active
                .keys()
                .filter(|(k, _)| *k == AlertKind::Failover)
                .map(|(_, s)| s.clone())
                .collect();
            for s in old {
                self.resolve(AlertKind::Failover, s, now, out);
            }
        }
    }

    fn judge_silent(&mut self, now: u64, out: &mut Vec<Notice>) {
        let silent = self.cfg.miner_silent_secs;
        let forget = self.cfg.forget_after_secs.max(silent);
        let mut forgotten = Vec::new();
        let mut changes = Vec::new();
        for (w, last) in &self.workers {
            let quiet = now.saturating_sub(*last);
            let key = (AlertKind::MinerSilent, Some(w.clone()));
            let active = self.active.contains_key(&key);
            if forget > 0 && quiet >= forget {
                forgotten.push(w.clone());
            } else if silent > 0 && quiet >= silent && !active {
                changes.push((w.clone(), Some(quiet)));
            } else if active && quiet < silent {
                changes.push((w.clone(), None));
            }
        }
        for (w, quiet) in changes {
            match quiet {
                Some(q) => self.fire(
                    AlertKind::MinerSilent,
                    Some(w.clone()),
                    format!("miner {w}: no accepted share for {q} s"),
                    now,
                    out,
                ),
                None => self.resolve(AlertKind::MinerSilent, Some(w), now, out),
            }
        }
        for w in forgotten {
            self.workers.remove(&w);
            self.resolve(AlertKind::MinerSilent, Some(w), now, out);
        }
    }

    fn judge_drop(&mut self, now: u64, out: &mut Vec<Notice>) {
        let (recent, base) = (self.cfg.drop_recent_secs, self.cfg.drop_baseline_secs);
        let split = now.saturating_sub(recent);
        let start = split.saturating_sub(base);
        while self.farm.front().is_some_and(|p| p.0 <= start) {
            self.farm.pop_front();
        }
        let pct = self.cfg.hashrate_drop_percent;
        if pct <= 0.0 || recent == 0 || base == 0 {
            return;
        }
        let sum = |lo: u64, hi: u64| {
            self.farm
                .iter()
                .filter(|p| p.0 > lo && p.0 <= hi)
                .fold((0u64, 0.0), |(s, w), p| (s + p.1, w + p.2))
        };
        let (rs, rw) = sum(split, now);
        let (bs, bw) = sum(start, split);
        if rs * 2 < recent || bs * 2 < base || bw <= 0.0 {
            return;
        }
        let rate = |w: f64, s: u64| w * HASHES_PER_DIFFICULTY / s as f64;
        let (r, b) = (rate(rw, rs), rate(bw, bs));
        let dropped = r < b * (1.0 - pct / 100.0);
        let active = self.active.contains_key(&(AlertKind::HashrateDrop, None));
        if dropped && !active {
            let message = format!(
                "farm hashrate {:.3e} H/s over the last {recent} s, {:.0} % below {:.3e} H/s over the {base} s before",
                r,
                (1.0 - r / b) * 100.0,
                b
            );
            self.fire(AlertKind::HashrateDrop, None, message, now, out);
        } else if !dropped && active {
            self.resolve(AlertKind::HashrateDrop, None, now, out);
        }
    }
}

#[cfg(test)]
mod tests;
