//! # strata-pool
//!
//! A Stratum V2 pool server. Template sources ([`template`]) feed block templates; the
//! server hands out jobs over SV2 channels, validates shares with `strata-work`, commits
//! accepted shares to the [`ledger`] before acknowledging them, and submits blocks.
#![forbid(unsafe_code)]

pub mod ledger;
pub mod payout;
pub mod template;
