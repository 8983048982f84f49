//! Job distribution: the role says what to mine ([`JobSpec`], [`PrevHashSpec`]); the core
//! builds the message each channel needs (a merkle root for a standard channel, coinbase
//! parts for an extended channel or a group), records it on the channel's state so shares are
//! validated against exactly what went on the wire, and keeps the role's data `J` for it
//! while the channel holds the job.

use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash,
};
use strata_protocol::wire::{B0_32, U256};
use strata_protocol::Message;
use strata_work::channel::{Channel, ChannelConfig, ChannelKind};
use strata_work::merkle::merkle_root_from_path;

use crate::core::send;
use crate::{JobSpec, Output, PrevHashSpec, ServerCore};

fn extended_job(channel_id: u32, job_id: u32, spec: &JobSpec) -> Option<NewExtendedMiningJob> {
    Some(NewExtendedMiningJob {
        channel_id,
        job_id,
        min_ntime: spec.min_ntime,
        version: spec.version,
        version_rolling_allowed: spec.version_rolling_allowed,
        merkle_path: spec
            .work
            .merkle_path
            .iter()
            .map(|h| U256(*h))
            .collect::<Vec<_>>()
            .try_into()
            .ok()?,
        coinbase_tx_prefix: strata_protocol::wire::B0_64K::new(spec.work.coinbase_prefix.clone())
            .ok()?,
        coinbase_tx_suffix: strata_protocol::wire::B0_64K::new(spec.work.coinbase_suffix.clone())
            .ok()?,
    })
}

impl<C, J> ServerCore<C, J> {
    /// The group the connection's grouped channels get their jobs through: the group,
    /// unless the client set `REQUIRES_STANDARD_JOBS` or the group has no member.
    pub fn job_group(&self) -> Option<u32> {
        let g = self.group_id()?;
        (!self.requires_standard_jobs()
            && self
                .channels
                .group(g)
                .is_some_and(|g| !g.members().is_empty()))
        .then_some(g)
    }

    /// Puts the connection's extended channels that are in no group yet into its group
    /// channel (spec 5.2.3) with one `SetGroupChannel`, where their full extranonce size is
    /// the group's (every member of a group must have the same, for one extended job's
    /// coinbase to fit them all); creates the group if the connection has none. One extended
    /// job then reaches every member. Returns the ids it grouped, increasing.
    pub fn group_extended<O: Output>(&mut self, out: &mut Vec<O>) -> Vec<u32> {
        let mut loose: Vec<(u32, usize)> = self
            .channels
            .iter()
            .filter(|c| c.group_id().is_none() && c.kind() != ChannelKind::Standard)
            .map(|c| (c.id(), c.full_extranonce_size()))
            .collect();
        let Some(&(_, first_size)) = loose.first() else {
            return Vec::new();
        };
        loose.sort_unstable();
        let g = match self.group_id {
            Some(g) => g,
            None => {
                let g = self.alloc_channel_id();
                if self.channels.create_group(g, Some(first_size)).is_err() {
                    return Vec::new();
                }
                self.group_id = Some(g);
                g
            }
        };
        let size = self
            .channels
            .group(g)
            .and_then(|g| g.full_extranonce_size())
            .unwrap_or(first_size);
        let ids: Vec<u32> = loose
            .iter()
            .filter(|&&(_, s)| s == size)
            .map(|&(id, _)| id)
            .collect();
        let Ok(channel_ids) = ids.clone().try_into() else {
            return Vec::new();
        };
        if ids.is_empty() {
            return ids;
        }
        let msg = SetGroupChannel {
            group_channel_id: g,
            channel_ids,
        };
        if let Err(e) = self.channels.on_set_group_channel(&msg) {
            tracing::error!(group = g, error = %e, "cannot group the extended channels");
            return Vec::new();
        }
        send(out, msg);
        ids
    }

