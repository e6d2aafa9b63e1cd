"""Paths, ports, fixture secrets and the shared priority prefix of the benchmark."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "bench")
RUN = os.path.join(BENCH, ".run")
RESULTS = os.path.join(BENCH, "results")
RELEASE = os.path.join(ROOT, "target", "release")

API_KEY = "bench-key"
WRONG_KEY = "wrong-key"
WEBHOOK_SECRET = "bench-webhook-secret"
HMAC_BODY_BYTES = 16 * 1024

PORTS = {
    "edgefn": 18080,
    "edgefn-admin": 19464,
    "edgefn-tls": 18443,
    "edgefn-tls-admin": 19465,
    "hyper-header": 18081,
    "nginx-map": 18082,
    "nginx-lua": 18083,
    "nginx-tls": 18084,
    "nginx-gunicorn": 18085,
    "node-http": 18087,
    "uvicorn": 18088,
    "granian": 18091,
    "granian-rsgi": 18092,
    "nginx-map-log": 18089,
    "edgefn-defaults": 18090,
    "edgefn-defaults-admin": 19466,
}

# `nice -n -N` for servers and load tools when --priority N is given (root only).
PRIORITY = []

# The refusal measured beside an accepted path, on the same process in the same CPU rounds
# (driver.paired_refusal): the accepted/refusal ratio is taken round by round.
PAIRED_REFUSAL = "edgefn (refusal)"

SCENARIOS = ["rejected", "defaults", "python", "node", "runtimes", "hmac", "tls", "tls-handshake",
             "idle"]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


