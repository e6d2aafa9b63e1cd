#!/usr/bin/env bash
# Installs what edgefn needs on a fresh Debian machine, idempotently and fast when all is
# present: python3 and node for the runtimes, the eBPF toolchain (nightly + rust-src +
# bpf-linker) that builds the XDP program (optional unless --test); with --test also
# iproute2 (network namespaces), promtool (metrics validation) and redis-server (cluster
# tests), plus the webhook publishers' signing libraries (end of this script).
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
# PHP and Lua functions: php-cli runs them, composer installs a composer.json; Lua 5.4 with
# lua-cjson and LuaSocket (socket.unix for the worker channel, mime for base64).
command -v php >/dev/null 2>&1 || apt_pkgs+=(php-cli)
command -v composer >/dev/null 2>&1 || apt_pkgs+=(composer)
command -v lua5.4 >/dev/null 2>&1 || apt_pkgs+=(lua5.4)
# Go functions: Debian's toolchain builds them (standard library only, no module proxy).
command -v go >/dev/null 2>&1 || apt_pkgs+=(golang-go)
if ! lua5.4 -e 'require "cjson"; require "socket.unix"; require "mime"' >/dev/null 2>&1; then
  apt_pkgs+=(lua-cjson lua-socket)
fi
if [ "$want_test" = 1 ]; then
  command -v ip >/dev/null 2>&1 || apt_pkgs+=(iproute2)
  command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
  # cluster_e2e.rs ([cluster] store) and the async queue's Redis Streams store: tests
  # start their own redis-server.
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

# esbuild compiles TypeScript handlers (pinned in runtimes/node/tools/package-lock.json;
# the gateway looks for runtimes/node/tools/node_modules/.bin/esbuild).
esbuild_want=$(sed -n 's/.*"esbuild": "\([^"]*\)".*/\1/p' runtimes/node/tools/package.json)
if [ "$(runtimes/node/tools/node_modules/.bin/esbuild --version 2>/dev/null)" != "$esbuild_want" ]; then
  echo "setup: installing esbuild $esbuild_want (npm ci in runtimes/node/tools)"
  npm ci --prefix runtimes/node/tools --no-audit --no-fund --loglevel=error >/dev/null
fi

# The XDP program's toolchain. Tests need it (the XDP tests fail without it); for serving it
# is optional: without it edgefn still builds and reports XDP unavailable, using the
# user-space connection limiter instead.
if [ "$want_test" = 1 ]; then
  scripts/install-ebpf-toolchain.sh
elif ! scripts/install-ebpf-toolchain.sh; then
  echo "setup: eBPF toolchain not installed; edgefn will use the user-space connection limiter" >&2
fi

# Identity tests (gateway/tests/identity_e2e.rs): a real OpenID provider (npm oidc-provider,
# run by Node from gateway/tests/oidc) and tokens minted by a third-party library (PyJWT).
if [ "$want_test" = 1 ]; then
  if [ ! -d gateway/tests/oidc/node_modules/oidc-provider ]; then
    npm ci --prefix gateway/tests/oidc --no-audit --no-fund --loglevel=error >/dev/null
  fi
  if ! python3 -c "import jwt, cryptography" >/dev/null 2>&1; then
    python3 -m pip install -q pyjwt cryptography 2>/dev/null ||
      python3 -m pip install -q --break-system-packages pyjwt cryptography
  fi
fi

# Webhook tests sign with the publishers' own libraries (gateway/tests/webhooks_e2e.rs):
# PyPI stripe, slack_sdk, standardwebhooks, twilio, PyNaCl; npm @octokit/webhooks-methods
# from the committed lock file.
if [ "$want_test" = 1 ]; then
  if ! python3 -c "import stripe, slack_sdk, standardwebhooks, twilio, nacl" >/dev/null 2>&1; then
    echo "setup: installing webhook signing libraries (pip)"
    webhook_libs=(stripe slack_sdk standardwebhooks twilio PyNaCl)
    # Debian's python refuses plain pip installs (PEP 668); fall back as bench tools do.
    python3 -m pip install -q "${webhook_libs[@]}" 2>/dev/null \
      || python3 -m pip install -q --break-system-packages "${webhook_libs[@]}"
  fi
  if [ ! -d gateway/tests/webhooks/node_modules/@octokit/webhooks-methods ]; then
    echo "setup: installing @octokit/webhooks-methods (npm ci)"
    (cd gateway/tests/webhooks && npm ci --no-audit --no-fund --silent)
  fi
fi