    /// A fresh job id for a channel or group.
    pub fn next_job_id(&mut self, channel_id: u32) -> Option<u32> {
        self.channels.next_job_id(channel_id).ok()
    }

    /// Builds, records and sends one job of `spec` on a channel: `NewMiningJob` (merkle root
    /// over the channel's extranonce prefix) on a standard channel, `NewExtendedMiningJob`
    /// on an extended one. Keeps `data` for the job; returns its id.
    pub fn send_job<O: Output>(
        &mut self,
        channel_id: u32,
        spec: &JobSpec,
        data: J,
        out: &mut Vec<O>,
    ) -> Option<u32> {
        let job_id = self.channels.next_job_id(channel_id).ok()?;
        let ch = self.channels.get_mut(channel_id)?;
        let msg: Message = match ch.kind() {
            ChannelKind::Standard => {
                let txid = spec.work.txid(&[ch.extranonce_prefix()]);
                let root = merkle_root_from_path(txid, spec.work.merkle_path.iter());
                let job = NewMiningJob {
                    channel_id,
                    job_id,
                    min_ntime: spec.min_ntime,
                    version: spec.version,
                    merkle_root: U256(root),
                };
                if let Err(e) = ch.on_new_mining_job(&job) {
                    tracing::error!(channel = channel_id, error = %e, "job refused by the channel");
                    return None;
                }
                job.into()
            }
            ChannelKind::Extended { .. } => {
                let job = extended_job(channel_id, job_id, spec)?;
                if let Err(e) = ch.on_new_extended_mining_job_shared(&job, &spec.work) {
                    tracing::error!(channel = channel_id, error = %e, "job refused by the channel");
                    return None;
                }
                job.into()
            }
        };
        self.record(channel_id, job_id, data);
        send(out, msg);
        Some(job_id)
    }

    /// Builds, records and sends one extended job of `spec` to a group: every member records
    /// it (standard members as the merkle root over their own prefix). Keeps `data`.
    pub fn send_group_job<O: Output>(
        &mut self,
        group_id: u32,
        spec: &JobSpec,
        data: J,
        out: &mut Vec<O>,
    ) -> Option<u32> {
        let job_id = self.channels.next_job_id(group_id).ok()?;
        let job = extended_job(group_id, job_id, spec)?;
        if let Err(e) = self.channels.on_new_extended_mining_job(&job) {
            tracing::error!(group = group_id, error = %e, "group job refused");
            return None;
        }
        // a member's own job of that id (evicted since) must not shadow the group's
        if let Some(g) = self.channels.group(group_id) {
            for m in g.members() {
                self.jobs.remove(&(*m, job_id));
            }
        }
        self.record(group_id, job_id, data);
        send(out, job);
        Some(job_id)
    }

    /// Keeps the role's data of a job and forgets the data of jobs no channel holds any more
    /// (evicted or made stale).
    fn record(&mut self, channel_id: u32, job_id: u32, data: J) {
        self.jobs.insert((channel_id, job_id), data);
        if let Some(meta) = self.meta.get_mut(&channel_id) {
            meta.last_job_id = job_id;
        }
        self.prune_jobs(channel_id);
    }

    /// Forgets the role's data of the jobs a channel or group no longer holds.
    pub fn prune_jobs(&mut self, channel_id: u32) {
        let holders: Vec<u32> = match self.channels.group(channel_id) {
            Some(g) => g.members().to_vec(),
            None => vec![channel_id],
        };
        let channels = &self.channels;
        let held = |jid: u32| {
            holders.iter().any(|m| {
                channels
                    .get(*m)
                    .is_some_and(|c| c.job(jid).is_some() || c.future_job(jid).is_some())
            })
        };
        self.jobs
            .retain(|&(cid, jid), _| cid != channel_id || held(jid));
    }

    /// Keeps the role's data of a job the role recorded on the channel itself (a custom
    /// job).
    pub fn insert_job(&mut self, channel_id: u32, job_id: u32, data: J) {
        self.jobs.insert((channel_id, job_id), data);
    }

