#!/usr/bin/env bash
# SV1 load through a farm proxy into strata-pool (embedded regtest), release builds:
#   scripts/bench-proxy.sh strata|sri CONNECTIONS RATE SECONDS
# - strata: target/release/strata-proxy
# - sri:    SRI's translator_sv2 (cargo install translator_sv2 --root /tmp/sri-tproxy), the
#           same pool upstream, aggregate_channels = true
# Prints, per run: proxy RSS with every miner connected and idle (and per miner), the load
# generator's JSON report (accepted shares/s, submit-to-response latency percentiles), the
# proxy's CPU seconds during the load (and per 1,000 shares/s), and (strata) the latency from
# a miner's submit to the pool's acknowledgement, as the proxy's API reports it.
# TIMELINE=FILE writes every measured share's submit time and latency there
# (`strata-miner load --timeline`: when the latency tail happened).
# SKIP_IDLE=1 skips the idle (RSS) phase; PROXY_ENV="K=V ..." adds environment variables to
# the proxy only (e.g. TOKIO_WORKER_THREADS=1); PROXY_BIN=PATH runs another strata-proxy build
# (an A/B comparison in the same session).
# LOAD_NICE=N runs the pool and the load generator at nice N (the proxy at 0), so that on this
# 2-core machine the generator yields the CPU to the proxy under test instead of preempting it.
# KEEP_LOGS=DIR copies the proxy's and the pool's logs and the reports there (with
# PROXY_ENV=RUST_LOG=info for a verbose proxy log).
# PROXY_PREFIX="CMD ..." runs the proxy under a command (e.g. "chrt -f 1" or "nice -n -10", to
# see how much of the latency tail is the other processes' scheduler time slices).
# CLOSED_LOOP=1: each miner submits its next share as soon as the last one is answered (RATE
# is not used): a burst at the proxy's own speed, with the miners' difficulty pinned at the
# easiest (strata: min = max = 1e-9; SRI: vardiff off) so that a share costs the generator
# about one hash, as pre-ground shares would.
# PIN=1 puts the proxy alone on CPU 0 and the pool and load generator on CPU 1 (taskset), as
# on a farm where the proxy has its own machine (here the generator then saturates its one
# core at about 12,000 shares/s).
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-strata}; conns=${2:-10000}; rate=${3:-5000}; secs=${4:-30}
ulimit -n 20000 2>/dev/null || true
if [ "${PIN:-0}" = 1 ]; then on_proxy="taskset -c 0"; on_rest="taskset -c 1"; else on_proxy=""; on_rest=""; fi
if [ -n "${LOAD_NICE:-}" ]; then on_rest="nice -n $LOAD_NICE $on_rest"; fi
on_proxy="${PROXY_PREFIX:-} $on_proxy"
work=$(mktemp -d)
cleanup() {
  # the proxy first, alone: a graceful stop should take well under 10 s
  if [ -n "${proxy_pid:-}" ] && kill -TERM "$proxy_pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$proxy_pid" 2>/dev/null; then
      echo "$which: WARNING: the proxy did not exit within 10 s of SIGTERM (log copied to /tmp/bench-proxy-hung-$$.log)" >&2
      kill -9 "$proxy_pid" 2>/dev/null || true
      cp "$work/proxy.log" "/tmp/bench-proxy-hung-$$.log" 2>/dev/null || true
    fi
  fi
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then
    mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.out "$work"/*.json "$KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p strata-pool -p strata-proxy -p strata-miner
STRATA_POOL_MIN_BLOCK_INTERVAL_MS=30000 STRATA_POOL_VARDIFF__SHARES_PER_MINUTE=600 RUST_LOG=${POOL_LOG:-warn} \
  $on_rest target/release/strata-pool --data-dir "$work/pool" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
  > "$work/pool.out" 2>"$work/pool.log" &
until [ -s "$work/pool.out" ]; do sleep 0.2; done
pool_addr=$(awk '{for (i = 1; i < NF; i++) if ($i == "on") print $(i + 1)}' "$work/pool.out" | head -1)
key=$(cat "$work/pool/authority.pub")
port=$((20000 + RANDOM % 20000))

if [ "$which" = sri ]; then
  cat > "$work/tproxy.toml" <<EOF
downstream_address = "127.0.0.1"
downstream_port = $port
max_supported_version = 2
min_supported_version = 2
downstream_extranonce2_size = 4
verify_payout = false
aggregate_channels = true
supported_extensions = [0x0002]
[downstream_difficulty_config]
min_individual_miner_hashrate = 1.0
shares_per_minute = 60.0
enable_vardiff = $([ "${CLOSED_LOOP:-0}" = 1 ] && echo false || echo true)
job_keepalive_interval_secs = 60
[[upstreams]]
address = "${pool_addr%:*}"
port = ${pool_addr##*:}
authority_pubkey = "$key"
user_identity = "bench"
EOF
  RUST_LOG=warn $on_proxy /tmp/sri-tproxy/bin/translator_sv2 -c "$work/tproxy.toml" > "$work/proxy.log" 2>&1 &
else
  STRATA_PROXY_SV1__INITIAL_DIFFICULTY=1e-9 STRATA_PROXY_SV1__MIN_DIFFICULTY=1e-9 \
  STRATA_PROXY_SV1__SHARES_PER_MINUTE=60 STRATA_PROXY_SV1__MAX_PER_IP=20000 RUST_LOG=warn \
    $on_proxy env ${PROXY_ENV:-} $([ "${CLOSED_LOOP:-0}" = 1 ] && echo STRATA_PROXY_SV1__MAX_DIFFICULTY=1e-9) "${PROXY_BIN:-target/release/strata-proxy}" --upstream "stratum2+tcp://$pool_addr/$key" \
    --sv1-listen 127.0.0.1:0 --sv2-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --data-dir "$work/proxy" > "$work/proxy.log" 2>&1 &
fi
proxy_pid=$!
sleep 3
if ! kill -0 "$proxy_pid" 2>/dev/null; then
  echo "$which: the proxy exited at start:" >&2; tail -5 "$work/proxy.log" >&2; exit 1
fi
if [ "$which" != sri ]; then
  # the port the proxy chose (a fixed random one may be taken)
  port=$(sed -n 's/^strata-proxy: SV1 on [^ ]*:\([0-9]*\),.*/\1/p' "$work/proxy.log" | head -1)
fi
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$proxy_pid/status"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$proxy_pid/stat"; }
base=$(rss_kb)

