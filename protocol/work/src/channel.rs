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

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher as StdHasher};
use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash,
    SetTarget, UpdateChannel, ERROR_INVALID_CHANNEL_ID, ERROR_INVALID_NOMINAL_HASHRATE,
    ERROR_MAX_TARGET_OUT_OF_RANGE,
};
use strata_protocol::{B0_32, U256};

use crate::coinbase::txid_from_parts;
use crate::header::{BIP323_VERSION_MASK, HEADER_LEN};
use crate::merkle::merkle_root_from_path;
use crate::sha256d::{Midstate, PrefixMidstate};
use crate::target::{target_from_hashrate, Target};

/// Bitcoin Core's `MAX_FUTURE_BLOCK_TIME`: a block may be at most two hours ahead of the
/// node's clock; the default of [`ChannelConfig::max_ntime_ahead`].
pub const MAX_FUTURE_BLOCK_TIME: u32 = 2 * 60 * 60;

/// Limits and policy of a channel. Every limit is a named value with a default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelConfig {
    /// Active and past jobs kept per channel (at least 1; default 8). A share for an evicted
    /// job gets `invalid-job-id`.
    pub max_jobs: usize,
    /// Future jobs kept per channel (at least 1; default 8; the oldest is evicted).
    pub max_future_jobs: usize,
    /// Accepted shares remembered for duplicate detection under one prevhash (default
    /// 65 536; about 11 hours at 100 shares/min). Once reached, the set is renewed: emptied,
    /// with an nTime floor one second above every share it held, so that none can be
    /// replayed for credit. Shares below the floor are then refused as stale
    /// ([`crate::share::Rejection::BelowNtimeFloor`]): a channel flooded with shares (a
    /// restarting farm at its starting difficulty) loses about a second of them per
    /// budget, not the rest of the block.
    pub max_seen_shares: usize,
    /// Seconds a share's nTime may be ahead of `max(job min_ntime, now)` (default
    /// [`MAX_FUTURE_BLOCK_TIME`], consensus' limit).
    pub max_ntime_ahead: u32,
    /// Version bits a miner may roll when the job allows rolling (default BIP323's
    /// `0x1fffffe0`; 0 after `REQUIRES_FIXED_VERSION`). Standard jobs always allow rolling
    /// within this mask; extended jobs only with `version_rolling_allowed`.
    pub version_mask: u32,
    /// Shares per minute the server aims for, used by [`Channel::update_channel`] (default
    /// 6).
    pub shares_per_minute: f32,
    /// Entries the duplicate set reserves at the channel's first accepted share (default 64,
    /// about 1.2 KB: a pool channel then does not rehash while it fills). A proxy holding one
    /// channel per idle miner sets it small; the set grows as shares come either way.
    pub initial_seen_capacity: usize,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_jobs: 8,
            max_future_jobs: 8,
            max_seen_shares: 1 << 16,
            max_ntime_ahead: MAX_FUTURE_BLOCK_TIME,
            version_mask: BIP323_VERSION_MASK,
            shares_per_minute: 6.0,
            initial_seen_capacity: INITIAL_SEEN_CAPACITY,
        }
    }
}

