//! Counts heap allocations on the server's hot paths: framing + parsing a `mining.submit`, and
//! encoding a share response and a `mining.notify` into a reused buffer.

#![allow(unsafe_code)] // a counting global allocator; test only
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use strata_sv1::{ClientMessage, ClientMethod, Id, LineDecoder, Notify, Response};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCS.load(Ordering::Relaxed);
    let r = f();
    (r, ALLOCS.load(Ordering::Relaxed) - before)
}

// One test function so no other test thread allocates while counting.
#[test]
fn hot_paths_do_not_allocate() {
    // A receive buffer as the async layer keeps it: already shared once it has been split.
    let mut src = BytesMut::with_capacity(8192);
    let mut decoder = LineDecoder::default();
    let line = b"{\"params\": [\"slush.s9\", \"2b50\", \"01000000\", \"5b8e7f0a\", \"4f0a8c2e\", \"00c00000\"], \"id\": 7, \"method\": \"mining.submit\"}\r\n";
    src.extend_from_slice(line);
    src.extend_from_slice(line);
    let first = decoder.decode(&mut src).unwrap().unwrap();
    drop(ClientMessage::parse(first));

    let ((msg, _), n) = count(|| {
        let l = decoder.decode(&mut src).unwrap().unwrap();
        let msg = ClientMessage::parse(l).unwrap();
        (msg, ())
    });
    assert!(matches!(
        msg,
        ClientMessage::Request(ref r) if matches!(r.method, ClientMethod::Submit(_))
    ));
    assert_eq!(n, 0, "framing + parsing a submit allocated");

    // The server answers with the id it parsed (moved, not copied).
    let ClientMessage::Request(req) = msg else {
        unreachable!()
    };
    let id = req.id;
    assert_eq!(id, Id::from(7u64));
    let notify = Notify {
        job_id: "6f2a".into(),
        prev_hash: [0x5a; 32],
        coinb1: Bytes::from(vec![0x01; 60]),
        coinb2: Bytes::from(vec![0xff; 120]),
        merkle_branch: vec![[0x11; 32]; 12],
        version: 0x2000_0000,
        nbits: 0x1703_4219,
        ntime: 0x64a1_b2c3,
        clean_jobs: true,
    };
    let mut out = BytesMut::with_capacity(4096);
    let ((), n) = count(|| {
        Response::bool(id, true).encode(&mut out);
        notify.encode(&mut out);
    });
    assert_eq!(n, 0, "encoding allocated");
}
