//! Share validation
//! ([spec 5.3.11-5.3.14](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#5311-submitsharesstandard-client---server)):
//! the spec's / SRI's error codes, duplicate detection with bounded memory, block candidates,
//! `SubmitShares.Success` batching and a batch validator that hashes many shares in SIMD
//! lanes.
//!
//! Checks, in SRI's order (so that a share with several faults gets SRI's code):
//!
//! | check | rejection | error code |
//! |---|---|---|
//! | channel known, of the share's kind | [`Rejection::InvalidChannelId`], [`Rejection::WrongChannelKind`] | `invalid-channel-id` |
//! | job dropped by the last prevhash(es) | [`Rejection::StaleShare`] | `stale-share` |
//! | job active or past (not future, not evicted) | [`Rejection::InvalidJobId`] | `invalid-job-id` |
//! | extended: extranonce of the channel's size | [`Rejection::BadExtranonceSize`] | `bad-extranonce-size` |
//! | `ntime >= job min_ntime` | [`Rejection::NtimeTooEarly`] | `ntime-too-early` (SRI: `invalid-share`) |
//! | `ntime <= max(job min_ntime, now) + max_ntime_ahead` | [`Rejection::NtimeTooLate`] | `ntime-too-late` (SRI: `invalid-share`) |
//! | version bits changed only inside the job's mask | [`Rejection::InvalidVersion`], [`Rejection::VersionRollingNotAllowed`] | `invalid-non-rollable-version-bit`, `version-rolling-not-allowed` |
//! | hash ≤ job target, or ≤ network target (a block) | [`Rejection::DifficultyTooLow`] | `difficulty-too-low` |
//! | `ntime >=` the channel's nTime floor (set when its duplicate budget was renewed; blocks have their own) | [`Rejection::BelowNtimeFloor`] | `stale-share` |
//! | not accepted before on this channel since the last prevhash | [`Rejection::DuplicateShare`] | `duplicate-share` |
//! | duplicate budget left (blocks: twice it), or renewed with this share at or above the new floor | [`Rejection::BelowNtimeFloor`] | `stale-share` |
//! | a spent budget can be renewed (no floor fits above a recorded nTime of `u32::MAX`) | [`Rejection::ShareBudgetExhausted`] | `invalid-share` |
//!
//! The nTime window: the spec (5.3.11) bounds nTime by the prevhash's `min_ntime` plus the
//! seconds elapsed since it arrived; consensus allows two hours ahead of the node's clock.
//! We accept `ntime <= max(job min_ntime, now) + max_ntime_ahead` (default 7200 s): with a
//! real clock that is consensus' bound, and with `now = 0` (tests, replay) it is SRI's
//! `min_ntime + 7200`. `now_ms` is UNIX time in milliseconds, passed in by the caller.
//!
//! Duplicates are detected per channel and prevhash on 64 bits of the share hash, for
//! accepted shares only: equal headers have equal hashes, so a share resubmitted under another
//! job id with the same merkle root (a template re-sent as a new job) is a duplicate too. The
//! set is emptied by a `SetNewPrevHash` that changes the prevhash (a repeated tip keeps it,
//! as SRI does);
//! [`crate::channel::ChannelConfig::max_seen_shares`] caps it. A full set is renewed:
//! emptied, with an nTime floor one second above every share it held, so no share it held can
//! be replayed (its header has a lower nTime) and newer shares are checked against the fresh
//! set; shares below the floor are refused as stale until the miners' nTime passes it: a
//! second or so for miners that roll nTime with the clock, but miners that keep their job's
//! nTime (most SV1 firmware, and so a farm behind a proxy) pass it only with a job carrying a
//! later nTime. Only an nTime of `u32::MAX` already recorded leaves no room for a floor:
//! then shares are refused ([`Rejection::ShareBudgetExhausted`]) until the next prevhash.
//! Block candidates are remembered apart, up to twice the budget, and never refused for the
//! shares' floor; only regtest, where about every other share is a block, fills their
//! budget, and there it is renewed the same way, with a floor of its own.
//!
//! The per-share path does not allocate (the duplicate set grows amortized; a block
//! candidate, rare by nature, is boxed).
//!
//! Hashing: a standard share at its job's version hashes two compressions from the job's
//! cached header midstate, a version-rolled one three; an extended share hashes its coinbase
//! from the job's coinbase-prefix midstate ([`crate::sha256d::PrefixMidstate`]), then the
//! merkle path and the header. [`BatchValidator`] hashes the same steps across shares in
//! SIMD lanes.

