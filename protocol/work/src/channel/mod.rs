//! Standard, extended and group channel state: jobs, prevhash activation, targets and
//! extranonce prefixes
//! ([spec 5.2](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#52-channel)).
//!
//! One [`Channel`] type serves both ends of a connection:
//!
//! * **server side** (a pool toward its miners, a proxy toward its downstreams): the server
//!   draws job ids from [`Channel::next_job_id`] (or [`Channels::next_job_id`] for a group),
//!   builds the `NewMiningJob` / `NewExtendedMiningJob` / `SetNewPrevHash` it sends and records
//!   each one with the same `on_*` method a client uses, so the channel validates shares
//!   against exactly what went on the wire;
//! * **client side** (a proxy toward its pool): the `on_*` methods record what the upstream
//!   sent, and [`crate::share`] checks shares before they are forwarded.
//!
//! [`Channels`] holds the channels of one connection by id, plus its group channels
//! (spec 5.2.3): an extended job or a `SetNewPrevHash` addressed to a group is applied to
//! every member; standard members get the job converted to a merkle root over
//! `coinbase_tx_prefix ‖ extranonce_prefix ‖ coinbase_tx_suffix` (spec 5.1.2.1).
//!
//! # Job life cycle
//!
//! ```text
//!   NewMiningJob / NewExtendedMiningJob
//!        │ min_ntime = None                     │ min_ntime = Some(t)  (bound to the
//!        ▼                                      ▼  current prevhash; error if none yet)
//!     future ──SetNewPrevHash(job_id)──►     active ──(newer jobs)──► past ──► evicted
//!        │                                      │                      │    (max_jobs)
//!        └──────── SetNewPrevHash (other job) ──┴──────────────────────┴──► stale ids
//! ```
//!
//! * A `SetNewPrevHash` must name a job that was sent as a future job (docs/spec-notes.md §7); one
//!   naming an unknown job, or an active one, is refused and the channel is left unchanged.
//!   On success every other job (future, active, past) is dropped and its id remembered as
//!   stale, so a late share gets `stale-share` rather than `invalid-job-id`.
//! * Active and past jobs are kept up to [`ChannelConfig::max_jobs`] (oldest evicted), future
//!   jobs up to [`ChannelConfig::max_future_jobs`], stale ids up to the sum of both.
//! * A job id must not name a job that is still valid on the channel
//!   ([`ChannelError::JobIdInUse`]); [`Channel::next_job_id`] counts up from 1, wraps past
//!   `u32::MAX` and skips ids still held (valid or remembered as stale).
//! * The target of a job is fixed when the job becomes active (spec 5.3.21: `SetTarget`
//!   applies to later jobs and to future jobs not yet activated, not to active ones).
//! * `SetExtranoncePrefix` applies to jobs recorded after it (spec 5.3.10); each job keeps
//!   the prefix it was created under.
//!
//! # Memory per channel
//!
//! A [`Channel`] is about 420 bytes and a [`Job`] about 260 (an 80-byte header template with
//! prevhash, merkle root and nBits filled in, the target, the extranonce prefix, the header
//! midstate at the job's version once a share used it; an extended job's coinbase parts,
//! merkle path and coinbase-prefix midstate sit behind one `Arc` shared by every member of a
//! group, or by every channel given it through
//! [`Channel::on_new_extended_mining_job_shared`]), pinned by a test. The channel's duplicate
//! set holds 8 bytes per share accepted under the current prevhash in a hash table at most 7/8
//! full (9-18 bytes per share; [`ChannelConfig::initial_seen_capacity`] entries, 64 by
//! default, reserved at the first share, the allocation kept across prevhashes up to 4096
//! entries), at most [`ChannelConfig::max_seen_shares`] entries, plus block candidates apart
//! (none on a real chain between two prevhashes; at most twice that on regtest). At most `max_jobs +
//! max_future_jobs` jobs are held; the future-job queue is released when a `SetNewPrevHash`
//! empties it. [`Channel::capacities`] tells what a channel holds. With the defaults (8 + 8 jobs, 65 536 shares) an idle channel with a full job
//! history is about 4.5 KiB, and at most about 1.2 MiB if a miner submits the whole share budget
//! under one prevhash.

use std::collections::VecDeque;
use std::sync::Arc;

