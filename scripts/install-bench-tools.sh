#!/usr/bin/env bash
# Installs what bench/run.sh needs, idempotently, and is fast when everything is present:
#   wrk (rps), oha (latency percentiles as JSON), nginx with the Lua module (the `map` and
#   Lua peers, the TLS peer, the reverse proxy in front of gunicorn), python3 + gunicorn
#   (the WSGI peer) + uvicorn with httptools and granian (the ASGI and RSGI peers), node (the plain Node peer and edgefn's Node workers), openssl (the
#   self-signed certificate), taskset (pinning).
# Debian packages via apt-get; oha via `cargo install oha --locked` (a from-source build:
# about 15 minutes on a 2-core machine, once); gunicorn, uvicorn, httptools and granian via pip.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

apt_pkgs=()
have wrk || apt_pkgs+=(wrk)
have nginx || apt_pkgs+=(nginx)
# The Lua module is a separate package; its presence is a file, not a command.
[ -e /usr/share/nginx/modules-available/mod-http-lua.conf ] || apt_pkgs+=(libnginx-mod-http-lua)
have python3 || apt_pkgs+=(python3 python3-pip)
have node || apt_pkgs+=(nodejs)
have openssl || apt_pkgs+=(openssl)
have taskset || apt_pkgs+=(util-linux)
have cc || apt_pkgs+=(build-essential)

if [ ${#apt_pkgs[@]} -gt 0 ]; then
  echo "install-bench-tools: apt-get install ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  # Debian's nginx package may start a system nginx on :80; the benchmark starts its own.
fi

if ! python3 -c 'import gunicorn, uvicorn, httptools, granian' >/dev/null 2>&1; then
  echo "install-bench-tools: pip install gunicorn uvicorn httptools granian"
  python3 -m pip install -q gunicorn uvicorn httptools granian 2>/dev/null \
    || python3 -m pip install -q --break-system-packages gunicorn uvicorn httptools granian
fi

if ! have oha && [ ! -x "$HOME/.cargo/bin/oha" ]; then
  if ! have cargo; then
    echo "install-bench-tools: cargo not found; install Rust with rustup (stable) first" >&2
    exit 1
  fi
  echo "install-bench-tools: cargo install oha --locked (a from-source build, ~15 min once)"
  cargo install oha --locked
fi

missing=()
for t in wrk nginx python3 node openssl taskset; do have "$t" || missing+=("$t"); done
have oha || [ -x "$HOME/.cargo/bin/oha" ] || missing+=(oha)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-bench-tools: still missing: ${missing[*]}" >&2
  exit 1
fi