/// Why a channel refused a message or an operation. Most are protocol violations by the peer
/// (close the connection with the reason); those with an [`error_code`](Self::error_code)
/// answer an `UpdateChannel` with `UpdateChannel.Error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// No channel or group channel with this id.
    #[error("unknown channel {channel_id}")]
    UnknownChannel {
        /// The id.
        channel_id: u32,
    },
    /// A channel or group with this id exists already.
    #[error("channel id {channel_id} is in use")]
    ChannelIdInUse {
        /// The id.
        channel_id: u32,
    },
    /// A job id names a job still valid (or remembered as stale) on the channel.
    #[error("job id {job_id} is in use on channel {channel_id}")]
    JobIdInUse {
        /// The channel.
        channel_id: u32,
        /// The job id.
        job_id: u32,
    },
    /// `SetNewPrevHash` names a job the channel never received.
    #[error("SetNewPrevHash names unknown job {job_id} on channel {channel_id}")]
    UnknownJob {
        /// The channel.
        channel_id: u32,
        /// The job id.
        job_id: u32,
    },
    /// `SetNewPrevHash` names a job that was not sent as a future job (docs/spec-notes.md §7).
    #[error(
        "SetNewPrevHash names job {job_id} on channel {channel_id}, which is not a future job"
    )]
    NotAFutureJob {
        /// The channel.
        channel_id: u32,
        /// The job id.
        job_id: u32,
    },
    /// An active job (`min_ntime` set) arrived before any `SetNewPrevHash`.
    #[error("active job {job_id} on channel {channel_id} before any SetNewPrevHash")]
    NoPrevHash {
        /// The channel.
        channel_id: u32,
        /// The job id.
        job_id: u32,
    },
    /// An active job's `min_ntime` is below the current prevhash's.
    #[error("job {job_id} min_ntime {min_ntime} is below the prevhash's {prev_min_ntime}")]
    MinNtimeBelowPrevHash {
        /// The job id.
        job_id: u32,
        /// The job's min_ntime.
        min_ntime: u32,
        /// The prevhash's min_ntime.
        prev_min_ntime: u32,
    },
    /// A standard job for an extended channel, or an extended job for a standard channel
    /// outside a group.
    #[error("channel {channel_id} is not a {expected} channel")]
    WrongChannelKind {
        /// The channel.
        channel_id: u32,
        /// The kind the message needs (`"standard"` or `"extended"`).
        expected: &'static str,
    },
    /// `SetNewPrevHash` carries an nBits that is not a valid target.
    #[error("invalid nbits {nbits:#010x}")]
    InvalidNbits {
        /// The nBits.
        nbits: u32,
    },
    /// An extranonce prefix (plus extranonce size) longer than 32 bytes.
    #[error("extranonce of {len} bytes exceeds {max}")]
    ExtranonceTooLong {
        /// The length asked for.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A member of a group channel would not have the group's full extranonce size
    /// (spec 5.2.3, docs/spec-notes.md §9).
    #[error(
        "channel {channel_id} has full extranonce size {got}, group {group_id} has {expected}"
    )]
    ExtranonceSizeMismatch {
        /// The group.
        group_id: u32,
        /// The channel.
        channel_id: u32,
        /// The group's full extranonce size.
        expected: usize,
        /// The channel's.
        got: usize,
    },
    /// A target of zero (no hash meets it).
    #[error("target must not be zero")]
    ZeroTarget,
    /// `UpdateChannel.nominal_hash_rate` is negative, NaN or infinite.
    #[error("invalid nominal hashrate {hashrate}")]
    InvalidNominalHashrate {
        /// The hashrate.
        hashrate: f32,
    },
    /// `UpdateChannel.maximum_target` is zero.
    #[error("maximum target out of range")]
    MaxTargetOutOfRange,
    /// Shared work given for a job whose coinbase parts or merkle path differ from it.
    #[error("job {job_id}: the shared work is not the job's")]
    WorkMismatch {
        /// The job.
        job_id: u32,
    },
}

impl ChannelError {
    /// The error code of the spec / SRI for the `*.Error` message answering this error, where
    /// there is one (`UpdateChannel.Error`), else `None` (close the connection).
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            ChannelError::UnknownChannel { .. } => Some(ERROR_INVALID_CHANNEL_ID),
            ChannelError::InvalidNominalHashrate { .. } => Some(ERROR_INVALID_NOMINAL_HASHRATE),
            ChannelError::MaxTargetOutOfRange | ChannelError::ZeroTarget => {
                Some(ERROR_MAX_TARGET_OUT_OF_RANGE)
            }
            _ => None,
        }
    }
}

/// Which jobs a channel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Header-only jobs (`NewMiningJob`, or extended jobs of its group converted to a merkle
    /// root); shares are `SubmitSharesStandard`.
    Standard,
    /// Extended jobs; shares are `SubmitSharesExtended` with `extranonce_size` bytes of
    /// extranonce.
    Extended {
        /// Bytes of extranonce the miner rolls after the channel's prefix.
        extranonce_size: u8,
    },
}

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

