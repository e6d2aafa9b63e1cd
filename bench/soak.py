#!/usr/bin/env python3
"""Soak run of edgefn (a bench script, not a test): mixed traffic against one gateway on
loopback for --minutes (default 10) while the functions tree is reloaded every 10 s and a
worker process is killed every 30 s. Samples the gateway's RSS and open file descriptors
every 5 s and writes a Markdown report under bench/results/ (soak-<UTC time>.md) that
names the command which made it.

Traffic (each loop bounded by the run's deadline, loopback only):
  accepted  GET /hello (Python) and POST /echo (Node)       expect 200
  refused   GET /keyed without a key, GET /nowhere          expect 401 / 404
  webhooks  POST /hook signed (GitHub scheme) and unsigned  expect 200 / 401
  slow      a head trickled and a body that stalls          expect the gateway to close

An "error" is any other status, or a failed connection, outside the second after a worker
was killed (requests a killed worker held get 502 by design; those are counted apart).

  bench/soak.py                  # 10 minutes, the debug or release binary found in target/
  bench/soak.py --minutes 1 --bin target/release/edgefn
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOK_SECRET = "soak-webhook-secret-0123456789"
API_KEY = "soak-api-key-abcdefghijklmnopqrstuv"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_tree(root):
    secret = lambda v: {"value": v, "is_secret": True}
    write(f"{root}/hello/handler.py", "def handler(event):\n    return {'status': 200, 'body': 'hi'}\n")
    write(f"{root}/echo/handler.js",
          "exports.handler = async (e) => ({status: 200, body: String((e.body || '').length)});\n")
    write(f"{root}/echo/fn.config.json", json.dumps({"methods": ["POST"]}))
    write(f"{root}/keyed/handler.py", "def handler(event):\n    return {'status': 200, 'body': 'in'}\n")
    write(f"{root}/keyed/fn.config.json", json.dumps({"auth": {"type": "api_key", "secret": "KEY"}}))
    write(f"{root}/keyed/fn.env.json", json.dumps({"KEY": secret(API_KEY)}))
    write(f"{root}/hook/handler.py", "def handler(event):\n    return {'status': 200, 'body': 'ok'}\n")
    write(f"{root}/hook/fn.config.json", json.dumps(
        {"methods": ["POST"], "auth": {"type": "hmac", "scheme": "github", "secret": "HOOK"}}))
    write(f"{root}/hook/fn.env.json", json.dumps({"HOOK": secret(HOOK_SECRET)}))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = {}
        self.after_kill = 0
        self.last_kill = 0.0

    def add(self, kind, outcome, ok):
        with self.lock:
            self.counts[(kind, outcome)] = self.counts.get((kind, outcome), 0) + 1
            if not ok:
                if time.monotonic() - self.last_kill < 1.0:
                    self.after_kill += 1
                else:
                    self.errors[(kind, outcome)] = self.errors.get((kind, outcome), 0) + 1


def request(addr, method, path, body=None, headers=None):
    c = http.client.HTTPConnection(addr[0], addr[1], timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def traffic(addr, kind, deadline, stats):
    sig = "sha256=" + hmac.new(HOOK_SECRET.encode(), b'{"a":1}', hashlib.sha256).hexdigest()
    cases = {
        "accepted": [("GET", "/hello", None, {}, 200), ("POST", "/echo", "x" * 2000, {}, 200)],
        "refused": [("GET", "/keyed", None, {}, 401), ("GET", "/nowhere", None, {}, 404),
                    ("GET", "/keyed", None, {"x-api-key": API_KEY}, 200)],
        "webhooks": [("POST", "/hook", '{"a":1}', {"X-Hub-Signature-256": sig}, 200),
                     ("POST", "/hook", '{"a":1}', {"X-Hub-Signature-256": "sha256=00"}, 401)],
    }[kind]
    i = 0
    while time.monotonic() < deadline:
        method, path, body, headers, want = cases[i % len(cases)]
        i += 1
        try:
            status = request(addr, method, path, body, headers)
            stats.add(kind, str(status), status == want)
        except OSError as e:
            stats.add(kind, type(e).__name__, False)


def slow_clients(addr, deadline, stats):
    """A trickled head and a stalled body, one after the other: each must be closed."""
    while time.monotonic() < deadline:
        for name, first in [("slow-head", b"GET /hello HTTP/1.1\r\nHo"),
                            ("stalled-body", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\nabc")]:
            s = socket.create_connection(addr, timeout=90)
            try:
                s.sendall(first)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                stats.add("slow", name + ":" + (data[:12].decode(errors="replace") or "closed"), True)
            except OSError as e:
                stats.add("slow", name + ":" + type(e).__name__, False)
            finally:
                s.close()


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--bin", default=None, help="edgefn binary (default: target/release, else target/debug)")
    args = ap.parse_args()
    binary = args.bin or next((b for b in (f"{ROOT}/target/release/edgefn", f"{ROOT}/target/debug/edgefn")
                               if os.path.exists(b)), None)
    if not binary:
        sys.exit("no edgefn binary: cargo build -p gateway (or pass --bin)")
    tmp = tempfile.mkdtemp(prefix="edgefn-soak-")
    tree = f"{tmp}/functions"
    make_tree(tree)
    config = f"{tmp}/edgefn.toml"
    write(config, "[server]\nheader_read_timeout_ms = 5000\nbody_read_timeout_ms = 10000\n[log]\naccess = false\n")
    log = open(f"{tmp}/edgefn.log", "w")
    gw = subprocess.Popen([binary, "serve", "--config", config, "--functions", tree,
                           "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                          stdout=subprocess.PIPE, stderr=log, text=True)
    addr = None
    for line in gw.stdout:
        if line.startswith("edgefn listening on "):
            host, port = line.split("://", 1)[1].split()[0].rsplit(":", 1)
            addr = (host, int(port))
            break
    if addr is None:
        sys.exit(f"edgefn did not start; see {tmp}/edgefn.log")
    threading.Thread(target=lambda: [None for _ in gw.stdout], daemon=True).start()

    stats = Stats()
    start = time.monotonic()
    deadline = start + args.minutes * 60
    threads = [threading.Thread(target=traffic, args=(addr, k, deadline, stats))
               for k in ("accepted", "accepted", "refused", "webhooks")]
    threads.append(threading.Thread(target=slow_clients, args=(addr, deadline, stats)))
    for t in threads:
        t.start()
    samples, reloads, kills = [], 0, 0
    next_reload, next_kill, next_sample = start + 10, start + 30, start
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_sample:
            samples.append((round(now - start), rss_kib(gw.pid), len(os.listdir(f"/proc/{gw.pid}/fd"))))
            next_sample += 5
        if now >= next_reload:
            # Alternate a code change (its pool restarts) and a plain SIGHUP.
            if reloads % 2 == 0:
                with open(f"{tree}/hello/handler.py", "a") as f:
                    f.write(f"# reload {reloads}\n")
            else:
                gw.send_signal(signal.SIGHUP)
            reloads += 1
            next_reload += 10
        if now >= next_kill:
            workers = children(gw.pid)
            if workers:
                with stats.lock:
                    stats.last_kill = time.monotonic()
                os.kill(workers[kills % len(workers)], signal.SIGKILL)
                kills += 1
            next_kill += 30
        time.sleep(0.2)
    for t in threads:
        t.join()
    samples.append((round(time.monotonic() - start), rss_kib(gw.pid), len(os.listdir(f"/proc/{gw.pid}/fd"))))
    alive = gw.poll() is None
    gw.send_signal(signal.SIGTERM)
    try:
        gw.wait(timeout=60)
    except subprocess.TimeoutExpired:
        gw.kill()

    first_min = max(r for t, r, _ in samples if t <= 60)
    last = samples[-1][1]
    total = sum(stats.counts.values())
    errors = sum(stats.errors.values())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    os.makedirs(f"{ROOT}/bench/results", exist_ok=True)
    out = f"{ROOT}/bench/results/soak-{stamp}.md"
    cmd = " ".join(["bench/soak.py"] + sys.argv[1:])
    lines = [
        f"# Soak run, {stamp}",
        "",
        f"Command: `{cmd}` (binary `{os.path.relpath(binary, ROOT)}`), {args.minutes:g} min,"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        f"- requests and slow connections: {total}; errors: **{errors}**;"
        f" failures within 1 s of a worker kill: {stats.after_kill}",
        f"- reloads: {reloads} (every 10 s); workers killed: {kills} (every 30 s);"
        f" gateway alive at the end: {alive}",
        f"- RSS: peak in the first minute {first_min} KiB, at the end {last} KiB"
        f" ({(last - first_min) / max(first_min, 1) * 100:+.1f} %); fds at the end: {samples[-1][2]}",
        "",
        "| traffic | outcome | count |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {o} | {n} |" for (k, o), n in sorted(stats.counts.items())]
    if stats.errors:
        lines += ["", "Errors:", "", "| traffic | outcome | count |", "|---|---|---|"]
        lines += [f"| {k} | {o} | {n} |" for (k, o), n in sorted(stats.errors.items())]
    lines += ["", "| t (s) | RSS (KiB) | fds |", "|---|---|---|"]
    lines += [f"| {t} | {r} | {f} |" for t, r, f in samples]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:9]))
    print(f"report: {os.path.relpath(out, ROOT)}")
    return 0 if errors == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
