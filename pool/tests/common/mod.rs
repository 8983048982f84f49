//! Helpers shared by the pool's integration tests.

pub mod bitcoin_core;