use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetExtranoncePrefix, SetNewPrevHash, SetTarget,
    UpdateChannel,
};
use strata_protocol::{B0_32, U256};

use crate::header::HEADER_LEN;
use crate::merkle::merkle_root_from_path;
use crate::sha256d::Midstate;
use crate::target::{target_from_hashrate, Target};
mod config;
mod group;
mod seen;
mod work;

pub use config::*;
pub use group::{Channels, GroupChannel};
pub(crate) use seen::*;
pub use seen::{ChannelIdHasher, INITIAL_SEEN_CAPACITY};
pub use work::ExtendedWork;

/// The chain tip a channel mines on (from the last `SetNewPrevHash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrevHash {
    /// Previous block hash, as in the header.
    pub prev_hash: [u8; 32],
    /// nBits of the header.
    pub nbits: u32,
    /// Smallest nTime.
    pub min_ntime: u32,
    /// The network target nBits encodes.
    pub network_target: Target,
}

/// One job of a channel, with what share validation needs precomputed.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) id: u32,
    pub(crate) version: u32,
    pub(crate) version_mask: u32,
    pub(crate) min_ntime: Option<u32>,
    pub(crate) target: Target,
    pub(crate) difficulty: f64,
    pub(crate) work: f64,
    pub(crate) network_target: Target,
    /// version ‖ prev_hash ‖ merkle_root (standard) ‖ ntime ‖ nbits ‖ nonce template.
    pub(crate) header: [u8; HEADER_LEN],
    pub(crate) extranonce_prefix: B0_32,
    pub(crate) extended: Option<Arc<ExtendedWork>>,
    /// SHA-256 state after the first 64 header bytes (version ‖ prev_hash ‖ 28 bytes of the
    /// merkle root) at the job's own version: a standard share that does not roll the
    /// version then hashes two compressions instead of three. Set by the first such share
    /// (single-share path); emptied when the header changes (activation).
    pub(crate) own_mid: Option<Midstate>,
}

impl Job {
    /// The job id.
    pub fn id(&self) -> u32 {
        self.id
    }
    /// The job's nVersion.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Version bits a share may change.
    pub fn version_mask(&self) -> u32 {
        self.version_mask
    }
    /// Smallest nTime; `None` while the job is a future job.
    pub fn min_ntime(&self) -> Option<u32> {
        self.min_ntime
    }
    /// Target shares of this job must meet (fixed when the job became active).
    pub fn target(&self) -> Target {
        self.target
    }
    /// The merkle root of a job of a standard channel (all zeros for an extended channel's
    /// jobs, whose root depends on each share's extranonce).
    pub fn merkle_root(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.header[36..68]);
        r
    }
    /// The extranonce prefix of the channel when the job was recorded.
    pub fn extranonce_prefix(&self) -> &[u8] {
        self.extranonce_prefix.as_slice()
    }
    /// The coinbase parts, for extended jobs and for standard jobs made from a group's
    /// extended job.
    pub fn extended(&self) -> Option<&ExtendedWork> {
        self.extended.as_deref()
    }

    /// [`Self::extended`] as the `Arc` the job holds, to share with other channels
    /// ([`Channel::on_new_extended_mining_job_shared`]).
    pub fn extended_shared(&self) -> Option<&Arc<ExtendedWork>> {
        self.extended.as_ref()
    }

    fn activate(&mut self, prev: &PrevHash, min_ntime: u32, target: Target) {
        self.min_ntime = Some(min_ntime);
        self.own_mid = None;
        self.header[4..36].copy_from_slice(&prev.prev_hash);
        self.header[72..76].copy_from_slice(&prev.nbits.to_le_bytes());
        self.network_target = prev.network_target;
        self.set_target(target);
    }

    fn set_target(&mut self, target: Target) {
        self.target = target;
        self.difficulty = target.difficulty();
        self.work = target.work();
    }
}

