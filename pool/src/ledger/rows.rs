//! What the SQLite and PostgreSQL backends share between their rows and the ledger's records:
//! integer conversions (SQL integers are `i64`), the block status column, and the mapping of
//! a `shares`, `blocks`, `block_outputs` or `workers` row to its record. Each backend only
//! reads its columns into a row struct here (in the order of its `SELECT`) and writes records
//! through these conversions, so both read and write the same values the same way.

use super::{
    BlockRecord, BlockStatus, HistoryPoint, LedgerError, Payout, ShareRecord, Totals, WorkerTotals,
};

/// `value` as an SQL integer, or [`LedgerError::OutOfRange`] naming `field`.
pub(super) fn int(field: &'static str, value: u64) -> Result<i64, LedgerError> {
    i64::try_from(value).map_err(|_| LedgerError::OutOfRange { field, value })
}

/// A stored integer that must not be negative; [`LedgerError::Corrupt`] otherwise.
pub(super) fn uint(table: &'static str, field: &str, value: i64) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::Corrupt {
        table,
        detail: format!("negative {field} {value}"),
    })
}

/// A stored integer that must fit a `u32`; [`LedgerError::Corrupt`] otherwise.
pub(super) fn narrow(table: &'static str, field: &str, value: i64) -> Result<u32, LedgerError> {
    u32::try_from(value).map_err(|_| LedgerError::Corrupt {
        table,
        detail: format!("{field} {value} out of range"),
    })
}

/// Identifiers are stored bit-for-bit: every `u64` has a slot, ordering is not needed.
pub(super) fn id_to_sql(id: u64) -> i64 {
    i64::from_le_bytes(id.to_le_bytes())
}

/// The inverse of [`id_to_sql`].
pub(super) fn id_from_sql(id: i64) -> u64 {
    u64::from_le_bytes(id.to_le_bytes())
}

/// The `status` and `reject_reason` columns of a block.
pub(super) fn status_to_sql(status: &BlockStatus) -> (&'static str, Option<&str>) {
    match status {
        BlockStatus::Submitted => ("submitted", None),
        BlockStatus::Accepted => ("accepted", None),
        BlockStatus::Rejected { reason } => ("rejected", Some(reason.as_str())),
    }
}

/// A block's status from its `status` and `reject_reason` columns.
pub(super) fn status_from_sql(
    status: &str,
    reason: Option<String>,
) -> Result<BlockStatus, LedgerError> {
    match status {
        "submitted" => Ok(BlockStatus::Submitted),
        "accepted" => Ok(BlockStatus::Accepted),
        "rejected" => Ok(BlockStatus::Rejected {
            reason: reason.unwrap_or_default(),
        }),
        other => Err(LedgerError::Corrupt {
            table: "blocks",
            detail: format!("unknown status {other:?}"),
        }),
    }
}

/// A `shares` row as stored:
/// `id, worker, connection_id, channel_id, job_id, sequence_number, height, difficulty, hash,
/// time_ms, block, channel_identity`.
pub(super) struct ShareRow {
    pub(super) id: i64,
    pub(super) worker: String,
    pub(super) connection_id: i64,
    pub(super) channel_id: i64,
    pub(super) job_id: i64,
    pub(super) sequence_number: i64,
    pub(super) height: i64,
    pub(super) difficulty: f64,
    pub(super) hash: Vec<u8>,
    pub(super) time_ms: i64,
    pub(super) block: bool,
    /// NULL in rows of schema version 1, whose worker is the identity.
    pub(super) channel_identity: Option<String>,
}

impl ShareRow {
    /// The share's id and record.
    pub(super) fn into_record(self) -> Result<(i64, ShareRecord), LedgerError> {
        let id = self.id;
        let hash: [u8; 32] = self
            .hash
            .try_into()
            .map_err(|h: Vec<u8>| LedgerError::Corrupt {
                table: "shares",
                detail: format!("share {id}: hash of {} bytes", h.len()),
            })?;
        Ok((
            id,
            ShareRecord {
                channel_identity: self.channel_identity.unwrap_or_else(|| self.worker.clone()),
                worker: self.worker,
                connection_id: id_from_sql(self.connection_id),
                channel_id: narrow("shares", "channel_id", self.channel_id)?,
                job_id: narrow("shares", "job_id", self.job_id)?,
                sequence_number: narrow("shares", "sequence_number", self.sequence_number)?,
                height: narrow("shares", "height", self.height)?,
                difficulty: self.difficulty,
                hash,
                time_ms: uint("shares", "time_ms", self.time_ms)?,
                block: self.block,
            },
        ))
    }
}

