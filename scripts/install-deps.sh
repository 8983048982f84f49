#!/usr/bin/env bash
# Installs what building and testing strata needs beyond a Rust toolchain (Debian/Ubuntu;
# quick when everything is present):
# - cmake, g++ and the boost headers: the embedded regtest node (bitcoinkernel, Bitcoin
#   Core's consensus code) is C++;
# - a local PostgreSQL server, started, whose `postgres` user has the password `strata`: the
#   share ledger's PostgreSQL tests use postgresql://postgres:strata@127.0.0.1:PORT/postgres
#   (the URL is printed; port 5432 is their default, STRATA_TEST_POSTGRES_URL overrides it);
# - Debian's chromium: the web pages' tests load them in headless Chromium
#   (strata-testkit's `browser`; STRATA_CHROMIUM names another executable).
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
[ -d /usr/include/boost ] || missing+=(libboost-dev)
[ -x /usr/bin/chromium ] || missing+=(chromium)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PostgreSQL, idempotent: installs the server only if missing, starts the cluster only if
# down, and prints the admin URL the ledger tests create their databases through.
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq postgresql >/dev/null
fi
pg_cluster=$(pg_lsclusters --no-header | awk 'NR == 1 { print $1 " " $2 }')
if [ -z "$pg_cluster" ]; then
    pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    $SUDO pg_createcluster "$pg_version" main >/dev/null
    pg_cluster="$pg_version main"
fi
if ! pg_lsclusters --no-header | awk -v c="$pg_cluster" '$1 " " $2 == c && $4 == "online" { found = 1 } END { exit !found }'; then
    $SUDO pg_ctlcluster $pg_cluster start
fi
pg_port=$(pg_lsclusters --no-header | awk -v c="$pg_cluster" '$1 " " $2 == c { print $3 }')
if [ "$(id -u)" -eq 0 ]; then pg_as=(su postgres -c); else pg_as=(sudo -u postgres sh -c); fi
"${pg_as[@]}" "psql -q -p $pg_port -c \"ALTER USER postgres PASSWORD 'strata'\""
echo "postgresql://postgres:strata@127.0.0.1:$pg_port/postgres"

