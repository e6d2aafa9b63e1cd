#!/usr/bin/env bash
# Installs what builds the XDP program (gateway-ebpf): the nightly pinned in
# gateway-ebpf/rust-toolchain.toml with rust-src (and clippy, which scripts/test.sh runs on
# the eBPF crate), and bpf-linker 0.10.0 (links with that nightly's LLVM). Idempotent and
# fast when everything is present: it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

BPF_LINKER_VERSION=0.10.0
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' gateway-ebpf/rust-toolchain.toml)
if [ -z "$channel" ]; then
  echo "install-ebpf-toolchain: no channel in gateway-ebpf/rust-toolchain.toml" >&2
  exit 1
fi
if ! command -v rustup >/dev/null 2>&1; then
  echo "install-ebpf-toolchain: rustup not found; install Rust with rustup first" >&2
  exit 1
fi

sysroot=$(rustup run "$channel" rustc --print sysroot 2>/dev/null || true)
if [ -z "$sysroot" ] || [ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ]; then
  echo "install-ebpf-toolchain: installing $channel with rust-src"
  rustup toolchain install "$channel" --profile minimal --component rust-src
fi
if ! rustup run "$channel" cargo-clippy --version >/dev/null 2>&1; then
  rustup component add clippy --toolchain "$channel"
fi

have=$(bpf-linker --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$BPF_LINKER_VERSION" ]; then
  echo "install-ebpf-toolchain: installing bpf-linker $BPF_LINKER_VERSION (a few minutes)"
  cargo "+$channel" install "bpf-linker@$BPF_LINKER_VERSION" --locked
fi
echo "install-ebpf-toolchain: $channel + rust-src + bpf-linker $BPF_LINKER_VERSION ready"
