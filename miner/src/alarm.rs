//! Sub-millisecond wake-ups for the load generator's paced connections.
//!
//! tokio's timer has a resolution of one millisecond: 10,000 connections paced at 25,000
//! shares/s would wake in bursts of about 25 at each tick and submit them together. No farm
//! makes that load (its devices submit at independent instants), and it queues the last
//! shares of each burst behind the first ones at the server under test, which then shows in
//! the latency we measure. The load generator's connections wait on an [`Alarm`] instead:
//! one thread per process keeps the deadlines in a heap, sleeps until the earliest, rounded
//! up to a multiple of [`GRAIN`] (100 µs: the connections due within one grain are woken
//! together, one thread wake-up for several of them), and notifies the connections due.
//!
//! An alarm is cancel-safe: a connection may stop waiting (a line arrived) and wait again
//! for the same or another deadline. A deadline given up stays in the heap until it passes
//! and then wakes its connection once for nothing; [`Alarm::until`] checks the time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The clock's resolution: deadlines ring at the first multiple of it (since the clock
/// started) at or after them.
pub const GRAIN: Duration = Duration::from_micros(100);

/// One connection's wake-ups.
#[derive(Debug, Default)]
pub struct Alarm {
    notify: Arc<Notify>,
    /// The deadline in the heap for this alarm (the latest one set).
    armed: Option<Instant>,
}

impl Alarm {
    /// An alarm with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns at `at` (at once if it has passed), within the clock thread's resolution.
    pub async fn until(&mut self, at: Instant) {
        loop {
            if Instant::now() >= at {
                self.armed = None;
                return;
            }
            if self.armed != Some(at) {
                clock().set(at, self.notify.clone());
                self.armed = Some(at);
            }
            // a wake-up from an earlier deadline (given up since) returns early: the loop
            // looks at the time again
            self.notify.notified().await;
        }
    }
}

/// A deadline in the clock's heap.
#[derive(Debug)]
struct Entry {
    at: Instant,
    seq: u64,
    notify: Arc<Notify>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug, Default)]
struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

/// The process's clock thread and its heap of deadlines.
#[derive(Debug)]
struct Clock {
    /// The origin of the grains.
    start: Instant,
    heap: Mutex<Heap>,
    /// Signalled when a deadline earlier than all others is set.
    earlier: Condvar,
}

/// The clock, its thread started on first use.
fn clock() -> &'static Clock {
    static CLOCK: OnceLock<&'static Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let clock: &'static Clock = Box::leak(Box::new(Clock {
            start: Instant::now(),
            heap: Mutex::default(),
            earlier: Condvar::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name("strata-alarm".into())
            .spawn(move || clock.run());
        if let Err(e) = spawned {
            // without the thread no alarm would ever ring: the generator cannot work
            panic!("cannot start the alarm thread: {e}");
        }
        clock
    })
}

impl Clock {
    fn lock(&self) -> MutexGuard<'_, Heap> {
        self.heap.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first multiple of [`GRAIN`] after the clock's start at or after `at`.
    fn grain_end(&self, at: Instant) -> Instant {
        let since = at.saturating_duration_since(self.start);
        let grain = GRAIN.as_nanos();
        let grains = since.as_nanos().div_ceil(grain);
        let nanos = u64::try_from(grains.saturating_mul(grain)).unwrap_or(u64::MAX);
        self.start + Duration::from_nanos(nanos)
    }

    fn set(&self, at: Instant, notify: Arc<Notify>) {
        let mut heap = self.lock();
        let earliest = heap.entries.peek().is_none_or(|Reverse(e)| at < e.at);
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Reverse(Entry { at, seq, notify }));
        drop(heap);
        if earliest {
            self.earlier.notify_one();
        }
    }

    /// The clock thread: notifies what is due, sleeps until the next deadline or an earlier
    /// one is set.
    fn run(&self) {
        let mut due = Vec::new();
        let mut heap = self.lock();
        loop {
            let now = Instant::now();
            while heap.entries.peek().is_some_and(|Reverse(e)| e.at <= now) {
                if let Some(Reverse(e)) = heap.entries.pop() {
                    due.push(e.notify);
                }
            }
            if !due.is_empty() {
                drop(heap);
                for n in due.drain(..) {
                    n.notify_one();
                }
                heap = self.lock();
                continue;
            }
            heap = match heap.entries.peek() {
                Some(Reverse(e)) => {
                    let wait = self.grain_end(e.at).saturating_duration_since(now);
                    self.earlier
                        .wait_timeout(heap, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .earlier
                    .wait(heap)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_round_up_to_the_grain() {
        let start = Instant::now();
        let c = Clock {
            start,
            heap: Mutex::default(),
            earlier: Condvar::new(),
        };
        assert_eq!(c.grain_end(start), start);
        assert_eq!(c.grain_end(start + Duration::from_nanos(1)), start + GRAIN);
        assert_eq!(c.grain_end(start + GRAIN), start + GRAIN);
        assert_eq!(
            c.grain_end(start + GRAIN * 7 + Duration::from_micros(1)),
            start + GRAIN * 8
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rings_at_its_deadline_with_sub_millisecond_resolution() {
        let mut late = Vec::new();
        let mut alarm = Alarm::new();
        for i in 0..50u64 {
            let at = Instant::now() + Duration::from_micros(200 + 37 * i);
            alarm.until(at).await;
            let now = Instant::now();
            assert!(now >= at, "never early");
            late.push(now - at);
        }
        late.sort_unstable();
        // tokio's timer would be up to 1 ms late; the clock is up to a GRAIN (100 µs) plus
        // the kernel's timer slack (~50 µs) late (generous bound: CI machines are shared)
        assert!(
            late[late.len() / 2] < Duration::from_micros(700),
            "median lateness {:?}",
            late[late.len() / 2]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_given_up_does_not_ring_the_next_one_early() {
        let mut alarm = Alarm::new();
        let soon = Instant::now() + Duration::from_millis(5);
        // give up the first wait before it rings
        let gave_up = tokio::time::timeout(Duration::from_millis(1), alarm.until(soon)).await;
        assert!(gave_up.is_err());
        // a later deadline: the stale wake-up at `soon` must not end this wait
        let later = Instant::now() + Duration::from_millis(30);
        alarm.until(later).await;
        assert!(Instant::now() >= later);
        // an earlier deadline than one set and given up
        let far = Instant::now() + Duration::from_secs(3600);
        let gave_up = tokio::time::timeout(Duration::from_millis(1), alarm.until(far)).await;
        assert!(gave_up.is_err());
        let near = Instant::now() + Duration::from_millis(2);
        let t = tokio::time::timeout(Duration::from_secs(5), alarm.until(near)).await;
        assert!(t.is_ok(), "an earlier deadline wakes the clock");
        assert!(Instant::now() >= near);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_alarms_each_ring() {
        let start = Instant::now();
        let tasks: Vec<_> = (0..500u64)
            .map(|i| {
                tokio::spawn(async move {
                    let mut a = Alarm::new();
                    let at = start + Duration::from_micros(10 * (i % 97) + 1000);
                    a.until(at).await;
                    Instant::now() >= at
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.expect("task"));
        }
    }
}
