//! Template Distribution Protocol messages
//! ([spec 7](https://github.com/stratum-mining/sv2-spec/blob/main/07-Template-Distribution-Protocol.md)):
//! message types 0x70-0x76 of `08-Message-Types.md`, all with the channel_msg bit unset.
//!
//! ```text
//!   Client (pool / JDC)                          Server (Template Provider)
//!     SetupConnection(protocol = 2)        ---->
//!                                          <----  SetupConnection.Success
//!     CoinbaseOutputConstraints            ---->
//!                                          <----  NewTemplate (future_template = 1) ...
//!                                          <----  SetNewPrevHash (activates one of them)
//!                                          <----  NewTemplate (future_template = 0) ...
//!     RequestTransactionData               ---->
//!                                          <----  RequestTransactionData.Success / .Error
//!     SubmitSolution                       ---->
//! ```
//!
//! # Differences between the spec text and SRI
//!
//! The field lists, types and order of the current spec and SRI (template_distribution_sv2
//! 7.0.0) agree, including `CoinbaseOutputConstraints.coinbase_output_max_additional_sigops`
//! (older revisions called the message `CoinbaseOutputDataSize` and had only the size). Only
//! names differ: the spec's `nBits` (SetNewPrevHash) is `n_bits` here, as in SRI.
//!
//! `NewTemplate.coinbase_tx_outputs` is **not** CompactSize-prefixed (unlike
//! `AllocateMiningJobToken.Success.coinbase_tx_outputs` and
//! `SetCustomMiningJob.coinbase_tx_outputs`): it is the raw concatenation of the consensus
//! serialized outputs, counted by `coinbase_tx_outputs_count` (spec 7.2; docs/spec-notes.md §4).

use crate::message::{protocol_enum, sv2_message};
use crate::wire::{Seq0_255, Seq0_64K, Str0_255, B0_16M, B0_255, B0_64K, U256};

/// RequestTransactionData.Error: the template is too old and no longer kept by the Template
/// Provider (spec 7.6).
pub const ERROR_TEMPLATE_ID_NOT_FOUND: &str = "template-id-not-found";
/// RequestTransactionData.Error: the template is still known, but its prev_hash is no longer
/// the chain tip (spec 7.6).
pub const ERROR_STALE_TEMPLATE_ID: &str = "stale-template-id";

sv2_message! {
    /// Client -> Server: the block space and sigops the pool or JDC will add in coinbase outputs;
    /// sent right after SetupConnection.Success, answered with the best template (spec 7.1).
    CoinbaseOutputConstraints = (0, 0x70, channel_msg = false, "CoinbaseOutputConstraints") {
        /// Maximum additional serialized bytes the pool or JDC will add in coinbase outputs.
        coinbase_output_max_additional_size: u32,
        /// Maximum additional sigops the pool or JDC will add in coinbase outputs.
        coinbase_output_max_additional_sigops: u16,
    }
}

sv2_message! {
    /// Server -> Client: a block template (spec 7.2).
    NewTemplate = (0, 0x71, channel_msg = false, "NewTemplate") {
        /// Server's id of the template; strictly increasing (the UNIX time may be used).
        template_id: u64,
        /// True: for a future SetNewPrevHash; false: builds on the last SetNewPrevHash, mine now.
        future_template: bool,
        /// Header version valid for the current consensus; general purpose bits may be rolled.
        version: u32,
        /// The coinbase transaction's nVersion.
        coinbase_tx_version: u32,
        /// Up to 8 bytes to put at the start of the coinbase scriptSig.
        coinbase_prefix: B0_255,
        /// The coinbase input's nSequence.
        coinbase_tx_input_sequence: u32,
        /// Satoshis (fees + subsidy) available for the outputs the client adds.
        coinbase_tx_value_remaining: u64,
        /// Number of outputs in `coinbase_tx_outputs`.
        coinbase_tx_outputs_count: u32,
        /// Outputs to be the last of the coinbase (witness commitment included): consensus
        /// serialized outputs concatenated, **without** a CompactSize count
        /// (docs/spec-notes.md §4).
        coinbase_tx_outputs: B0_64K,
        /// The coinbase transaction's nLockTime.
        coinbase_tx_locktime: u32,
        /// Merkle path hashes, deepest first.
        merkle_path: Seq0_255<U256>,
    }
}

sv2_message! {
    /// Server -> Client: a new best block; activates the future template `template_id`
    /// (spec 7.3).
    SetNewPrevHash = (0, 0x72, channel_msg = false, "SetNewPrevHash") {
        /// A template_id from an earlier NewTemplate.
        template_id: u64,
        /// Previous block's hash, as it must appear in the next block's header.
        prev_hash: U256,
        /// nTime to start with (usually the current time); not the minimum valid nTime.
        header_timestamp: u32,
        /// Header nBits field (the spec's `nBits`).
        n_bits: u32,
        /// Largest double-SHA256 hash that makes a valid block (may be below what nBits says).
        target: U256,
    }
}

sv2_message! {
    /// Client -> Server: ask for the transactions (coinbase excluded) and excess data of a
    /// template (spec 7.4).
    RequestTransactionData = (0, 0x73, channel_msg = false, "RequestTransactionData") {
        /// The template_id of a NewTemplate.
        template_id: u64,
    }
}

sv2_message! {
    /// Server -> Client: the template's full transaction data (spec 7.5).
    RequestTransactionDataSuccess = (0, 0x74, channel_msg = false, "RequestTransactionData.Success") {
        /// The template_id of the NewTemplate / RequestTransactionData.
        template_id: u64,
        /// Extra data the pool may need to validate the work (opaque; usually the SegWit
        /// commitment).
        excess_data: B0_64K,
        /// Full transactions (opaque blobs, witness included), in block order.
        transaction_list: Seq0_64K<B0_16M>,
    }
}

sv2_message! {
    /// Server -> Client: no transaction data for this template (spec 7.6).
    RequestTransactionDataError = (0, 0x75, channel_msg = false, "RequestTransactionData.Error") {
        /// The template_id of the NewTemplate / RequestTransactionData.
        template_id: u64,
        /// Why: [`ERROR_TEMPLATE_ID_NOT_FOUND`] or [`ERROR_STALE_TEMPLATE_ID`].
        error_code: Str0_255,
    }
}

sv2_message! {
    /// Client -> Server: a block was found on a template; the server must build and
    /// broadcast it at once (spec 7.7).
    SubmitSolution = (0, 0x76, channel_msg = false, "SubmitSolution") {
        /// The template_id as it appeared in NewTemplate.
        template_id: u64,
        /// Header version (only the general purpose bits may differ from NewTemplate's).
        version: u32,
        /// Header nTime.
        header_timestamp: u32,
        /// Header nonce.
        header_nonce: u32,
        /// The full serialized coinbase transaction, BIP141 fields **not** stripped
        /// (docs/spec-notes.md §5).
        coinbase_tx: B0_64K,
    }
}

protocol_enum! {
    /// A Template Distribution Protocol message.
    TemplateDistributionMessage => TemplateDistribution {
        CoinbaseOutputConstraints(CoinbaseOutputConstraints),
        NewTemplate(NewTemplate),
        SetNewPrevHash(SetNewPrevHash),
        RequestTransactionData(RequestTransactionData),
        RequestTransactionDataSuccess(RequestTransactionDataSuccess),
        RequestTransactionDataError(RequestTransactionDataError),
        SubmitSolution(SubmitSolution),
    }
}
