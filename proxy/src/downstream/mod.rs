//! Miner-facing sessions.

pub mod sv1;
