#!/usr/bin/env bash
# Block change at scale: how long after a new tip the last of CHANNELS miners has its
# SetNewPrevHash. The miners (`strata-miner tips`, one standard channel per Noise connection)
# run in a process of their own; release builds.
#   scripts/bench-tip.sh strata-embedded|strata|strata-rpc|sri CHANNELS [ROUNDS]
#   scripts/bench-tip.sh compare CHANNELS [ROUNDS] [RUNS]
#   scripts/bench-tip.sh floor CHANNELS [ROUNDS]
# - strata-embedded: strata-pool on its own regtest chain; miner 0 submits a block and the
#   clock starts at that submit.
# - strata: strata-pool with `template_source = "ipc"`; sri: SRI's pool_sv2 (crates.io,
#   installed into ~/.cache/strata/sri-pool by scripts/sri-apps.sh when missing; SRI_POOL=PATH for another binary)
#   with its Bitcoin Core IPC template provider. Both on the same kind of node:
#   `bitcoin-node -regtest -ipcbind=unix` (scripts/bitcoin-core.sh or STRATA_BITCOIN_CORE_BIN),
#   which mines each block itself (`generatetoaddress` over RPC); the clock starts when that
#   call is sent, so the node's own work (connecting the block, building the next template)
#   is in both pools' numbers. strata-rpc: strata-pool with `template_source = "rpc"`
#   (getblocktemplate long-poll) on the same node.
# `compare` alternates the four (RUNS each, default 3; SYSTEMS="strata sri" for some of them)
# and prints the medians of the runs' medians. Each run prints the JSON report of
# `strata-miner tips` (per round: first and last SetNewPrevHash in ms; the pool process's CPU
# time per round).
# `floor`: scripts/loopback-floor.c, the kernel's own cost of one 120-byte write to each of
# CHANNELS loopback connections read by another process (one writer, then two): what no
# pool can beat on this machine. `compare` runs it too.
# PER_CONN=K: K standard channels on each connection (CHANNELS is then the number of
#   connections; default 1): every connection but the first accepts grouped jobs, as a proxy's
#   does, so a pool may send each new tip once per connection.
# MEMPOOL_TXS=N (not strata-embedded): N payments in the node's mempool before the rounds, and
#   each tip an empty block (`generateblock ADDRESS []`), so every template carries them.
# CONNECT_RATE=N: connections opened per second (default 2000). KEEP_LOGS=DIR copies the logs there.
# POOL_BIN=PATH runs another strata-pool build (an A/B comparison in one session). NODE_ARGS="..."
# adds arguments to the node, e.g. "-printtoconsole=1 -logtimemicros -debug=ipc -debug=rpc" with
# KEEP_LOGS and POOL_LOG=strata_template=debug,strata_pool=debug: a round's timeline, node and pool.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-strata}; channels=${2:-1000}; rounds=${3:-7}
if [ "$which" = floor ]; then
  cc -O2 -o "${TMPDIR:-/tmp}/loopback-floor" scripts/loopback-floor.c
  for w in 1 2; do WRITERS=$w "${TMPDIR:-/tmp}/loopback-floor" "$channels" "$rounds" | tail -1; done
  exit 0
fi
if [ "$which" = compare ]; then
  runs=${4:-3}
  out=$(mktemp)
  for _ in $(seq "$runs"); do
    "$0" floor "$channels" "$rounds" >&2
    # the embedded pool has no mempool to fill
    default="strata-embedded strata strata-rpc sri"
    [ "${MEMPOOL_TXS:-0}" -gt 0 ] && default="strata strata-rpc sri"
    for w in ${SYSTEMS:-$default}; do
      echo "$w $("$0" "$w" "$channels" "$rounds" | tail -1)" | tee -a "$out" >&2
    done
  done
  python3 - "$out" "$channels" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, _, report = line.strip().partition(" ")
    if report.startswith("{"):
        r = json.loads(report)
        runs.setdefault(name, []).append((r["first_ms_median"], r["last_ms_median"], r.get("pool_cpu_ms_per_round") or 0, r.get("channels", 0), r.get("prev_hash_messages_per_round", 0)))
for name, rs in runs.items():
    first = statistics.median(x[0] for x in rs)
    last = statistics.median(x[1] for x in rs)
    cpu = statistics.median(x[2] for x in rs)
    print(f"{name}: channels={rs[0][3]} connections={sys.argv[2]} prev_hash_messages={statistics.median(x[4] for x in rs):.0f} runs={len(rs)} first_ms={first:.2f} last_ms={last:.2f} pool_cpu_ms_per_round={cpu:.1f} (run medians of last: {', '.join(f'{x[1]:.1f}' for x in rs)})")
if "strata" in runs and "sri" in runs:
    s = statistics.median(x[1] for x in runs["strata"])
    r = statistics.median(x[1] for x in runs["sri"])
    print(f"strata/sri last SetNewPrevHash: x{s / r:.2f}")
    s = statistics.median(x[2] for x in runs["strata"])
    r = statistics.median(x[2] for x in runs["sri"])
    if r:
        print(f"strata/sri pool CPU per round: x{s / r:.2f}")
