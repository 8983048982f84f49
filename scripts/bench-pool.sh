#!/usr/bin/env bash
# The pool's share path under SV2 load, strata-pool or SRI's pool_sv2, both fed templates by
# the same Bitcoin Core over IPC (release builds):
#   scripts/bench-pool.sh strata|sri CONNECTIONS RATE SECONDS
#   scripts/bench-pool.sh compare CONNECTIONS RATE SECONDS [ROUNDS]
# `compare` alternates strata and sri runs (ROUNDS each, default 3) and prints each one's
# medians (shares per pool CPU-second, CPU per share, submit-to-ack p50 and p99) and the
# ratios strata/sri. BEFORE_BIN=PATH adds a third system, "before": strata-pool from PATH (an
# older build), in the same rotation, with the ratios strata/before.
# - strata: target/release/strata-pool, `template_source = "ipc"`, ledger `synchronous = full`
#   (LEDGER_SYNC=normal to compare); every share is acknowledged after its commit.
# - sri:    SRI's pool_sv2 (scripts/sri-apps.sh, ~/.cache/strata/sri-pool; SRI_POOL=PATH
#           for another binary), `share_batch_size = 1` so that every share is acknowledged at
#           once as strata does (SRI keeps no share ledger).
# The chain: `bitcoin-node -signet -signetchallenge=51` (a signet of our own: no signatures,
# difficulty 0x1e0377ae, about 2^22 hashes a block) from scripts/bitcoin-core.sh or
# STRATA_BITCOIN_CORE_BIN, so that blocks are rare (about one per 2^22 shares at the load
# generator's easy targets) and equally rare for both pools; `-maxtipage` keeps a node with
# an old tip out of initial block download.
# The load: `strata-miner load`, CONNECTIONS standard channels submitting RATE shares/s in
# all for SECONDS. Prints the generator's JSON report (accepted shares/s, submit-to-ack
# latency percentiles) and the pool's CPU seconds during the load: shares per pool CPU-second.
# LOAD_NICE=N runs the load generator and the node at nice N (the pool at 0).
# KEEP_LOGS=DIR copies the logs and reports there. POOL_PREFIX="CMD ..." runs the pool under
# a command (e.g. "perf record -g -o /tmp/pool.perf --").
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-strata}; conns=${2:-1000}; rate=${3:-10000}; secs=${4:-30}
if [ "$which" = compare ]; then
  rounds=${5:-3}
  out=$(mktemp)
  for r in $(seq "$rounds"); do
    for w in strata sri; do
      "$0" "$w" "$conns" "$rate" "$secs" | tee -a "$out" | tail -1 >&2
      if [ "$w" = strata ] && [ -n "${BEFORE_BIN:-}" ]; then
        LABEL=before POOL_BIN=$BEFORE_BIN "$0" strata "$conns" "$rate" "$secs" | tee -a "$out" | tail -1 >&2
      fi
    done
  done
  # one line per run: the JSON report, then the summary line
  python3 - "$out" <<'PY'
import json, re, statistics, sys
runs = {"strata": [], "before": [], "sri": []}
report = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        report = json.loads(line)
    m = re.match(r"(strata|before|sri): .*us_cpu_per_share=([0-9.]+) shares_per_cpu_s=([0-9]+)", line)
    if m and report:
        lat = report.get("latency_ms", {})
        runs[m.group(1)].append((float(m.group(3)), float(m.group(2)), lat.get("p50", 0), lat.get("p99", 0), report.get("accepted_per_s", 0)))
        report = None
med = {}
for w, rs in runs.items():
    if not rs:
        continue
    med[w] = [statistics.median(col) for col in zip(*rs)]
    print(f"{w}: runs={len(rs)} median shares_per_cpu_s={med[w][0]:.0f} us_cpu_per_share={med[w][1]:.1f} "
          f"p50_ms={med[w][2]:.3f} p99_ms={med[w][3]:.3f} accepted_per_s={med[w][4]:.0f}")
for other in ("sri", "before"):
    if "strata" in med and other in med:
        s, r = med["strata"], med[other]
        print(f"strata/{other}: shares_per_cpu_s x{s[0] / r[0]:.2f}, p50 x{s[2] / r[2]:.2f}, p99 x{s[3] / r[3]:.2f}")
PY
  rm -f "$out"
  exit 0
