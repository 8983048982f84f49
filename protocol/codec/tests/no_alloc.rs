//! The hot Mining messages (SubmitSharesStandard, SubmitSharesExtended, NewMiningJob,
//! SetTarget, SubmitShares.Success) decode, through their struct and through [`Message`],
//! without touching the heap; and encode into a buffer with room without allocating.
//!
//! A counting global allocator wraps the system one; the count is per thread, so that tests
//! running in parallel do not disturb each other.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use strata_protocol::mining::*;
use strata_protocol::{Decode, Encode, Message, Sv2Message, B0_32, U256};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the slot may already be gone while the thread shuts down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the only extra work is a
// counter increment in a const-initialised thread-local, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = std::hint::black_box(f());
    let after = ALLOCS.with(Cell::get);
    (after - before, r)
}

fn check<M>(m: M)
where
    M: Sv2Message + PartialEq + std::fmt::Debug + Clone + Into<Message>,
{
    let mut frame = Vec::new();
    m.encode_frame(&mut frame);
    let header = m.header();
    let payload = &frame[6..];

    let (n, decoded) = allocations(|| M::from_bytes(payload));
    assert_eq!(decoded.as_ref(), Ok(&m));
    assert_eq!(n, 0, "{}::from_bytes allocated", M::NAME);

    let (n, any) = allocations(|| Message::decode(&header, payload));
    assert_eq!(n, 0, "Message::decode of {} allocated", M::NAME);
    assert_eq!(any, Ok(m.clone().into()));

    let (n, any) = allocations(|| Message::from_frame_bytes(&frame));
    assert_eq!(n, 0, "Message::from_frame_bytes of {} allocated", M::NAME);
    assert!(any.is_ok());

    let mut buf = Vec::with_capacity(256);
    let (n, ()) = allocations(|| m.encode_frame(&mut buf));
    assert_eq!(
        n,
        0,
        "{} encode_frame into a buffer with room allocated",
        M::NAME
    );
    assert_eq!(buf, frame);
}

#[test]
fn counter_sees_allocations() {
    let (n, v) = allocations(|| vec![1u8; 10]);
    assert_eq!(v.len(), 10);
    assert!(n >= 1);
}

#[test]
fn submit_shares_standard() {
    check(SubmitSharesStandard {
        channel_id: 1,
        sequence_number: 2,
        job_id: 3,
        nonce: 4,
        ntime: 5,
        version: 6,
    });
}

#[test]
fn submit_shares_extended() {
    check(SubmitSharesExtended {
        channel_id: 1,
        sequence_number: 2,
        job_id: 3,
        nonce: 4,
        ntime: 5,
        version: 6,
        extranonce: B0_32::new(&[0xab; 32]).expect("32 bytes fit"),
    });
}

#[test]
fn new_mining_job() {
    for min_ntime in [None, Some(1_700_000_000)] {
        check(NewMiningJob {
            channel_id: 1,
            job_id: 2,
            min_ntime,
            version: 0x2000_0000,
            merkle_root: U256([7; 32]),
        });
    }
}

#[test]
fn set_target() {
    check(SetTarget {
        channel_id: 1,
        maximum_target: U256([0xff; 32]),
    });
}

#[test]
fn submit_shares_success() {
    check(SubmitSharesSuccess {
        channel_id: 1,
        last_sequence_number: 2,
        new_submits_accepted_count: 3,
        new_shares_sum: 4,
    });
}

/// Control: a message with owned variable-length fields does allocate, and the counter sees it
/// through the same path.
#[test]
fn control_new_extended_mining_job_allocates() {
    let m = NewExtendedMiningJob {
        channel_id: 1,
        job_id: 2,
        min_ntime: None,
        version: 3,
        version_rolling_allowed: true,
        merkle_path: strata_protocol::Seq0_255::new(vec![U256([1; 32])]).expect("1 element"),
        coinbase_tx_prefix: strata_protocol::B0_64K::new(vec![1, 2, 3]).expect("small"),
        coinbase_tx_suffix: strata_protocol::B0_64K::new(vec![4, 5]).expect("small"),
    };
    let payload = m.to_vec();
    let (n, decoded) = allocations(|| NewExtendedMiningJob::from_bytes(&payload));
    assert_eq!(decoded, Ok(m));
    assert!(n >= 1);
}
