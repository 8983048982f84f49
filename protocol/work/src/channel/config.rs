//! Channel settings, errors and kinds.

use strata_protocol::mining::{
    ERROR_INVALID_CHANNEL_ID, ERROR_INVALID_NOMINAL_HASHRATE, ERROR_MAX_TARGET_OUT_OF_RANGE,
};

use super::*;
use crate::header::BIP323_VERSION_MASK;

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
