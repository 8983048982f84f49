//! The committed seeds of the `pool_session` fuzz target (`fuzz/seeds/pool_session`),
//! replayed through the harness the target calls, so every reproducer stays fixed under a
//! plain `cargo test`.
//!
//! `cargo test -p strata-pool --test fuzz_corpus -- --ignored write_seeds` regenerates the
//! generated seeds: scripted sessions (setup, channels of both kinds, shares on live, stale
//! and unknown jobs, new tips, commits, ticks) in the harness's input format.

use std::path::{Path, PathBuf};

use strata_protocol::common::SetupConnection;
use strata_protocol::extensions::RequestExtensions;
use strata_protocol::mining::{
    CloseChannel, OpenExtendedMiningChannel, OpenStandardMiningChannel, SubmitSharesExtended,
    SubmitSharesStandard, UpdateChannel,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::Message;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/pool_session")
}

#[test]
fn pool_session_seeds_replay() {
    let dir = seeds_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.expect("dir entry").path()).expect("seed file");
        strata_pool::fuzzing::session(&data);
        n += 1;
    }
    assert!(n >= 8, "{n} seeds");
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

fn s(v: &str) -> Str0_255 {
    Str0_255::new(v).expect("short")
}

fn setup(flags: u32) -> SetupConnection {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: s("pool"),
        endpoint_port: 34254,
        vendor: s("fuzz"),
        hardware_version: s(""),
        firmware: s(""),
        device_id: s(""),
    }
}

fn standard_share(channel_id: u32, seq: u32, job_id: u32) -> SubmitSharesStandard {
    SubmitSharesStandard {
        channel_id,
        sequence_number: seq,
        job_id,
        nonce: seq * 7919,
        ntime: 1_700_000_010,
        version: 0x2000_0000,
    }
}

fn scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![];

    let mut a = vec![];
    frames(&mut a, setup(0));
    frames(
        &mut a,
        OpenStandardMiningChannel {
            request_id: 1,
            user_identity: s("alice"),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
        },
    );
    for seq in 1..6 {
        frames(&mut a, standard_share(2, seq, 1));
    }
    a.extend_from_slice(&[3, 2, 1]);
    frames(&mut a, standard_share(2, 6, 1));
    a.extend_from_slice(&[3, 4]);
    out.push(("standard_shares_then_new_tip", a));

    let mut b = vec![];
    frames(&mut b, setup(0));
    frames(
        &mut b,
        RequestExtensions {
            request_id: 1,
            requested_extensions: vec![2u16].try_into().expect("one"),
        },
    );
    frames(
        &mut b,
        OpenExtendedMiningChannel {
            request_id: 2,
            user_identity: s("proxy"),
            nominal_hash_rate: 1e6,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        },
    );
    for seq in 1..4 {
        frames(
            &mut b,
            SubmitSharesExtended {
                channel_id: 1,
                sequence_number: seq,
                job_id: 1,
                nonce: seq,
                ntime: 1_700_000_010,
                version: 0x2000_0000,
                extranonce: B0_32::new(&[seq as u8; 10]).expect("10 bytes"),
            },
        );
    }
    b.push(3);
    out.push(("extended_shares", b));

    let mut c = vec![];
    frames(&mut c, setup(1));
    for r in 0..3 {
        frames(
            &mut c,
            OpenStandardMiningChannel {
                request_id: r,
                user_identity: s("bob"),
                nominal_hash_rate: 1e9,
                max_target: U256([0xff; 32]),
            },
        );
    }
    frames(
        &mut c,
        UpdateChannel {
            channel_id: 2,
            nominal_hash_rate: 1e12,
            maximum_target: U256([0x0f; 32]),
        },
    );
    frames(
        &mut c,
        CloseChannel {
            channel_id: 3,
            reason_code: s("bye"),
        },
    );
    frames(&mut c, standard_share(3, 1, 1));
    frames(&mut c, standard_share(9, 2, 1));
    c.extend_from_slice(&[2, 0, 4, 4, 3]);
    out.push(("update_close_unknown", c));

    let mut d = vec![];
    frames(&mut d, standard_share(1, 1, 1));
    out.push(("share_before_setup", d));

    let mut e = vec![];
    let mut bad = setup(0);
    bad.protocol = 2;
    frames(&mut e, bad);
    out.push(("wrong_protocol", e));

    let mut f = vec![];
    frames(&mut f, setup(0));
    f.extend_from_slice(&[0, 6, 0, 0, 0x10, 0xff, 0xff, 0xff]);
    out.push(("truncated_frame", f));

    let mut g = vec![];
    frames(&mut g, setup(0));
    frames(
        &mut g,
        OpenStandardMiningChannel {
            request_id: 1,
            user_identity: s(""),
            nominal_hash_rate: f32::NAN,
            max_target: U256([0; 32]),
        },
    );
    out.push(("bad_open", g));

    let mut h = vec![];
    frames(&mut h, setup(0));
    frames(
        &mut h,
        OpenStandardMiningChannel {
            request_id: 1,
            user_identity: s("carol"),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
        },
    );
    for i in 0..20u32 {
        h.extend_from_slice(&[2, (i % 2) as u8]);
        frames(&mut h, standard_share(2, i + 1, i + 1));
    }
    h.push(3);
    out.push(("many_tips", h));
    out
}

#[test]
#[ignore = "regenerates fuzz/seeds/pool_session"]
fn write_seeds() {
    let dir = seeds_dir();
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, script) in scripts() {
        std::fs::write(dir.join(name), script).expect("write seed");
    }
}

#[test]
fn generated_scripts_run() {
    for (_, script) in scripts() {
        strata_pool::fuzzing::session(&script);
    }
}