/// Coinbase parts of an extended job, shared between the members of a group.
#[derive(Debug, Clone)]
pub struct ExtendedWork {
    /// `coinbase_tx_prefix` (BIP141 fields stripped).
    pub coinbase_prefix: Bytes,
    /// `coinbase_tx_suffix` (BIP141 fields stripped).
    pub coinbase_suffix: Bytes,
    /// Merkle path, deepest first.
    pub merkle_path: Arc<[[u8; 32]]>,
    /// SHA-256 state after the whole 64-byte blocks of `coinbase_prefix`, computed once per
    /// job: a share hashes only the rest of its coinbase.
    prefix_mid: PrefixMidstate,
    /// The `coinbase_prefix` `prefix_mid` was computed from: the fields are public, and a
    /// prefix replaced after construction must not use a stale state. Holding these bytes
    /// keeps their address from being reused, so a prefix at the same address is the same
    /// (immutable) bytes.
    prefix_src: Bytes,
}

/// Equal when the coinbase parts and the merkle path are (the cached state follows from them).
impl PartialEq for ExtendedWork {
    fn eq(&self, other: &Self) -> bool {
        self.coinbase_prefix == other.coinbase_prefix
            && self.coinbase_suffix == other.coinbase_suffix
            && self.merkle_path == other.merkle_path
    }
}

impl ExtendedWork {
    fn from_job(job: &NewExtendedMiningJob) -> Arc<Self> {
        Self::new(
            job.coinbase_tx_prefix.bytes().clone(),
            job.coinbase_tx_suffix.bytes().clone(),
            job.merkle_path.iter().map(|h| h.0).collect(),
        )
    }

    /// Work from its parts, to share between channels that record the same job
    /// ([`Channel::on_new_extended_mining_job_shared`]): a proxy's miners all mine its
    /// upstream job, and a private copy of the merkle path per miner and job (~400 bytes on
    /// mainnet) would be most of an idle miner's memory.
    pub fn new(
        coinbase_prefix: Bytes,
        coinbase_suffix: Bytes,
        merkle_path: Arc<[[u8; 32]]>,
    ) -> Arc<Self> {
        Arc::new(ExtendedWork {
            prefix_mid: PrefixMidstate::new(&coinbase_prefix),
            prefix_src: coinbase_prefix.clone(),
            coinbase_prefix,
            coinbase_suffix,
            merkle_path,
        })
    }

    /// The coinbase txid for the full extranonce `extranonce_parts` (e.g. the job's
    /// extranonce prefix and a share's extranonce): SHA-256d of `coinbase_prefix ‖
    /// extranonce_parts... ‖ coinbase_suffix`, resumed from the prefix's cached state.
    pub fn txid(&self, extranonce_parts: &[&[u8]]) -> [u8; 32] {
        match self.prefix_rest() {
            Some(rest) if extranonce_parts.len() <= 4 => {
                let mut pieces: [&[u8]; 6] = [&[]; 6];
                pieces[0] = rest;
                pieces[1..1 + extranonce_parts.len()].copy_from_slice(extranonce_parts);
                pieces[1 + extranonce_parts.len()] = &self.coinbase_suffix;
                self.prefix_mid
                    .sha256d_rest(&pieces[..2 + extranonce_parts.len()])
            }
            _ => txid_from_parts(
                &self.coinbase_prefix,
                extranonce_parts,
                &self.coinbase_suffix,
            ),
        }
    }

    /// The cached prefix state and the prefix bytes it does not cover, unless the prefix was
    /// replaced since the state was computed.
    #[inline]
    pub(crate) fn prefix_state(&self) -> Option<(&PrefixMidstate, &[u8])> {
        self.prefix_rest().map(|rest| (&self.prefix_mid, rest))
    }

    #[inline]
    fn prefix_rest(&self) -> Option<&[u8]> {
        (self.coinbase_prefix.as_ptr() == self.prefix_src.as_ptr())
            .then(|| self.coinbase_prefix.get(self.prefix_mid.consumed()..))
            .flatten()
    }

    /// Whether `job` carries exactly this coinbase prefix, suffix and merkle path.
    pub fn matches(&self, job: &NewExtendedMiningJob) -> bool {
        job.coinbase_tx_prefix.as_slice() == &self.coinbase_prefix[..]
            && job.coinbase_tx_suffix.as_slice() == &self.coinbase_suffix[..]
            && job.merkle_path.len() == self.merkle_path.len()
            && job
                .merkle_path
                .iter()
                .zip(self.merkle_path.iter())
                .all(|(a, b)| &a.0 == b)
    }
}

