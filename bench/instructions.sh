#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: repeatable whatever else the
# machine is doing, so it is the A/B measure for hot-path work (rps on this shared 2-core
# machine drifts; instruction counts do not).
#
#   bench/instructions.sh [N]      # N measured requests per case (default 4000)
#
# Cases: a rejected request (401 from the api_key policy, no worker) through edgefn (its
# HTTP/1 front answers it) with the access log off and with it on (the shipped default,
# writer thread included), through edgefn with the front off (hyper answers it), and the
# same 401 from the bare hyper peer; an accepted request to a trivial Python handler and
# to a trivial Node handler through edgefn (gateway process only: the worker is a separate
# process); a full TLS 1.3 handshake (ECDSA P-256 certificate, X25519, tools/tls-load: no
# request, no resumption) through edgefn. Then the other side: the instructions **oha
# itself** spends per response of the same 401 from edgefn, from bare hyper and from nginx
# `return 401` (oha's 401 figures are client-bound: they follow what each answer costs the
# client to parse). Writes bench/results/instructions.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-4000}
command -v valgrind >/dev/null 2>&1 || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
}
command -v oha >/dev/null 2>&1 || PATH="$HOME/.cargo/bin:$PATH"
command -v oha >/dev/null 2>&1 || scripts/install-bench-tools.sh
cargo build --release -q -p gateway -p hyper-header -p tls-load

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fn"
cp -r bench/functions/secure bench/functions/hello-py bench/functions/hello-node "$work/fn/"
printf '[server]\nlisten = "127.0.0.1:18481"\n[admin]\nlisten = "127.0.0.1:18482"\n[log]\naccess = false\n' \
  >"$work/edgefn.toml"
# The shipped default: access log on.
sed 's/^access = false$/access = true/' "$work/edgefn.toml" >"$work/edgefn-log.toml"
# TLS with a P-256 certificate, as bench/run.sh makes it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key.pem" \
  -out "$work/cert.pem" -days 30 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1
sed "s#^\[server\]\$#[server]\ntls = { cert = \"$work/cert.pem\", key = \"$work/key.pem\" }#" \
  "$work/edgefn.toml" >"$work/edgefn-tls.toml"
# The same, with the HTTP/1 front off: every request through hyper.
sed 's/^\[server\]$/[server]\nhttp1_fast_path = false/' "$work/edgefn.toml" >"$work/edgefn-hyper.toml"

# count PORT PATH CMD...: instructions per request over N requests after a warm-up.
count() {
  local port=$1 path=$2
  shift 2
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$@" >"$work/server.log" 2>&1 &
  local vp=$!
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$port$path" && break
    sleep 0.2
  done
  oha -n 500 -c 10 --no-tui "http://127.0.0.1:$port$path" >/dev/null 2>&1
  callgrind_control -z "$vp" >/dev/null
  oha -n "$N" -c 10 --no-tui "http://127.0.0.1:$port$path" >/dev/null 2>&1
  callgrind_control -d "$vp" >/dev/null
  kill "$vp"
  wait "$vp" 2>/dev/null || true
  local total
  total=$(cat "$work"/cg.*.1 | awk '/^summary:/ {s+=$2} END {printf "%.0f\n", s}')
  rm -f "$work"/cg.*
  echo $((total / N))
}

# handshakes PORT CMD...: instructions per full TLS handshake (tls-load for a few seconds
# after a warm-up; its own count of handshakes).
handshakes() {
  local port=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$@" >"$work/server.log" 2>&1 &
  local vp=$!
  for _ in $(seq 1 200); do
    target/release/tls-load "127.0.0.1:$port" --connections 1 --duration 0.2 2>/dev/null \
      | grep -q '"handshakes":[1-9]' && break
    sleep 0.2
  done
  target/release/tls-load "127.0.0.1:$port" --connections 8 --duration 2 >/dev/null
  callgrind_control -z "$vp" >/dev/null
  local n
  n=$(target/release/tls-load "127.0.0.1:$port" --connections 8 --duration "${TLS_SECONDS:-10}" |
    sed 's/.*"handshakes":\([0-9]*\).*/\1/')
  callgrind_control -d "$vp" >/dev/null
  kill "$vp"
  wait "$vp" 2>/dev/null || true
  local total
  total=$(cat "$work"/cg.*.1 | awk '/^summary:/ {s+=$2} END {printf "%.0f\n", s}')
  rm -f "$work"/cg.*
  echo $((total / n))
}

