//! The committed seeds of the `jds_session` fuzz target (`fuzz/seeds/jds_session`), replayed
//! through the harness the target calls, so every reproducer stays fixed under a plain
//! `cargo test`.
//!
//! `cargo test -p strata-pool --test fuzz_corpus_jds -- --ignored write_seeds` regenerates
//! them: scripted JD sessions (setup, tokens, declarations with known and unknown
//! transactions, node answers, replays, new tips, expiry, solutions) in the harness's input
//! format.

use std::path::{Path, PathBuf};

use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::{absolute, transaction, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, Witness};
use strata_pool::fuzzing::jds::{self as harness, Outcomes};
use strata_protocol::common::SetupConnection;
use strata_protocol::job_declaration::{
    AllocateMiningJobToken, DeclareMiningJob, ProvideMissingTransactionsSuccess, PushSolution,
    DECLARE_TX_DATA,
};
use strata_protocol::wire::{Str0_255, B0_16M, B0_255, B0_32, B0_64K, U256};
use strata_protocol::Message;
use strata_work::coinbase::bip34_height_push;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/jds_session")
}

#[test]
fn jds_session_seeds_replay() {
    let dir = seeds_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.expect("dir entry").path()).expect("seed file");
        harness::session(&data);
        n += 1;
    }
    assert!(n >= 5, "{n} seeds");
}

/// Appends "feed these frame bytes" steps (at most 255 bytes each).
fn frames(script: &mut Vec<u8>, msg: impl Into<Message>) {
    let mut buf = Vec::new();
    msg.into().encode_frame(&mut buf);
    for chunk in buf.chunks(255) {
        script.push(0);
        script.push(chunk.len() as u8);
        script.extend_from_slice(chunk);
    }
}

fn setup(flags: u32) -> SetupConnection {
    SetupConnection {
        protocol: 1,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: Str0_255::new("pool").expect("short"),
        endpoint_port: 3336,
        vendor: Str0_255::new("fuzz").expect("short"),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
}

fn allocate(request_id: u32) -> AllocateMiningJobToken {
    AllocateMiningJobToken {
        user_identifier: Str0_255::new("farm").expect("short"),
        request_id,
    }
}

/// The token the harness's session (connection 1, secret [3; 32]) hands out `n`-th (1-based,
/// tokens and node checks share one counter).
fn token(n: u64) -> Vec<u8> {
    use bitcoin::hashes::{sha256, HashEngine};
    let mut e = sha256::HashEngine::default();
    e.input(&[3; 32]);
    e.input(&1u64.to_le_bytes());
    e.input(&n.to_le_bytes());
    sha256::Hash::from_engine(e).to_byte_array()[..8].to_vec()
}

/// A segwit coinbase at `height` paying the harness's required outputs, split around 8
/// bytes of extranonce.
fn coinbase_at(height: u32) -> (Vec<u8>, Vec<u8>) {
    let mut script = bip34_height_push(height);
    script.extend_from_slice(&[0; 8]);
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(script.clone()),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output: harness::required_outputs(),
    };
    let bytes = serialize(&tx);
    let end = 4 + 2 + 1 + 36 + 1 + script.len();
    (bytes[..end - 8].to_vec(), bytes[end..].to_vec())
}

fn declare(token: Vec<u8>, request_id: u32, txs: &[u8]) -> DeclareMiningJob {
    declare_at(harness::tip().height, token, request_id, txs)
}

/// A declaration of a block at `height`.
fn declare_at(height: u32, token: Vec<u8>, request_id: u32, txs: &[u8]) -> DeclareMiningJob {
    let (prefix, suffix) = coinbase_at(height);
    let wtxids: Vec<U256> = txs
        .iter()
        .map(|&n| U256(harness::mempool_tx(n).compute_wtxid().to_byte_array()))
        .collect();
    DeclareMiningJob {
        request_id,
        mining_job_token: B0_255::new(token).expect("8 bytes"),
        version: 0x2000_0000,
        coinbase_tx_prefix: B0_64K::new(prefix).expect("short"),
        coinbase_tx_suffix: B0_64K::new(suffix).expect("short"),
        wtxid_list: wtxids.try_into().expect("few"),
        excess_data: B0_64K::default(),
    }
}

fn push(nonce: u32) -> PushSolution {
    PushSolution {
        extranonce: B0_32::new(&[1; 8]).expect("8 bytes"),
        prev_hash: U256(harness::tip().prev_hash),
        nonce,
        ntime: 1_700_000_100,
        nbits: harness::tip().nbits,
        version: 0x2000_0000,
    }
}

