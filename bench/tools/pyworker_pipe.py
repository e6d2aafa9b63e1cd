#!/usr/bin/env python3
"""Drives one Python worker (runtimes/python/edgefn_worker.py) over its real socket, as the
gateway does, with `depth` requests outstanding, and reports the worker's CPU per request
(every thread's schedstat run time: exact, repeatable under load) and its context switches.

    bench/tools/pyworker_pipe.py [--requests N] [--depth D ...] [--handler FILE] [--python EXE]

depth 1 is the gateway today for a sync worker (one request at a time); depth > 1 is what
prefetching hands it. The request frame is the one the gateway sends for `GET /py-hello`
from wrk (the `python` scenario).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKER = os.path.join(ROOT, "runtimes", "python", "edgefn_worker.py")
HANDLER = os.path.join(ROOT, "bench", "functions", "py-hello", "handler.py")


def frame(header, body=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    return (4 + len(h) + len(body)).to_bytes(4, "big") + len(h).to_bytes(4, "big") + h + body


def request(rid):
    event = {
        "id": f"req-{rid:016x}",
        "ts": int(time.time() * 1000),
        "method": "GET",
        "path": "/py-hello",
        "raw_path": "/py-hello",
        "query": {},
        "params": {},
        "path_params": {},
        "headers": {"host": "127.0.0.1:8080"},
        "session": None,
        "client": {"ip": "127.0.0.1", "ua": None},
        "context": {
            "request_id": f"req-{rid:016x}",
            "function": "py-hello",
            "function_name": "py-hello",
            "runtime": "python",
            "version": "default",
            "timeout_ms": 30000,
            "max_body_bytes": 1048576,
            "debug": {"enabled": False},
            "auth": {"type": "none", "subject": None},
            "user": None,
        },
    }
    return frame({"type": "req", "id": rid, "binary": False, "event": event})


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def frames(self):
        """Every complete frame after one recv (blocking for the first bytes)."""
        out = []
        while not out:
            data = self.sock.recv(1 << 16)
            if not data:
                raise SystemExit("worker closed its socket")
            self.buf += data
            while len(self.buf) >= 8:
                total = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) < 4 + total:
                    break
                hlen = int.from_bytes(self.buf[4:8], "big")
                out.append((json.loads(bytes(self.buf[8 : 8 + hlen])), bytes(self.buf[8 + hlen : 4 + total])))
                del self.buf[: 4 + total]
        return out


def cpu_ns(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def switches(pid):
    v = n = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                v = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                n = int(line.split()[1])
    return v, n


def run(python, worker, handler, depth, count, valgrind=None):
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "w.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    argv = [python, worker, path, handler, "1"]
    if valgrind:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={valgrind}", "-q"] + argv
    child = subprocess.Popen(argv, env=env)
    conn, _ = lsock.accept()
    conn.sendall(frame({"type": "init", "version": 2, "function": "py-hello", "runtime": "python", "env": {}, "handler_name": None}))
    reader = Reader(conn)
    ready = reader.frames()[0][0]
    assert ready["type"] == "ready", ready
    frames = [request(i) for i in range(count + depth)]
    # Warm-up, then the measured run.
    for phase, n in (("warm", min(2000, count)), ("run", count)):
        sent = done = 0
        cpu0, sw0, t0 = cpu_ns(child.pid), switches(child.pid), time.perf_counter()
        conn.sendall(b"".join(frames[: min(depth, n)]))
        sent = min(depth, n)
        while done < n:
            got = reader.frames()
            for h, body in got:
                if h.get("type") != "res" or h.get("status") != 200:
                    raise SystemExit(f"unexpected answer {h} {body!r}")
            done += len(got)
            more = min(len(got), n - sent)
            if more:
                conn.sendall(b"".join(frames[sent : sent + more]))
                sent += more
        if phase == "run":
            cpu = cpu_ns(child.pid) - cpu0
            sw = [a - b for a, b in zip(switches(child.pid), sw0)]
            wall = time.perf_counter() - t0
    conn.close()
    child.wait(timeout=120)
    lsock.close()
    os.unlink(path)
    os.rmdir(tmp)
    return cpu / count / 1000, sw, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--depth", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--handler", default=HANDLER)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--worker", default=WORKER, help="another worker script to compare")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instructions", action="store_true",
                    help="count the worker's instructions per request with callgrind instead")
    a = ap.parse_args()
    if a.instructions:
        for depth in a.depth:
            totals = []
            for n in (2000, 2000 + a.requests):
                out = tempfile.mktemp(suffix=".callgrind")
                run(a.python, a.worker, a.handler, depth, n, valgrind=out)
                with open(out) as f:
                    totals.append(next(int(l.split()[1]) for l in f if l.startswith(("summary:", "totals:"))))
                os.unlink(out)
            print(f"depth {depth:2}: {(totals[1] - totals[0]) / a.requests:,.0f} worker instructions/request")
        return
    for depth in a.depth:
        results = sorted(run(a.python, a.worker, a.handler, depth, a.requests) for _ in range(a.rounds))
        us, sw, wall = results[len(results) // 2]
        print(f"depth {depth:2}: worker CPU {us:6.2f} µs/request (median of {a.rounds}; all: "
              f"{', '.join(f'{r[0]:.2f}' for r in results)}), switches/request "
              f"{sw[0] / a.requests:.2f} voluntary {sw[1] / a.requests:.2f} forced, wall {wall:.2f} s")


if __name__ == "__main__":
    main()
