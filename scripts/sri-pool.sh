# Sourced by the benchmark scripts: SRI's pool_sv2 (crates.io), installed when missing, and
# its configuration for a Bitcoin Core node over IPC.
#   sri_pool_bin                     -> prints the binary (SRI_POOL=PATH for another one)
#   sri_pool_config PORT MONITOR_PORT NETWORK NODE_DATADIR ADDRESS SHARES_PER_MINUTE
#                                    -> prints pool.toml: the test authority key below,
#                                       share_batch_size = 1 (every share acknowledged at
#                                       once, as strata does), the IPC template provider
#   sri_pool_wait PORT PID           -> returns once the pool accepts connections on PORT,
#                                       or its process PID has exited, or after 30 s
# SRI_POOL_AUTHORITY is the authority public key miners pin.
SRI_POOL_AUTHORITY=9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72

sri_pool_bin() {
  local bin=${SRI_POOL:-$HOME/.cache/strata/sri-pool/bin/pool_sv2}
  if [ ! -x "$bin" ]; then
    cargo install pool_sv2 --locked --root "$HOME/.cache/strata/sri-pool" >&2
  fi
  echo "$bin"
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
}

sri_pool_wait() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1
  done
}