use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::mining::{
    SubmitSharesError, SubmitSharesExtended, SubmitSharesStandard, SubmitSharesSuccess,
    ERROR_BAD_EXTRANONCE_SIZE, ERROR_DIFFICULTY_TOO_LOW, ERROR_DUPLICATE_SHARE,
    ERROR_INVALID_CHANNEL_ID, ERROR_INVALID_JOB_ID, ERROR_INVALID_NON_ROLLABLE_VERSION_BIT,
    ERROR_INVALID_SHARE, ERROR_NTIME_TOO_EARLY, ERROR_NTIME_TOO_LATE, ERROR_STALE_SHARE,
    ERROR_VERSION_ROLLING_NOT_ALLOWED,
};
use strata_protocol::{Str0_255, B0_32};

use crate::channel::{Channel, ChannelKind, Channels, Job, Seen};
use crate::coinbase::{assemble_coinbase, txid_from_parts};
use crate::header::{assemble_block, Header, HEADER_LEN};
use crate::merkle::merkle_root_from_path;
use crate::sha256d::{self, Hasher, PrefixMidstate};
use crate::target::hash_meets;

/// Why a share was rejected. [`error_code`](Self::error_code) is the `SubmitShares.Error`
/// code (spec / SRI); [`to_message`](Self::to_message) builds the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No channel with this id.
    #[error("unknown channel {channel_id}")]
    InvalidChannelId {
        /// The channel id of the share.
        channel_id: u32,
    },
    /// A standard share on an extended channel or an extended share on a standard one.
    #[error("channel {channel_id} does not take this kind of share")]
    WrongChannelKind {
        /// The channel id of the share.
        channel_id: u32,
    },
    /// The job is unknown, still a future job, or was evicted.
    #[error("unknown job {job_id}")]
    InvalidJobId {
        /// The job id of the share.
        job_id: u32,
    },
    /// The job belongs to a previous prevhash.
    #[error("job {job_id} is stale")]
    StaleShare {
        /// The job id of the share.
        job_id: u32,
    },
    /// The extranonce is not the channel's negotiated size.
    #[error("extranonce of {got} bytes, expected {expected}")]
    BadExtranonceSize {
        /// The channel's extranonce size.
        expected: usize,
        /// The share's.
        got: usize,
    },
    /// nTime below the job's `min_ntime`.
    #[error("ntime {ntime} below min_ntime {min_ntime}")]
    NtimeTooEarly {
        /// The share's nTime.
        ntime: u32,
        /// The job's min_ntime.
        min_ntime: u32,
    },
    /// nTime too far ahead.
    #[error("ntime {ntime} above {max_ntime}")]
    NtimeTooLate {
        /// The share's nTime.
        ntime: u32,
        /// The largest accepted.
        max_ntime: u64,
    },
    /// Version bits changed outside the job's rolling mask.
    #[error(
        "version {version:#010x} changes bits outside mask {mask:#010x} of {job_version:#010x}"
    )]
    InvalidVersion {
        /// The share's version.
        version: u32,
        /// The job's version.
        job_version: u32,
        /// The job's mask.
        mask: u32,
    },
    /// The version was changed on a job that does not allow rolling.
    #[error("version {version:#010x} differs from {job_version:#010x}, rolling not allowed")]
    VersionRollingNotAllowed {
        /// The share's version.
        version: u32,
        /// The job's version.
        job_version: u32,
    },
    /// The hash is above the job's target (and the network's).
    #[error("hash above the share target")]
    DifficultyTooLow,
    /// The share was accepted before.
    #[error("duplicate share on job {job_id}")]
    DuplicateShare {
        /// The job id of the share.
        job_id: u32,
    },
    /// The nTime is below the channel's floor: the share may be one the channel forgot when
    /// its duplicate budget was renewed (see the module docs). Miners rolling nTime with the
    /// clock pass the floor within about a second; others with their next job of a later
    /// nTime.
    #[error("nTime {ntime} below the channel's floor {floor} (duplicate budget renewed)")]
    BelowNtimeFloor {
        /// The share's nTime.
        ntime: u32,
        /// The floor.
        floor: u32,
    },
    /// The channel remembers [`max_seen_shares`](crate::channel::ChannelConfig::max_seen_shares)
    /// shares (or twice as many blocks) already and an nTime of `u32::MAX` leaves no room to
    /// renew the set; it cannot accept more without forgetting duplicates until the next
    /// prevhash.
    #[error("duplicate-detection budget of {limit} shares exhausted")]
    ShareBudgetExhausted {
        /// The budget.
        limit: usize,
    },
}

