//! Mining Protocol messages
//! ([spec 5.3](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#53-mining-protocol-messages)):
//! message types 0x10-0x25 of `08-Message-Types.md`.
//!
//! The hot messages (SubmitSharesStandard, SubmitSharesExtended, NewMiningJob, SetTarget,
//! SubmitShares.Success) hold only fixed-size fields (the extranonce is an inline [`B0_32`])
//! and decode without allocating.
//!
//! # Differences between the spec text and SRI
//!
//! Where the spec and SRI (mining_sv2 12.0.0, what pools and miners run) disagree, we put on
//! the wire what SRI puts there:
//!
//! * **channel_msg bit**: `08-Message-Types.md` lists 0 for NewMiningJob (0x15) and for
//!   SetCustomMiningJob, .Success and .Error (0x22-0x24); SRI sends 1. Each of those messages
//!   starts with its `channel_id`, so the set bit is truthful; receivers ignore the bit for
//!   look-up anyway. We send 1, as SRI does.
//! * **Field names** (no effect on the wire): SetCustomMiningJob's `mining_job_token` is
//!   `token` in SRI (we keep the spec's name); the spec's `coinbase_tx_input_nSequence` is
//!   `coinbase_tx_input_n_sequence` here (Rust snake case, as in SRI).
//! * **Error codes**: the current spec text no longer lists the error codes; the
//!   `ERROR_*` constants below are those an earlier revision of 05 listed, plus the ones SRI
//!   defines (marked as such).

use crate::message::{protocol_enum, sv2_message};
use crate::wire::{Seq0_255, Seq0_64K, Str0_255, B0_255, B0_32, B0_64K, U256};

// ---------------------------------------------------------------------------------------------
// SetupConnection flags (spec 5.3.1)
// ---------------------------------------------------------------------------------------------

/// `SetupConnection.flags` bit 0: the downstream node requires standard jobs and cannot
/// process extended jobs.
pub const REQUIRES_STANDARD_JOBS: u32 = 1 << 0;
/// `SetupConnection.flags` bit 1: the client will send SetCustomMiningJob on this connection.
pub const REQUIRES_WORK_SELECTION: u32 = 1 << 1;
/// `SetupConnection.flags` bit 2: the client requires version rolling; the server must not
/// send jobs that do not allow it.
pub const REQUIRES_VERSION_ROLLING: u32 = 1 << 2;

/// `SetupConnection.Success.flags` bit 0: the upstream node accepts no change to the version
/// field (never set when the client asked for REQUIRES_VERSION_ROLLING).
pub const REQUIRES_FIXED_VERSION: u32 = 1 << 0;
/// `SetupConnection.Success.flags` bit 1: the upstream node does not accept standard channels.
pub const REQUIRES_EXTENDED_CHANNELS: u32 = 1 << 1;

// ---------------------------------------------------------------------------------------------
// Error codes (the `error_code` strings of the *.Error messages)
// ---------------------------------------------------------------------------------------------

/// OpenMiningChannel.Error: the user is not known to the upstream node.
pub const ERROR_UNKNOWN_USER: &str = "unknown-user";
/// OpenMiningChannel.Error, UpdateChannel.Error: the requested maximum target is not acceptable.
pub const ERROR_MAX_TARGET_OUT_OF_RANGE: &str = "max-target-out-of-range";
/// UpdateChannel.Error, SubmitShares.Error, SetCustomMiningJob.Error: no such channel.
pub const ERROR_INVALID_CHANNEL_ID: &str = "invalid-channel-id";
/// SubmitShares.Error: the share is for a job that is no longer valid.
pub const ERROR_STALE_SHARE: &str = "stale-share";
/// SubmitShares.Error: the share's hash is above the channel's target.
pub const ERROR_DIFFICULTY_TOO_LOW: &str = "difficulty-too-low";
/// SubmitShares.Error: no such job on the channel.
pub const ERROR_INVALID_JOB_ID: &str = "invalid-job-id";
/// SetCustomMiningJob.Error: the mining job token is unknown or already used.
pub const ERROR_INVALID_MINING_JOB_TOKEN: &str = "invalid-mining-job-token";
/// SetCustomMiningJob.Error: prefix of `invalid-job-param-value-{field}`, where `{field}` is
/// the name of the offending SetCustomMiningJob field.
pub const ERROR_INVALID_JOB_PARAM_VALUE_PREFIX: &str = "invalid-job-param-value-";