    /// Keeps only the job data `keep` approves (e.g. the jobs of the current tip).
    pub fn retain_jobs(&mut self, mut keep: impl FnMut(&J) -> bool) {
        self.jobs.retain(|_, j| keep(j));
    }

    /// The role's data of a job of a channel, or of its group's job of that id.
    pub fn job_data(&self, channel_id: u32, job_id: u32) -> Option<&J> {
        self.jobs.get(&(channel_id, job_id)).or_else(|| {
            self.channels
                .get(channel_id)
                .and_then(Channel::group_id)
                .and_then(|g| self.jobs.get(&(g, job_id)))
        })
    }

    /// Sends the `SetNewPrevHash` activating future job `job_id` of a channel or group.
    pub fn send_prev_hash<O: Output>(
        &mut self,
        channel_id: u32,
        job_id: u32,
        p: &PrevHashSpec,
        out: &mut Vec<O>,
    ) -> bool {
        let msg = SetNewPrevHash {
            channel_id,
            job_id,
            prev_hash: U256(p.prev_hash),
            min_ntime: p.min_ntime,
            nbits: p.nbits,
        };
        match self.channels.on_set_new_prev_hash(&msg) {
            Ok(()) => {
                send(out, msg);
                true
            }
            Err(e) => {
                tracing::error!(channel = channel_id, error = %e, "prevhash refused");
                false
            }
        }
    }

    /// Gives a channel a new extranonce prefix (`SetExtranoncePrefix`, for jobs sent from now
    /// on) if it differs from its current one; false if the channel refused it.
    pub fn set_extranonce_prefix<O: Output>(
        &mut self,
        channel_id: u32,
        prefix: &[u8],
        out: &mut Vec<O>,
    ) -> bool {
        if self
            .channels
            .get(channel_id)
            .map(Channel::extranonce_prefix)
            == Some(prefix)
        {
            return true;
        }
        let Ok(extranonce_prefix) = B0_32::new(prefix) else {
            return false;
        };
        let msg = SetExtranoncePrefix {
            channel_id,
            extranonce_prefix,
        };
        if let Err(e) = self.channels.on_set_extranonce_prefix(&msg) {
            tracing::error!(channel = channel_id, error = %e, "extranonce prefix refused");
            return false;
        }
        send(out, msg);
        true
    }

    /// Makes `mask` the version bits a channel's jobs let the client roll. A channel's mask
    /// is fixed at creation: a different one rebuilds the channel (same id, prefix and
    /// target; job ids continue), its jobs go. Returns whether it was rebuilt (`None`: no
    /// such channel, or the rebuild failed).
    pub fn set_version_mask(&mut self, channel_id: u32, mask: u32) -> Option<bool> {
        let ch = self.channels.get(channel_id)?;
        if ch.config().version_mask == mask {
            return Some(false);
        }
        let config = ChannelConfig {
            version_mask: mask,
            ..*ch.config()
        };
        let rebuilt = match ch.kind() {
            ChannelKind::Standard => {
                Channel::new_standard(channel_id, ch.extranonce_prefix(), ch.target(), config)
            }
            ChannelKind::Extended { extranonce_size } => Channel::new_extended(
                channel_id,
                ch.extranonce_prefix(),
                extranonce_size,
                ch.target(),
                config,
            ),
        };
        let last = self.meta.get(&channel_id).map_or(0, |m| m.last_job_id);
        match rebuilt {
            Ok(mut c) => {
                c.set_next_job_id(last.checked_add(1).unwrap_or(1));
                self.channels.close(channel_id);
                if self.channels.insert(c).is_err() {
                    return None;
                }
                self.jobs.retain(|&(cid, _), _| cid != channel_id);
                Some(true)
            }
            Err(e) => {
                tracing::error!(channel = channel_id, error = %e, "cannot rebuild the channel");
                None
            }
        }
    }
}
