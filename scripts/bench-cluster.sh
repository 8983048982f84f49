#!/usr/bin/env bash
# Several strata-pool servers on one PostgreSQL ledger under SV2 load (release builds):
#   scripts/bench-cluster.sh SERVERS CONNECTIONS RATE SECONDS      one run
#   scripts/bench-cluster.sh compare CONNECTIONS RATE SECONDS [RUNS]
# `compare` runs 1, 2 and 3 servers in turn, RUNS times each (default 3), and prints each
# count's medians and the ratios to one server.
# - The servers: target/release/strata-pool with `[cluster] server_id = 1..SERVERS`, ledger
#   `synchronous = full` (every share acknowledged after its commit) in a fresh database on
#   the PostgreSQL server of STRATA_TEST_POSTGRES_URL (an admin URL; default the server
#   scripts/install-deps.sh starts), each with its own IPC connection to one
#   `bitcoin-node -signet -signetchallenge=51` (blocks about one per 2^22 shares, as in
#   bench-pool.sh). SERVERS=0 is one pool alone on the database (no server id): the cost of
#   the cluster's write lock.
# - The load: one `strata-miner load` per server, CONNECTIONS/SERVERS standard channels
#   submitting RATE/SERVERS shares/s each, for SECONDS.
# Prints per run: accepted shares/s (all servers), submit-to-ack p50/p99 (the worst
# server's), the servers' and PostgreSQL's CPU per share, and the database's load per
# share: WAL bytes and transactions (pg_current_wal_lsn, pg_stat_database).
# KEEP_LOGS=DIR keeps the logs and reports.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = compare ]; then
  conns=${2:-1000}; rate=${3:-10000}; secs=${4:-20}; runs=${5:-3}
  out=$(mktemp)
  for r in $(seq "$runs"); do
    for n in 1 2 3; do
      "$0" "$n" "$conns" "$rate" "$secs" | tee -a "$out" | tail -1 >&2
    done
  done
  python3 - "$out" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"servers=(\d+) (.*)", line.strip())
    if m:
        kv = dict(p.split("=") for p in m.group(2).split())
        runs.setdefault(int(m.group(1)), []).append({k: float(v) for k, v in kv.items()})
keys = ["accepted_per_s", "p50_ms", "p99_ms", "pool_us_cpu_per_share", "pg_us_cpu_per_share", "wal_bytes_per_share", "xacts_per_share"]
med = {n: {k: statistics.median(r[k] for r in rs) for k in keys} for n, rs in sorted(runs.items())}
for n, m in med.items():
    print(f"servers={n} runs={len(runs[n])} median " + " ".join(f"{k}={m[k]:.3f}" if m[k] < 10 else f"{k}={m[k]:.0f}" for k in keys))
if 1 in med:
    for n, m in med.items():
        if n != 1:
            print(f"{n}/1 servers: accepted x{m['accepted_per_s'] / med[1]['accepted_per_s']:.2f}, "
                  f"p50 x{m['p50_ms'] / med[1]['p50_ms']:.2f}, p99 x{m['p99_ms'] / med[1]['p99_ms']:.2f}")
PY
  rm -f "$out"
  exit 0
