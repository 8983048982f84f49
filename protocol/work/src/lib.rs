//! # strata-work
//!
//! The mining core shared by the pool and the proxy. Synchronous, I/O-free, deterministic.
//!
//! * [`sha256d`]: double SHA-256 of block headers and other messages, with run-time dispatch
//!   between SHA-NI, AVX-512 / AVX2 multi-buffer and a portable fallback. The only module
//!   where `unsafe` is allowed.
//! * [`target`]: nBits, targets, difficulty, hashrate.
//! * [`merkle`]: merkle roots and paths.
//! * [`coinbase`]: coinbase transactions (BIP34 height, extranonce space, witness commitment,
//!   BIP141 stripping).
//! * [`header`]: block headers and blocks from jobs and shares.
//! * [`channel`]: standard, extended and group channel state (jobs, prevhash activation).
//! * [`share`]: share validation with the spec's error codes, duplicate detection, block
//!   candidates.
//! * [`extranonce`]: extranonce prefix allocation and splitting of an upstream channel's space.
//! * [`vardiff`]: per-channel / per-miner difficulty adjustment and hashrate estimates.
//! * [`payout`]: who a found block pays (solo and PPLNS splits of the coinbase), for the pool
//!   that builds the coinbase and for anyone checking it.

#![warn(missing_docs)]
pub mod channel;
pub mod coinbase;
pub mod extranonce;
pub mod header;
pub mod merkle;
pub mod payout;
pub mod sha256d;
pub mod share;
pub mod target;
pub mod time;
pub mod vardiff;
