//! The SV1 miner session (in progress).
