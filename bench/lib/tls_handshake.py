"""The `tls-handshake` scenario's load side: full TLS 1.3 handshakes from
`bench/tools/tls-load` (a rustls client on the load core, a new connection per handshake,
never resumed), the server's CPU per handshake from the scheduler's accounting; and the
session-resumption check with `openssl s_client -sess_out` / `-sess_in`.

Why not `openssl s_time -new` (used before): an s_time client does about as much work per
handshake as the server (chain and signature checks, OpenSSL's client state machine), so on
one load core eight of them were the ceiling and both servers showed the clients' rate.
tls-load does the least a real handshake needs (one key share, no chain or signature check:
it says so in its output) from many connections on one thread, and the driver checks that
the server core was busy (its CPU time over the wall time) before trusting the rate.

Why not oha `--disable-keepalive`: its rustls client keeps a session cache, so every
connection after the first may resume (a PSK handshake, no certificate signature) — the
driver reports that row too, labelled as such.
"""
import json
import os
import re
import subprocess
import time

from common import PRIORITY, RELEASE, RUN, log
from load import group_cpu_ns

# Concurrent connections of the load tool: enough that the server always has a handshake
# waiting while each connection waits for its own round trips.
CONNECTIONS = 64
# Key-exchange groups measured, the first is the headline figure (what browsers offer
# first, without the post-quantum hybrid neither server enables).
GROUPS = ("x25519", "p256")


def tool():
    """bench/tools/tls-load, built by run.sh."""
    exe = os.path.join(RELEASE, "tls-load")
    return exe if os.access(exe, os.X_OK) else None


def full_handshakes(port, cfg, pgid, duration, group="x25519"):
    """tls-load with `CONNECTIONS` closed-loop connections for `duration` s against
    127.0.0.1:`port`, offering `group`. Returns handshakes/s, the server's CPU µs per
    handshake (every thread of its process group) and how busy the server core was, or
    None."""
    exe = tool()
    if exe is None:
        log("tls-handshake: no bench/tools/tls-load build (run.sh builds it)")
        return None
    argv = PRIORITY + ["taskset", "-c", cfg.load_cpu, exe, f"127.0.0.1:{port}",
                       "--connections", str(CONNECTIONS), "--duration", str(duration),
                       "--group", group]
    before = group_cpu_ns(pgid)
    t0 = time.time()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        log(f"tls-handshake: tls-load on port {port} did not finish")
        return None
    wall = time.time() - t0
    after = group_cpu_ns(pgid)
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log(f"tls-handshake: tls-load on port {port}: {(out.stderr or out.stdout).strip()[-300:]}")
        return None
    if r["errors"]:
        log(f"tls-handshake: tls-load on port {port}: {r['errors']} failed connections, "
            f"first: {r['first_error']}")
    if r["handshakes"] == 0:
        return None
    if r["resumed"]:
        log(f"tls-handshake: port {port}: {r['resumed']} resumed handshakes (expected none)")
    cpu_us = (after - before) / 1e3
    return {"rps": r["rate"], "handshakes": r["handshakes"], "errors": r["errors"],
            "resumed": r["resumed"], "retried": r["full_with_retry"],
            "us_per_handshake": cpu_us / r["handshakes"], "busy": cpu_us / 1e6 / wall,
            "p50": r["p50_ms"], "p99": r["p99_ms"], "connections": r["connections"],
            "group": group}


def s_client(port, extra, timeout=20):
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
            "-servername", "localhost", "-ign_eof"] + extra
    # One request, so the server's session tickets (sent after the handshake in TLS 1.3)
    # arrive before the connection closes.
    req = "GET /_fn/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    try:
        out = subprocess.run(argv, input=req, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout + out.stderr


def resumption(port, name):
    """Connects once saving the session, then again offering it: the second connection's
    `Reused, TLSv1.3` line says the server resumed it. Returns (ok, detail)."""
    sess = f"{RUN}/tls-session-{name}.pem"
    first = s_client(port, ["-sess_out", sess])
    if "New, TLSv1.3" not in first:
        return False, "first connection: no new TLS 1.3 session (" + _cipher_line(first) + ")"
    second = s_client(port, ["-sess_in", sess])
    line = _cipher_line(second)
    return line.startswith("Reused, TLSv1.3"), line


def _cipher_line(text):
    m = re.search(r"^(New|Reused), .*$", text, re.M)
    return m.group(0).strip() if m else (text.strip().splitlines() or ["no output"])[-1][:120]
