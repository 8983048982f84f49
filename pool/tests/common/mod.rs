//! Helpers shared by the pool's integration tests (each test file uses some of them).
#![allow(dead_code, unreachable_pub)]

pub mod bitcoin_core;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod process;
pub mod solve;
pub mod sri;

/// The blocks the pool recorded (`/api/v1/blocks`, newest first, at most 1,000).
pub async fn api_blocks(pool: &strata_pool::server::RunningPool) -> Vec<serde_json::Value> {
    let url = format!("http://{}/api/v1/blocks?limit=1000", pool.api_addr);
    let blocks: serde_json::Value = reqwest::get(url)
        .await
        .expect("the pool's API")
        .json()
        .await
        .expect("JSON");
    blocks.as_array().expect("a list of blocks").clone()
}
