//! strata-miner: simulated Stratum miners (placeholder until the miner lands).
fn main() {}