/// Entries a channel's duplicate set keeps allocated across a prevhash.
const RECYCLE_SEEN_CAPACITY: usize = 4096;

/// Entries reserved at a channel's first accepted share by default (instead of growing 3,
/// 7, 14...): [`ChannelConfig::initial_seen_capacity`].
pub const INITIAL_SEEN_CAPACITY: usize = 64;

/// What [`Recent::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// New; recorded.
    Inserted,
    /// Recorded before.
    Duplicate,
    /// New, but the set holds `limit` entries already; not recorded.
    Full,
}

/// A `u64` taken from a share hash hashes to itself: its bits are uniform already.
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl StdHasher for PassThrough {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// Duplicate set of a channel under one prevhash: 64 bits of each accepted share's hash.
///
/// Equal headers have equal hashes, so a duplicate is always caught, also when two jobs share
/// a merkle root (a template re-sent as a new job): the set is per channel and prevhash, not
/// per job. Two different shares collide with probability about `n² / 2^65` (below 2^-33 at
/// 65 536 shares), and a collision only refuses an honest share, it never accepts a replay.
///
/// When the set is full it is [renewed](Recent::renew): emptied, with an nTime floor above
/// every share it held, so that none of them can come back (their headers all have a lower
/// nTime) while newer shares are checked against a fresh set. Block candidates are kept
/// apart (`blocks`), with a budget and a floor of their own: a header is a block or not
/// whatever job it is submitted under, so the two never meet, and a block is never refused
/// for the shares' floor. The blocks' budget (twice the shares') only fills where blocks are
/// nearly free, on regtest; there, full, it is renewed the same way.
///
/// A `HashSet` (hashbrown) measured faster here than a plain open-addressing table of `u64`:
/// a new key is rejected as a match from the 1-byte control array, which stays in cache
/// across channels, and the 8-byte slot is only written (a store, which does not stall).
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenSet {
    /// Shares that are not blocks.
    pub(crate) shares: Recent,
    /// Block candidates (rare on a real chain; on regtest about every other share).
    pub(crate) blocks: Recent,
}

impl SeenSet {
    /// Entries held (blocks included).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.shares.set.len() + self.blocks.set.len()
    }

    /// Entries allocated (blocks included).
    pub(crate) fn capacity(&self) -> usize {
        self.shares.set.capacity() + self.blocks.set.capacity()
    }

    /// Forgets every entry and floor (a new prevhash), keeping up to
    /// [`RECYCLE_SEEN_CAPACITY`] share entries allocated (the blocks' allocation is released).
    pub(crate) fn clear(&mut self) {
        self.shares.clear();
        if self.shares.set.capacity() > RECYCLE_SEEN_CAPACITY {
            self.shares.set.shrink_to(RECYCLE_SEEN_CAPACITY);
        }
        self.blocks = Recent::default();
    }
}

/// One bounded, renewable part of a [`SeenSet`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Recent {
    set: HashSet<u64, BuildHasherDefault<PassThrough>>,
    /// The highest nTime recorded since the last [`clear`](Self::clear).
    max_ntime: u32,
    /// Entries with a lower nTime are refused (0 until a [`renew`](Self::renew)).
    floor: u32,
}

impl Recent {
    /// The nTime floor: entries below it are refused (0: none).
    #[inline]
    pub(crate) fn floor(&self) -> u32 {
        self.floor
    }

    /// Records `hash_bits` (uniformly distributed bits of a share hash) of a share with
    /// `ntime` unless present or `limit` entries are held; the first insertion reserves
    /// `initial` entries.
    #[inline]
    pub(crate) fn insert(
        &mut self,
        hash_bits: u64,
        ntime: u32,
        limit: usize,
        initial: usize,
    ) -> Seen {
        if self.set.capacity() == 0 && initial > 0 {
            self.set.reserve(initial);
        }
        let seen = if self.set.len() >= limit {
            if self.set.contains(&hash_bits) {
                Seen::Duplicate
            } else {
                Seen::Full
            }
        } else if self.set.insert(hash_bits) {
            Seen::Inserted
        } else {
            Seen::Duplicate
        };
        if seen == Seen::Inserted {
            self.max_ntime = self.max_ntime.max(ntime);
        }
        seen
    }