/// A standard or extended channel
/// ([spec 5.2.1, 5.2.2](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#521-standard-channel)).
#[derive(Debug, Clone)]
pub struct Channel {
    pub(crate) id: u32,
    pub(crate) kind: ChannelKind,
    pub(crate) group_id: Option<u32>,
    pub(crate) extranonce_prefix: B0_32,
    pub(crate) target: Target,
    pub(crate) max_target: Target,
    pub(crate) nominal_hashrate: f32,
    pub(crate) prev: Option<PrevHash>,
    /// Active and past jobs, oldest first; the last one is the active job.
    pub(crate) jobs: VecDeque<Job>,
    /// Future jobs, oldest first.
    pub(crate) future: VecDeque<Job>,
    /// Ids of jobs dropped by `SetNewPrevHash`, oldest first.
    pub(crate) stale: VecDeque<u32>,
    pub(crate) next_job_id: u32,
    /// Accepted shares under the current prevhash (64 bits of their hashes).
    pub(crate) seen: SeenSet,
    pub(crate) config: ChannelConfig,
}

/// What a channel holds allocated, in entries (see [`Channel::capacities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacities {
    /// Active and past jobs (each [`std::mem::size_of::<Job>()`] bytes).
    pub jobs: usize,
    /// Future jobs (0 between a `SetNewPrevHash` and the next future job).
    pub future_jobs: usize,
    /// Duplicate-set entries (8 bytes and a control byte each).
    pub seen: usize,
}

impl Channel {
    /// Allocated capacities: memory per channel is about `size_of::<Channel>()` plus these.
    pub fn capacities(&self) -> Capacities {
        Capacities {
            jobs: self.jobs.capacity(),
            future_jobs: self.future.capacity(),
            seen: self.seen.capacity(),
        }
    }

    fn new(
        id: u32,
        kind: ChannelKind,
        extranonce_prefix: &[u8],
        target: Target,
        config: ChannelConfig,
    ) -> Result<Self, ChannelError> {
        let extra = match kind {
            ChannelKind::Standard => 0,
            ChannelKind::Extended { extranonce_size } => usize::from(extranonce_size),
        };
        let len = extranonce_prefix.len() + extra;
        let prefix = B0_32::new(extranonce_prefix)
            .ok()
            .filter(|_| len <= B0_32::MAX)
            .ok_or(ChannelError::ExtranonceTooLong {
                len,
                max: B0_32::MAX,
            })?;
        if target == Target::ZERO {
            return Err(ChannelError::ZeroTarget);
        }
        let config = ChannelConfig {
            max_jobs: config.max_jobs.max(1),
            max_future_jobs: config.max_future_jobs.max(1),
            ..config
        };
        Ok(Channel {
            id,
            kind,
            group_id: None,
            extranonce_prefix: prefix,
            target,
            max_target: Target::MAX,
            nominal_hashrate: 0.0,
            prev: None,
            jobs: VecDeque::new(),
            future: VecDeque::new(),
            stale: VecDeque::new(),
            next_job_id: 1,
            seen: SeenSet::default(),
            config,
        })
    }

    /// A standard channel with this extranonce prefix (≤ 32 bytes) and initial target.
    pub fn new_standard(
        id: u32,
        extranonce_prefix: &[u8],
        target: Target,
        config: ChannelConfig,
    ) -> Result<Self, ChannelError> {
        Self::new(id, ChannelKind::Standard, extranonce_prefix, target, config)
    }

    /// An extended channel: the miner rolls `extranonce_size` bytes after `extranonce_prefix`
    /// (together at most 32 bytes, the size of SubmitSharesExtended's `B0_32`).
    pub fn new_extended(
        id: u32,
        extranonce_prefix: &[u8],
        extranonce_size: u8,
        target: Target,
        config: ChannelConfig,
    ) -> Result<Self, ChannelError> {
        Self::new(
            id,
            ChannelKind::Extended { extranonce_size },
            extranonce_prefix,
            target,
            config,
        )
    }

