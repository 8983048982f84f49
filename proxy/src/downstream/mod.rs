//! Miner-facing sessions: SV1 (most ASIC firmware) and SV2 (standard and extended channels:
//! SV2 firmware, or another proxy behind this one).

pub mod keys;
pub mod sv1;
pub mod sv1_conn;
pub mod sv2;
pub mod sv2_conn;