    /// Empties the set (keeping its allocation) and raises the nTime floor above every
    /// recorded entry; returns the floor. `None` (nothing changed) if a recorded nTime is
    /// `u32::MAX`, above which no floor fits.
    pub(crate) fn renew(&mut self) -> Option<u32> {
        let floor = self.max_ntime.checked_add(1)?;
        self.set.clear();
        self.floor = floor;
        Some(floor)
    }

    /// Forgets every entry and the floor, keeping the allocation.
    fn clear(&mut self) {
        self.set.clear();
        self.max_ntime = 0;
        self.floor = 0;
    }
}

/// Hashes a channel id (a `u32` the server assigned) with one multiplication (Fibonacci
/// hashing): lookups by peer-supplied ids cannot degrade a map whose keys the server chose.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChannelIdHasher(u64);

impl StdHasher for ChannelIdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<ChannelIdHasher>>;

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

/// A group channel (spec 5.2.3): channels of one connection addressed together by extended
/// jobs, `SetNewPrevHash` and `SetTarget`. All members have the same full extranonce size
/// (docs/spec-notes.md §9).
#[derive(Debug, Clone)]
pub struct GroupChannel {
    id: u32,
    members: Vec<u32>,
    full_extranonce_size: Option<usize>,
    next_job_id: u32,
}

impl GroupChannel {
    /// The group id.
    pub fn id(&self) -> u32 {
        self.id
    }
    /// Member channel ids.
    pub fn members(&self) -> &[u32] {
        &self.members
    }
    /// The full extranonce size of the members (set by the group or its first member).
    pub fn full_extranonce_size(&self) -> Option<usize> {
        self.full_extranonce_size
    }
}

/// The channels and group channels of one connection, by id (one namespace, spec 5.2.3).
#[derive(Debug, Clone, Default)]
pub struct Channels {
    channels: IdMap<Channel>,
    groups: IdMap<GroupChannel>,
}

impl Channels {
    /// No channels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a channel.
    pub fn insert(&mut self, channel: Channel) -> Result<&mut Channel, ChannelError> {
        let id = channel.id;
        if self.channels.contains_key(&id) || self.groups.contains_key(&id) {
            return Err(ChannelError::ChannelIdInUse { channel_id: id });
        }
        Ok(self.channels.entry(id).or_insert(channel))
    }

    /// A channel by id.
    #[inline]
    pub fn get(&self, channel_id: u32) -> Option<&Channel> {
        self.channels.get(&channel_id)
    }

    /// A channel by id, mutably.
    #[inline]
    pub fn get_mut(&mut self, channel_id: u32) -> Option<&mut Channel> {
        self.channels.get_mut(&channel_id)
    }

    /// A group by id.
    pub fn group(&self, group_id: u32) -> Option<&GroupChannel> {
        self.groups.get(&group_id)
    }

    /// Number of (non-group) channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether there are no channels.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Closes a channel, or a group and all its members (spec 5.3.9); returns the ids of the
    /// channels removed.
    pub fn close(&mut self, channel_id: u32) -> Vec<u32> {
        if let Some(g) = self.groups.remove(&channel_id) {
            for m in &g.members {
                self.channels.remove(m);
            }
            return g.members;
        }
        match self.channels.remove(&channel_id) {
            Some(c) => {
                if let Some(g) = c.group_id.and_then(|g| self.groups.get_mut(&g)) {
                    g.members.retain(|&m| m != channel_id);
                }
                vec![channel_id]
            }
            None => vec![],
        }
    }

    /// Creates an empty group; `full_extranonce_size` (if given) is enforced on members.
    pub fn create_group(
        &mut self,
        group_id: u32,
        full_extranonce_size: Option<usize>,
    ) -> Result<(), ChannelError> {
        if self.channels.contains_key(&group_id) || self.groups.contains_key(&group_id) {
            return Err(ChannelError::ChannelIdInUse {
                channel_id: group_id,
            });
        }
        self.groups.insert(
            group_id,
            GroupChannel {
                id: group_id,
                members: vec![],
                full_extranonce_size,
                next_job_id: 1,
            },
        );
        Ok(())
    }