impl Rejection {
    /// The `SubmitShares.Error` error code (the constants of [`strata_protocol::mining`]).
    pub fn error_code(&self) -> &'static str {
        match self {
            Rejection::InvalidChannelId { .. } | Rejection::WrongChannelKind { .. } => {
                ERROR_INVALID_CHANNEL_ID
            }
            Rejection::InvalidJobId { .. } => ERROR_INVALID_JOB_ID,
            Rejection::StaleShare { .. } | Rejection::BelowNtimeFloor { .. } => ERROR_STALE_SHARE,
            Rejection::BadExtranonceSize { .. } => ERROR_BAD_EXTRANONCE_SIZE,
            // SRI answers both nTime faults `invalid-share`; the miner is better served by
            // the precise code (docs/spec-vs-sri.md)
            Rejection::NtimeTooEarly { .. } => ERROR_NTIME_TOO_EARLY,
            Rejection::NtimeTooLate { .. } => ERROR_NTIME_TOO_LATE,
            Rejection::ShareBudgetExhausted { .. } => ERROR_INVALID_SHARE,
            Rejection::InvalidVersion { .. } => ERROR_INVALID_NON_ROLLABLE_VERSION_BIT,
            Rejection::VersionRollingNotAllowed { .. } => ERROR_VERSION_ROLLING_NOT_ALLOWED,
            Rejection::DifficultyTooLow => ERROR_DIFFICULTY_TOO_LOW,
            Rejection::DuplicateShare { .. } => ERROR_DUPLICATE_SHARE,
        }
    }

    /// The `SubmitShares.Error` for the share `(channel_id, sequence_number)` (sent at once,
    /// one per bad share: docs/spec-notes.md §8).
    pub fn to_message(&self, channel_id: u32, sequence_number: u32) -> SubmitSharesError {
        SubmitSharesError {
            channel_id,
            sequence_number,
            error_code: Str0_255::new(self.error_code())
                .expect("error codes are shorter than 256 bytes"),
        }
    }
}

/// The coinbase of a block candidate, in the pieces of the job (BIP141 fields stripped, as in
/// `NewExtendedMiningJob`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinbaseParts {
    /// `coinbase_tx_prefix`.
    pub prefix: Bytes,
    /// The full extranonce: the job's extranonce prefix ‖ the share's extranonce.
    pub extranonce: B0_32,
    /// `coinbase_tx_suffix`.
    pub suffix: Bytes,
}

impl CoinbaseParts {
    /// The stripped coinbase `prefix ‖ extranonce ‖ suffix` (its SHA-256d is the txid). The
    /// full coinbase for the block adds the witness: see
    /// [`crate::coinbase::Coinbase::write_full`].
    pub fn stripped(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 32 + self.suffix.len());
        assemble_coinbase(
            &self.prefix,
            &[self.extranonce.as_slice()],
            &self.suffix,
            &mut out,
        );
        out
    }

    /// The coinbase txid.
    pub fn txid(&self) -> [u8; 32] {
        txid_from_parts(&self.prefix, &[self.extranonce.as_slice()], &self.suffix)
    }
}

/// A share that meets the network target: what the pool needs to build and submit the block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockCandidate {
    /// The channel of the share.
    pub channel_id: u32,
    /// The job of the share.
    pub job_id: u32,
    /// The block header.
    pub header: Header,
    /// Its hash (the block hash, header byte order).
    pub hash: [u8; 32],
    /// The coinbase pieces, for extended jobs and standard jobs derived from a group's
    /// extended job; `None` for a `NewMiningJob` (the pool knows the coinbase behind the
    /// merkle root it sent).
    pub coinbase: Option<CoinbaseParts>,
}

impl BlockCandidate {
    /// The serialized block: this header, `coinbase_full` (with witness) and the template's
    /// other transactions (see [`assemble_block`]).
    pub fn assemble<T: AsRef<[u8]>>(&self, coinbase_full: &[u8], transactions: &[T]) -> Vec<u8> {
        let mut out = Vec::new();
        assemble_block(
            &self.header.to_bytes(),
            coinbase_full,
            transactions,
            &mut out,
        );
        out
    }
}

/// An accepted share.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedShare {
    /// The channel.
    pub channel_id: u32,
    /// The share's sequence number.
    pub sequence_number: u32,
    /// The job.
    pub job_id: u32,
    /// Expected hashes per share at the job's target ([`crate::target::Target::work`]).
    pub work: f64,
    /// Difficulty of the job's target (what `SubmitShares.Success.new_shares_sum` adds up).
    pub difficulty: f64,
    /// The header hash.
    pub hash: [u8; 32],
    /// Set when the hash meets the network target.
    pub is_block: Option<Box<BlockCandidate>>,
}

// ---------------------------------------------------------------------------------------------
// checks shared by the single and batch paths
// ---------------------------------------------------------------------------------------------

#[inline]
fn find_job(ch: &Channel, job_id: u32) -> Result<usize, Rejection> {
    match ch.job_index(job_id) {
        Some(i) => Ok(i),
        None if ch.is_stale_job(job_id) => Err(Rejection::StaleShare { job_id }),
        None => Err(Rejection::InvalidJobId { job_id }),
    }
}

