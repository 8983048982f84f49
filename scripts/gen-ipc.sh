#!/usr/bin/env bash
# Regenerates the Rust code of Bitcoin Core's IPC schemas for the pool's `ipc` template source.
#
# Input:  pool/src/template/ipc/schema/*.capnp (copied from Bitcoin Core's src/ipc/capnp/ and
#         libmultiprocess's include/mp/proxy.capnp, unchanged).
# Output: pool/src/template/ipc/generated/*_capnp.rs (checked in, so building the pool needs
#         no Cap'n Proto compiler).
#
# Needs Debian's `capnproto` (the `capnp` compiler and /usr/include/capnp/c++.capnp) and cargo;
# the code generator is the `capnpc` crate at the version matching the workspace's `capnp`,
# run from a throwaway project in a temporary folder.
#
# Usage: scripts/gen-ipc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCHEMA=pool/src/template/ipc/schema
OUT=pool/src/template/ipc/generated
CAPNPC_VERSION=0.27.0

command -v capnp >/dev/null || { echo "gen-ipc.sh: install capnproto (the capnp compiler)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/src"
cat >"$TMP/Cargo.toml" <<TOML
[package]
name = "gen-ipc"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
capnpc = "=$CAPNPC_VERSION"
[workspace]
TOML
cat >"$TMP/src/main.rs" <<'RS'
fn main() {
    let mut args = std::env::args().skip(1);
    let (schema, out) = (args.next().expect("schema dir"), args.next().expect("out dir"));
    let mut cmd = capnpc::CompilerCommand::new();
    cmd.src_prefix(&schema)
        .import_path(&schema)
        .output_path(&out)
        .default_parent_module(vec!["template".into(), "ipc".into(), "generated".into()]);
    for f in ["mp/proxy.capnp", "common.capnp", "echo.capnp", "mining.capnp", "rpc.capnp", "init.capnp"] {
        cmd.file(format!("{schema}/{f}"));
    }
    cmd.run().expect("capnp compile");
}
RS
# mod.rs (hand-written: lint allowances, module list) stays
rm -f "$ROOT/$OUT"/*_capnp.rs && mkdir -p "$ROOT/$OUT"
(cd "$TMP" && CARGO_TARGET_DIR="$TMP/target" cargo run --quiet -- "$ROOT/$SCHEMA" "$ROOT/$OUT")
# proxy.capnp sits in mp/: keep every generated file in one folder
if [ -d "$ROOT/$OUT/mp" ]; then mv "$ROOT/$OUT"/mp/*.rs "$ROOT/$OUT/" && rmdir "$ROOT/$OUT/mp"; fi
ls "$ROOT/$OUT"
