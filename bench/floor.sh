#!/usr/bin/env bash
# The accepted/refusal floor on this machine (see bench/README.md): edgefn (shipped
# defaults) and peers/floor/floor.c, an epoll loop doing nothing but the worker hand-off,
# each refusing and accepting at 2 000 req/s in the same interleaved CPU rounds.
#   bench/floor.sh [--rounds N] [--seconds S] [--rate R] [--worker-us US [--worker-kb KB]]
# Writes bench/results/floor.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; then
  scripts/install-bench-tools.sh
fi
cargo build --release -q -p gateway
mkdir -p bench/.run
cc -O2 -Wall -Wextra -o bench/.run/floor bench/peers/floor/floor.c
exec python3 bench/lib/floor_bench.py --floor bench/.run/floor --command "bench/floor.sh${*:+ $*}" "$@"
