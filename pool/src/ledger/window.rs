//! The PPLNS window: the last N shares, summed per channel identity (whom they pay).

use std::collections::BTreeMap;

use serde::Serialize;

/// One payout identity's weight in a [`PplnsWindow`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerWeight {
    /// The channel's user identity the shares were submitted under
    /// ([`ShareRecord::channel_identity`](super::ShareRecord::channel_identity)): its address
    /// is paid. Worker labels of extension 0x0002 are not part of it.
    pub worker: String,
    /// Its shares in the window.
    pub shares: u64,
    /// Sum of their difficulty, added in share-id order.
    pub difficulty: f64,
}

/// The last N accepted shares, summed per channel identity: the input of
/// [`pplns_split`](crate::payout::pplns_split).
///
/// Built only by [`PplnsWindow::from_shares`], from shares in ascending id order, so the
/// floating-point sums are the same whoever builds it: the ledger for a new block, or an
/// auditor re-reading the window's shares with
/// [`Ledger::shares_in`](super::Ledger::shares_in).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
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
        let mut window = PplnsWindow::default();
        let mut per_worker: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        for (id, worker, difficulty) in shares {
            if window.shares == 0 {
                window.first_id = id;
            }
            window.last_id = id;
            window.shares += 1;
            window.total_difficulty += difficulty;
            let worker = worker.as_ref();
            match per_worker.get_mut(worker) {
                Some((count, sum)) => {
                    *count += 1;
                    *sum += difficulty;
                }
                None => {
                    per_worker.insert(worker.to_owned(), (1, difficulty));
                }
            }
        }
        window.workers = per_worker
            .into_iter()
            .map(|(worker, (shares, difficulty))| WorkerWeight {
                worker,
                shares,
                difficulty,
            })
            .collect();
        window
    }

    /// Whether the window holds no share.
    pub fn is_empty(&self) -> bool {
        self.shares == 0
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