/// OpenMiningChannel.Error, UpdateChannel.Error (SRI): the nominal hash rate is not acceptable.
pub const ERROR_INVALID_NOMINAL_HASHRATE: &str = "invalid-nominal-hashrate";
/// OpenMiningChannel.Error (SRI): the user identity is malformed.
pub const ERROR_INVALID_USER_IDENTITY: &str = "invalid-user-identity";
/// OpenMiningChannel.Error (SRI): the server cannot open more channels.
pub const ERROR_CHANNEL_CAPACITY_EXHAUSTED: &str = "channel-capacity-exhausted";
/// OpenMiningChannel.Error (SRI): the requested minimum extranonce size is too large.
pub const ERROR_MIN_EXTRANONCE_SIZE_TOO_LARGE: &str = "min-extranonce-size-too-large";
/// OpenMiningChannel.Error (SRI): the requested minimum extranonce size is not supported.
pub const ERROR_UNSUPPORTED_MIN_EXTRANONCE_SIZE: &str = "unsupported-min-extranonce-size";
/// OpenMiningChannel.Error (SRI): a work-selecting client asked for a standard channel.
pub const ERROR_STANDARD_CHANNELS_NOT_SUPPORTED_FOR_CUSTOM_WORK: &str =
    "standard-channels-not-supported-for-custom-work";
/// OpenMiningChannel.Error (SRI): a standard-jobs-only client asked for an extended channel.
pub const ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED_FOR_STANDARD_JOBS: &str =
    "extended-channels-not-supported-for-standard-jobs";
/// SubmitShares.Error (SRI): the share does not hash to a valid header.
pub const ERROR_INVALID_SHARE: &str = "invalid-share";
/// SubmitShares.Error (strata; SRI says `invalid-share`): the share's nTime is below its
/// job's `min_ntime`. A pool's `min_ntime` is at least the median time past + 1, the
/// consensus floor, so such a header can never make a valid block.
pub const ERROR_NTIME_TOO_EARLY: &str = "ntime-too-early";
/// SubmitShares.Error (strata; SRI says `invalid-share`): the share's nTime is further ahead
/// of the job's `min_ntime` (or the server's clock) than the server accepts (2 hours, the
/// consensus limit, by default).
pub const ERROR_NTIME_TOO_LATE: &str = "ntime-too-late";
/// SubmitShares.Error (SRI): the share was already submitted.
pub const ERROR_DUPLICATE_SHARE: &str = "duplicate-share";
/// SubmitShares.Error (SRI): the extranonce is not the channel's negotiated size.
pub const ERROR_BAD_EXTRANONCE_SIZE: &str = "bad-extranonce-size";
/// SubmitShares.Error (SRI): the version was rolled on a job that does not allow it.
pub const ERROR_VERSION_ROLLING_NOT_ALLOWED: &str = "version-rolling-not-allowed";
/// SubmitShares.Error (SRI): a version bit outside the rollable ones was changed.
pub const ERROR_INVALID_NON_ROLLABLE_VERSION_BIT: &str = "invalid-non-rollable-version-bit";
/// SetCustomMiningJob.Error (SRI): the server does not accept custom jobs.
pub const ERROR_JD_NOT_SUPPORTED: &str = "jd-not-supported";
/// SetCustomMiningJob.Error (SRI): the declared job was not validated by the JDS yet.
pub const ERROR_JOB_NOT_YET_VALIDATED: &str = "job-not-yet-validated";
/// SetCustomMiningJob.Error (SRI): the job builds on a chain tip that is no longer current.
pub const ERROR_STALE_CHAIN_TIP: &str = "stale-chain-tip";

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

sv2_message! {
    /// Client -> Server: open a standard channel (spec 5.3.2).
    OpenStandardMiningChannel = (0, 0x10, channel_msg = false, "OpenStandardMiningChannel") {
        /// Client-chosen id, unique on the connection, echoed in the response.
        request_id: u32,
        /// Whatever the upstream needs to identify/authenticate the client, e.g. `"user.worker1"`.
        user_identity: Str0_255,
        /// Expected hash rate of the device(s) in h/s (0.0 from a proxy with no device yet).
        #[cfg_attr(feature = "proptest", proptest(strategy = "-1.0e30f32..1.0e30f32"))]
        nominal_hash_rate: f32,
        /// Largest target the device(s) can accept.
        max_target: U256,
    }
}

