#!/usr/bin/env bash
# User-space instructions per request inside the Node worker alone (callgrind; repeatable on a
# busy machine, unlike its CPU time): bench/tools/node-worker-drive.js plays the gateway and
# sends edgefn's `GET /node-hello` request frame to runtimes/node/edgefn-worker.js running
# bench/functions/node-hello, 16 in flight, in lockstep batches. Two runs (N1 and N2
# requests) are counted, and the difference over N2 - N1 is printed: start-up and JIT
# warm-up cancel out.
# NODE_FLAGS: more flags for the worker's node (e.g. V8's GC sizes); ENCODING=json: the
# worker is sent JSON request frames even when its `ready` asks for the flat encoding.
#   bench/node-worker-instructions.sh [WORKER_JS] [N1] [N2]
set -euo pipefail
cd "$(dirname "$0")/.."
WORKER=${1:-runtimes/node/edgefn-worker.js}
N1=${2:-2000}
N2=${3:-12000}
command -v valgrind >/dev/null 2>&1 || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count N: instructions callgrind counted in the worker for N requests.
count() {
  rm -f "$work"/cg.*
  LOCKSTEP=1 WORKER_WRAP="valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=$work/cg.%p --log-file=$work/vg.log node --single-threaded ${NODE_FLAGS:-}" \
    node bench/tools/node-worker-drive.js "$WORKER" bench/functions/node-hello/handler.js "$1" 16 >/dev/null
  # The driver returns once the worker (callgrind) has exited and written its summary.
  grep Collected "$work/vg.log" | awk '{gsub(",", "", $4); print $4}'
}
a=$(count "$N1")
b=$(count "$N2")
echo "$WORKER: $(( (b - a) / (N2 - N1) )) instructions per request (callgrind, node $(node --version))"
