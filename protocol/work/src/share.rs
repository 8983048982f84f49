//! (being written: share validation lands in the next commit)