sv2_message! {
    /// Server -> Client: the standard channel is open (spec 5.3.3).
    OpenStandardMiningChannelSuccess = (0, 0x11, channel_msg = false, "OpenStandardMiningChannel.Success") {
        /// `request_id` of the OpenStandardMiningChannel this answers.
        request_id: u32,
        /// Newly assigned channel id, stable for the life of the connection.
        channel_id: u32,
        /// Initial target of the channel.
        target: U256,
        /// Implicit first part of the extranonce (used when the group gets extended jobs).
        extranonce_prefix: B0_32,
        /// Group channel the new channel belongs to.
        group_channel_id: u32,
    }
}

sv2_message! {
    /// Server -> Client: opening a standard or extended channel failed (spec 5.3.6).
    OpenMiningChannelError = (0, 0x12, channel_msg = false, "OpenMiningChannel.Error") {
        /// `request_id` of the Open*MiningChannel this answers.
        request_id: u32,
        /// Human-readable error code(s), e.g. [`ERROR_UNKNOWN_USER`].
        error_code: Str0_255,
    }
}

sv2_message! {
    /// Client -> Server: open an extended channel (spec 5.3.4).
    OpenExtendedMiningChannel = (0, 0x13, channel_msg = false, "OpenExtendedMiningChannel") {
        /// Client-chosen id, unique on the connection, echoed in the response.
        request_id: u32,
        /// Whatever the upstream needs to identify/authenticate the client, e.g. `"user.worker1"`.
        user_identity: Str0_255,
        /// Expected hash rate of the device(s) in h/s (0.0 from a proxy with no device yet).
        #[cfg_attr(feature = "proptest", proptest(strategy = "-1.0e30f32..1.0e30f32"))]
        nominal_hash_rate: f32,
        /// Largest target the device(s) can accept.
        max_target: U256,
        /// Minimum extranonce size (bytes) the device/node needs.
        min_extranonce_size: u16,
    }
}

sv2_message! {
    /// Server -> Client: the extended channel is open (spec 5.3.5).
    OpenExtendedMiningChannelSuccess = (0, 0x14, channel_msg = false, "OpenExtendedMiningChannel.Success") {
        /// `request_id` of the OpenExtendedMiningChannel this answers.
        request_id: u32,
        /// Newly assigned channel id, stable for the life of the connection.
        channel_id: u32,
        /// Initial target of the channel.
        target: U256,
        /// Extranonce size (bytes) granted to the channel.
        extranonce_size: u16,
        /// Implicit first part of the extranonce.
        extranonce_prefix: B0_32,
        /// Group channel the new channel belongs to.
        group_channel_id: u32,
    }
}

sv2_message! {
    /// Server -> Client: a job for a standard channel (spec 5.3.15).
    ///
    /// Sent with channel_msg = 1 as SRI does; `08-Message-Types.md` lists 0.
    NewMiningJob = (0, 0x15, channel_msg = true, "NewMiningJob") {
        /// Standard channel the job is for.
        channel_id: u32,
        /// Server's id of the job.
        job_id: u32,
        /// Smallest nTime to hash with; `None` = future job, activated by SetNewPrevHash.
        min_ntime: Option<u32>,
        /// Version field; its BIP323 general purpose bits may be rolled downstream.
        version: u32,
        /// Merkle root for the block header.
        merkle_root: U256,
    }
}

sv2_message! {
    /// Client -> Server: the channel's hash rate or maximum target changed (spec 5.3.7).
    UpdateChannel = (0, 0x16, channel_msg = true, "UpdateChannel") {
        /// Channel being updated.
        channel_id: u32,
        /// Expected hash rate in h/s (see OpenStandardMiningChannel).
        #[cfg_attr(feature = "proptest", proptest(strategy = "-1.0e30f32..1.0e30f32"))]
        nominal_hash_rate: f32,
        /// Largest target the device(s) request; the server answers with SetTarget.
        maximum_target: U256,
    }
}

sv2_message! {
    /// Server -> Client: an UpdateChannel was invalid (spec 5.3.8).
    UpdateChannelError = (0, 0x17, channel_msg = true, "UpdateChannel.Error") {
        /// Channel of the rejected update.
        channel_id: u32,
        /// Human-readable error code(s), e.g. [`ERROR_MAX_TARGET_OUT_OF_RANGE`].
        error_code: Str0_255,
    }
}

sv2_message! {
    /// Client -> Server, Server -> Client: the channel (or the whole group) ends (spec 5.3.9).
    CloseChannel = (0, 0x18, channel_msg = true, "CloseChannel") {
        /// Channel (or group channel) being closed.
        channel_id: u32,
        /// Reason for closing the channel.
        reason_code: Str0_255,
    }
}