/// A `blocks` row as stored: `id, height, hash, template_id, worker, time_ms, reward_sats,
/// window_first, window_last, mode, status, reject_reason, payout_rules`.
pub(super) struct BlockRow {
    pub(super) id: i64,
    pub(super) height: i64,
    pub(super) hash: String,
    pub(super) template_id: i64,
    pub(super) worker: String,
    pub(super) time_ms: i64,
    pub(super) reward_sats: i64,
    pub(super) window_first: Option<i64>,
    pub(super) window_last: Option<i64>,
    pub(super) mode: String,
    pub(super) status: String,
    pub(super) reject_reason: Option<String>,
    pub(super) payout_rules: Option<String>,
}

impl BlockRow {
    /// The block's record, with its outputs (its `block_outputs` rows in `idx` order).
    pub(super) fn into_record(self, outputs: Vec<Payout>) -> Result<BlockRecord, LedgerError> {
        Ok(BlockRecord {
            height: narrow("blocks", "height", self.height)?,
            hash: self.hash,
            template_id: id_from_sql(self.template_id),
            worker: self.worker,
            time_ms: uint("blocks", "time_ms", self.time_ms)?,
            reward_sats: uint("blocks", "reward_sats", self.reward_sats)?,
            outputs,
            window: self.window_first.zip(self.window_last),
            mode: self.mode,
            status: status_from_sql(&self.status, self.reject_reason)?,
            payout_rules: self.payout_rules,
        })
    }
}

/// A `block_outputs` row (`owner, script_hex, sats`) as a payout.
pub(super) fn payout(owner: String, script_hex: String, sats: i64) -> Result<Payout, LedgerError> {
    Ok(Payout {
        owner,
        script_hex,
        sats: uint("block_outputs", "sats", sats)?,
    })
}

/// A `workers` row as stored: `worker, shares, difficulty, last_share_ms`.
pub(super) struct WorkerRow {
    pub(super) worker: String,
    pub(super) shares: i64,
    pub(super) difficulty: f64,
    pub(super) last_share_ms: i64,
}

/// The totals from the `workers` rows (in the order given) and the counts of `blocks` rows,
/// all and accepted.
pub(super) fn totals(
    workers: impl IntoIterator<Item = WorkerRow>,
    blocks_found: i64,
    blocks_accepted: i64,
) -> Result<Totals, LedgerError> {
    let workers = workers.into_iter();
    let mut totals = Totals {
        shares_accepted: 0,
        difficulty: 0.0,
        blocks_found: uint("blocks", "count", blocks_found)?,
        blocks_accepted: uint("blocks", "count", blocks_accepted)?,
        workers: Vec::with_capacity(workers.size_hint().0),
    };
    for w in workers {
        let shares = uint("workers", "shares", w.shares)?;
        totals.shares_accepted += shares;
        totals.difficulty += w.difficulty;
        totals.workers.push(WorkerTotals {
            worker: w.worker,
            shares,
            difficulty: w.difficulty,
            last_share_ms: uint("workers", "last_share_ms", w.last_share_ms)?,
        });
    }
    Ok(totals)
}

/// Checks `share` (a finite, non-negative difficulty, a `time_ms` that fits the column) and
/// returns its `time_ms` column value.
pub(super) fn share_time(share: &ShareRecord) -> Result<i64, LedgerError> {
    if !share.difficulty.is_finite() || share.difficulty < 0.0 {
        return Err(LedgerError::InvalidDifficulty {
            worker: share.worker.clone(),
            difficulty: share.difficulty,
        });
    }
    int("time_ms", share.time_ms)
}

/// A worker's totals as `workers` columns: `(worker, shares, difficulty, last_share_ms)`.
pub(super) fn worker_columns(w: &WorkerTotals) -> Result<(&str, i64, f64, i64), LedgerError> {
    Ok((
        &w.worker,
        int("shares", w.shares)?,
        w.difficulty,
        int("last_share_ms", w.last_share_ms)?,
    ))
}

