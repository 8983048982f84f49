//! The `rpc` template source (in progress).
