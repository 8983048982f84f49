//! Where the pool's work comes from: each [`Work`] (a template and its payouts) becomes the
//! coinbase of each channel (the work's shared one in PPLNS, the channel's own in solo) and
//! then a [`JobSpec`] the server core sends; the standard channels of a connection get one
//! group job between them unless they asked for standard jobs.

use std::sync::Arc;

use bytes::Bytes;
use strata_server::{JobSpec, PrevHashSpec};
use strata_work::channel::ExtendedWork;
use strata_work::coinbase::{Coinbase, CoinbaseParams};

use super::{Event, JobCoinbase, JobInfo, Now, Payouts, Session, Work};
use crate::payout::{self, Split};
use crate::template::Template;

/// The coinbase of a job and the same parts as the channels record them.
type JobCoinbaseParts = (Arc<Coinbase>, Arc<ExtendedWork>);

fn extended_work(t: &Template, c: &Coinbase) -> Arc<ExtendedWork> {
    ExtendedWork::new(
        Bytes::copy_from_slice(c.prefix()),
        Bytes::copy_from_slice(c.suffix()),
        Arc::from(t.merkle_path.as_slice()),
    )
}

impl Session {
    /// What a job of `worker`'s channel pays: the work's shared split, or (solo) the
    /// address of the worker's identity.
    fn split_for(&self, work: &Work, worker: &str) -> Arc<Split> {
        match &work.payouts {
            Payouts::Shared(s) => s.clone(),
            Payouts::Solo => Arc::new(payout::solo_split(
                work.template.coinbase_tx_value_remaining,
                worker,
                &self.cfg.pool_script,
                self.cfg.solo_fee_ppm,
                self.cfg.network,
            )),
        }
    }

    /// The coinbase of `work` paying `split` with room for `extranonce_len` bytes: the
    /// work's shared one when `split` is the work's shared split.
    fn coinbase(
        &self,
        work: &Work,
        split: &Arc<Split>,
        extranonce_len: usize,
    ) -> Option<JobCoinbaseParts> {
        let shared = matches!(&work.payouts, Payouts::Shared(s) if Arc::ptr_eq(s, split));
        if !shared {
            return self.build_coinbase(&work.template, split, extranonce_len);
        }
        if let Some((len, c, w)) = work.shared_coinbase.0.get() {
            if *len == extranonce_len {
                return Some((c.clone(), w.clone()));
            }
            return self.build_coinbase(&work.template, split, extranonce_len);
        }
        let (c, w) = self.build_coinbase(&work.template, split, extranonce_len)?;
        let (len, sc, sw) = work
            .shared_coinbase
            .0
            .get_or_init(|| (extranonce_len, c.clone(), w.clone()));
        Some(if *len == extranonce_len {
            (sc.clone(), sw.clone())
        } else {
            (c, w)
        })
    }

    fn build_coinbase(
        &self,
        t: &Template,
        split: &Split,
        extranonce_len: usize,
    ) -> Option<JobCoinbaseParts> {
        let params = CoinbaseParams {
            version: t.coinbase_tx_version,
            script_sig_prefix: t.coinbase_prefix.clone(),
            pool_tag: self.cfg.pool_tag.clone(),
            extranonce_len,
            sequence: t.coinbase_tx_input_sequence,
            pool_outputs: split.outputs.clone(),
            template_outputs: t.coinbase_tx_outputs.clone(),
            lock_time: t.coinbase_tx_locktime,
            witness_reserved_value: [0; 32],
        };
        match Coinbase::build(&params) {
            Ok(c) => {
                let w = extended_work(t, &c);
                Some((Arc::new(c), w))
            }
            Err(e) => {
                tracing::error!(template = t.id, error = %e, "cannot build the coinbase");
                None
            }
        }
    }

    /// Sends `work` to one new channel: a future job and the `SetNewPrevHash` activating it.
    pub(super) fn first_job(
        &mut self,
        channel_id: u32,
        work: &Arc<Work>,
        now: Now,
        out: &mut Vec<Event>,
    ) {
        if let Some(job_id) = self.channel_job(channel_id, work, None, out) {
            self.prev_hash(channel_id, job_id, work, now, out);
        }
    }

