#!/usr/bin/env bash
# Rate-limited function rps with the local (in-memory) limiter and with the [cluster] Redis
# store, same offered load (wrk, 50 connections): writes bench/results/cluster.md.
#   bench/cluster.sh                 # release build, 10 s per measurement
#   bench/cluster.sh --debug -d 2    # the debug build, 2 s: proves the scenario runs
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "cluster bench: needs redis-server (scripts/setup.sh --test)" >&2; exit 1; }
command -v wrk >/dev/null || scripts/install-bench-tools.sh
if [[ " $* " == *" --debug "* ]]; then
  cargo build -q -p gateway --bin edgefn
else
  cargo build -q --release -p gateway --bin edgefn
fi
exec python3 bench/lib/cluster_bench.py "$@"