#[inline]
fn check_ntime_version(
    ch: &Channel,
    job: &Job,
    ntime: u32,
    version: u32,
    now_ms: u64,
) -> Result<(), Rejection> {
    let min_ntime = job.min_ntime.unwrap_or(0);
    if ntime < min_ntime {
        return Err(Rejection::NtimeTooEarly { ntime, min_ntime });
    }
    let max_ntime = u64::from(min_ntime).max(now_ms / 1000) + u64::from(ch.config.max_ntime_ahead);
    if u64::from(ntime) > max_ntime {
        return Err(Rejection::NtimeTooLate { ntime, max_ntime });
    }
    if (version ^ job.version) & !job.version_mask != 0 {
        return Err(if job.version_mask == 0 {
            Rejection::VersionRollingNotAllowed {
                version,
                job_version: job.version,
            }
        } else {
            Rejection::InvalidVersion {
                version,
                job_version: job.version,
                mask: job.version_mask,
            }
        });
    }
    Ok(())
}

#[inline]
fn fill_header(header: &mut [u8; HEADER_LEN], version: u32, ntime: u32, nonce: u32) {
    header[0..4].copy_from_slice(&version.to_le_bytes());
    header[68..72].copy_from_slice(&ntime.to_le_bytes());
    header[76..80].copy_from_slice(&nonce.to_le_bytes());
}

/// Checks before hashing a standard share; the job index.
#[inline]
fn check_standard(
    ch: &Channel,
    share: &SubmitSharesStandard,
    now_ms: u64,
) -> Result<usize, Rejection> {
    if ch.kind != ChannelKind::Standard {
        return Err(Rejection::WrongChannelKind {
            channel_id: share.channel_id,
        });
    }
    let idx = find_job(ch, share.job_id)?;
    check_ntime_version(ch, &ch.jobs[idx], share.ntime, share.version, now_ms)?;
    Ok(idx)
}

/// Checks before hashing a standard share; the job index and the header to hash.
#[inline]
fn prepare_standard(
    ch: &Channel,
    share: &SubmitSharesStandard,
    now_ms: u64,
) -> Result<(usize, [u8; HEADER_LEN]), Rejection> {
    let idx = check_standard(ch, share, now_ms)?;
    Ok((idx, standard_header(&ch.jobs[idx], share)))
}

/// The header of a standard share.
#[inline]
fn standard_header(job: &Job, share: &SubmitSharesStandard) -> [u8; HEADER_LEN] {
    let mut header = job.header;
    fill_header(&mut header, share.version, share.ntime, share.nonce);
    header
}

/// Checks before hashing an extended share; the job index.
#[inline]
fn prepare_extended(
    ch: &Channel,
    share: &SubmitSharesExtended,
    now_ms: u64,
) -> Result<usize, Rejection> {
    let ChannelKind::Extended { extranonce_size } = ch.kind else {
        return Err(Rejection::WrongChannelKind {
            channel_id: share.channel_id,
        });
    };
    let idx = find_job(ch, share.job_id)?;
    let job = &ch.jobs[idx];
    let got = share.extranonce.as_slice().len();
    if got != usize::from(extranonce_size) {
        return Err(Rejection::BadExtranonceSize {
            expected: usize::from(extranonce_size),
            got,
        });
    }
    if job.extended.is_none() {
        // cannot happen: extended channels only record extended jobs
        return Err(Rejection::InvalidJobId {
            job_id: share.job_id,
        });
    }
    check_ntime_version(ch, job, share.ntime, share.version, now_ms)?;
    Ok(idx)
}

/// After hashing: target, duplicate, block.
#[inline]
fn finish(
    ch: &mut Channel,
    idx: usize,
    hash: [u8; 32],
    header: impl FnOnce(&Job) -> [u8; HEADER_LEN],
    ntime: u32,
    sequence_number: u32,
    extranonce: &[u8],
) -> Result<AcceptedShare, Rejection> {
    let limit = ch.config.max_seen_shares;
    let channel_id = ch.id;
    let job = &ch.jobs[idx];
    let is_block = hash_meets(&hash, &job.network_target);
    if !is_block && !hash_meets(&hash, &job.target) {
        return Err(Rejection::DifficultyTooLow);
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&hash[..8]);
    let key = u64::from_le_bytes(low);
    // a block is never refused for the shares' floor (that would lose it): blocks are
    // remembered apart, with twice the budget and a floor of their own, which only regtest
    // (about every other share a block) ever raises
    let (seen, cap, initial) = if is_block {
        (&mut ch.seen.blocks, limit.saturating_mul(2), 0)
    } else {
        (&mut ch.seen.shares, limit, ch.config.initial_seen_capacity)
    };
    // here, not before hashing: a batch renews the set between its shares
    let floor = seen.floor();
    if ntime < floor {
        return Err(Rejection::BelowNtimeFloor { ntime, floor });
    }
    let seen = match seen.insert(key, ntime, cap, initial) {
        Seen::Full => match seen.renew() {
            // nothing recorded so far reaches the new floor: this one is new
            Some(floor) if ntime >= floor => seen.insert(key, ntime, cap, initial),
            Some(floor) => return Err(Rejection::BelowNtimeFloor { ntime, floor }),
            None => Seen::Full,
        },
        seen => seen,
    };
    match seen {
        Seen::Inserted => {}
        Seen::Duplicate => return Err(Rejection::DuplicateShare { job_id: job.id }),
        Seen::Full => return Err(Rejection::ShareBudgetExhausted { limit }),
    }
    let block = is_block.then(|| {
        Box::new(block_candidate(
            channel_id,
            job,
            hash,
            &header(job),
            extranonce,
        ))
    });
    Ok(AcceptedShare {
        channel_id,
        sequence_number,
        job_id: job.id,
        work: job.work,
        difficulty: job.difficulty,
        hash,
        is_block: block,
    })
}

