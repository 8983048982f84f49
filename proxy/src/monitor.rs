//! What the hub keeps for operators beyond the live figures: the history sampler, the alert
//! core, the failover log, and the queues to the history thread and the alert webhook. The
//! hub owns one [`Monitor`] and feeds it its miners' reports, the upstream events and the
//! time; it is synchronous apart from the two queues it fills without waiting.

use std::collections::VecDeque;

use serde::Serialize;

use crate::alerts::webhook::Webhook;
use crate::alerts::{AlertKind, Alerts, AlertsView, FailoverRecord, Notice};
use crate::history::sampler::{ConnKey, Live};
use crate::history::{HistoryHandle, Sampler};
use crate::hub::MinerReport;

/// UNIX seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The parts of a [`Monitor`].
#[derive(Debug)]
pub struct MonitorParts {
    /// The history sampler.
    pub sampler: Sampler,
    /// The alert core.
    pub alerts: Alerts,
    /// Failovers kept.
    pub max_failovers: usize,
    /// The history thread (none with the history off).
    pub history: Option<HistoryHandle>,
    /// The alert webhook, if configured.
    pub webhook: Option<Webhook>,
}

/// Counters and gauges of the monitor for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MonitorStats {
    /// Per alert kind: (name, active now, fired since the start).
    pub alerts: Vec<(&'static str, usize, u64)>,
    /// History batches dropped because the writer's queue was full.
    pub history_dropped_batches: u64,
    /// Worker rows left out of history batches (beyond `history.max_miners`).
    pub history_left_out_rows: u64,
    /// Alerts dropped because the webhook's queue was full.
    pub webhook_dropped: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Monitor {
    sampler: Sampler,
    alerts: Alerts,
    failovers: VecDeque<FailoverRecord>,
    max_failovers: usize,
    history: Option<HistoryHandle>,
    webhook: Option<Webhook>,
    /// The pool active last (the `from` of the next failover).
    last_active: Option<String>,
    /// Why it (or, before any was active, a pool) went down since.
    down: Option<String>,
    dropped_batches: u64,
    webhook_dropped: u64,
}

impl Monitor {
    /// A monitor of these parts.
    pub fn new(p: MonitorParts) -> Self {
        Monitor {
            sampler: p.sampler,
            alerts: p.alerts,
            failovers: VecDeque::new(),
            max_failovers: p.max_failovers,
            history: p.history,
            webhook: p.webhook,
            last_active: None,
            down: None,
            dropped_batches: 0,
            webhook_dropped: 0,
        }
    }

    /// A monitor at the default settings, with no history file and no webhook (for a hub
    /// in tests).
    pub fn detached(now: u64) -> Self {
        let h = crate::config::HistorySettings::default();
        Monitor::new(MonitorParts {
            sampler: Sampler::new(h.resolution_secs, h.max_miners, now),
            alerts: Alerts::new(crate::alerts::AlertConfig::from(
                &crate::config::AlertSettings::default(),
            )),
            max_failovers: crate::config::Config::default().max_failovers,
            history: None,
            webhook: None,
        })
    }

    /// A miner's report.
    pub fn on_report(&mut self, key: ConnKey, r: &MinerReport) {
        self.sampler.on_report(key, r);
    }

    /// A miner left.
    pub fn on_leave(&mut self, key: ConnKey) {
        self.sampler.on_leave(key);
    }

    /// Pool `url` became the active upstream at `now`: a failover unless it is the first
    /// activation without any pool down before it.
    pub fn on_active(&mut self, url: &str, now: u64) {
        let from = self.last_active.replace(url.to_string());
        let reason = match (self.down.take(), &from) {
            (Some(why), _) => format!("down: {why}"),
            (None, Some(_)) => "return-to-preferred".to_string(),
            (None, None) => return,
        };
        let f = FailoverRecord {
            t: now,
            from,
            to: url.to_string(),
            reason,
        };
        tracing::warn!(from = ?f.from, to = %f.to, reason = %f.reason, "upstream failover");
        if self.max_failovers > 0 {
            if self.failovers.len() >= self.max_failovers {
                self.failovers.pop_front();
            }
            self.failovers.push_back(f.clone());
        }
        let mut out = Vec::new();
        self.alerts.on_failover(&f, now, &mut out);
        self.emit(out);
    }

    /// Pool `url` went down (`was_active`: it was the active upstream).
    pub fn on_down(&mut self, url: &str, reason: &str, was_active: bool) {
        if was_active || self.last_active.is_none() {
            self.down = Some(format!("{url}: {reason}"));
        }
    }

    /// Seconds per history step.
    pub fn resolution(&self) -> u64 {
        self.sampler.resolution()
    }

    /// When [`Monitor::tick`] is next due (UNIX seconds).
    pub fn next_tick(&self) -> u64 {
        self.sampler.next_tick()
    }

    /// At `now`: closes the history step if it ended, writes it, judges the alerts.
    pub fn tick(&mut self, now: u64) {
        let Some(batch) = self.sampler.tick(now) else {
            return;
        };
        let mut out = Vec::new();
        self.alerts.on_batch(&batch, now, &mut out);
        self.write(batch);
        self.emit(out);
    }

    /// At shutdown: the open step is written.
    pub fn flush(&mut self, now: u64) {
        let batch = self.sampler.flush(now);
        self.write(batch);
    }

    fn write(&mut self, batch: crate::history::Batch) {
        if let Some(h) = &self.history {
            if !h.try_write(batch) {
                self.dropped_batches += 1;
                tracing::warn!(
                    dropped = self.dropped_batches,
                    "history writer behind: a step of history dropped"
                );
            }
        }
    }

    fn emit(&mut self, out: Vec<Notice>) {
        for n in out {
            let a = &n.alert;
            match n.status {
                "fired" => {
                    tracing::warn!(kind = a.kind.name(), subject = ?a.subject, "alert: {}", a.message)
                }
                _ => {
                    tracing::info!(kind = a.kind.name(), subject = ?a.subject, "alert resolved: {}", a.message)
                }
            }
            if let Some(w) = &self.webhook {
                if !w.try_send(n) {
                    self.webhook_dropped += 1;
                    tracing::warn!(
                        dropped = self.webhook_dropped,
                        "alert webhook behind: an alert not sent"
                    );
                }
            }
        }
    }

    /// The open history step.
    pub fn live(&self) -> Live {
        self.sampler.live()
    }

    /// Active and recent alerts.
    pub fn alerts(&self) -> AlertsView {
        self.alerts.view()
    }

    /// Recent failovers, newest first.
    pub fn failovers(&self) -> Vec<FailoverRecord> {
        self.failovers.iter().rev().cloned().collect()
    }

    /// Figures for `/metrics`.
    pub fn stats(&self) -> MonitorStats {
        MonitorStats {
            alerts: AlertKind::ALL
                .iter()
                .map(|k| {
                    (
                        k.name(),
                        self.alerts.active_count(*k),
                        self.alerts.fired_total(*k),
                    )
                })
                .collect(),
            history_dropped_batches: self.dropped_batches,
            history_left_out_rows: self.sampler.left_out(),
            webhook_dropped: self.webhook_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertConfig;

    fn monitor() -> Monitor {
        Monitor::new(MonitorParts {
            sampler: Sampler::new(60, 10, 0),
            alerts: Alerts::new(AlertConfig::from(&crate::config::AlertSettings::default())),
            max_failovers: 2,
            history: None,
            webhook: None,
        })
    }

    #[test]
    fn failovers_are_recorded_with_their_reason_and_bounded() {
        let mut m = monitor();
        m.on_active("a", 1);
        assert!(
            m.failovers().is_empty(),
            "the first activation is no failover"
        );
        m.on_down("a", "connection reset", true);
        m.on_active("b", 5);
        m.on_active("a", 40);
        let f = m.failovers();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].from.as_deref(), f[0].to.as_str()), (Some("b"), "a"));
        assert_eq!(f[0].reason, "return-to-preferred");
        assert_eq!(f[1].reason, "down: a: connection reset");
        m.on_down("a", "eof", true);
        m.on_active("b", 50);
        assert_eq!(m.failovers().len(), 2);
        assert_eq!(m.failovers()[0].t, 50);
        let s = m.stats();
        assert_eq!(s.alerts[2], ("failover", 1, 3));
    }

    /// A writer or a webhook that is behind costs the hub nothing: the step or the alert is
    /// dropped and counted.
    #[tokio::test]
    async fn full_queues_drop_and_count() {
        let mut m = monitor();
        let (history, _stalled) = HistoryHandle::stalled(1);
        m.history = Some(history);
        // the webhook's task does not run before this test yields: its queue of 1 fills
        let stop = tokio_util::sync::CancellationToken::new();
        let url = crate::alerts::webhook::check_url("http://127.0.0.1:9/hook").expect("url");
        let (w, _task) =
            crate::alerts::webhook::spawn(url, std::time::Duration::from_secs(1), 1, stop.clone());
        m.webhook = Some(w);
        m.on_active("a", 1);
        m.on_down("a", "eof", true);
        m.on_active("b", 5);
        m.on_active("a", 9);
        m.tick(60);
        m.tick(120);
        m.tick(180);
        let s = m.stats();
        // notices: fired (b); resolved (b), fired (a): one queued, two dropped
        assert_eq!(s.webhook_dropped, 2);
        // steps 0, 60, 120: one queued, two dropped
        assert_eq!(s.history_dropped_batches, 2);
        stop.cancel();
    }

    #[test]
    fn a_pool_down_before_any_was_active_is_a_failover_from_none() {
        let mut m = monitor();
        m.on_down("a", "refused", false);
        m.on_active("b", 3);
        let f = m.failovers();
        assert_eq!(
            (f[0].from.clone(), f[0].reason.as_str()),
            (None, "down: a: refused")
        );
    }
}
