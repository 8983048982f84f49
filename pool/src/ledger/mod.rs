//! The share ledger (in progress).
