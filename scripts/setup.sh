#!/usr/bin/env bash
# Installs what edgefn needs on a fresh Debian machine, idempotently and fast when all is
# present: python3 and node for the runtimes, the eBPF toolchain (nightly + rust-src +
# bpf-linker) that builds the XDP program (optional unless --test); with --test also
# iproute2 (network namespaces) and promtool (metrics validation).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Each tool checked on its own: Debian often ships python3 without pip, or node without
# npm (both are needed to install a function's requirements.txt / package.json).
apt_pkgs=()
command -v python3 >/dev/null 2>&1 || apt_pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || apt_pkgs+=(python3-pip)
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_pkgs+=(npm)
command -v cc >/dev/null 2>&1 || apt_pkgs+=(build-essential)
if [ "$want_test" = 1 ]; then
  command -v ip >/dev/null 2>&1 || apt_pkgs+=(iproute2)
  command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
  # The async queue's Redis Streams store: tests start their own redis-server.
  command -v redis-server >/dev/null 2>&1 || apt_pkgs+=(redis-server)
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${apt_pkgs[*]} (apt-get)"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "setup: need root (or sudo) to install ${apt_pkgs[*]}" >&2
      exit 1
    }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup (stable) first" >&2
  exit 1
fi
# test.sh runs rustfmt and clippy; a minimal rustup profile has neither.
if [ "$want_test" = 1 ] && command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

# The XDP program's toolchain. Tests need it (the XDP tests fail without it); for serving it
# is optional: without it edgefn still builds and reports XDP unavailable, using the
# user-space connection limiter instead.
if [ "$want_test" = 1 ]; then
  scripts/install-ebpf-toolchain.sh
elif ! scripts/install-ebpf-toolchain.sh; then
  echo "setup: eBPF toolchain not installed; edgefn will use the user-space connection limiter" >&2
fi