# client PORT PATH CMD...: the server runs normally; oha runs under callgrind (all of its
# threads), N requests on 50 connections; instructions of the client per response.
client() {
  local port=$1 path=$2
  shift 2
  "$@" >"$work/server.log" 2>&1 &
  local sp=$!
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$port$path" && break
    sleep 0.2
  done
  valgrind --tool=callgrind --callgrind-out-file="$work/oha.%p" \
    oha -n "$N" -c 50 --no-tui -H "x-api-key: wrong" "http://127.0.0.1:$port$path" >/dev/null 2>&1
  kill "$sp"
  wait "$sp" 2>/dev/null || true
  local total
  total=$(cat "$work"/oha.* | awk '/^summary:/ {s+=$2} END {printf "%.0f\n", s}')
  rm -f "$work"/oha.*
  echo $((total / N))
}

edge=(target/release/edgefn serve --config "$work/edgefn.toml" --functions "$work/fn")
rejected=$(count 18481 /secure "${edge[@]}")
rejected_log=$(count 18481 /secure target/release/edgefn serve --config "$work/edgefn-log.toml" --functions "$work/fn")
rejected_hyper=$(count 18481 /secure target/release/edgefn serve --config "$work/edgefn-hyper.toml" --functions "$work/fn")
hyper=$(count 18483 /secure target/release/hyper-header 127.0.0.1:18483 bench-key)
accepted=$(count 18481 /hello-py "${edge[@]}")
accepted_node=$(count 18481 /hello-node "${edge[@]}")
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log $work/nginx-error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:18484;
        keepalive_requests 1000000;
        default_type application/json;
        location / { return 401 '{"error":"unauthorized"}'; }
    }
}
EOF
client_edge=$(client 18481 /secure "${edge[@]}")
client_hyper=$(client 18483 /secure target/release/hyper-header 127.0.0.1:18483 bench-key)
client_nginx=$(client 18484 / nginx -c "$work/nginx.conf" -p "$work")
tls=$(handshakes 18481 target/release/edgefn serve --config "$work/edgefn-tls.toml" --functions "$work/fn")

mkdir -p bench/results
{
  echo "# User-space instructions per request (callgrind)"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), command: \`bench/instructions.sh $N\`"
  echo "- $N requests per case after 500 warm-up requests, oha -c 10, server process only"
  echo
  echo "| case | instructions / request |"
  echo "|---|---:|"
  echo "| rejected (401), edgefn, access log off | $rejected |"
  echo "| rejected (401), edgefn, access log on (default) | $rejected_log |"
  echo "| rejected (401), edgefn with \`http1_fast_path = false\` (hyper serves it) | $rejected_hyper |"
  echo "| rejected (401), hyper-header | $hyper |"
  echo "| accepted, edgefn → warm Python worker (gateway process) | $accepted |"
  echo "| accepted, edgefn → warm Node worker (gateway process) | $accepted_node |"
  echo "| full TLS 1.3 handshake (X25519, ECDSA P-256), edgefn, per handshake | $tls |"
  echo
  echo "The load generator's side of the same 401 (oha under callgrind, $N requests, 50 connections):"
  echo
  echo "| server answering | oha instructions / response |"
  echo "|---|---:|"
  echo "| edgefn (x-request-id header, request id in the JSON body) | $client_edge |"
  echo "| hyper-header (content-type, content-length, date; 24-byte body) | $client_hyper |"
  echo "| nginx \`return 401\` (server, date, content-type, content-length, connection) | $client_nginx |"
  echo
  echo "A rejected request costs edgefn $(python3 -c "print(round($rejected/$hyper, 2))")× the instructions of bare hyper with the access log off, $(python3 -c "print(round($rejected_log/$hyper, 2))")× with it on."
} >bench/results/instructions.md
cat bench/results/instructions.md
