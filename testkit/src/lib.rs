//! # strata-testkit
//!
//! Helpers for strata's tests only (`publish = false`, a dev-dependency):
//!
//! * [`browser`]: a headless Chromium that loads a page, runs its scripts, and returns the
//!   DOM it ends with ([`browser::dump_dom`]) or a PNG of it ([`browser::screenshot`]);
//! * [`dom`]: the figures a page rendered, read from that DOM by id and attribute;
//! * [`fmt`]: the pages' formatting rules, to compute the text a page must show;
//! * [`vardiff_sim`]: a miner of fixed hashrate against a vardiff in simulated time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod browser;
pub mod dom;
pub mod fmt;
pub mod vardiff_sim;