/// The scripts, each with what it must produce.
fn scripts() -> Vec<(&'static str, Vec<u8>, Outcomes)> {
    let mut out = vec![];

    // a declaration of known transactions, accepted, then solutions and a replay
    let mut a = vec![];
    frames(&mut a, setup(DECLARE_TX_DATA));
    frames(&mut a, allocate(1));
    frames(&mut a, declare(token(1), 1, &[0, 1, 2]));
    a.extend_from_slice(&[2, 0]);
    for nonce in 0..8 {
        frames(&mut a, push(nonce));
    }
    frames(&mut a, declare(token(1), 2, &[0]));
    let a_seen = Outcomes {
        declared: 1,
        refused: 1,
        asked: 0,
        submitted: 3,
        closed: false,
    };
    out.push(("declared_and_solved", a, a_seen));

    // unknown transactions: asked for, provided (one right, then a wrong one)
    let mut b = vec![];
    frames(&mut b, setup(DECLARE_TX_DATA));
    frames(&mut b, allocate(1));
    frames(&mut b, allocate(2));
    frames(&mut b, declare(token(1), 1, &[0, 9]));
    let provide = |n: u8| ProvideMissingTransactionsSuccess {
        request_id: 1,
        transaction_list: vec![B0_16M::new(serialize(&harness::mempool_tx(n))).expect("small")]
            .try_into()
            .expect("one"),
    };
    frames(&mut b, provide(9));
    b.extend_from_slice(&[2, 1]);
    frames(&mut b, declare(token(2), 1, &[9, 1]));
    frames(&mut b, provide(8));
    let b_seen = Outcomes {
        declared: 0,
        refused: 2,
        asked: 2,
        submitted: 0,
        closed: false,
    };
    out.push(("missing_transactions", b, b_seen));

    // the tip moves while the node checks; tokens expire; the bounds are reached
    let mut c = vec![];
    frames(&mut c, setup(DECLARE_TX_DATA));
    for r in 1..=5 {
        frames(&mut c, allocate(r));
    }
    frames(&mut c, declare(token(3), 1, &[]));
    frames(&mut c, declare(token(4), 2, &[]));
    frames(&mut c, declare(token(5), 3, &[]));
    c.extend_from_slice(&[3, 1, 2, 0, 4, 7, 2, 0]);
    let c_seen = Outcomes {
        declared: 0,
        refused: 3,
        asked: 0,
        submitted: 0,
        closed: false,
    };
    out.push(("stale_tip_and_expiry", c, c_seen));

    // required outputs change after the token; coinbase-only setup refused
    let mut d = vec![];
    frames(&mut d, setup(DECLARE_TX_DATA));
    d.extend_from_slice(&[3, 0]);
    frames(&mut d, allocate(1));
    frames(&mut d, declare(token(1), 1, &[3]));
    d.extend_from_slice(&[2, 0]);
    let d_seen = Outcomes {
        declared: 1,
        ..Outcomes::default()
    };
    out.push(("changed_outputs", d, d_seen));

    // declared for the block after a tip the pool has not seen: it waits; one waits for a
    // tip that comes and is accepted, one for a tip that never comes and expires
    let mut f = vec![];
    frames(&mut f, setup(DECLARE_TX_DATA));
    frames(&mut f, allocate(1));
    frames(&mut f, allocate(2));
    let next = harness::tip().height + 1;
    frames(&mut f, declare_at(next, token(1), 1, &[0]));
    f.extend_from_slice(&[3, 1, 2, 0]);
    frames(&mut f, declare_at(next + 1, token(2), 2, &[]));
    f.extend_from_slice(&[4, 1]);
    let f_seen = Outcomes {
        declared: 1,
        refused: 1,
        ..Outcomes::default()
    };
    out.push(("ahead_of_the_tip", f, f_seen));

    let mut e = vec![];
    frames(&mut e, setup(0));
    frames(&mut e, allocate(1));
    let e_seen = Outcomes {
        closed: true,
        ..Outcomes::default()
    };
    out.push(("coinbase_only_refused", e, e_seen));
    out
}

#[test]
#[ignore = "regenerates fuzz/seeds/jds_session"]
fn write_seeds() {
    let dir = seeds_dir();
    std::fs::create_dir_all(&dir).expect("seeds dir");
    for (name, script, _) in scripts() {
        std::fs::write(dir.join(name), script).expect("write seed");
    }
}

#[test]
fn generated_scripts_run() {
    for (name, script, expected) in scripts() {
        assert_eq!(harness::session(&script), expected, "{name}");
    }
}