/// Writes a history sample: `$1..$5` = [`history_columns`], `$6` the server's id (0: a pool
/// alone). The same text runs on both backends (SQLite reads `$N` as the N-th parameter
/// too).
pub(super) const HISTORY_INSERT: &str =
    "INSERT INTO history (time_ms, hashrate, accepted, rejected, connections, server_id) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (server_id, time_ms) DO UPDATE SET \
     hashrate = excluded.hashrate, accepted = excluded.accepted, \
     rejected = excluded.rejected, connections = excluded.connections";

/// Deletes the history samples (every server's) before `$1` (ms).
pub(super) const HISTORY_PRUNE: &str = "DELETE FROM history WHERE time_ms < $1";

/// The pool's history from `$2` (ms) on in buckets of `$1` ms, oldest first, as
/// [`HistoryRow`]s: the bucket's start; per server the mean hashrate of its samples, the
/// summed counts and the most connections, then those added over the servers (a cluster's
/// servers each sample their own part).
pub(super) const HISTORY_SELECT: &str =
    "SELECT t, sum(h), CAST(sum(a) AS BIGINT), CAST(sum(r) AS BIGINT), CAST(sum(c) AS BIGINT) \
     FROM (SELECT (time_ms / $1) * $1 AS t, server_id, avg(hashrate) AS h, \
     sum(accepted) AS a, sum(rejected) AS r, max(connections) AS c \
     FROM history WHERE time_ms >= $2 GROUP BY 1, 2) AS per_server \
     GROUP BY t ORDER BY t";

/// The blocks with an output to `$1`, newest first, for `read_blocks` (`LIMIT` appended).
pub(super) const BLOCKS_PAYING_TAIL: &str =
    "WHERE id IN (SELECT block_id FROM block_outputs WHERE owner = $1) ORDER BY id DESC";

/// A `history` row (or bucket) as [`HISTORY_SELECT`] reads it.
pub(super) struct HistoryRow {
    pub(super) time_ms: i64,
    pub(super) hashrate: f64,
    pub(super) accepted: i64,
    pub(super) rejected: i64,
    pub(super) connections: i64,
}

impl HistoryRow {
    /// The sample it stores.
    pub(super) fn into_record(self) -> Result<HistoryPoint, LedgerError> {
        Ok(HistoryPoint {
            time_ms: uint("history", "time_ms", self.time_ms)?,
            hashrate: self.hashrate,
            accepted: uint("history", "accepted", self.accepted)?,
            rejected: uint("history", "rejected", self.rejected)?,
            connections: uint("history", "connections", self.connections)?,
        })
    }
}

/// A sample as `history` columns (`time_ms, hashrate, accepted, rejected, connections`),
/// checked: a finite non-negative hashrate, integers that fit.
pub(super) fn history_columns(p: &HistoryPoint) -> Result<(i64, f64, i64, i64, i64), LedgerError> {
    if !p.hashrate.is_finite() || p.hashrate < 0.0 {
        return Err(LedgerError::InvalidHashrate {
            hashrate: p.hashrate,
        });
    }
    Ok((
        int("time_ms", p.time_ms)?,
        p.hashrate,
        int("accepted", p.accepted)?,
        int("rejected", p.rejected)?,
        int("connections", p.connections)?,
    ))
}