    /// Records a `SetGroupChannel` (spec 5.3.22): moves the channels into the group (created
    /// if needed), out of any other group. All or nothing: every channel must exist and have
    /// the group's full extranonce size.
    pub fn on_set_group_channel(&mut self, msg: &SetGroupChannel) -> Result<(), ChannelError> {
        let gid = msg.group_channel_id;
        if self.channels.contains_key(&gid) {
            return Err(ChannelError::ChannelIdInUse { channel_id: gid });
        }
        let mut size = self.groups.get(&gid).and_then(|g| g.full_extranonce_size);
        for &cid in msg.channel_ids.iter() {
            let c = self
                .channels
                .get(&cid)
                .ok_or(ChannelError::UnknownChannel { channel_id: cid })?;
            let got = c.full_extranonce_size();
            match size {
                Some(expected) if expected != got => {
                    return Err(ChannelError::ExtranonceSizeMismatch {
                        group_id: gid,
                        channel_id: cid,
                        expected,
                        got,
                    })
                }
                _ => size = Some(got),
            }
        }
        if !self.groups.contains_key(&gid) {
            self.create_group(gid, size)?;
        }
        for &cid in msg.channel_ids.iter() {
            let old = self.channels.get(&cid).and_then(|c| c.group_id);
            if let Some(old) = old.filter(|&o| o != gid) {
                if let Some(g) = self.groups.get_mut(&old) {
                    g.members.retain(|&m| m != cid);
                }
            }
            if let Some(c) = self.channels.get_mut(&cid) {
                c.group_id = Some(gid);
            }
            if let Some(g) = self.groups.get_mut(&gid) {
                g.full_extranonce_size = size;
                if !g.members.contains(&cid) {
                    g.members.push(cid);
                }
            }
        }
        Ok(())
    }

    /// Adds one channel to a group (see [`on_set_group_channel`](Self::on_set_group_channel)).
    pub fn add_to_group(&mut self, group_id: u32, channel_id: u32) -> Result<(), ChannelError> {
        let msg = SetGroupChannel {
            group_channel_id: group_id,
            channel_ids: vec![channel_id]
                .try_into()
                .map_err(|_| ChannelError::UnknownChannel { channel_id })?,
        };
        self.on_set_group_channel(&msg)
    }

    /// A fresh job id for a job about to be sent to `channel_id`, a channel or a group: for
    /// a group it is not in use on any member.
    pub fn next_job_id(&mut self, channel_id: u32) -> Result<u32, ChannelError> {
        if let Some(c) = self.channels.get_mut(&channel_id) {
            return Ok(c.next_job_id());
        }
        let g = self
            .groups
            .get_mut(&channel_id)
            .ok_or(ChannelError::UnknownChannel { channel_id })?;
        loop {
            let id = g.next_job_id;
            g.next_job_id = id.checked_add(1).unwrap_or(1);
            if id != 0
                && !g
                    .members
                    .iter()
                    .any(|m| self.channels.get(m).is_some_and(|c| c.job_id_in_use(id)))
            {
                return Ok(id);
            }
        }
    }

    fn targets(&self, channel_id: u32) -> Result<Vec<u32>, ChannelError> {
        if self.channels.contains_key(&channel_id) {
            return Ok(vec![channel_id]);
        }
        self.groups
            .get(&channel_id)
            .map(|g| g.members.clone())
            .ok_or(ChannelError::UnknownChannel { channel_id })
    }

    /// Records a `NewMiningJob` on its channel.
    pub fn on_new_mining_job(&mut self, msg: &NewMiningJob) -> Result<(), ChannelError> {
        self.channels
            .get_mut(&msg.channel_id)
            .ok_or(ChannelError::UnknownChannel {
                channel_id: msg.channel_id,
            })?
            .on_new_mining_job(msg)
    }

