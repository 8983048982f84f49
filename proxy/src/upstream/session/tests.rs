//! Tests of the session's helpers (sequence order, worker-name cuts).

use super::*;

#[test]
fn sequence_order_wraps() {
    assert!(seq_le(1, 1));
    assert!(seq_le(1, 2));
    assert!(!seq_le(2, 1));
    assert!(seq_le(u32::MAX, 0));
    assert!(!seq_le(0, u32::MAX));
}

#[test]
fn worker_names_are_cut_on_char_boundaries() {
    assert_eq!(truncate_utf8("abc", 32), "abc");
    let long = "é".repeat(20); // 40 bytes
    let cut = truncate_utf8(&long, 32);
    assert_eq!(cut.len(), 32);
    let odd = format!("a{long}"); // 'a' + 40 bytes: cut at 31
    assert_eq!(truncate_utf8(&odd, 32).len(), 31);
}
