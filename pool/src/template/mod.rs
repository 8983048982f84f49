//! Template sources: the client-side ones (`rpc`, `tdp`, `ipc`) live in `strata-template`,
//! shared with the proxy's Job Declarator Client, and are re-exported here; the embedded
//! regtest node (which needs `bitcoinkernel`) stays in the pool.

pub use strata_template::*;

#[cfg(feature = "embedded")]
pub mod embedded;
