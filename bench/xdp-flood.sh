#!/usr/bin/env bash
# Cost per refused connection attempt, XDP vs the user-space fallback, under one paced
# flood; writes bench/results/xdp.md. Needs root. Builds the release binary (with the XDP
# program: run scripts/install-ebpf-toolchain.sh first). Extra args go to xdp-flood.py,
# e.g. --rate 8000 --duration 15.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEFN_REQUIRE_EBPF=1 cargo build --release --bin edgefn
exec python3 bench/xdp-flood.py --bin target/release/edgefn "$@"
