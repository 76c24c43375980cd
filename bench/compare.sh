#!/usr/bin/env bash
# Single-database figures of two pgdev checkouts, interleaved in one run: the check that a change keeps them.
#   bash bench/compare.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS]
# Each checkout must be built (npm run build). Each server runs detached with its own XDG_DATA_HOME on free ports;
# both get `pgbench -i -s 1`, then each round runs pgbench -S with 1 client and TPC-B with 4 clients (5 s each) on
# one, then on the other. Needs pgbench (postgresql-client).
set -euo pipefail
old=${1:?old checkout}; new=${2:?new checkout}; rounds=${3:-5}
export PGSSLMODE=disable
declare -A home port
for side in old new; do
  dir=${!side}
  home[$side]=$(mktemp -d)
  XDG_DATA_HOME=${home[$side]} node "$dir/bin/pgdev.js" -n compare -d --port 0 --db-port 0 --shadow-db-port 0 >/dev/null
  url=$(XDG_DATA_HOME=${home[$side]} node "$dir/bin/pgdev.js" url compare)
  port[$side]=$(sed -E 's#.*:([0-9]+)/.*#\1#' <<<"$url")
  pgbench -h 127.0.0.1 -p "${port[$side]}" -U postgres -i -s 1 -q template1 >/dev/null 2>&1
done
tps() { pgbench -h 127.0.0.1 -p "$1" -U postgres "${@:2}" -T 5 template1 2>/dev/null | grep -oP 'tps = \K[0-9]+' | head -1; }
echo "round side -S_c1_TPS tpcb_c4_TPS"
for ((round = 1; round <= rounds; round++)); do
  for side in old new; do echo "$round $side $(tps "${port[$side]}" -S -c 1) $(tps "${port[$side]}" -c 4)"; done
done
for side in old new; do
  XDG_DATA_HOME=${home[$side]} node "${!side}/bin/pgdev.js" stop compare >/dev/null
  rm -rf "${home[$side]}"
done
