//! (being written: channel state lands in the next commit)
