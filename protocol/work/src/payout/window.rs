//! The PPLNS window: the last N shares, summed per channel identity (whom they pay).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One payout identity's weight in a [`PplnsWindow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerWeight {
    /// The channel's user identity the shares were submitted under (not the worker label a
    /// proxy tags a share with, extension 0x0002): its address is paid.
    pub worker: String,
    /// Its shares in the window.
    pub shares: u64,
    /// Sum of their difficulty, added in share-id order.
    pub difficulty: f64,
}

/// The last N accepted shares, summed per channel identity: the input of
/// [`pplns_split`](crate::payout::pplns_split).
///
/// Built only by [`WindowBuilder`] (or [`PplnsWindow::from_shares`], which uses it), from
/// shares in ascending id order, so the floating-point sums are the same whoever builds it:
/// the pool's ledger for a new block, or an auditor re-reading the window's shares.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PplnsWindow {
    /// Id of the oldest share in the window (0 when empty).
    pub first_id: i64,
    /// Id of the newest share in the window (0 when empty).
    pub last_id: i64,
    /// Shares in the window.
    pub shares: u64,
    /// Sum of all their difficulty, added in id order.
    pub total_difficulty: f64,
    /// Per channel identity, sorted by identity.
    pub workers: Vec<WorkerWeight>,
}

impl PplnsWindow {
    /// Sums `(id, channel identity, difficulty)` triples, which must come in ascending id
    /// order.
    pub fn from_shares<W: AsRef<str>>(
        shares: impl IntoIterator<Item = (i64, W, f64)>,
    ) -> PplnsWindow {
        let mut builder = WindowBuilder::default();
        for (id, worker, difficulty) in shares {
            builder.push(id, worker.as_ref(), difficulty);
        }
        builder.finish()
    }

    /// Whether the window holds no share.
    pub fn is_empty(&self) -> bool {
        self.shares == 0
    }
}

/// A [`PplnsWindow`] summed one share at a time (in ascending id order), holding one entry
/// per identity rather than every share: for windows read in pages.
#[derive(Debug, Clone, Default)]
pub struct WindowBuilder {
    window: PplnsWindow,
    per_worker: BTreeMap<String, (u64, f64)>,
}

impl WindowBuilder {
    /// Adds the share `id` of `identity`; ids must come in ascending order.
    pub fn push(&mut self, id: i64, identity: &str, difficulty: f64) {
        let window = &mut self.window;
        if window.shares == 0 {
            window.first_id = id;
        }
        window.last_id = id;
        window.shares += 1;
        window.total_difficulty += difficulty;
        match self.per_worker.get_mut(identity) {
            Some((count, sum)) => {
                *count += 1;
                *sum += difficulty;
            }
            None => {
                self.per_worker.insert(identity.to_owned(), (1, difficulty));
            }
        }
    }

    /// Shares added so far.
    pub fn shares(&self) -> u64 {
        self.window.shares
    }

    /// Id of the last share added (0 before the first).
    pub fn last_id(&self) -> i64 {
        self.window.last_id
    }

    /// The window of every share added.
    pub fn finish(self) -> PplnsWindow {
        let mut window = self.window;
        window.workers = self
            .per_worker
            .into_iter()
            .map(|(worker, (shares, difficulty))| WorkerWeight {
                worker,
                shares,
                difficulty,
            })
            .collect();
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_worker_in_order() {
        let w = PplnsWindow::from_shares([(5, "b", 2.0), (6, "a", 1.5), (7, "b", 0.5)]);
        assert_eq!((w.first_id, w.last_id, w.shares), (5, 7, 3));
        assert_eq!(w.total_difficulty, 4.0);
        assert_eq!(
            w.workers,
            vec![
                WorkerWeight {
                    worker: "a".into(),
                    shares: 1,
                    difficulty: 1.5
                },
                WorkerWeight {
                    worker: "b".into(),
                    shares: 2,
                    difficulty: 2.5
                },
            ]
        );
        let empty = PplnsWindow::from_shares(std::iter::empty::<(i64, &str, f64)>());
        assert!(empty.is_empty());
        assert_eq!((empty.first_id, empty.last_id), (0, 0));
    }
}
