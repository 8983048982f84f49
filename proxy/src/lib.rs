//! # strata-proxy
//!
//! The farm proxy: thousands of ASICs on a LAN (mostly Stratum V1, some SV2) aggregated into
//! SV2 extended channels toward one of several pools, with local share validation, per-miner
//! vardiff, failover and per-miner statistics. See [`work`] for the data flow.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod alerts;
pub mod api;
pub mod config;
pub mod downstream;
pub mod fuzzing;
pub mod history;
pub mod hub;
pub mod jdc;
pub mod monitor;
pub mod server;
pub mod upstream;
pub mod work;
