"""The `tls-handshake` scenario's load side: full TLS 1.3 handshakes with `openssl s_time
-new` (a fresh session for every connection, never resumed), several clients in parallel on
the load core, the server's CPU per handshake from the scheduler's accounting; and the
session-resumption check with `openssl s_client -sess_out` / `-sess_in`.

Why not oha `--disable-keepalive`: its rustls client keeps a session cache, so every
connection after the first may resume (a PSK handshake, no certificate signature) — the
driver reports that row too, labelled as such, but the handshake rate comes from s_time.
"""
import re
import subprocess
import time

from common import PRIORITY, RUN, log
from load import group_cpu_ns

# Parallel s_time clients: enough to keep one server core busy while each client waits for
# the network round trips of its own handshake.
CLIENTS = 8


def full_handshakes(port, cfg, pgid, duration):
    """`CLIENTS` closed-loop `openssl s_time -new -tls1_3` for `duration` s against
    127.0.0.1:`port`. Returns handshakes/s (the clients' total over the wall time) and the
    server's CPU µs per handshake (every thread of its process group), or None."""
    argv = PRIORITY + ["taskset", "-c", cfg.load_cpu, "openssl", "s_time", "-new", "-tls1_3",
                       "-connect", f"127.0.0.1:{port}", "-time", str(duration)]
    before = group_cpu_ns(pgid)
    t0 = time.time()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for _ in range(CLIENTS)]
    outs = [p.communicate(timeout=duration + 60) for p in procs]
    wall = time.time() - t0
    after = group_cpu_ns(pgid)
    total, errors = 0, []
    for (out, err), p in zip(outs, procs):
        m = re.search(r"(\d+) connections in [\d.]+ real seconds", out)
        if m is None:
            m = re.search(r"(\d+) connections in [\d.]+s", out)
        if m:
            total += int(m.group(1))
        else:
            errors.append((err or out).strip()[-200:] or f"exit {p.returncode}")
    if errors:
        log(f"tls-handshake: s_time on port {port}: {errors[0]}")
    if total == 0:
        return None
    return {"rps": total / wall, "handshakes": total, "us_per_handshake": (after - before) / 1e3 / total,
            "clients": CLIENTS, "failed_clients": len(errors)}


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