fi
ulimit -n 20000 2>/dev/null || true
on_rest=""
if [ -n "${LOAD_NICE:-}" ]; then on_rest="nice -n $LOAD_NICE"; fi
work=$(mktemp -d)
cleanup() {
  if [ -n "${pool_pid:-}" ] && kill -INT "$pool_pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pool_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pool_pid" 2>/dev/null || true
  fi
  if [ -n "${node_pid:-}" ]; then
    kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$node_pid" 2>/dev/null || true
  fi
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then
    mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.out "$work"/*.json "$KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# NO_BUILD=1: use the binaries as they are (POOL_BIN, MINER_BIN: other paths)
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p strata-pool -p strata-miner
bin=${STRATA_BITCOIN_CORE_BIN:-$(scripts/bitcoin-core.sh | tail -1)}
. scripts/sri-apps.sh
if [ "$which" = sri ]; then sri=$(sri_pool_bin); fi

# the node: a signet of our own, IPC only
mkdir -p "$work/node"
$on_rest "$bin/bitcoin-node" -signet -signetchallenge=51 -datadir="$work/node" -ipcbind=unix \
  -listen=0 -server=0 -maxtipage=2000000000 -printtoconsole=0 > "$work/node.log" 2>&1 &
node_pid=$!
sock="$work/node/signet/node.sock"
for _ in $(seq 300); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "bitcoin-node did not open $sock" >&2; tail -5 "$work/node.log" >&2; exit 1; }

# the pool's payout address (signet; nobody holds its key)
payout=tb1qa0sm0hxzj0x25rh8gw5xlzwlsfvvyz8u96w3p8
spm=$(awk -v r="$rate" -v c="$conns" 'BEGIN { printf "%.1f", r / c * 60 }')
if [ "$which" = sri ]; then
  port=$((20000 + RANDOM % 20000))
  sri_pool_config "$port" "$((port + 1))" signet "$work/node" "$payout" "$spm" > "$work/pool.toml"
  key=$SRI_POOL_AUTHORITY
  pool_addr=127.0.0.1:$port
  RUST_LOG=${POOL_LOG:-warn} ${POOL_PREFIX:-} "$sri" -c "$work/pool.toml" > "$work/pool.out" 2>"$work/pool.log" &
  pool_pid=$!
  sri_pool_wait "$port" "$pool_pid"
else
  STRATA_POOL_TEMPLATE_SOURCE=ipc STRATA_POOL_NETWORK=signet STRATA_POOL_IPC__SOCKET="$sock" \
  STRATA_POOL_POOL_ADDRESS=$payout STRATA_POOL_MAX_CONNECTIONS_PER_IP=0 \
  STRATA_POOL_VARDIFF__SHARES_PER_MINUTE="$spm" STRATA_POOL_VARDIFF__MIN_DIFFICULTY=1e-10 STRATA_POOL_LEDGER__SYNCHRONOUS="${LEDGER_SYNC:-full}" \
  RUST_LOG=${POOL_LOG:-warn} ${POOL_PREFIX:-} "${POOL_BIN:-${CARGO_TARGET_DIR:-target}/release/strata-pool}" \
    --data-dir "$work/pool" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    > "$work/pool.out" 2>"$work/pool.log" &
  pool_pid=$!
  for _ in $(seq 300); do [ -s "$work/pool.out" ] && break; kill -0 "$pool_pid" 2>/dev/null || break; sleep 0.1; done
  pool_addr=$(awk '{for (i = 1; i < NF; i++) if ($i == "on") print $(i + 1)}' "$work/pool.out" | head -1)
  key=$(cat "$work/pool/authority.pub" 2>/dev/null || true)
fi
sleep 2
if ! kill -0 "$pool_pid" 2>/dev/null; then
  echo "$which: the pool exited at start:" >&2; tail -5 "$work/pool.log" >&2; exit 1
fi
# with POOL_PREFIX the pid is the wrapper's; measure the pool process itself (its child; not
# a pool of someone else's found by name)
real_pid=$pool_pid
if [ -n "${POOL_PREFIX:-}" ]; then real_pid=$(pgrep -n -P "$pool_pid" || echo "$pool_pid"); fi
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$real_pid/stat"; }

c0=$(cpu_s)
TIMEFORMAT="%U %S"
{ time $on_rest "${MINER_BIN:-${CARGO_TARGET_DIR:-target}/release/strata-miner}" load --pool "$pool_addr" --authority-key "$key" \
  --connections "$conns" --rate "$rate" --duration "$secs" --connect-rate 2000 \
  > "$work/load.json" 2>"$work/load.log" || true ; } 2> "$work/load.time"
c1=$(cpu_s)
cat "$work/load.json"
# the generator's CPU too: where a run saturates, it may be the generator's core, not the pool
gen=$(awk '{print $1 + $2}' "$work/load.time")
awk -v c0="$c0" -v c1="$c1" -v g="$gen" -v f="$work/load.json" -v w="${LABEL:-$which}" 'BEGIN {
  getline line < f; match(line, /"accepted_per_s":[0-9.]+/); a = substr(line, RSTART + 17, RLENGTH - 17);
  match(line, /"elapsed_s":[0-9.]+/); e = substr(line, RSTART + 12, RLENGTH - 12);
  cpu = c1 - c0; printf "%s: cpu_s=%.2f elapsed_s=%s accepted_per_s=%s us_cpu_per_share=%.1f shares_per_cpu_s=%.0f generator_cpu_s=%.2f\n",
    w, cpu, e, a, (a > 0 ? cpu / e / a * 1e6 : 0), (cpu > 0 ? a * e / cpu : 0), g }'
if [ "$which" = strata ]; then
  # the ledger's own view: from a connection queueing shares to their commit (cumulative
  # counts per upper bound, in seconds)
  api=$(sed -n 's/.*(API http:\/\/\([0-9.:]*\)).*/\1/p' "$work/pool.out" | head -1)
  echo "strata ledger commit_seconds: $(curl -s "http://$api/metrics" \
    | sed -n 's/^strata_pool_ledger_commit_seconds_bucket{le="\([^"]*\)"} \(.*\)/\1:\2/p' | tr '\n' ' ')"
fi