    /// Records a `NewExtendedMiningJob` on an extended channel, or on every member of a
    /// group (standard members get the merkle root of their extranonce prefix). A job sent to
    /// a standard channel directly is refused. Members are all checked for a free job id
    /// first, so the job lands on all of them or on none.
    pub fn on_new_extended_mining_job(
        &mut self,
        msg: &NewExtendedMiningJob,
    ) -> Result<(), ChannelError> {
        let work = ExtendedWork::from_job(msg);
        if let Some(c) = self.channels.get_mut(&msg.channel_id) {
            if c.kind == ChannelKind::Standard {
                return Err(ChannelError::WrongChannelKind {
                    channel_id: c.id,
                    expected: "extended",
                });
            }
            return c.on_extended_work(msg, work);
        }
        let members = self.targets(msg.channel_id)?;
        for m in &members {
            let c = self
                .channels
                .get(m)
                .ok_or(ChannelError::UnknownChannel { channel_id: *m })?;
            c.check_new_job_id(msg.job_id)?;
            if let Some(t) = msg.min_ntime {
                let prev = c.prev.ok_or(ChannelError::NoPrevHash {
                    channel_id: *m,
                    job_id: msg.job_id,
                })?;
                if t < prev.min_ntime {
                    return Err(ChannelError::MinNtimeBelowPrevHash {
                        job_id: msg.job_id,
                        min_ntime: t,
                        prev_min_ntime: prev.min_ntime,
                    });
                }
            }
        }
        for m in &members {
            if let Some(c) = self.channels.get_mut(m) {
                c.on_extended_work(msg, work.clone())?;
            }
        }
        Ok(())
    }

    /// Records a `SetNewPrevHash` on a channel or every member of a group. For a group, every
    /// member must hold the job as a future job; otherwise nothing changes.
    pub fn on_set_new_prev_hash(&mut self, msg: &SetNewPrevHash) -> Result<(), ChannelError> {
        let members = self.targets(msg.channel_id)?;
        for m in &members {
            let c = self
                .channels
                .get(m)
                .ok_or(ChannelError::UnknownChannel { channel_id: *m })?;
            if c.future_job(msg.job_id).is_none() {
                return Err(if c.job(msg.job_id).is_some() {
                    ChannelError::NotAFutureJob {
                        channel_id: *m,
                        job_id: msg.job_id,
                    }
                } else {
                    ChannelError::UnknownJob {
                        channel_id: *m,
                        job_id: msg.job_id,
                    }
                });
            }
        }
        Target::from_compact(msg.nbits)
            .map_err(|_| ChannelError::InvalidNbits { nbits: msg.nbits })?;
        for m in &members {
            if let Some(c) = self.channels.get_mut(m) {
                c.on_set_new_prev_hash(msg)?;
            }
        }
        Ok(())
    }

    /// Records a `SetTarget` on a channel or every member of a group.
    pub fn on_set_target(&mut self, msg: &SetTarget) -> Result<(), ChannelError> {
        let target = Target::from_le_bytes(msg.maximum_target.0);
        if target == Target::ZERO {
            return Err(ChannelError::ZeroTarget);
        }
        for m in self.targets(msg.channel_id)? {
            if let Some(c) = self.channels.get_mut(&m) {
                c.set_target(target)?;
            }
        }
        Ok(())
    }

    /// Records a `SetExtranoncePrefix` (not for groups, spec 5.3.10); a member of a group must
    /// keep the group's full extranonce size.
    pub fn on_set_extranonce_prefix(
        &mut self,
        msg: &SetExtranoncePrefix,
    ) -> Result<(), ChannelError> {
        let c = self
            .channels
            .get_mut(&msg.channel_id)
            .ok_or(ChannelError::UnknownChannel {
                channel_id: msg.channel_id,
            })?;
        if let Some(gid) = c.group_id {
            let expected = self.groups.get(&gid).and_then(|g| g.full_extranonce_size);
            let got = c.full_extranonce_size() - c.extranonce_prefix.as_slice().len()
                + msg.extranonce_prefix.as_slice().len();
            if let Some(expected) = expected.filter(|&e| e != got) {
                return Err(ChannelError::ExtranonceSizeMismatch {
                    group_id: gid,
                    channel_id: msg.channel_id,
                    expected,
                    got,
                });
            }
        }
        c.on_set_extranonce_prefix(msg)
    }

    /// Handles an `UpdateChannel` (see [`Channel::update_channel`]).
    pub fn update_channel(
        &mut self,
        msg: &UpdateChannel,
    ) -> Result<Option<SetTarget>, ChannelError> {
        self.channels
            .get_mut(&msg.channel_id)
            .ok_or(ChannelError::UnknownChannel {
                channel_id: msg.channel_id,
            })?
            .update_channel(msg)
    }

    /// Iterates over the channels.
    pub fn iter(&self) -> impl Iterator<Item = &Channel> + '_ {
        self.channels.values()
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
