//! Where the pool's accepted shares go: a [`ShareRecord`] for the ledger (acknowledged once
//! committed) and, for a share meeting the network target, the block assembled from the job's
//! coinbase ([`FoundBlock`]).

use strata_server::{Accepted, PendingAck};
use strata_work::share::BlockCandidate;

use super::{Event, FoundBlock, JobCoinbase, Now, Session, ShareRecord};
use crate::template::Solution;

impl Session {
    pub(super) fn accepted(&mut self, a: &Accepted, now: Now, out: &mut Vec<Event>) {
        let channel_id = a.submit.channel_id();
        let sequence_number = a.submit.sequence_number();
        let share = &a.share;
        let Some(state) = self.core.state(channel_id) else {
            return;
        };
        let worker = match a.worker.as_deref() {
            Some(w) if !w.is_empty() => format!("{}/{}", state.user, w),
            _ => state.user.clone(),
        };
        // PPLNS pays the channel's identity, never a proxy's worker label
        let channel_identity = state.user.clone();
        let height = self
            .core
            .job_data(channel_id, share.job_id)
            .map_or(0, |j| j.template.height);
        if let Some(block) = share.is_block.as_deref() {
            if let Some(found) = self.found_block(block, &worker) {
                out.push(Event::Block(Box::new(found)));
            }
        }
        out.push(Event::Accepted(Box::new((
            ShareRecord {
                worker,
                channel_identity,
                connection_id: self.conn_id,
                channel_id,
                job_id: share.job_id,
                sequence_number,
                height,
                difficulty: share.difficulty,
                hash: share.hash,
                time_ms: now.unix_ms,
                block: share.is_block.is_some(),
            },
            PendingAck {
                channel_id,
                sequence_number,
                difficulty: share.difficulty,
            },
        ))));
    }

    fn found_block(&self, b: &BlockCandidate, worker: &str) -> Option<FoundBlock> {
        let ch = self.core.channel(b.channel_id)?;
        let Some(job) = self.core.job_data(b.channel_id, b.job_id) else {
            tracing::error!(
                channel = b.channel_id,
                job = b.job_id,
                "block candidate for a job without a coinbase"
            );
            return None;
        };
        let extranonce: Vec<u8> = match &b.coinbase {
            Some(parts) => parts.extranonce.as_slice().to_vec(),
            None => ch.extranonce_prefix().to_vec(),
        };
        let (coinbase, block) = match &job.coinbase {
            JobCoinbase::Pool(c) => {
                let mut coinbase = Vec::new();
                if let Err(e) = c.write_full(&[&extranonce], &mut coinbase) {
                    tracing::error!(error = %e, "cannot assemble the block's coinbase");
                    return None;
                }
                (coinbase, None)
            }
            JobCoinbase::Custom(d) => {
                let coinbase = match d.coinbase.with_extranonce(&extranonce) {
                    Ok(tx) => bitcoin::consensus::serialize(&tx),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot assemble a custom job's coinbase");
                        return None;
                    }
                };
                let txs: Vec<Vec<u8>> = d
                    .transactions
                    .iter()
                    .map(|t| bitcoin::consensus::serialize(&**t))
                    .collect();
                let block = b.assemble(&coinbase, &txs);
                (coinbase, Some(block))
            }
        };
        let mut display = b.hash;
        display.reverse();
        Some(FoundBlock {
            solution: Solution {
                template_id: job.template.id,
                header: b.header.to_bytes(),
                coinbase,
            },
            height: job.template.height,
            hash: hex::encode(display),
            prev_hash: job.template.prev_hash,
            worker: worker.to_string(),
            split: job.split.clone(),
            reward_sats: job.template.coinbase_tx_value_remaining,
            window: job.window,
            template_id: job.template.id,
            block,
        })
    }
}