#[cold]
fn block_candidate(
    channel_id: u32,
    job: &Job,
    hash: [u8; 32],
    header: &[u8; HEADER_LEN],
    extranonce: &[u8],
) -> BlockCandidate {
    let coinbase = job.extended.as_ref().map(|w| {
        let mut full = [0u8; 32];
        let p = job.extranonce_prefix.as_slice();
        full[..p.len()].copy_from_slice(p);
        full[p.len()..p.len() + extranonce.len()].copy_from_slice(extranonce);
        CoinbaseParts {
            prefix: w.coinbase_prefix.clone(),
            extranonce: B0_32::new(&full[..p.len() + extranonce.len()])
                .expect("channel construction keeps the full extranonce within 32 bytes"),
            suffix: w.coinbase_suffix.clone(),
        }
    });
    BlockCandidate {
        channel_id,
        job_id: job.id,
        header: Header::from_bytes(header),
        hash,
        coinbase,
    }
}

// ---------------------------------------------------------------------------------------------
// one share
// ---------------------------------------------------------------------------------------------

/// Validates a `SubmitSharesStandard` on `channel` (the share's `channel_id` is the caller's
/// to route; see [`Channels::validate_standard`]). `now_ms`: UNIX time in milliseconds.
pub fn validate_standard(
    channel: &mut Channel,
    share: &SubmitSharesStandard,
    now_ms: u64,
) -> Result<AcceptedShare, Rejection> {
    let idx = check_standard(channel, share, now_ms)?;
    let job = &mut channel.jobs[idx];
    let hash = hash_standard(job, share);
    let header = |job: &Job| standard_header(job, share);
    finish(
        channel,
        idx,
        hash,
        header,
        share.ntime,
        share.sequence_number,
        &[],
    )
}

/// SHA-256d of a standard share's header, hashed from the job's header template with the
/// share's fields put in registers ([`sha256d::hash_header_fields`]): for a share at the
/// job's version from the job's cached midstate (computed by the first such share), else in
/// full. A rolled version is not cached: a miner rolling BIP320 bits rarely repeats one
/// within a job, and caching would cost the rolled path the state's extraction and store.
#[inline]
fn hash_standard(job: &mut Job, share: &SubmitSharesStandard) -> [u8; 32] {
    let (version, ntime, nonce) = (share.version, share.ntime, share.nonce);
    if version != job.version {
        return sha256d::hash_header_fields(&job.header, version, ntime, nonce, false).0;
    }
    if let Some(mid) = &job.own_mid {
        return sha256d::hash_tail_fields(mid, &job.header, ntime, nonce);
    }
    let (hash, mid) = sha256d::hash_header_fields(&job.header, version, ntime, nonce, true);
    job.own_mid = mid;
    hash
}

/// Validates a `SubmitSharesExtended` on `channel`: merkle root of `coinbase_tx_prefix ‖
/// extranonce_prefix ‖ extranonce ‖ coinbase_tx_suffix` up the job's path, then the header.
pub fn validate_extended(
    channel: &mut Channel,
    share: &SubmitSharesExtended,
    now_ms: u64,
) -> Result<AcceptedShare, Rejection> {
    let idx = prepare_extended(channel, share, now_ms)?;
    let job = &channel.jobs[idx];
    let Some(w) = job.extended.as_ref() else {
        return Err(Rejection::InvalidJobId {
            job_id: share.job_id,
        });
    };
    let txid = w.txid(&[
        job.extranonce_prefix.as_slice(),
        share.extranonce.as_slice(),
    ]);
    let root = merkle_root_from_path(txid, w.merkle_path.iter());
    let mut header = job.header;
    header[36..68].copy_from_slice(&root);
    fill_header(&mut header, share.version, share.ntime, share.nonce);
    let hash = sha256d::hash_header(&header);
    finish(
        channel,
        idx,
        hash,
        |_| header,
        share.ntime,
        share.sequence_number,
        share.extranonce.as_slice(),
    )
}