/// The bucket width and start of a history read as SQL integers (`$1`, `$2` of
/// [`HISTORY_SELECT`]).
pub(super) fn history_params(since_ms: u64, bucket_ms: u64) -> (i64, i64) {
    (
        i64::try_from(bucket_ms.max(1)).unwrap_or(i64::MAX),
        i64::try_from(since_ms).unwrap_or(i64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share_row(hash: Vec<u8>, identity: Option<&str>) -> ShareRow {
        ShareRow {
            id: 7,
            worker: "farm.rig1".into(),
            connection_id: -1,
            channel_id: 2,
            job_id: 3,
            sequence_number: 4,
            height: 5,
            difficulty: 1.5,
            hash,
            time_ms: 1_700_000_000_000,
            block: false,
            channel_identity: identity.map(str::to_owned),
        }
    }

    #[test]
    fn ids_and_statuses_round_trip() {
        for id in [0, 1, u64::MAX, 1 << 63] {
            assert_eq!(id_from_sql(id_to_sql(id)), id);
        }
        for status in [
            BlockStatus::Submitted,
            BlockStatus::Accepted,
            BlockStatus::Rejected {
                reason: "bad-txns".into(),
            },
        ] {
            let (s, reason) = status_to_sql(&status);
            assert_eq!(
                status_from_sql(s, reason.map(str::to_owned)).unwrap(),
                status
            );
        }
        assert!(matches!(
            status_from_sql("lost", None),
            Err(LedgerError::Corrupt {
                table: "blocks",
                ..
            })
        ));
    }

    #[test]
    fn share_rows_map_to_records_and_bad_rows_are_corrupt() {
        let (id, r) = share_row(vec![9; 32], None).into_record().unwrap();
        assert_eq!(id, 7);
        // a version 1 row: the worker is the identity
        assert_eq!(r.channel_identity, "farm.rig1");
        assert_eq!(r.connection_id, u64::MAX);
        assert_eq!(
            (r.channel_id, r.job_id, r.sequence_number, r.height),
            (2, 3, 4, 5)
        );
        let (_, r) = share_row(vec![9; 32], Some("bc1q")).into_record().unwrap();
        assert_eq!(
            (r.worker.as_str(), r.channel_identity.as_str()),
            ("farm.rig1", "bc1q")
        );
        assert!(matches!(
            share_row(vec![9; 31], None).into_record(),
            Err(LedgerError::Corrupt {
                table: "shares",
                ..
            })
        ));
        let mut negative = share_row(vec![9; 32], None);
        negative.time_ms = -1;
        assert!(matches!(
            negative.into_record(),
            Err(LedgerError::Corrupt {
                table: "shares",
                ..
            })
        ));
        assert!(matches!(
            int("time_ms", u64::MAX),
            Err(LedgerError::OutOfRange {
                field: "time_ms",
                ..
            })
        ));
    }

    #[test]
    fn totals_sum_the_workers_and_deltas_check_each_share() {
        let t = totals(
            [
                WorkerRow {
                    worker: "a".into(),
                    shares: 2,
                    difficulty: 3.0,
                    last_share_ms: 10,
                },
                WorkerRow {
                    worker: "b".into(),
                    shares: 1,
                    difficulty: 0.5,
                    last_share_ms: 20,
                },
            ],
            4,
            3,
        )
        .unwrap();
        assert_eq!((t.shares_accepted, t.difficulty), (3, 3.5));
        assert_eq!(
            (t.blocks_found, t.blocks_accepted, t.workers.len()),
            (4, 3, 2)
        );

        let (_, mut s) = share_row(vec![9; 32], None).into_record().unwrap();
        assert_eq!(share_time(&s).unwrap(), 1_700_000_000_000);
        s.difficulty = f64::NAN;
        assert!(matches!(
            share_time(&s),
            Err(LedgerError::InvalidDifficulty { .. })
        ));
        let w = WorkerTotals {
            worker: "farm.rig1".into(),
            shares: 2,
            difficulty: 3.0,
            last_share_ms: 5,
        };
        assert_eq!(worker_columns(&w).unwrap(), ("farm.rig1", 2, 3.0, 5));
    }

    #[test]
    fn history_samples_are_checked_and_read_back() {
        let p = HistoryPoint {
            time_ms: 1_700_000_000_000,
            hashrate: 1.5e9,
            accepted: 12,
            rejected: 1,
            connections: 3,
        };
        let (t, h, a, r, c) = history_columns(&p).unwrap();
        let back = HistoryRow {
            time_ms: t,
            hashrate: h,
            accepted: a,
            rejected: r,
            connections: c,
        }
        .into_record()
        .unwrap();
        assert_eq!(back, p);
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let p = HistoryPoint {
                hashrate: bad,
                ..p.clone()
            };
            assert!(matches!(
                history_columns(&p),
                Err(LedgerError::InvalidHashrate { .. })
            ));
        }
        let negative = HistoryRow {
            time_ms: 1,
            hashrate: 0.0,
            accepted: -1,
            rejected: 0,
            connections: 0,
        };
        assert!(matches!(
            negative.into_record(),
            Err(LedgerError::Corrupt {
                table: "history",
                ..
            })
        ));
        assert_eq!(history_params(5, 0), (1, 5));
        assert_eq!(history_params(u64::MAX, 60_000), (60_000, i64::MAX));
    }
}