fi
servers=${1:-2}; conns=${2:-1000}; rate=${3:-10000}; secs=${4:-20}
admin=${STRATA_TEST_POSTGRES_URL:-postgresql://postgres:strata@127.0.0.1:5432/postgres}
ulimit -n 20000 2>/dev/null || true
work=$(mktemp -d)
db=strata_bench_$RANDOM$RANDOM
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ -n "${node_pid:-}" ]; then
    kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$node_pid" 2>/dev/null || true
  fi
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  if [ -n "${KEEP_LOGS:-}" ]; then
    mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.out "$work"/*.json "$KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p strata-pool -p strata-miner
bin=${STRATA_BITCOIN_CORE_BIN:-$(scripts/bitcoin-core.sh | tail -1)}
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$admin" "$db")

mkdir -p "$work/node"
"$bin/bitcoin-node" -signet -signetchallenge=51 -datadir="$work/node" -ipcbind=unix \
  -listen=0 -server=0 -maxtipage=2000000000 -printtoconsole=0 > "$work/node.log" 2>&1 &
node_pid=$!
sock="$work/node/signet/node.sock"
for _ in $(seq 300); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "bitcoin-node did not open $sock" >&2; exit 1; }

payout=tb1qa0sm0hxzj0x25rh8gw5xlzwlsfvvyz8u96w3p8
n=$(( servers > 0 ? servers : 1 ))
spm=$(awk -v r="$rate" -v c="$conns" 'BEGIN { printf "%.1f", r / c * 60 }')
addrs=(); keys=(); apis=()
for i in $(seq "$n"); do
  id=$(( servers > 0 ? i : 0 ))
  STRATA_POOL_TEMPLATE_SOURCE=ipc STRATA_POOL_NETWORK=signet STRATA_POOL_IPC__SOCKET="$sock" \
  STRATA_POOL_POOL_ADDRESS=$payout STRATA_POOL_MAX_CONNECTIONS_PER_IP=0 \
  STRATA_POOL_VARDIFF__SHARES_PER_MINUTE="$spm" STRATA_POOL_VARDIFF__MIN_DIFFICULTY=1e-10 \
  STRATA_POOL_LEDGER__SYNCHRONOUS=full STRATA_POOL_LEDGER__POSTGRES_URL="$url" \
  STRATA_POOL_CLUSTER__SERVER_ID=$id RUST_LOG=${POOL_LOG:-warn} target/release/strata-pool \
    --data-dir "$work/pool$i" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    > "$work/pool$i.out" 2>"$work/pool$i.log" &
  pids+=($!)
  for _ in $(seq 300); do [ -s "$work/pool$i.out" ] && break; sleep 0.1; done
  addrs+=("$(awk '{for (i = 1; i < NF; i++) if ($i == "on") print $(i + 1)}' "$work/pool$i.out" | head -1)")
  apis+=("$(sed -n 's/.*(API http:\/\/\([0-9.:]*\)).*/\1/p' "$work/pool$i.out" | head -1)")
  keys+=("$(cat "$work/pool$i/authority.pub")")
done
sleep 2
cpu_s() { # the summed user+system seconds of the given pids
  local t=0
  for p in "$@"; do t=$(awk -v t="$t" -v k="$(getconf CLK_TCK)" '{print t + ($14 + $15) / k}' "/proc/$p/stat" 2>/dev/null || echo "$t"); done
  echo "$t"
}
pg_pids() { pgrep -d ' ' -x postgres || pgrep -d ' ' -f 'postgres:'; }
pg_stat() { psql -qAt "$admin" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, (SELECT xact_commit FROM pg_stat_database WHERE datname = '$db')"; }

read -r wal0 x0 <<<"$(pg_stat | tr '|' ' ')"
pool0=$(cpu_s "${pids[@]}"); pg0=$(cpu_s $(pg_pids))
for i in $(seq "$n"); do
  target/release/strata-miner load --pool "${addrs[$((i - 1))]}" --authority-key "${keys[$((i - 1))]}" \
    --connections "$((conns / n))" --rate "$((rate / n))" --duration "$secs" --connect-rate 2000 \
    > "$work/load$i.json" 2>"$work/load$i.log" &
  loads+=($!)
done
wait "${loads[@]}" || true
pool1=$(cpu_s "${pids[@]}"); pg1=$(cpu_s $(pg_pids))
read -r wal1 x1 <<<"$(pg_stat | tr '|' ' ')"
python3 - "$servers" "$pool0" "$pool1" "$pg0" "$pg1" "$wal0" "$wal1" "$x0" "$x1" "$work"/load*.json <<'PY'
import json, sys
servers, pool0, pool1, pg0, pg1, wal0, wal1, x0, x1 = sys.argv[1:10]
reports = [json.loads(open(f).readline()) for f in sys.argv[10:]]
accepted = sum(r["accepted_per_s"] for r in reports)
elapsed = max(r["elapsed_s"] for r in reports)
shares = max(accepted * elapsed, 1)
p50 = max(r["latency_ms"]["p50"] for r in reports)
p99 = max(r["latency_ms"]["p99"] for r in reports)
print(f"servers={servers} accepted_per_s={accepted:.0f} p50_ms={p50:.3f} p99_ms={p99:.3f} "
      f"pool_us_cpu_per_share={(float(pool1) - float(pool0)) / shares * 1e6:.1f} "
      f"pg_us_cpu_per_share={(float(pg1) - float(pg0)) / shares * 1e6:.1f} "
      f"wal_bytes_per_share={(int(wal1) - int(wal0)) / shares:.0f} "
      f"xacts_per_share={(int(x1) - int(x0)) / shares:.4f}")
PY