impl Channels {
    /// Looks up the share's channel and validates it ([`validate_standard`]);
    /// `invalid-channel-id` if there is none.
    #[inline]
    pub fn validate_standard(
        &mut self,
        share: &SubmitSharesStandard,
        now_ms: u64,
    ) -> Result<AcceptedShare, Rejection> {
        let ch = self
            .get_mut(share.channel_id)
            .ok_or(Rejection::InvalidChannelId {
                channel_id: share.channel_id,
            })?;
        validate_standard(ch, share, now_ms)
    }

    /// Looks up the share's channel and validates it ([`validate_extended`]).
    #[inline]
    pub fn validate_extended(
        &mut self,
        share: &SubmitSharesExtended,
        now_ms: u64,
    ) -> Result<AcceptedShare, Rejection> {
        let ch = self
            .get_mut(share.channel_id)
            .ok_or(Rejection::InvalidChannelId {
                channel_id: share.channel_id,
            })?;
        validate_extended(ch, share, now_ms)
    }
}

// ---------------------------------------------------------------------------------------------
// SubmitShares.Success batching
// ---------------------------------------------------------------------------------------------

/// Accumulates accepted shares of one channel into `SubmitShares.Success` messages
/// (spec 5.3.13, docs/spec-notes.md §8): errors go out at once, successes every `batch_size`
/// shares, at a block, or when the caller flushes (e.g. on a timer).
#[derive(Debug, Clone, PartialEq)]
pub struct SuccessBatch {
    channel_id: u32,
    batch_size: u32,
    last_sequence_number: u32,
    count: u32,
    sum: f64,
}

impl SuccessBatch {
    /// An empty batch for `channel_id`, flushed every `batch_size` (at least 1) shares.
    pub fn new(channel_id: u32, batch_size: u32) -> Self {
        SuccessBatch {
            channel_id,
            batch_size: batch_size.max(1),
            last_sequence_number: 0,
            count: 0,
            sum: 0.0,
        }
    }

    /// Adds an accepted share; returns the message to send when the batch is full or the
    /// share found a block.
    pub fn record(&mut self, share: &AcceptedShare) -> Option<SubmitSharesSuccess> {
        self.last_sequence_number = share.sequence_number;
        self.count += 1;
        self.sum += share.difficulty;
        if self.count >= self.batch_size || share.is_block.is_some() {
            self.flush()
        } else {
            None
        }
    }

    /// Shares recorded since the last message.
    pub fn pending(&self) -> u32 {
        self.count
    }

    /// The message for the shares recorded since the last one, if any, and a new batch.
    pub fn flush(&mut self) -> Option<SubmitSharesSuccess> {
        if self.count == 0 {
            return None;
        }
        let msg = SubmitSharesSuccess {
            channel_id: self.channel_id,
            last_sequence_number: self.last_sequence_number,
            new_submits_accepted_count: self.count,
            // `as` saturates; difficulty sums beyond u64 cannot happen in practice
            new_shares_sum: self.sum as u64,
        };
        self.count = 0;
        self.sum = 0.0;
        Some(msg)
    }
}

// ---------------------------------------------------------------------------------------------
// batches
// ---------------------------------------------------------------------------------------------

/// Where a batch finds channels: all channels of a connection, or just one.
trait Lookup {
    fn channel(&self, id: u32) -> Option<&Channel>;
    fn channel_mut(&mut self, id: u32) -> Option<&mut Channel>;
}

impl Lookup for Channels {
    #[inline]
    fn channel(&self, id: u32) -> Option<&Channel> {
        self.get(id)
    }
    #[inline]
    fn channel_mut(&mut self, id: u32) -> Option<&mut Channel> {
        self.get_mut(id)
    }
}

/// One channel; shares are taken as addressed to it whatever their `channel_id`.
struct One<'a>(&'a mut Channel);

impl Lookup for One<'_> {
    #[inline]
    fn channel(&self, _: u32) -> Option<&Channel> {
        Some(self.0)
    }
    #[inline]
    fn channel_mut(&mut self, _: u32) -> Option<&mut Channel> {
        Some(self.0)
    }
}

/// State of one share between the batch phases.
#[derive(Debug, Clone)]
struct Pending {
    status: Result<usize, Rejection>,
    /// Extended: coinbase bytes in the arena.
    cb_off: u32,
    cb_len: u32,
    /// Extended: the state of the coinbase prefix's whole blocks; the arena holds the rest.
    mid: PrefixMidstate,
    path: Option<Arc<[[u8; 32]]>>,
    node: [u8; 32],
}

/// Lanes hashed per `sha256d_many` call (the stack array of references it takes).
const CHUNK: usize = 64;

