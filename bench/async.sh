#!/usr/bin/env bash
# The async queue's benchmark (see bench/README.md, "Async queue"):
#   bench/async.sh [--duration S] [--connections N] [--stores embedded,redis] [--debug]
# Builds edgefn (release unless --debug), then bench/lib/async_bench.py starts it pinned to
# CPU 0 per store (redis-server too, on a free loopback port), loads POST
# /async-function/async-noop with wrk pinned to CPU 1, and writes bench/results/async-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
for a in "$@"; do [ "$a" = "--debug" ] && profile=debug; done
if [ "$profile" = release ]; then
  cargo build --release -q -p gateway
else
  cargo build -q -p gateway
fi
command -v wrk >/dev/null || { echo "bench/async.sh: wrk is missing (scripts/install-bench-tools.sh)" >&2; exit 1; }
exec python3 bench/lib/async_bench.py --binary "target/$profile/edgefn" --command "bench/async.sh $*" "$@"
