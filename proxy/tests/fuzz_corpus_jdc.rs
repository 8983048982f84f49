//! The committed seeds of the `jdc_session` fuzz target (`fuzz/seeds/jdc_session`),
//! replayed through the harness the target calls, so every reproducer stays fixed under a
//! plain `cargo test`.
//!
//! `cargo test -p strata-proxy --test fuzz_corpus_jdc -- --ignored write_seeds` regenerates
//! them: scripted JDC sessions in the harness's input format (see
//! `strata_proxy::fuzzing::jdc`).

use std::path::{Path, PathBuf};

use strata_proxy::fuzzing::jdc::{self as harness, Outcomes};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/jdc_session")
}

/// Shares on channel `c` with nonces `0..n`.
fn shares(script: &mut Vec<u8>, c: u8, n: u8) {
    for nonce in 0..n {
        script.extend_from_slice(&[9, c, nonce]);
    }
}

/// The scripts, each with what it must produce.
fn scripts() -> Vec<(&'static str, Vec<u8>, Outcomes)> {
    let mut out = vec![];

    // template, pool, JDS setup, tokens, a declaration accepted, the custom job set: the
    // miners' shares go to the pool, the blocks among them to the node
    let mut a = vec![0x00, 1, 4, 4, 6, 2, 12, 12, 11, 0, 7, 0];
    shares(&mut a, 0, 8);
    out.push((
        "declared_custom_job_and_blocks",
        a,
        Outcomes {
            pool_actives: 1,
            declarations: 1,
            custom_jobs: 1,
            blocks: 4,
            forwarded: 8,
            ..Outcomes::default()
        },
    ));

    // a refused declaration: solo at once; after the backoff declared again, then the pool
    let mut b = vec![0x00, 1, 4, 4, 6, 2, 12, 12, 11, 3];
    shares(&mut b, 0, 2);
    b.extend_from_slice(&[10, 30, 12, 11, 0, 7, 0]);
    shares(&mut b, 0, 2);
    out.push((
        "refusal_solo_and_return",
        b,
        Outcomes {
            pool_actives: 1,
            solo_actives: 1,
            declarations: 2,
            custom_jobs: 1,
            blocks: 1,
            forwarded: 2,
        },
    ));

    // three channels, two of them open on the pool; the pool goes down: solo on all
    let mut c = vec![
        0x00, 1, 8, 8, 2, 4, 4, 5, 1, 2, 12, 12, 11, 0, 11, 0, 7, 1, 7, 0,
    ];
    shares(&mut c, 1, 2);
    c.push(6);
    shares(&mut c, 2, 3);
    out.push((
        "channels_and_pool_down",
        c,
        Outcomes {
            pool_actives: 1,
            solo_actives: 1,
            declarations: 2,
            custom_jobs: 2,
            blocks: 1,
            forwarded: 2,
        },
    ));

    // Coinbase-only: the allocated token straight into the custom job
    let d = vec![0x80, 1, 5, 4, 0, 2, 12, 12, 7, 0];
    out.push((
        "coinbase_only",
        d,
        Outcomes {
            pool_actives: 1,
            custom_jobs: 1,
            ..Outcomes::default()
        },
    ));

    // a JDS that never sets up, a tip change, a stale-tip refusal, time
    let e = vec![
        0x00, 1, 4, 4, 2, 2, 10, 250, 1, 9, 10, 20, 2, 12, 12, 11, 2, 10, 5, 12, 11, 0, 0, 3, 1, 2,
        3,
    ];
    out.push((
        "silent_jds_and_stale_tip",
        e,
        Outcomes {
            solo_actives: 1,
            declarations: 2,
            custom_jobs: 1,
            ..Outcomes::default()
        },
    ));
    out
}

#[test]
fn jdc_session_seeds_replay() {
    let dir = seeds_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.expect("dir entry").path()).expect("seed file");
        harness::session(&data);
        n += 1;
    }
    assert!(n >= scripts().len(), "{n} seeds");
}

#[test]
#[ignore = "regenerates fuzz/seeds/jdc_session"]
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
        let got = harness::session(&script);
        assert_eq!(got, expected, "{name}");
    }
}