/// Validates many shares at once with the same verdicts as one by one, hashing across shares
/// in SIMD lanes ([`Hasher::hash_headers`], [`Hasher::sha256d_many`]): checks for every
/// share, then all coinbase txids (grouped by coinbase length), then each merkle level of
/// all extended shares, then all headers, then targets and duplicates in submission order.
///
/// Scratch buffers are kept between calls, so a steady stream of batches does not
/// allocate.
#[derive(Debug, Clone)]
pub struct BatchValidator {
    hasher: Hasher,
    pending: Vec<Pending>,
    headers: Vec<[u8; HEADER_LEN]>,
    hashes: Vec<[u8; 32]>,
    arena: Vec<u8>,
    order: Vec<u32>,
    nodes: Vec<[u8; 64]>,
    node_out: Vec<[u8; 32]>,
}

impl Default for BatchValidator {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchValidator {
    /// A validator on the fastest batch backend of this CPU.
    pub fn new() -> Self {
        Self::with_hasher(Hasher::new())
    }

    /// A validator on a chosen hasher (tests, benchmarks).
    pub fn with_hasher(hasher: Hasher) -> Self {
        BatchValidator {
            hasher,
            pending: vec![],
            headers: vec![],
            hashes: vec![],
            arena: vec![],
            order: vec![],
            nodes: vec![],
            node_out: vec![],
        }
    }

    /// Validates standard shares of any channels of `channels`, pushing one verdict per share
    /// (in order) to `out`.
    pub fn validate_standard(
        &mut self,
        channels: &mut Channels,
        shares: &[SubmitSharesStandard],
        now_ms: u64,
        out: &mut Vec<Result<AcceptedShare, Rejection>>,
    ) {
        self.standard(channels, shares, now_ms, out)
    }

    /// Validates standard shares all addressed to `channel`.
    pub fn validate_standard_on(
        &mut self,
        channel: &mut Channel,
        shares: &[SubmitSharesStandard],
        now_ms: u64,
        out: &mut Vec<Result<AcceptedShare, Rejection>>,
    ) {
        self.standard(&mut One(channel), shares, now_ms, out)
    }

    /// Validates extended shares of any channels of `channels`.
    pub fn validate_extended(
        &mut self,
        channels: &mut Channels,
        shares: &[SubmitSharesExtended],
        now_ms: u64,
        out: &mut Vec<Result<AcceptedShare, Rejection>>,
    ) {
        self.extended(channels, shares, now_ms, out)
    }

    /// Validates extended shares all addressed to `channel`.
    pub fn validate_extended_on(
        &mut self,
        channel: &mut Channel,
        shares: &[SubmitSharesExtended],
        now_ms: u64,
        out: &mut Vec<Result<AcceptedShare, Rejection>>,
    ) {
        self.extended(&mut One(channel), shares, now_ms, out)
    }

    fn standard<L: Lookup>(
        &mut self,
        channels: &mut L,
        shares: &[SubmitSharesStandard],
        now_ms: u64,
        out: &mut Vec<Result<AcceptedShare, Rejection>>,
    ) {
        self.pending.clear();
        self.headers.clear();
        for s in shares {
            let status = match channels.channel(s.channel_id) {
                None => Err(Rejection::InvalidChannelId {
                    channel_id: s.channel_id,
                }),
                Some(ch) => prepare_standard(ch, s, now_ms).map(|(idx, header)| {
                    self.headers.push(header);
                    idx
                }),
            };
            self.pending.push(Pending {
                status,
                cb_off: 0,
                cb_len: 0,
                mid: PrefixMidstate::EMPTY,
                path: None,
                node: [0; 32],
            });
        }
        self.hashes.clear();
        self.hashes.resize(self.headers.len(), [0; 32]);
        self.hasher.hash_headers(&self.headers, &mut self.hashes);
        let mut k = 0;
        for (s, p) in shares.iter().zip(&self.pending) {
            out.push(match p.status {
                Err(e) => Err(e),
                Ok(idx) => {
                    let (h, hash) = (&self.headers[k], self.hashes[k]);
                    k += 1;
                    match channels.channel_mut(s.channel_id) {
                        Some(ch) => finish(ch, idx, hash, |_| *h, s.ntime, s.sequence_number, &[]),
                        None => Err(Rejection::InvalidChannelId {
                            channel_id: s.channel_id,
                        }),
                    }
                }
            });
        }
    }

