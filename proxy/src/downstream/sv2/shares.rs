//! Where the proxy's accepted shares go: counted for the miner's report, and forwarded
//! upstream when they meet the upstream target of their job.

use bytes::{BufMut, BytesMut};
use strata_protocol::mining::{self as m, MiningMessage, SubmitSharesError};
use strata_protocol::wire::Str0_255;
use strata_protocol::Message;
use strata_server::Accepted;
use strata_work::target::hash_meets;

use super::{Action, JoinState, Now, Sv2DownSession, ESTIMATE_MIN_SHARES};
use crate::work::{ForwardShare, RejectReason};

impl Sv2DownSession {
    pub(super) fn count_rejected(&mut self, reason: RejectReason) {
        *self.counters.rejected.entry(reason).or_insert(0) += 1;
        if reason == RejectReason::Stale {
            self.counters.stale += 1;
        }
    }

    /// A share on an open channel while the upstream is gone: the job cannot be credited
    /// anywhere, so it is refused as stale (true when `msg` was such a share).
    pub(super) fn refuse_without_upstream(&mut self, msg: &Message, out: &mut Vec<Action>) -> bool {
        if self.work.is_some() || !self.core.is_ready() {
            return false;
        }
        let (channel_id, sequence_number) = match msg {
            Message::Mining(MiningMessage::SubmitSharesStandard(s)) => {
                (s.channel_id, s.sequence_number)
            }
            Message::Mining(MiningMessage::SubmitSharesExtended(s)) => {
                (s.channel_id, s.sequence_number)
            }
            _ => return false,
        };
        if self.core.channel(channel_id).is_none() {
            return false;
        }
        self.count_rejected(RejectReason::NoUpstream);
        out.push(Action::Send(
            SubmitSharesError {
                channel_id,
                sequence_number,
                error_code: Str0_255::truncated(m::ERROR_STALE_SHARE),
            }
            .into(),
        ));
        true
    }

    pub(super) fn accepted(&mut self, a: &Accepted, now: Now, out: &mut Vec<Action>) {
        let channel_id = a.submit.channel_id();
        let share = &a.share;
        self.counters.accepted += 1;
        self.counters.last_share_ms = now.unix_ms;
        self.counters.accepted_work += a.job_target.difficulty();
        let Some(state) = self.core.state(channel_id) else {
            return;
        };
        if state.vardiff.shares_in_window(now.mono) == ESTIMATE_MIN_SHARES {
            // the channel's estimate takes over from its nominal hashrate
            self.early_report = true;
        }
        let Some(job) = self.core.job_data(channel_id, share.job_id) else {
            tracing::error!(peer = %self.peer, channel = channel_id, job = share.job_id, "accepted share of an unrecorded job");
            return;
        };
        let JoinState::Joined(miner) = self.join else {
            return;
        };
        if share.is_block.is_none() && !hash_meets(&share.hash, &job.upstream_target) {
            return;
        }
        let rolled = a.submit.extranonce();
        let extranonce = if rolled.is_empty() {
            job.extranonce.clone()
        } else {
            let mut e = BytesMut::with_capacity(job.extranonce.len() + rolled.len());
            e.put_slice(&job.extranonce);
            e.put_slice(rolled);
            e.freeze()
        };
        // a proxy behind this one names the device of each share; a device names itself
        let worker = match a.worker.as_deref() {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => state.user.clone(),
        };
        let (nonce, ntime, version) = a.submit.header_fields();
        out.push(Action::Forward(ForwardShare {
            channel: 0, // the miner task stamps its channel
            miner,
            worker,
            epoch: job.epoch,
            job_id: job.upstream_job_id,
            nonce,
            ntime,
            version,
            extranonce,
            difficulty: share.difficulty,
            received: now.mono,
        }));
    }
}
