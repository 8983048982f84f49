#!/usr/bin/env bash
# Regenerates the Rust code of Bitcoin Core's IPC schemas for the `ipc` template source (strata-template).
#
# Input:  protocol/template/src/ipc/schema/*.capnp (copied from Bitcoin Core's src/ipc/capnp/ and
#         libmultiprocess's include/mp/proxy.capnp, unchanged) and schema/v30/ (Core 30's
#         schemas as the bitcoin-capnp-types 0.1.2 crate ships them, unchanged).
# Output: protocol/template/src/ipc/generated/*_capnp.rs (checked in, so building needs
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
SCHEMA=protocol/template/src/ipc/schema
OUT=protocol/template/src/ipc/generated
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
    let module: Vec<String> = args.next().expect("module").split("::").map(String::from).collect();
    let files: Vec<String> = args.collect();
    let mut cmd = capnpc::CompilerCommand::new();
    cmd.src_prefix(&schema)
        .import_path(&schema)
        .output_path(&out)
        .default_parent_module(module);
    for f in files {
        cmd.file(format!("{schema}/{f}"));
    }
    cmd.run().expect("capnp compile");
}
RS
gen() { (cd "$TMP" && CARGO_TARGET_DIR="$TMP/target" cargo run --quiet -- "$@"); }
# mod.rs files (hand-written: lint allowances, module lists) stay
rm -f "$ROOT/$OUT"/*_capnp.rs "$ROOT/$OUT"/v30/*_capnp.rs && mkdir -p "$ROOT/$OUT/v30"
# Core 31 (the tree libbitcoinkernel-sys ships)
gen "$ROOT/$SCHEMA" "$ROOT/$OUT" ipc::generated \
    mp/proxy.capnp common.capnp echo.capnp mining.capnp rpc.capnp init.capnp
# proxy.capnp sits in mp/: keep every generated file in one folder
if [ -d "$ROOT/$OUT/mp" ]; then mv "$ROOT/$OUT"/mp/*.rs "$ROOT/$OUT/" && rmdir "$ROOT/$OUT/mp"; fi
# Core 30 (schema/v30: its own proxy.capnp beside the others, imported relatively)
gen "$ROOT/$SCHEMA/v30" "$ROOT/$OUT/v30" ipc::generated::v30 \
    proxy.capnp common.capnp echo.capnp mining.capnp init.capnp
ls "$ROOT/$OUT" "$ROOT/$OUT/v30"
