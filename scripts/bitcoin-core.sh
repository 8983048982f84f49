#!/usr/bin/env bash
# Builds Bitcoin Core's `bitcoind`, `bitcoin-node` (multiprocess, IPC mining interface) and
# `bitcoin-cli` once, caches them outside the clone, and prints the folder that holds them
# (the last line of its output; everything else goes to stderr).
#
# The source is the Bitcoin Core tree that the `libbitcoinkernel-sys` crate (a dependency of
# the embedded regtest node) ships in its package: no download beyond crates.io and Debian's
# packages. It is copied out of the cargo registry and built in the cache, never in place.
# The tree is a development snapshot (see its CMakeLists.txt for the version) built without
# wallet, zmq, GUI, tests or embedded ASMap data.
#
# Cache: ${STRATA_CACHE:-~/.cache/strata}/bitcoin-core-<version>-<source hash>/bin. A cached
# build is reused when its three binaries are there; delete the folder to rebuild.
# About 10-15 minutes at -j2 the first time (JOBS overrides the parallelism).
#
# Usage: scripts/bitcoin-core.sh            # prints e.g. /root/.cache/strata/bitcoin-core-31.99.0-1a2b3c4d/bin
#        BITCOIN_CORE_BIN=$(scripts/bitcoin-core.sh | tail -n 1)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "bitcoin-core.sh: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# Build dependencies (Debian/Ubuntu): IPC needs Cap'n Proto's compiler and library.
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v capnp >/dev/null 2>&1 || need+=(capnproto)
[ -f /usr/include/capnp/capability.h ] || need+=(libcapnp-dev)
[ -f /usr/include/event2/event.h ] || need+=(libevent-dev)
[ -d /usr/include/boost ] || need+=(libboost-dev)
[ -f /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
if [ ${#need[@]} -gt 0 ]; then
    log "installing: ${need[*]}"
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Where cargo unpacked libbitcoinkernel-sys (fetching it if this clone has not yet).
manifest=$(cargo metadata --format-version 1 --locked 2>/dev/null |
    python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="libbitcoinkernel-sys"))')
src="$(dirname "$manifest")/bitcoin"
[ -f "$src/CMakeLists.txt" ] || { log "no Bitcoin Core tree at $src"; exit 1; }

ver() { sed -n "s/^set(CLIENT_VERSION_$1 \([0-9]*\))/\1/p" "$src/CMakeLists.txt"; }
version="$(ver MAJOR).$(ver MINOR).$(ver BUILD)"
# The crate's version names the snapshot: two crate releases may carry different trees that
# print the same development version.
crate=$(basename "$(dirname "$manifest")")
hash=$(echo "$crate" | sha256sum | cut -c1-8)
cache="${STRATA_CACHE:-$HOME/.cache/strata}/bitcoin-core-$version-$hash"
bin="$cache/bin"

have_build() { [ -x "$bin/bitcoind" ] && [ -x "$bin/bitcoin-node" ] && [ -x "$bin/bitcoin-cli" ]; }
if have_build; then
    log "cached build of Bitcoin Core $version ($crate)"
    echo "$bin"
    exit 0
fi

# One build at a time (tests started in parallel may all ask for it): the others wait here
# and find the finished build.
mkdir -p "$cache"
exec 9>"$cache.lock"
flock 9
if have_build; then
    log "cached build of Bitcoin Core $version ($crate)"
    echo "$bin"
    exit 0
fi

log "building Bitcoin Core $version from $crate into $cache (10-15 minutes the first time)"
rm -rf "$cache/src" "$cache/build"
cp -r "$src" "$cache/src"
chmod -R u+w "$cache/src"
jobs=${JOBS:-$(nproc)}
cmake -S "$cache/src" -B "$cache/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DENABLE_IPC=ON -DENABLE_WALLET=OFF -DWITH_ZMQ=OFF -DWITH_EMBEDDED_ASMAP=OFF \
    -DBUILD_GUI=OFF -DBUILD_TESTS=OFF -DBUILD_BENCH=OFF -DBUILD_FUZZ_BINARY=OFF \
    -DBUILD_KERNEL_LIB=OFF -DBUILD_UTIL=OFF -DBUILD_TX=OFF -DBUILD_WALLET_TOOL=OFF \
    >"$cache/configure.log" 2>&1 || { tail -n 40 "$cache/configure.log" >&2; exit 1; }
cmake --build "$cache/build" -j "$jobs" --target bitcoind bitcoin-node bitcoin-cli \
    >"$cache/build.log" 2>&1 || { tail -n 60 "$cache/build.log" >&2; exit 1; }
mkdir -p "$bin.tmp"
for b in bitcoind bitcoin-node bitcoin-cli; do
    cp "$cache/build/bin/$b" "$bin.tmp/$b"
done
strip "$bin.tmp"/* 2>/dev/null || true
rm -rf "$bin"
mv "$bin.tmp" "$bin"
# The objects are not needed once the binaries are out (about 1 GiB).
rm -rf "$cache/build" "$cache/src"
log "built Bitcoin Core $version"
echo "$bin"