    /// The channel id.
    pub fn id(&self) -> u32 {
        self.id
    }
    /// Standard or extended.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }
    /// The group channel the channel belongs to, if any.
    pub fn group_id(&self) -> Option<u32> {
        self.group_id
    }
    /// The current extranonce prefix (for jobs recorded from now on).
    pub fn extranonce_prefix(&self) -> &[u8] {
        self.extranonce_prefix.as_slice()
    }
    /// Prefix plus rolled extranonce: the size every member of a group shares (spec 5.2.3).
    pub fn full_extranonce_size(&self) -> usize {
        self.extranonce_prefix.as_slice().len()
            + match self.kind {
                ChannelKind::Standard => 0,
                ChannelKind::Extended { extranonce_size } => usize::from(extranonce_size),
            }
    }
    /// The current target (for jobs activated from now on).
    pub fn target(&self) -> Target {
        self.target
    }
    /// The maximum target the client asked for (`Target::MAX` until an `UpdateChannel`).
    pub fn max_target(&self) -> Target {
        self.max_target
    }
    /// The nominal hashrate of the last `UpdateChannel` (0 before).
    pub fn nominal_hashrate(&self) -> f32 {
        self.nominal_hashrate
    }
    /// The current chain tip, once a `SetNewPrevHash` arrived.
    pub fn prev_hash(&self) -> Option<&PrevHash> {
        self.prev.as_ref()
    }
    /// The limits of this channel.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }
    /// The active job (the most recent one with `min_ntime`).
    pub fn active_job(&self) -> Option<&Job> {
        self.jobs.back()
    }
    /// An active or past job by id.
    pub fn job(&self, job_id: u32) -> Option<&Job> {
        self.jobs.iter().rev().find(|j| j.id == job_id)
    }
    /// A future job by id.
    pub fn future_job(&self, job_id: u32) -> Option<&Job> {
        self.future.iter().find(|j| j.id == job_id)
    }
    /// Whether `job_id` names a job dropped by a `SetNewPrevHash` (and still remembered).
    pub fn is_stale_job(&self, job_id: u32) -> bool {
        self.stale.contains(&job_id)
    }
    /// Active and past jobs, oldest first.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> + '_ {
        self.jobs.iter()
    }
    /// Accepted shares remembered for duplicate detection (since the last prevhash).
    pub fn seen_shares(&self) -> usize {
        self.seen.len()
    }

    /// Whether `job_id` names a job still valid or remembered as stale.
    pub fn job_id_in_use(&self, job_id: u32) -> bool {
        self.jobs.iter().any(|j| j.id == job_id)
            || self.future.iter().any(|j| j.id == job_id)
            || self.stale.contains(&job_id)
    }

    /// A fresh job id for a job the server is about to send on this channel: counts up,
    /// wraps past `u32::MAX` (skipping 0) and skips ids still in use.
    pub fn next_job_id(&mut self) -> u32 {
        loop {
            let id = self.next_job_id;
            self.next_job_id = id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.job_id_in_use(id) {
                return id;
            }
        }
    }

    /// Sets the id [`next_job_id`](Self::next_job_id) tries next (to resume a counter, or
    /// to test wrap-around).
    pub fn set_next_job_id(&mut self, job_id: u32) {
        self.next_job_id = job_id;
    }

    /// A job recorded on the channel must not reuse the id of a valid (future, active or
    /// past) job; reusing a stale id is allowed (the spec forbids collisions with valid jobs
    /// only) and forgets that id's staleness.
    #[inline]
    fn check_new_job_id(&self, job_id: u32) -> Result<(), ChannelError> {
        if self.jobs.iter().any(|j| j.id == job_id) || self.future.iter().any(|j| j.id == job_id) {
            return Err(ChannelError::JobIdInUse {
                channel_id: self.id,
                job_id,
            });
        }
        Ok(())
    }

    /// Stores a new job: future jobs in the future queue, active jobs bound to the current
    /// prevhash and target. The job is written in place: into the slot of the job it evicts
    /// when its queue is full (a pool records every job on every channel, and a `Job` moved
    /// through the stack and into the queue cost more than the fields).
    #[inline]
    fn store_job(
        &mut self,
        job_id: u32,
        version: u32,
        version_mask: u32,
        merkle_root: &[u8; 32],
        extended: Option<Arc<ExtendedWork>>,
        min_ntime: Option<u32>,
    ) -> Result<(), ChannelError> {
        let prev = match min_ntime {
            None => None,
            Some(t) => {
                let prev = self.prev.ok_or(ChannelError::NoPrevHash {
                    channel_id: self.id,
                    job_id,
                })?;
                if t < prev.min_ntime {
                    return Err(ChannelError::MinNtimeBelowPrevHash {
                        job_id,
                        min_ntime: t,
                        prev_min_ntime: prev.min_ntime,
                    });
                }
                Some((prev, t))
            }
        };
        let (queue, cap) = match prev {
            None => (&mut self.future, self.config.max_future_jobs),
            Some(_) => (&mut self.jobs, self.config.max_jobs),
        };
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&version.to_le_bytes());
        header[36..68].copy_from_slice(merkle_root);
        let job = if queue.len() >= cap.max(1) {
            // the oldest job's slot becomes the newest
            queue.rotate_left(1);
            queue.back_mut()
        } else {
            None
        };
        let fields = |job: &mut Job| {
            job.id = job_id;
            job.version = version;
            job.version_mask = version_mask;
            job.min_ntime = None;
            job.target = self.target;
            job.difficulty = 0.0;
            job.work = 0.0;
            job.network_target = Target::ZERO;
            job.header = header;
            job.extranonce_prefix = self.extranonce_prefix;
            job.extended = extended;
            job.own_mid = None;
            if let Some((prev, t)) = prev {
                job.activate(&prev, t, self.target);
            }
        };
        match job {
            Some(job) => fields(job),
            None => {
                let mut job = Job {
                    id: job_id,
                    version,
                    version_mask,
                    min_ntime: None,
                    target: self.target,
                    difficulty: 0.0,
                    work: 0.0,
                    network_target: Target::ZERO,
                    header,
                    extranonce_prefix: self.extranonce_prefix,
                    extended: None,
                    own_mid: None,
                };
                fields(&mut job);
                queue.push_back(job);
            }
        }
        if self.stale.contains(&job_id) {
            self.stale.retain(|&s| s != job_id);
        }
        Ok(())
    }

    /// Records a `NewMiningJob` (spec 5.3.15) on a standard channel: sent by this server, or
    /// received from the upstream.
    pub fn on_new_mining_job(&mut self, msg: &NewMiningJob) -> Result<(), ChannelError> {
        if self.kind != ChannelKind::Standard {
            return Err(ChannelError::WrongChannelKind {
                channel_id: self.id,
                expected: "standard",
            });
        }
        self.check_new_job_id(msg.job_id)?;
        self.store_job(
            msg.job_id,
            msg.version,
            self.config.version_mask,
            &msg.merkle_root.0,
            None,
            msg.min_ntime,
        )
    }

    /// Records a `NewExtendedMiningJob` (spec 5.3.16) addressed to this channel. On an
    /// extended channel it is stored as is; on a standard channel (a member of the group the
    /// job was sent to) it becomes a standard job whose merkle root is that of
    /// `coinbase_tx_prefix ‖ extranonce_prefix ‖ coinbase_tx_suffix`.
    pub fn on_new_extended_mining_job(
        &mut self,
        msg: &NewExtendedMiningJob,
    ) -> Result<(), ChannelError> {
        self.on_extended_work(msg, ExtendedWork::from_job(msg))
    }

    /// [`Self::on_new_extended_mining_job`] with the job's coinbase parts and path held by
    /// `work`, shared with other channels instead of copied. Refused
    /// ([`ChannelError::WorkMismatch`]) unless `work` [matches](ExtendedWork::matches) `msg`.
    pub fn on_new_extended_mining_job_shared(
        &mut self,
        msg: &NewExtendedMiningJob,
        work: &Arc<ExtendedWork>,
    ) -> Result<(), ChannelError> {
        if !work.matches(msg) {
            return Err(ChannelError::WorkMismatch { job_id: msg.job_id });
        }
        self.on_extended_work(msg, Arc::clone(work))
    }

    /// Records a custom job (a `SetCustomMiningJob` this server accepted, spec 5.3.18) on
    /// an extended channel: active at once on the channel's current prevhash, from
    /// `min_ntime` (raised to the prevhash's own), with `work`'s coinbase parts and path.
    /// The caller checked the job builds on that prevhash.
    pub fn on_custom_job(
        &mut self,
        job_id: u32,
        version: u32,
        min_ntime: u32,
        work: Arc<ExtendedWork>,
    ) -> Result<(), ChannelError> {
        if !matches!(self.kind, ChannelKind::Extended { .. }) {
            return Err(ChannelError::WrongChannelKind {
                channel_id: self.id,
                expected: "extended",
            });
        }
        self.check_new_job_id(job_id)?;
        let prev = self.prev.ok_or(ChannelError::NoPrevHash {
            channel_id: self.id,
            job_id,
        })?;
        self.store_job(
            job_id,
            version,
            self.config.version_mask,
            &[0; 32],
            Some(work),
            Some(min_ntime.max(prev.min_ntime)),
        )
    }

    fn on_extended_work(
        &mut self,
        msg: &NewExtendedMiningJob,
        work: Arc<ExtendedWork>,
    ) -> Result<(), ChannelError> {
        self.check_new_job_id(msg.job_id)?;
        let mask = if msg.version_rolling_allowed {
            self.config.version_mask
        } else {
            0
        };
        let root = if self.kind == ChannelKind::Standard {
            let txid = work.txid(&[self.extranonce_prefix.as_slice()]);
            merkle_root_from_path(txid, work.merkle_path.iter())
        } else {
            [0; 32]
        };
        self.store_job(
            msg.job_id,
            msg.version,
            mask,
            &root,
            Some(work),
            msg.min_ntime,
        )
    }

    /// Records a `SetNewPrevHash` (spec 5.3.17): activates the named future job with the
    /// message's `min_ntime`, drops every other job (remembering their ids as stale) and
    /// empties the duplicate set if the prevhash changed. Refused, leaving the channel unchanged, if the job is not
    /// a future job of this channel (docs/spec-notes.md §7) or nBits is invalid.
    pub fn on_set_new_prev_hash(&mut self, msg: &SetNewPrevHash) -> Result<(), ChannelError> {
        let Some(pos) = self.future.iter().position(|j| j.id == msg.job_id) else {
            return Err(if self.jobs.iter().any(|j| j.id == msg.job_id) {
                ChannelError::NotAFutureJob {
                    channel_id: self.id,
                    job_id: msg.job_id,
                }
            } else {
                ChannelError::UnknownJob {
                    channel_id: self.id,
                    job_id: msg.job_id,
                }
            });
        };
        let network_target = Target::from_compact(msg.nbits)
            .map_err(|_| ChannelError::InvalidNbits { nbits: msg.nbits })?;
        let prev = PrevHash {
            prev_hash: msg.prev_hash.0,
            nbits: msg.nbits,
            min_ntime: msg.min_ntime,
            network_target,
        };
        let Some(mut job) = self.future.remove(pos) else {
            return Err(ChannelError::UnknownJob {
                channel_id: self.id,
                job_id: msg.job_id,
            });
        };
        let cap = self.config.max_jobs + self.config.max_future_jobs;
        for id in self
            .jobs
            .drain(..)
            .chain(self.future.drain(..))
            .map(|j| j.id)
        {
            if self.stale.len() >= cap {
                self.stale.pop_front();
            }
            self.stale.push_back(id);
        }
        self.stale.retain(|&id| id != msg.job_id);
        // the future queue is empty until the next template: give its allocation back (one
        // per channel, it is most of an idle proxy miner's channel memory)
        self.future = VecDeque::new();
        // a repeated tip commits to the same header space: keep the hashes (else a share could
        // be replayed under a new job with an old job's merkle root); emptied, the table keeps
        // its allocation for the next prevhash (unless it grew large)
        if self.prev.map(|p| p.prev_hash) != Some(prev.prev_hash) {
            self.seen.clear();
        }
        job.activate(&prev, msg.min_ntime, self.target);
        self.prev = Some(prev);
        self.jobs.push_back(job);
        Ok(())
    }

    /// Sets the channel's target (spec 5.3.21): it applies to jobs activated from now on
    /// (including future jobs already received); active and past jobs keep theirs.
    pub fn set_target(&mut self, target: Target) -> Result<(), ChannelError> {
        if target == Target::ZERO {
            return Err(ChannelError::ZeroTarget);
        }
        self.target = target;
        Ok(())
    }

    /// Records a `SetTarget` for this channel.
    pub fn on_set_target(&mut self, msg: &SetTarget) -> Result<(), ChannelError> {
        self.set_target(Target::from_le_bytes(msg.maximum_target.0))
    }

    /// Handles an `UpdateChannel` (spec 5.3.7) on the server: remembers the nominal hashrate
    /// and maximum target and picks the target for [`ChannelConfig::shares_per_minute`] at
    /// that hashrate, never above the maximum. Returns the `SetTarget` to send when the target
    /// changed. Errors carry the `UpdateChannel.Error` code
    /// ([`ChannelError::error_code`]); the channel is unchanged then.
    pub fn update_channel(
        &mut self,
        msg: &UpdateChannel,
    ) -> Result<Option<SetTarget>, ChannelError> {
        let max = Target::from_le_bytes(msg.maximum_target.0);
        if max == Target::ZERO {
            return Err(ChannelError::MaxTargetOutOfRange);
        }
        let hashrate = msg.nominal_hash_rate;
        let target = target_from_hashrate(
            f64::from(hashrate),
            f64::from(self.config.shares_per_minute),
        )
        .map_err(|_| ChannelError::InvalidNominalHashrate { hashrate })?;
        // a hashrate so high that no target fits: the hardest non-zero target
        let target = target.min(max).max(Target::from_le_bytes({
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }));
        self.nominal_hashrate = hashrate;
        self.max_target = max;
        if target == self.target {
            return Ok(None);
        }
        self.target = target;
        Ok(Some(SetTarget {
            channel_id: self.id,
            maximum_target: U256(target.to_le_bytes()),
        }))
    }

    /// Records a `SetExtranoncePrefix` (spec 5.3.10): jobs recorded from now on use the new
    /// prefix; earlier jobs keep theirs. The prefix plus the extranonce size must fit 32 bytes;
    /// a member of a group must keep the group's full extranonce size (checked by
    /// [`Channels::on_set_extranonce_prefix`]).
    pub fn on_set_extranonce_prefix(
        &mut self,
        msg: &SetExtranoncePrefix,
    ) -> Result<(), ChannelError> {
        let new_len = msg.extranonce_prefix.as_slice().len();
        let len = self.full_extranonce_size() - self.extranonce_prefix.as_slice().len() + new_len;
        if len > B0_32::MAX {
            return Err(ChannelError::ExtranonceTooLong {
                len,
                max: B0_32::MAX,
            });
        }
        self.extranonce_prefix = msg.extranonce_prefix;
        Ok(())
    }

    /// Index of the active or past job `job_id` in `self.jobs` (newest searched first).
    #[inline]
    pub(crate) fn job_index(&self, job_id: u32) -> Option<usize> {
        let n = self.jobs.len();
        (0..n).rev().find(|&i| self.jobs[i].id == job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_set_grows_and_keeps_every_entry() {
        let mut seen = SeenSet::default();
        let s = &mut seen.shares;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut keys = vec![];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            keys.push(x);
            assert_eq!(s.insert(x, 1, usize::MAX, 64), Seen::Inserted);
        }
        assert_eq!(s.set.len(), 10_000);
        for &k in &keys {
            assert_eq!(s.insert(k, 1, usize::MAX, 64), Seen::Duplicate);
        }
        assert_eq!(s.insert(12345, 1, 10_000, 64), Seen::Full);
        assert_eq!(s.insert(keys[7], 1, 0, 64), Seen::Duplicate);
        // renewed: empty, and a floor above every nTime it held
        assert_eq!(s.renew(), Some(2));
        assert_eq!((s.set.len(), s.floor()), (0, 2));
        assert_eq!(s.insert(keys[7], 2, usize::MAX, 64), Seen::Inserted);
        // blocks are apart: their own entries and floor
        assert_eq!(
            seen.blocks.insert(keys[7], 9, usize::MAX, 0),
            Seen::Inserted
        );
        assert_eq!(seen.len(), 2);
        assert_eq!((seen.blocks.renew(), seen.shares.floor()), (Some(10), 2));
        seen.clear();
        assert_eq!(
            (seen.len(), seen.shares.floor(), seen.blocks.floor()),
            (0, 0, 0)
        );
        assert!(seen.capacity() <= 2 * RECYCLE_SEEN_CAPACITY);
        let s = &mut seen.shares;
        assert_eq!(s.insert(keys[0], 1, usize::MAX, 64), Seen::Inserted);
        // no floor fits above u32::MAX
        assert_eq!(s.insert(keys[1], u32::MAX, usize::MAX, 64), Seen::Inserted);
        assert_eq!(s.renew(), None);
        assert_eq!(seen.len(), 2);
    }
}
