#!/usr/bin/env bash
# Installs what building strata needs beyond a Rust toolchain: the embedded regtest node
# (bitcoinkernel, Bitcoin Core's consensus code) is C++ built with cmake and needs boost
# headers. Debian/Ubuntu; a no-op when everything is present.
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
[ -d /usr/include/boost ] || missing+=(libboost-dev)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
