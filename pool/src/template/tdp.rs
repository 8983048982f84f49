//! The `tdp` template source (in progress).