    /// Builds and sends a job for one channel; `min_ntime` None = future job.
    fn channel_job(
        &mut self,
        channel_id: u32,
        work: &Arc<Work>,
        min_ntime: Option<u32>,
        out: &mut Vec<Event>,
    ) -> Option<u32> {
        let state = self.core.state(channel_id)?;
        let split = self.split_for(work, &state.user);
        let full = self.core.channel(channel_id)?.full_extranonce_size();
        let (spec, info) = self.job_parts(work, split, full, min_ntime)?;
        self.core.send_job(channel_id, &spec, info, out)
    }

    /// The job message's fields and what the session keeps of the job, for a coinbase
    /// paying `split` with `full` extranonce bytes.
    fn job_parts(
        &self,
        work: &Arc<Work>,
        split: Arc<Split>,
        full: usize,
        min_ntime: Option<u32>,
    ) -> Option<(JobSpec, JobInfo)> {
        let t = &work.template;
        let (coinbase, ext) = self.coinbase(work, &split, full)?;
        let spec = JobSpec {
            version: t.version,
            version_rolling_allowed: true,
            work: ext,
            min_ntime,
        };
        let info = JobInfo {
            template: t.clone(),
            window: work.window,
            coinbase: JobCoinbase::Pool(coinbase),
            split,
        };
        Some((spec, info))
    }

    /// Builds and sends the group job for the standard members.
    fn group_job(
        &mut self,
        group_id: u32,
        work: &Arc<Work>,
        min_ntime: Option<u32>,
        out: &mut Vec<Event>,
    ) -> Option<u32> {
        let split = self.split_for(work, "");
        let full = self
            .core
            .channels()
            .group(group_id)?
            .full_extranonce_size()?;
        let (spec, info) = self.job_parts(work, split, full, min_ntime)?;
        self.core.send_group_job(group_id, &spec, info, out)
    }

    fn prev_hash(&mut self, id: u32, job_id: u32, work: &Work, now: Now, out: &mut Vec<Event>) {
        let t = &work.template;
        let p = PrevHashSpec {
            prev_hash: t.prev_hash,
            nbits: t.nbits,
            min_ntime: t.min_ntime.max(now.unix_secs()),
        };
        self.core.send_prev_hash(id, job_id, &p, out);
    }

    /// New work for every channel: on a new tip, future jobs and `SetNewPrevHash`; on the
    /// same tip, jobs active at once.
    pub fn on_work(&mut self, work: Arc<Work>, now: Now, out: &mut Vec<Event>) {
        let new_tip = self
            .work
            .as_ref()
            .is_none_or(|w| w.template.prev_hash != work.template.prev_hash);
        self.work = Some(work.clone());
        if !self.core.is_ready() || self.core.channel_count() == 0 {
            return;
        }
        if new_tip {
            let tip = work.template.prev_hash;
            self.core.retain_jobs(|j| j.template.prev_hash == tip);
        }
        let min_ntime = (!new_tip).then(|| {
            let prev = self
                .core
                .channels()
                .iter()
                .filter_map(|c| c.prev_hash().map(|p| p.min_ntime))
                .max()
                .unwrap_or(0);
            work.template.min_ntime.max(now.unix_secs()).max(prev)
        });
        // solo channels each pay their own address: no shared group job. Otherwise the
        // extended channels join the group (not on a work-selecting connection, whose channels
        // mine their own custom jobs)
        if !self.cfg.solo && !self.core.work_selection() && !self.core.requires_standard_jobs() {
            self.core.group_extended(out);
        }
        let group = self.core.job_group().filter(|_| !self.cfg.solo);
        if let Some(g) = group {
            if let Some(job_id) = self.group_job(g, &work, min_ntime, out) {
                if new_tip {
                    self.prev_hash(g, job_id, &work, now, out);
                }
            }
        }
        for id in self.core.channel_ids() {
            let grouped = self.core.channel(id).and_then(|c| c.group_id());
            if group.is_some() && grouped == group {
                continue;
            }
            if let Some(job_id) = self.channel_job(id, &work, min_ntime, out) {
                if new_tip {
                    self.prev_hash(id, job_id, &work, now, out);
                }
            }
        }
    }
}
