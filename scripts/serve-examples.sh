#!/usr/bin/env bash
# Command 1 of the README: build edgefn and serve the bundled example functions on
# http://127.0.0.1:8080 (admin and /metrics on 127.0.0.1:9464). Extra args go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --bin edgefn
exec target/release/edgefn serve --functions examples/functions "$@"