sv2_message! {
    /// Server -> Client: a new extranonce prefix for jobs sent after it (spec 5.3.10).
    SetExtranoncePrefix = (0, 0x19, channel_msg = true, "SetExtranoncePrefix") {
        /// Extended or standard channel (not a group channel).
        channel_id: u32,
        /// New implicit first part of the extranonce.
        extranonce_prefix: B0_32,
    }
}

sv2_message! {
    /// Client -> Server: a share on a standard channel (spec 5.3.11).
    SubmitSharesStandard = (0, 0x1a, channel_msg = true, "SubmitSharesStandard") {
        /// Channel the share is for.
        channel_id: u32,
        /// Unique sequential id of the submit within the channel.
        sequence_number: u32,
        /// Job the share solves.
        job_id: u32,
        /// Nonce of the header.
        nonce: u32,
        /// nTime of the header.
        ntime: u32,
        /// Full nVersion of the header.
        version: u32,
    }
}

sv2_message! {
    /// Client -> Server: a share on an extended channel (spec 5.3.12).
    SubmitSharesExtended = (0, 0x1b, channel_msg = true, "SubmitSharesExtended") {
        /// Channel the share is for.
        channel_id: u32,
        /// Unique sequential id of the submit within the channel.
        sequence_number: u32,
        /// Job the share solves.
        job_id: u32,
        /// Nonce of the header.
        nonce: u32,
        /// nTime of the header.
        ntime: u32,
        /// Full nVersion of the header.
        version: u32,
        /// Extranonce bytes after the prefix (coinbase = prefix + extranonce_prefix + this + suffix).
        extranonce: B0_32,
    }
}

sv2_message! {
    /// Server -> Client: acknowledges a batch of accepted shares (spec 5.3.13).
    SubmitSharesSuccess = (0, 0x1c, channel_msg = true, "SubmitShares.Success") {
        /// Channel of the shares.
        channel_id: u32,
        /// Most recent sequence number with a correct result.
        last_sequence_number: u32,
        /// Submits accepted in this batch.
        new_submits_accepted_count: u32,
        /// Sum of the difficulty of the shares accepted in this batch.
        new_shares_sum: u64,
    }
}

sv2_message! {
    /// Server -> Client: one submit was rejected (spec 5.3.14).
    SubmitSharesError = (0, 0x1d, channel_msg = true, "SubmitShares.Error") {
        /// Channel of the share.
        channel_id: u32,
        /// Sequence number of the rejected submit.
        sequence_number: u32,
        /// Human-readable error code(s), e.g. [`ERROR_STALE_SHARE`].
        error_code: Str0_255,
    }
}

sv2_message! {
    /// Server -> Client: a job for an extended or group channel (spec 5.3.16).
    NewExtendedMiningJob = (0, 0x1f, channel_msg = true, "NewExtendedMiningJob") {
        /// Extended channel, or group channel to broadcast to.
        channel_id: u32,
        /// Server's id of the job.
        job_id: u32,
        /// Smallest nTime to hash with; `None` = future job, activated by SetNewPrevHash.
        min_ntime: Option<u32>,
        /// Version field reflecting current network consensus.
        version: u32,
        /// Whether the BIP323 general purpose version bits may be rolled downstream.
        version_rolling_allowed: bool,
        /// Merkle path hashes, deepest first.
        merkle_path: Seq0_255<U256>,
        /// Coinbase transaction before the extranonce (BIP141 fields stripped).
        coinbase_tx_prefix: B0_64K,
        /// Coinbase transaction after the extranonce (BIP141 fields stripped).
        coinbase_tx_suffix: B0_64K,
    }
}

sv2_message! {
    /// Server -> Client: a new block to build on, activating a future job (spec 5.3.17).
    SetNewPrevHash = (0, 0x20, channel_msg = true, "SetNewPrevHash") {
        /// Channel or group channel the prevhash is for.
        channel_id: u32,
        /// Job (sent earlier as a future job) to mine with this prevhash.
        job_id: u32,
        /// Previous block's hash, as in the block header.
        prev_hash: U256,
        /// Smallest nTime to hash with.
        min_ntime: u32,
        /// nBits of the block header.
        nbits: u32,
    }
}

sv2_message! {
    /// Server -> Client: the channel's new maximum target (spec 5.3.21).
    SetTarget = (0, 0x21, channel_msg = true, "SetTarget") {
        /// Channel (or group channel) the target is for.
        channel_id: u32,
        /// Largest hash the server accepts as a share.
        maximum_target: U256,
    }
}

