//! Job Declaration Protocol messages
//! ([spec 6.4](https://github.com/stratum-mining/sv2-spec/blob/main/06-Job-Declaration-Protocol.md#64-job-declaration-protocol-messages)):
//! message types 0x50-0x60 of `08-Message-Types.md`, between the Job Declarator Client (JDC,
//! miner side) and the Job Declarator Server (JDS, pool side).
//!
//! ```text
//!   JDC                                               JDS
//!     SetupConnection(protocol = 1, DECLARE_TX_DATA) ---->
//!     AllocateMiningJobToken                         ---->
//!                                                    <----  AllocateMiningJobToken.Success
//!   Full-Template mode only:
//!     DeclareMiningJob                               ---->
//!                                                    <----  ProvideMissingTransactions (optional)
//!     ProvideMissingTransactions.Success             ---->
//!                                                    <----  DeclareMiningJob.Success / .Error
//!     PushSolution (a block was found)               ---->
//! ```
//!
//! # Differences between the spec text and SRI
//!
//! Where the current spec and SRI (job_declaration_sv2 10.0.0) disagree, we put on the wire
//! what SRI puts there:
//!
//! * **0x60 channel_msg bit**: `08-Message-Types.md` lists 1 for PushSolution, but the message
//!   has no channel id and spec 7 says the JD messages have no channels; SRI sends 0. We send 0.
//!   (Receivers ignore the bit for look-up anyway.)
//! * **Message set**: an earlier revision of `08-Message-Types.md` listed IdentifyTransactions /
//!   IdentifyTransactions.Success (0x53 / 0x54) and called 0x60 `SubmitSolution`. Neither the
//!   current 06 text nor SRI has 0x53 / 0x54, and both name 0x60 `PushSolution`: those types
//!   decode as unknown here.
//! * **Field names** (no effect on the wire): the spec's
//!   `AllocateMiningJobToken.Success.coinbase_tx_outputs` is `coinbase_outputs` in SRI (we
//!   keep the spec's name); the spec's PushSolution `prev hash` is `prev_hash`.
//! * **Stale text**: spec 6.4.3 still speaks of `coinbase_output_max_additional_size` in
//!   AllocateMiningJobToken.Success, a field its own table (and SRI) no longer has.
//! * **Error codes**: the current spec no longer lists DeclareMiningJob.Error codes; the
//!   `ERROR_*` constants below are SRI's plus the `invalid-job-param-value-` prefix of an earlier
//!   revision (marked as such).

use crate::message::{protocol_enum, sv2_message};
use crate::wire::{Seq0_64K, Str0_255, B0_16M, B0_255, B0_32, B0_64K, U256};

/// `SetupConnection.flags` bit 0 (spec 6.4.1): the JDC agrees to reveal the template's
/// transaction data via DeclareMiningJob and ProvideMissingTransactions (Full-Template mode).
pub const DECLARE_TX_DATA: u32 = 1 << 0;

/// SetupConnection.Error (SRI): the JDS requires [`DECLARE_TX_DATA`] and the JDC did not set it.
pub const ERROR_MISSING_DECLARE_TX_DATA_FLAG: &str = "missing-declare-tx-data-flag";
/// DeclareMiningJob.Error: the mining job token is unknown or already used.
pub const ERROR_INVALID_MINING_JOB_TOKEN: &str = "invalid-mining-job-token";
/// DeclareMiningJob.Error (earlier spec revision): prefix of `invalid-job-param-value-{field}`,
/// where `{field}` names the offending DeclareMiningJob field.
pub const ERROR_INVALID_JOB_PARAM_VALUE_PREFIX: &str = "invalid-job-param-value-";
/// DeclareMiningJob.Error (SRI): transactions are still missing after
/// ProvideMissingTransactions.
pub const ERROR_MISSING_TXS: &str = "missing-txs";
/// DeclareMiningJob.Error (SRI): the coinbase transaction cannot be parsed or is invalid.
pub const ERROR_INVALID_COINBASE_TX: &str = "invalid-coinbase-tx";
/// DeclareMiningJob.Error (SRI): the coinbase transaction's input is invalid.
pub const ERROR_INVALID_COINBASE_TX_INPUT: &str = "invalid-coinbase-tx-input";
/// DeclareMiningJob.Error (SRI): the JDS failed for a reason of its own.
pub const ERROR_INTERNAL_ERROR: &str = "internal-error";
/// DeclareMiningJob.Error (SRI): the job builds on a chain tip that is no longer current.
pub const ERROR_STALE_CHAIN_TIP: &str = "stale-chain-tip";
/// DeclareMiningJob.Error (SRI): the declared job is invalid.
pub const ERROR_INVALID_JOB: &str = "invalid-job";

sv2_message! {
    /// JDC -> JDS: ask for a token identifying a future mining job (spec 6.4.2).
    AllocateMiningJobToken = (0, 0x50, channel_msg = false, "AllocateMiningJobToken") {
        /// Whatever the JDS needs to identify/authenticate the client (UTF-8 recommended).
        user_identifier: Str0_255,
        /// Client-chosen id, echoed in the response.
        request_id: u32,
    }
}

