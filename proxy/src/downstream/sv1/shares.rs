//! An SV1 session's shares: `mining.submit` checked locally, forwarded, and the answers.

use super::*;

impl Sv1Session {
    pub(super) fn count_reject(&mut self, reason: RejectReason) {
        *self.stats.rejected.entry(reason).or_insert(0) += 1;
        if reason == RejectReason::Stale {
            self.stats.stale += 1;
        }
    }

    pub(super) fn reject(
        &mut self,
        id: Id,
        reason: RejectReason,
        detail: &str,
        out: &mut Vec<Sv1Action>,
    ) {
        self.count_reject(reason);
        let (code, message) = reject_code(reason);
        let message = if detail.is_empty() {
            message.to_owned()
        } else {
            format!("{message}: {detail}")
        };
        respond_err(out, id, code, message);
    }

    pub(super) fn on_submit(&mut self, id: Id, s: &Submit, now: Now, out: &mut Vec<Sv1Action>) {
        let Some(miner) = self.miner().filter(|_| self.mining.is_some()) else {
            self.count_reject(RejectReason::Unauthorized);
            respond_err(out, id, StratumError::NOT_SUBSCRIBED, "not subscribed");
            return;
        };
        if !self.workers.iter().any(|w| *w == *s.worker_name) {
            self.reject(id, RejectReason::Unauthorized, "", out);
            return;
        }
        let Some(work) = self.work.clone() else {
            self.reject(id, RejectReason::NoUpstream, "", out);
            return;
        };
        let Some(local_id) = u32::from_str_radix(&s.job_id, 16).ok() else {
            self.reject(id, RejectReason::UnknownJob, "", out);
            return;
        };
        if self.retired.contains(&local_id) {
            self.reject(id, RejectReason::Stale, "", out);
            return;
        }
        let Some(m) = self.mining.as_mut() else {
            return;
        };
        let job = m.channel.job(local_id).map(|j| (j.version(), j.target()));
        let upstream_job = m.jobs.iter().find(|j| j.local_id == local_id).copied();
        let version = match (s.version_bits, job) {
            (None, Some((v, _))) => v,
            (Some(bits), Some((v, _))) => {
                if bits & !m.mask == 0 {
                    (v & !m.mask) | bits
                } else {
                    bits // a full version: validation checks the bits outside the mask
                }
            }
            (_, None) => 0, // validation reports the job
        };
        let extranonce = match B0_32::new(s.extranonce2.as_bytes()) {
            Ok(e) => e,
            Err(_) => {
                self.reject(id, RejectReason::Malformed, "extranonce2 too long", out);
                return;
            }
        };
        m.sequence = m.sequence.wrapping_add(1);
        let share = SubmitSharesExtended {
            channel_id: LOCAL_CHANNEL_ID,
            sequence_number: m.sequence,
            job_id: local_id,
            nonce: s.nonce,
            ntime: s.ntime,
            version,
            extranonce,
        };
        let accepted = match validate_extended(&mut m.channel, &share, now.unix_ms) {
            Ok(a) => a,
            Err(r) => {
                let reason = reject_reason(&r);
                let detail = r.to_string();
                self.reject(id, reason, &detail, out);
                return;
            }
        };
        let meets_upstream =
            accepted.is_block.is_some() || work.upstream_target.is_met_by(&accepted.hash);
        let forward = match upstream_job {
            Some(j) if meets_upstream => {
                let mut extranonce =
                    m.extranonce1[m.upstream_prefix_len.min(m.extranonce1.len())..].to_vec();
                extranonce.extend_from_slice(s.extranonce2.as_bytes());
                Some(ForwardShare {
                    channel: 0, // the miner task stamps its channel
                    miner,
                    worker: s.worker_name.to_string(),
                    epoch: m.epoch,
                    job_id: j.upstream_job_id,
                    nonce: s.nonce,
                    ntime: s.ntime,
                    version,
                    extranonce: Bytes::from(extranonce),
                    difficulty: accepted.difficulty,
                    received: now.mono,
                })
            }
            _ => None,
        };
        if let Some((_, target)) = job {
            // the current target as vardiff holds it (the wire difficulty may round it)
            let target = if target == self.share_target() {
                self.vardiff.target()
            } else {
                target
            };
            self.vardiff.on_share(now.mono, &target);
            self.stats.accepted_work += target.difficulty();
            if self.vardiff.shares_in_window(now.mono) == ESTIMATE_MIN_SHARES {
                // the estimate takes over from the implied hashrate: tell the hub now
                self.early_report = true;
            }
        }
        self.stats.accepted += 1;
        self.stats.last_share_ms = now.unix_ms;
        if let Some(f) = forward {
            out.push(Sv1Action::Forward(f));
        }
        respond(out, Response::bool(id, true));
    }
}

/// The statistics reason of a strata-work rejection.
pub fn reject_reason(r: &Rejection) -> RejectReason {
    match r {
        Rejection::InvalidJobId { .. } => RejectReason::UnknownJob,
        // below the nTime floor of a renewed duplicate set: as stale as an old job
        Rejection::StaleShare { .. } | Rejection::BelowNtimeFloor { .. } => RejectReason::Stale,
        Rejection::DuplicateShare { .. } => RejectReason::Duplicate,
        // the channel can no longer tell a duplicate from a new share
        Rejection::ShareBudgetExhausted { .. } => RejectReason::Duplicate,
        Rejection::DifficultyTooLow => RejectReason::LowDifficulty,
        Rejection::InvalidVersion { .. } | Rejection::VersionRollingNotAllowed { .. } => {
            RejectReason::BadVersion
        }
        Rejection::NtimeTooEarly { .. } | Rejection::NtimeTooLate { .. } => RejectReason::BadNtime,
        _ => RejectReason::Malformed,
    }
}

/// The stratum error code and message a rejected share is answered with.
pub fn reject_code(reason: RejectReason) -> (i64, &'static str) {
    match reason {
        RejectReason::UnknownJob => (StratumError::JOB_NOT_FOUND, "job not found"),
        RejectReason::Stale => (StratumError::JOB_NOT_FOUND, "stale job"),
        RejectReason::NoUpstream => (StratumError::JOB_NOT_FOUND, "no upstream pool"),
        RejectReason::Duplicate => (StratumError::DUPLICATE_SHARE, "duplicate share"),
        RejectReason::LowDifficulty => (StratumError::LOW_DIFFICULTY, "low difficulty share"),
        RejectReason::Unauthorized => (StratumError::UNAUTHORIZED, "unauthorized worker"),
        RejectReason::BadVersion => (StratumError::OTHER, "invalid version bits"),
        RejectReason::BadNtime => (StratumError::OTHER, "ntime out of range"),
        RejectReason::Malformed => (StratumError::OTHER, "malformed share"),
    }
}