sv2_message! {
    /// Client -> Server: mine a job declared through Job Declaration (spec 5.3.18).
    ///
    /// Sent with channel_msg = 1 as SRI does; `08-Message-Types.md` lists 0. SRI names
    /// `mining_job_token` `token`; the spec's `coinbase_tx_input_nSequence` is
    /// `coinbase_tx_input_n_sequence` here.
    SetCustomMiningJob = (0, 0x22, channel_msg = true, "SetCustomMiningJob") {
        /// Extended channel the job is for.
        channel_id: u32,
        /// Client-chosen id, echoed in the response.
        request_id: u32,
        /// Token from the JDS identifying the declared job.
        mining_job_token: B0_255,
        /// Version field reflecting current network consensus.
        version: u32,
        /// Previous block's hash, as in the block header.
        prev_hash: U256,
        /// Smallest nTime to hash with.
        min_ntime: u32,
        /// nBits of the block header.
        nbits: u32,
        /// nVersion of the coinbase transaction.
        coinbase_tx_version: u32,
        /// Up to 8 bytes placed at the start of the coinbase input's scriptSig.
        coinbase_prefix: B0_255,
        /// nSequence of the coinbase input (spec: `coinbase_tx_input_nSequence`).
        coinbase_tx_input_n_sequence: u32,
        /// Coinbase outputs: CompactSize count followed by the serialized outputs.
        coinbase_tx_outputs: B0_64K,
        /// nLockTime of the coinbase transaction.
        coinbase_tx_locktime: u32,
        /// Merkle path hashes, deepest first.
        merkle_path: Seq0_255<U256>,
    }
}

sv2_message! {
    /// Server -> Client: the custom job is accepted and will be rewarded (spec 5.3.19).
    ///
    /// Sent with channel_msg = 1 as SRI does; `08-Message-Types.md` lists 0.
    SetCustomMiningJobSuccess = (0, 0x23, channel_msg = true, "SetCustomMiningJob.Success") {
        /// Extended channel of the job.
        channel_id: u32,
        /// `request_id` of the SetCustomMiningJob this answers.
        request_id: u32,
        /// Server's id of the job, to use in submits.
        job_id: u32,
    }
}

sv2_message! {
    /// Server -> Client: the custom job is rejected (spec 5.3.20).
    ///
    /// Sent with channel_msg = 1 as SRI does; `08-Message-Types.md` lists 0.
    SetCustomMiningJobError = (0, 0x24, channel_msg = true, "SetCustomMiningJob.Error") {
        /// Extended channel of the job.
        channel_id: u32,
        /// `request_id` of the SetCustomMiningJob this answers.
        request_id: u32,
        /// Why the job was rejected, e.g. [`ERROR_INVALID_MINING_JOB_TOKEN`].
        error_code: Str0_255,
    }
}

sv2_message! {
    /// Server -> Client: put channels into a group channel (spec 5.3.22).
    SetGroupChannel = (0, 0x25, channel_msg = false, "SetGroupChannel") {
        /// Group channel the channels now belong to.
        group_channel_id: u32,
        /// Standard or extended channels being (re)assigned to the group.
        channel_ids: Seq0_64K<u32>,
    }
}

protocol_enum! {
    /// A Mining Protocol message.
    MiningMessage => Mining {
        OpenStandardMiningChannel(OpenStandardMiningChannel),
        OpenStandardMiningChannelSuccess(OpenStandardMiningChannelSuccess),
        OpenMiningChannelError(OpenMiningChannelError),
        OpenExtendedMiningChannel(OpenExtendedMiningChannel),
        OpenExtendedMiningChannelSuccess(OpenExtendedMiningChannelSuccess),
        NewMiningJob(NewMiningJob),
        UpdateChannel(UpdateChannel),
        UpdateChannelError(UpdateChannelError),
        CloseChannel(CloseChannel),
        SetExtranoncePrefix(SetExtranoncePrefix),
        SubmitSharesStandard(SubmitSharesStandard),
        SubmitSharesExtended(SubmitSharesExtended),
        SubmitSharesSuccess(SubmitSharesSuccess),
        SubmitSharesError(SubmitSharesError),
        NewExtendedMiningJob(NewExtendedMiningJob),
        SetNewPrevHash(SetNewPrevHash),
        SetTarget(SetTarget),
        SetCustomMiningJob(SetCustomMiningJob),
        SetCustomMiningJobSuccess(SetCustomMiningJobSuccess),
        SetCustomMiningJobError(SetCustomMiningJobError),
        SetGroupChannel(SetGroupChannel),
    }
}
