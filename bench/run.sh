#!/usr/bin/env bash
# One entry point for edgefn's benchmarks (see bench/README.md):
#   bench/run.sh [--quick] [--only SCENARIO...] [--duration S] [--connections N]
# Installs missing tools, builds edgefn and the hyper-header peer in release, then hands
# over to bench/lib/driver.py, which starts edgefn and the peers pinned to one core, loads
# them with wrk and oha pinned to another, and writes bench/results/latest.md and .csv.
# Scenarios: rejected defaults python node runtimes hmac tls tls-handshake idle. --quick: under two minutes once built.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; then
  scripts/install-bench-tools.sh
fi
# oha from `cargo install` lives in ~/.cargo/bin; the driver looks there too (PATH is left
# alone: gateway/build.rs reruns when PATH changes).
cargo build --release -q -p gateway -p hyper-header -p worker-direct -p tls-load
# 10k idle connections need file descriptors; the driver raises the limit it can.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 bench/lib/driver.py --command "bench/run.sh $*" "$@"
