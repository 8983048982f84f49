//! Miner-facing sessions.

pub mod sv1;
pub mod sv1_conn;
