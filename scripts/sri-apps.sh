#!/usr/bin/env bash
# SRI's applications from crates.io, built once and cached outside the clone, and their
# configuration for a Bitcoin Core node over IPC. Run it to install them; source it for the
# functions.
#
#   scripts/sri-apps.sh          installs what is missing and prints, one a line,
#                                STRATA_SRI_POOL=/path/to/pool_sv2
#                                STRATA_SRI_JDC=/path/to/jd_client_sv2
#                                (everything else goes to stderr)
#
# Versions (a release of SRI's sv2-apps; they speak to each other and to Bitcoin Core 31's
# IPC mining interface, `version = 31`, which the Core tree of scripts/bitcoin-core.sh serves):
#   pool_sv2      0.7.0   the pool; its Job Declaration Server is built in (a `[jds]` section)
#   jd_client_sv2 0.6.0   the Job Declaration Client (built without its `monitoring` feature,
#                         which pulls asic-rs and its ASIC drivers)
# There is no `jd_server_sv2` program to install: every published jd_server_sv2 (0.1.0 to
# 0.6.0) is a library crate (`cargo install` refuses it), linked into pool_sv2 of the same
# release, so "SRI's JDS + pool" is pool_sv2 with `[jds]` (sri_pool_config JDS_PORT).
#
# Cache: ${STRATA_CACHE:-~/.cache/strata}/sri-<name>/bin, reused when cargo's record there
# names the version above (delete the folder to rebuild); one shared target folder,
# ${STRATA_CACHE}/sri-target, so the common dependencies build once; a lock file so parallel
# callers wait for one build. From cold on 2 cores: see BENCHMARKS.md ("Job Declaration").
#
# Functions (after `. scripts/sri-apps.sh`):
#   sri_install NAME             -> installs the crate NAME if missing, prints its binary
#   sri_pool_bin                 -> prints pool_sv2 (SRI_POOL=PATH for another one)
#   sri_jdc_bin                  -> prints jd_client_sv2 (SRI_JDC=PATH for another one)
#   sri_pool_config PORT MONITOR_PORT NETWORK NODE_DATADIR ADDRESS SHARES_PER_MINUTE [JDS_PORT]
#                                -> prints pool.toml: the test authority key below,
#                                   share_batch_size = 1 (every share acknowledged at
#                                   once, as strata does), the IPC template provider, and
#                                   with JDS_PORT the built-in JDS listening there
#   sri_pool_wait PORT PID       -> returns once the pool accepts connections on PORT,
#                                   or its process PID has exited, or after 30 s
# SRI_POOL_AUTHORITY is the authority public key miners pin.
SRI_POOL_AUTHORITY=9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72

SRI_POOL_VERSION=0.7.0
SRI_JDC_VERSION=0.6.0

# NAME -> the cache folder's suffix, version and cargo flags
sri_spec() {
  case "$1" in
    pool_sv2) echo "pool $SRI_POOL_VERSION" ;;
    jd_client_sv2) echo "jdc $SRI_JDC_VERSION --no-default-features" ;;
    *) echo "sri-apps.sh: unknown SRI application $1" >&2; return 1 ;;
  esac
}

sri_install() {
  local name=$1 spec short version flags cache root bin
  spec=$(sri_spec "$name") || return 1
  read -r short version flags <<<"$spec"
  cache=${STRATA_CACHE:-$HOME/.cache/strata}
  root="$cache/sri-$short"
  bin="$root/bin/$name"
  # cargo's own record of what it installed there
  sri_cached() { [ -x "$bin" ] && grep -q "\"$name $version " "$root/.crates.toml" 2>/dev/null; }
  if ! sri_cached; then
    mkdir -p "$cache"
    (
      flock 9
      if ! sri_cached; then
        echo "sri-apps.sh: building $name $version into $root (once; several minutes)" >&2
        local t0=$SECONDS
        # shellcheck disable=SC2086
        cargo install "$name" --version "$version" --locked --force $flags \
          --root "$root" --target-dir "$cache/sri-target" >&2
        echo "sri-apps.sh: $name $version built in $((SECONDS - t0)) s" >&2
      fi
    ) 9>"$cache/sri-apps.lock" || return 1
  else
    echo "sri-apps.sh: cached $name $version" >&2
  fi
  echo "$bin"
}

sri_pool_bin() {
  if [ -n "${SRI_POOL:-}" ]; then echo "$SRI_POOL"; else sri_install pool_sv2; fi
}

sri_jdc_bin() {
  if [ -n "${SRI_JDC:-}" ]; then echo "$SRI_JDC"; else sri_install jd_client_sv2; fi
}

sri_pool_config() {
  cat <<TOML
authority_public_key = "$SRI_POOL_AUTHORITY"
authority_secret_key = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"
cert_validity_sec = 3600
listen_address = "127.0.0.1:$1"
coinbase_reward_script = "addr($5)"
server_id = 1
pool_signature = "bench"
shares_per_minute = $6
share_batch_size = 1
supported_extensions = []
required_extensions = []
monitoring_address = "127.0.0.1:$2"
monitoring_cache_refresh_secs = 15
[template_provider_type.BitcoinCoreIpc]
version = 31
network = "$3"
data_dir = "$4"
fee_threshold = 100
min_interval = 5
TOML
  if [ -n "${7:-}" ]; then
    printf '[jds]\nlisten_address = "127.0.0.1:%s"\n' "$7"
  fi
}

sri_pool_wait() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1
  done
}

# run, not sourced: install both and print where they are
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  pool=$(sri_install pool_sv2)
  jdc=$(sri_install jd_client_sv2)
  echo "STRATA_SRI_POOL=$pool"
  echo "STRATA_SRI_JDC=$jdc"
fi
