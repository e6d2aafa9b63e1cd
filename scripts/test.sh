#!/usr/bin/env bash
# Command 2 of the README (and what CI runs): installs the test prerequisites, then
# formatting, lints, and every unit and integration test of the workspace. The XDP and
# network-namespace tests need root (CI runs as root); without it they fail, not skip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# CI must prove the eBPF path: a missing toolchain is a build error, not a fallback.
export EDGEFN_REQUIRE_EBPF=1
cargo fmt --all -- --check
# The Go harness and the Go fixtures: gofmt-clean (the go_worker and go_e2e tests build them).
unformatted=$(gofmt -l runtimes/go runtimes/conformance/go bench/functions/rt-go)
[ -z "$unformatted" ] || { echo "gofmt -w these: $unformatted" >&2; exit 1; }
cargo clippy --workspace --all-targets -- -D warnings
# The XDP program is outside the workspace (own nightly, bpfel target).
rustfmt --edition 2021 --check gateway-ebpf/src/main.rs
(cd gateway-ebpf && cargo clippy --release -- -D warnings)
cargo test --workspace --all-targets -- --test-threads "${EDGEFN_TEST_THREADS:-4}"