sv2_message! {
    /// JDS -> JDC: the token, with the pool's coinbase outputs (spec 6.4.3).
    AllocateMiningJobTokenSuccess = (0, 0x51, channel_msg = false, "AllocateMiningJobToken.Success") {
        /// `request_id` of the AllocateMiningJobToken this answers.
        request_id: u32,
        /// Token making the client eligible to declare a job (DeclareMiningJob /
        /// SetCustomMiningJob).
        mining_job_token: B0_255,
        /// Outputs added by the pool, the first being the pool payout output (0 sats):
        /// a CompactSize-prefixed array of consensus serialized outputs (docs/spec-notes.md §4;
        /// `coinbase_outputs` in SRI).
        coinbase_tx_outputs: B0_64K,
    }
}

sv2_message! {
    /// JDC -> JDS: propose a template's transaction set (Full-Template mode only, spec 6.4.4).
    DeclareMiningJob = (0, 0x57, channel_msg = false, "DeclareMiningJob") {
        /// Client-chosen id, echoed in the response.
        request_id: u32,
        /// Token from an AllocateMiningJobToken.Success.
        mining_job_token: B0_255,
        /// Header version (its BIP323 general purpose bits may be rolled later).
        version: u32,
        /// Coinbase transaction up to the extranonce, BIP141 fields **not** stripped
        /// (docs/spec-notes.md §5).
        coinbase_tx_prefix: B0_64K,
        /// Coinbase transaction after the extranonce, BIP141 fields **not** stripped.
        coinbase_tx_suffix: B0_64K,
        /// wtxids of the template's transactions (coinbase excluded), in block order.
        wtxid_list: Seq0_64K<U256>,
        /// Extra data the pool may need to validate the work (from Template Distribution).
        excess_data: B0_64K,
    }
}

sv2_message! {
    /// JDS -> JDC: the declared job is accepted (spec 6.4.5).
    DeclareMiningJobSuccess = (0, 0x58, channel_msg = false, "DeclareMiningJob.Success") {
        /// `request_id` of the DeclareMiningJob this answers.
        request_id: u32,
        /// Token to use in SetCustomMiningJob (may commit to the validated template).
        new_mining_job_token: B0_255,
    }
}

sv2_message! {
    /// JDS -> JDC: the declared job is rejected; the JDC should fall back to another pool or
    /// solo mining (spec 6.4.6).
    DeclareMiningJobError = (0, 0x59, channel_msg = false, "DeclareMiningJob.Error") {
        /// `request_id` of the DeclareMiningJob this answers.
        request_id: u32,
        /// Human-readable error code(s), e.g. [`ERROR_INVALID_MINING_JOB_TOKEN`].
        error_code: Str0_255,
        /// Optional details about the error.
        error_details: B0_64K,
    }
}

sv2_message! {
    /// JDS -> JDC: send these transactions of a DeclareMiningJob in full (Full-Template mode
    /// only, spec 6.4.7).
    ProvideMissingTransactions = (0, 0x55, channel_msg = false, "ProvideMissingTransactions") {
        /// `request_id` of the DeclareMiningJob.
        request_id: u32,
        /// Positions in `DeclareMiningJob.wtxid_list` (0-based, coinbase excluded).
        unknown_tx_position_list: Seq0_64K<u16>,
    }
}

sv2_message! {
    /// JDC -> JDS: the transactions asked for by ProvideMissingTransactions (spec 6.4.8).
    ProvideMissingTransactionsSuccess = (0, 0x56, channel_msg = false, "ProvideMissingTransactions.Success") {
        /// `request_id` of the DeclareMiningJob.
        request_id: u32,
        /// Full transactions, in the order they were asked for.
        transaction_list: Seq0_64K<B0_16M>,
    }
}

sv2_message! {
    /// JDC -> JDS: a block was found on the last declared job; the JDS propagates it too
    /// (Full-Template mode only, spec 6.4.9).
    ///
    /// Sent with channel_msg = 0 as SRI does; `08-Message-Types.md` lists 1.
    PushSolution = (0, 0x60, channel_msg = false, "PushSolution") {
        /// The full extranonce that makes the coinbase a valid submission.
        extranonce: B0_32,
        /// Hash of the previous block (the spec's `prev hash`).
        prev_hash: U256,
        /// Header nonce.
        nonce: u32,
        /// Header nTime.
        ntime: u32,
        /// Header nBits.
        nbits: u32,
        /// Header version.
        version: u32,
    }
}

protocol_enum! {
    /// A Job Declaration Protocol message.
    JobDeclarationMessage => JobDeclaration {
        AllocateMiningJobToken(AllocateMiningJobToken),
        AllocateMiningJobTokenSuccess(AllocateMiningJobTokenSuccess),
        ProvideMissingTransactions(ProvideMissingTransactions),
        ProvideMissingTransactionsSuccess(ProvideMissingTransactionsSuccess),
        DeclareMiningJob(DeclareMiningJob),
        DeclareMiningJobSuccess(DeclareMiningJobSuccess),
        DeclareMiningJobError(DeclareMiningJobError),
        PushSolution(PushSolution),
    }
}
