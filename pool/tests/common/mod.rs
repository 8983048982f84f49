//! Helpers shared by the pool's integration tests (each test file uses some of them).
#![allow(dead_code, unreachable_pub)]

pub mod bitcoin_core;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod process;
pub mod solve;
pub mod sri;
