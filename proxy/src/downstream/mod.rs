//! Miner-facing sessions.

pub mod keys;
pub mod sv1;
pub mod sv2;
pub mod sv2_conn;
