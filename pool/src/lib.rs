//! # strata-pool
//!
//! A Stratum V2 pool server. Template sources ([`template`]) feed block templates; the
//! server ([`server`]) hands out jobs over SV2 channels, validates shares with `strata-work`,
//! commits accepted shares to the [`ledger`] before acknowledging them, pays out per
//! [`payout`] in coinbases that always fit the node's room for them ([`budget`]), and submits
//! blocks. [`api`] serves statistics over HTTP.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod budget;
pub mod cli;
pub mod config;
pub mod fuzzing;
pub mod jds;
pub mod ledger;
pub mod payout;
pub mod server;
pub mod template;
