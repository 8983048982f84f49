//! The core's work for the miners (solo jobs, the pool's custom jobs) and the blocks among
//! their shares.

use bitcoin::{Amount, TxOut};
use strata_protocol::job_declaration::PushSolution;
use strata_protocol::wire::{B0_32, U256};
use strata_template::Solution;

use super::*;

impl Jdc {
    fn record(&mut self, c: usize, job: JobRecord) {
        let max = self.cfg.max_jobs.max(1);
        let jobs = &mut self.jobs[c];
        if jobs.len() >= max {
            jobs.pop_front();
        }
        jobs.push_back(job);
    }

    fn clean(&mut self, c: usize, tip: [u8; 32]) -> bool {
        let clean = self.last_tip[c] != Some(tip);
        self.last_tip[c] = Some(tip);
        clean
    }

    /// Channel `c`'s solo job on the current template (the whole reward to the solo address).
    pub(super) fn publish_solo(&mut self, c: usize, out: &mut Vec<Action>) {
        let Some(t) = self.template.clone() else {
            return;
        };
        self.ensure_channels(c + 1);
        let size = self.cfg.solo_extranonce_size;
        let prefix = solo_prefix(c);
        let pay = vec![TxOut {
            value: Amount::from_sat(t.template.coinbase_tx_value_remaining),
            script_pubkey: self.cfg.solo_script.clone(),
        }];
        let room = prefix.len() + usize::from(size);
        let coinbase = match JobCoinbase::build(&t.template, pay, &self.cfg.coinbase_tag, room) {
            Ok(cb) => Arc::new(cb),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the solo coinbase: no solo work");
                return;
            }
        };
        let job_id = self.next_job_id;
        self.next_job_id = self.next_job_id.wrapping_add(1).max(1);
        self.seq += 1;
        let clean = self.clean(c, t.template.prev_hash);
        let work = upstream_work(
            self.hub_epoch,
            self.seq,
            job_id,
            &t,
            &coinbase,
            prefix.clone(),
            size,
            self.network_target(),
            BIP320_VERSION_MASK,
            clean,
        );
        self.record(
            c,
            JobRecord {
                job_id,
                template: t,
                coinbase,
                extranonce_prefix: prefix,
            },
        );
        out.push(Action::ToHub(UpstreamEvent::Work { channel: c, work }));
    }

    /// Channel `c`'s custom job, once the pool set it.
    pub(super) fn publish_pool(&mut self, c: usize, out: &mut Vec<Action>) {
        let Some(Some(chan)) = self.pool.as_ref().and_then(|p| p.chans.get(c)).cloned() else {
            return;
        };
        let p = &self.pipes[c];
        let (Stage::Done, Some(t), Some(coinbase), Some(job_id)) =
            (&p.stage, p.template.clone(), p.coinbase.clone(), p.job_id)
        else {
            return;
        };
        self.seq += 1;
        let clean = self.clean(c, t.template.prev_hash);
        let work = upstream_work(
            self.hub_epoch,
            self.seq,
            job_id,
            &t,
            &coinbase,
            chan.prefix.clone(),
            chan.size,
            chan.target,
            chan.version_mask,
            clean,
        );
        self.record(
            c,
            JobRecord {
                job_id,
                template: t,
                coinbase,
                extranonce_prefix: chan.prefix,
            },
        );
        out.push(Action::ToHub(UpstreamEvent::Work { channel: c, work }));
    }

    /// A share that is a block: to the farm's node, and to the JDS in pool mode.
    pub(super) fn check_block(&mut self, s: &ForwardShare, out: &mut Vec<Action>) {
        let Some(job) = self
            .jobs
            .get(s.channel)
            .and_then(|j| j.iter().rev().find(|j| j.job_id == s.job_id))
        else {
            return;
        };
        let t = &job.template;
        let Ok(network) = Target::from_compact(t.template.nbits) else {
            return;
        };
        let parts: [&[u8]; 2] = [&job.extranonce_prefix, &s.extranonce];
        let header = match job
            .coinbase
            .header(&parts, &t.template.merkle_path, header_fields(t, s))
        {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(error = %e, "share of another extranonce size");
                return;
            }
        };
        if !header.meets(&network) {
            return;
        }
        let Ok(coinbase) = job.coinbase.full(&parts) else {
            return;
        };
        tracing::info!(
            height = t.template.height,
            mode = ?self.mode,
            worker = %s.worker,
            "block found: submitting it to the farm's node"
        );
        out.push(Action::SubmitBlock(Solution {
            template_id: t.template.id,
            header: header.to_bytes(),
            coinbase,
        }));
        if self.mode == Mode::Pool && self.jds == JdsState::Ready {
            let mut extranonce = job.extranonce_prefix.to_vec();
            extranonce.extend_from_slice(&s.extranonce);
            if let Ok(extranonce) = B0_32::new(&extranonce) {
                out.push(Action::ToJds(
                    PushSolution {
                        extranonce,
                        prev_hash: U256(t.template.prev_hash),
                        nonce: s.nonce,
                        ntime: s.ntime,
                        nbits: t.template.nbits,
                        version: s.version,
                    }
                    .into(),
                ));
            }
        }
    }
}
