//! The committed fuzz seed corpora replayed through the harnesses the cargo-fuzz targets call
//! (`fuzz/fuzz_targets/*.rs` are three-line shims over `strata_noise::fuzzing`), so every input in
//! `fuzz/seeds/<target>/` (seeds, and the reproducer of any crash ever found) is re-checked
//! by a plain `cargo test`.

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        harness(&std::fs::read(&path).expect("seed file"));
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn handshake_initiator() {
    replay("handshake_initiator", strata_noise::fuzzing::initiator_act2);
}

#[test]
fn handshake_responder() {
    replay("handshake_responder", strata_noise::fuzzing::responder_act1);
}

#[test]
fn transport() {
    replay("transport", strata_noise::fuzzing::transport_open);
}
