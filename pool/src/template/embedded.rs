//! The `embedded` template source (in progress).