    fn extended<L: Lookup>(
        &mut self,
        channels: &mut L,
        shares: &[SubmitSharesExtended],
        now_ms: u64,
        out: &mut Vec<Result<AcceptedShare, Rejection>>,
    ) {
        self.pending.clear();
        self.headers.clear();
        self.arena.clear();
        // 1. checks; coinbases into the arena, header templates
        for s in shares {
            let mut p = Pending {
                status: Err(Rejection::InvalidChannelId {
                    channel_id: s.channel_id,
                }),
                cb_off: 0,
                cb_len: 0,
                mid: PrefixMidstate::EMPTY,
                path: None,
                node: [0; 32],
            };
            if let Some(ch) = channels.channel(s.channel_id) {
                p.status = prepare_extended(ch, s, now_ms);
                if let Ok(idx) = p.status {
                    let job = &ch.jobs[idx];
                    if let Some(w) = job.extended.as_ref() {
                        let off = self.arena.len();
                        let (mid, rest) = w
                            .prefix_state()
                            .map_or((PrefixMidstate::EMPTY, &w.coinbase_prefix[..]), |(m, r)| {
                                (*m, r)
                            });
                        p.mid = mid;
                        assemble_coinbase(
                            rest,
                            &[job.extranonce_prefix.as_slice(), s.extranonce.as_slice()],
                            &w.coinbase_suffix,
                            &mut self.arena,
                        );
                        p.cb_off = off as u32;
                        p.cb_len = (self.arena.len() - off) as u32;
                        p.path = Some(w.merkle_path.clone());
                        let mut header = job.header;
                        fill_header(&mut header, s.version, s.ntime, s.nonce);
                        self.headers.push(header);
                    }
                }
            }
            self.pending.push(p);
        }
        // 2. coinbase txids from the prefixes' midstates, grouped by the length of the rest
        //    (and of the prefix part the midstate covers)
        self.order.clear();
        self.order.extend(
            (0..self.pending.len() as u32).filter(|&i| self.pending[i as usize].status.is_ok()),
        );
        let key = |p: &Pending| (p.cb_len, p.mid.consumed());
        self.order
            .sort_unstable_by_key(|&i| key(&self.pending[i as usize]));
        let mut out32 = [[0u8; 32]; CHUNK];
        let mut mids = [PrefixMidstate::EMPTY; CHUNK];
        let mut start = 0;
        while start < self.order.len() {
            let k = key(&self.pending[self.order[start] as usize]);
            let mut end = start;
            while end < self.order.len()
                && end - start < CHUNK
                && key(&self.pending[self.order[end] as usize]) == k
            {
                end += 1;
            }
            let n = end - start;
            let mut refs: [&[u8]; CHUNK] = [&[]; CHUNK];
            for ((r, m), &i) in refs.iter_mut().zip(&mut mids).zip(&self.order[start..end]) {
                let p = &self.pending[i as usize];
                *r = &self.arena[p.cb_off as usize..(p.cb_off + p.cb_len) as usize];
                *m = p.mid;
            }
            self.hasher
                .sha256d_rest_many(&mids[..n], &refs[..n], &mut out32[..n]);
            for (&i, h) in self.order[start..end].iter().zip(&out32[..n]) {
                self.pending[i as usize].node = *h;
            }
            start = end;
        }
        // 3. merkle levels across shares
        let mut level = 0;
        loop {
            self.nodes.clear();
            self.order.clear();
            for (i, p) in self.pending.iter().enumerate() {
                if let Some(path) = p.path.as_ref().filter(|path| path.len() > level) {
                    let mut buf = [0u8; 64];
                    buf[..32].copy_from_slice(&p.node);
                    buf[32..].copy_from_slice(&path[level]);
                    self.nodes.push(buf);
                    self.order.push(i as u32);
                }
            }
            if self.nodes.is_empty() {
                break;
            }
            self.node_out.clear();
            self.node_out.resize(self.nodes.len(), [0; 32]);
            self.hasher.sha256d_64_many(&self.nodes, &mut self.node_out);
            for (&i, h) in self.order.iter().zip(&self.node_out) {
                self.pending[i as usize].node = *h;
            }
            level += 1;
        }
        // 4. headers
        let mut k = 0;
        for p in &self.pending {
            if p.status.is_ok() && p.path.is_some() {
                self.headers[k][36..68].copy_from_slice(&p.node);
                k += 1;
            }
        }
        self.hashes.clear();
        self.hashes.resize(self.headers.len(), [0; 32]);
        self.hasher.hash_headers(&self.headers, &mut self.hashes);
        // 5. targets, duplicates, blocks in submission order
        let mut k = 0;
        for (s, p) in shares.iter().zip(&mut self.pending) {
            p.path = None;
            out.push(match p.status {
                Err(e) => Err(e),
                Ok(idx) => {
                    let (h, hash) = (&self.headers[k], self.hashes[k]);
                    k += 1;
                    match channels.channel_mut(s.channel_id) {
                        Some(ch) => finish(
                            ch,
                            idx,
                            hash,
                            |_| *h,
                            s.ntime,
                            s.sequence_number,
                            s.extranonce.as_slice(),
                        ),
                        None => Err(Rejection::InvalidChannelId {
                            channel_id: s.channel_id,
                        }),
                    }
                }
            });
        }
    }
}
