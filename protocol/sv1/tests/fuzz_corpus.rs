//! The committed fuzz seed corpora replayed through the harnesses the cargo-fuzz targets call
//! (`fuzz/fuzz_targets/*.rs` are three-line shims over `strata_sv1::fuzzing`), so every input in
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
fn sv1_client_line() {
    replay("sv1_client_line", strata_sv1::fuzzing::parse_client_line);
}

#[test]
fn sv1_server_line() {
    replay("sv1_server_line", strata_sv1::fuzzing::parse_server_line);
}

#[test]
fn sv1_line_decoder() {
    replay("sv1_line_decoder", strata_sv1::fuzzing::line_decoder);
}