# idle: every miner connected and subscribed, almost no shares (SKIP_IDLE=1 skips it)
if [ "${SKIP_IDLE:-0}" != 1 ]; then
$on_rest target/release/strata-miner load --url "stratum+tcp://127.0.0.1:$port" --connections "$conns" \
  --rate 1 --duration 25 --connect-rate 2000 > "$work/idle.json" 2>/dev/null &
load_pid=$!
sleep 20
idle=$(rss_kb)
wait $load_pid || true
echo "$which: rss_base_kb=$base rss_idle_kb=$idle per_miner_kb=$(( (idle - base) / conns )) connections=$(tr -d '\n' < "$work/idle.json" | sed 's/.*"connections":\({[^}]*}\).*/\1/')"
fi

# load
c0=$(cpu_s)
$on_rest target/release/strata-miner load --url "stratum+tcp://127.0.0.1:$port" --connections "$conns" \
  $([ "${CLOSED_LOOP:-0}" = 1 ] && echo --closed-loop || echo --rate "$rate") --duration "$secs" \
  --connect-rate 2000 ${TIMELINE:+--timeline "$TIMELINE"} \
  > "$work/load.json" 2>/dev/null || true
c1=$(cpu_s)
cat "$work/load.json"
awk -v c0="$c0" -v c1="$c1" -v f="$work/load.json" -v w="$which" 'BEGIN {
  getline line < f; match(line, /"accepted_per_s":[0-9.]+/); a = substr(line, RSTART + 17, RLENGTH - 17);
  match(line, /"elapsed_s":[0-9.]+/); e = substr(line, RSTART + 12, RLENGTH - 12);
  cpu = c1 - c0; printf "%s: cpu_s=%.2f elapsed_s=%s accepted_per_s=%s cpu_per_1000_shares_per_s=%.3f shares_per_cpu_s=%.0f\n",
    w, cpu, e, a, (a > 0 ? cpu / e / (a / 1000) : 0), (cpu > 0 ? a * e / cpu : 0) }'
if [ "$which" != sri ]; then
  api=$(sed -n 's/^strata-proxy: .*API http:\/\/\([0-9.:]*\).*/\1/p' "$work/proxy.log" | head -1)
  echo "$which: $(curl -s "http://$api/api/v1/stats" | grep -o '"upstream_ack_latency_ms":{[^}]*}')"
fi
