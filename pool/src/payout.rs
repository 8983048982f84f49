//! Who a found block pays: the split functions live in [`strata_work::payout`], so that the
//! pool's coinbases and `strata verify-payout`'s check of a found block come from the same
//! code; this module re-exports them under the pool's name for them.
//!
//! Each PPLNS block records the share-id range of its window in the ledger
//! ([`BlockRecord::window`](crate::ledger::BlockRecord::window)); the shares of that range
//! ([`Ledger::shares_in`](crate::ledger::Ledger::shares_in), served by the API's
//! `/api/v1/blocks/{hash}/window`) rebuild the [`PplnsWindow`] and [`pplns_split`] of it
//! gives the block's outputs again.

pub use strata_work::payout::{
    payout_address, payout_script, pplns_split, solo_split, Payout, PayoutMode, PplnsConfig,
    PplnsWindow, SoloConfig, Split, WindowBuilder, WorkerWeight, POOL_OWNER,
};