PY
  rm -f "$out"
  exit 0
fi
if [ "$which" = strata-embedded ] && [ "${MEMPOOL_TXS:-0}" -gt 0 ]; then
  echo "MEMPOOL_TXS needs a node: strata, strata-rpc or sri, not strata-embedded" >&2; exit 64
fi
ulimit -n $((channels * 2 + 1000)) 2>/dev/null || true
work=$(mktemp -d)
cleanup() {
  for pid in ${pool_pid:-} ${node_pid:-}; do
    kill -INT "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP_LOGS:-}" ]; then
    mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.out "$KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# a port nobody listens on now
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cargo build --release -q -p strata-pool -p strata-miner
. scripts/sri-apps.sh
if [ "$which" = sri ]; then sri=$(sri_pool_bin); fi

trigger=()
if [ "$which" != strata-embedded ]; then
  bin=${STRATA_BITCOIN_CORE_BIN:-$(scripts/bitcoin-core.sh | tail -1)}
  mkdir -p "$work/node"
  rpcport=$(free_port)
  "$bin/bitcoin-node" -regtest -datadir="$work/node" -ipcbind=unix -listen=0 -server=1 \
    -rpcport="$rpcport" -rpcbind=127.0.0.1 -rpcallowip=127.0.0.1 -blockreservedweight=40000 \
    -printtoconsole=0 ${NODE_ARGS:-} > "$work/node.log" 2>&1 &
  node_pid=$!
  sock="$work/node/regtest/node.sock"
  for _ in $(seq 300); do [ -S "$sock" ] && [ -f "$work/node/regtest/.cookie" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "bitcoin-node did not open $sock" >&2; tail -5 "$work/node.log" >&2; exit 1; }
  # the blocks pay an address nobody holds (regtest)
  address=bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080
  "$bin/bitcoin-cli" -regtest -datadir="$work/node" -rpcport="$rpcport" -noipcconnect \
    -rpcwait -rpcwaittimeout=60 generatetoaddress 1 "$address" > /dev/null \
    || { echo "bitcoin-node does not answer RPC:" >&2; tail -5 "$work/node.log" >&2; exit 1; }
  trigger=(--node-rpc "http://127.0.0.1:$rpcport" --node-cookie "$work/node/regtest/.cookie"
    --node-address "$address" --mempool-txs "${MEMPOOL_TXS:-0}")
fi

case "$which" in
  sri)
    port=$(free_port)
    sri_pool_config "$port" "$(free_port)" regtest "$work/node" "$address" 6 > "$work/pool.toml"
    key=$SRI_POOL_AUTHORITY
    pool_addr=127.0.0.1:$port
    RUST_LOG=${POOL_LOG:-warn} "$sri" -c "$work/pool.toml" > "$work/pool.out" 2>"$work/pool.log" &
    pool_pid=$!
    sri_pool_wait "$port" "$pool_pid"
    ;;
  strata|strata-rpc|strata-embedded)
    if [ "$which" = strata ]; then
      export STRATA_POOL_TEMPLATE_SOURCE=ipc STRATA_POOL_IPC__SOCKET="$sock" \
        STRATA_POOL_RPC__BLOCK_RESERVED_WEIGHT=40000
    elif [ "$which" = strata-rpc ]; then
      export STRATA_POOL_TEMPLATE_SOURCE=rpc STRATA_POOL_RPC__URL="http://127.0.0.1:$rpcport" \
        STRATA_POOL_RPC__COOKIE="$work/node/regtest/.cookie" STRATA_POOL_RPC__BLOCK_RESERVED_WEIGHT=40000
    fi
    STRATA_POOL_MAX_CONNECTIONS_PER_IP=0 RUST_LOG=${POOL_LOG:-warn} "${POOL_BIN:-target/release/strata-pool}" \
      --data-dir "$work/pool" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
      > "$work/pool.out" 2>"$work/pool.log" &
    pool_pid=$!
    for _ in $(seq 300); do [ -s "$work/pool.out" ] && break; kill -0 "$pool_pid" 2>/dev/null || break; sleep 0.1; done
    pool_addr=$(awk '{for (i = 1; i < NF; i++) if ($i == "on") print $(i + 1)}' "$work/pool.out" | head -1)
    key=$(cat "$work/pool/authority.pub" 2>/dev/null || true)
    ;;
  *) echo "usage: $0 strata-embedded|strata|strata-rpc|sri|compare CHANNELS [ROUNDS]" >&2; exit 64 ;;
esac
sleep 1
if ! kill -0 "$pool_pid" 2>/dev/null; then
  echo "$which: the pool exited at start:" >&2; tail -5 "$work/pool.log" >&2; exit 1
fi
target/release/strata-miner tips --pool "$pool_addr" --authority-key "$key" \
  --connections "$channels" --channels-per-connection "${PER_CONN:-1}" --rounds "$rounds" \
  --pool-pid "$pool_pid" --connect-rate "${CONNECT_RATE:-2000}" "${trigger[@]}" \
  2> "$work/tips.log"
sed 's/^/  /' "$work/tips.log" >&2
