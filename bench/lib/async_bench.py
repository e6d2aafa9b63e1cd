"""Async queue benchmark: enqueue rate (202s per second) per store with wrk, and the
latency a call through the queue adds over the same call made synchronously (enqueue →
callback received, minus a /function/ round trip, sequential calls, p50).

Every process it starts (edgefn, redis-server, the callback receiver) is stopped at the
end; edgefn runs pinned to CPU 0 and wrk to CPU 1 when the machine has two CPUs."""

import argparse
import http.client
import http.server
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUNCTIONS = os.path.join(ROOT, "bench", "functions-async")
RESULTS = os.path.join(ROOT, "bench", "results", "async-latest.md")
WRK_LUA = 'wrk.method = "POST"\nwrk.body = "payload"\nwrk.headers["Content-Type"] = "text/plain"\n'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(cpu):
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def wait_port(port, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port} within {deadline} s")


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records the arrival time of each callback by X-Call-Id."""

    arrived = {}
    cond = threading.Condition()
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(min(n, 1 << 20))
        with Receiver.cond:
            Receiver.arrived[self.headers.get("x-call-id")] = time.perf_counter()
            Receiver.cond.notify_all()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def start_edgefn(binary, tmp, store):
    port, admin = free_port(), free_port()
    cfg = os.path.join(tmp, f"edgefn-{port}.toml")
    with open(cfg, "w") as f:
        f.write(
            f'[server]\nlisten = "127.0.0.1:{port}"\n[admin]\nlisten = "127.0.0.1:{admin}"\n'
            f'[log]\naccess = false\n[async]\nstore = "{store}"\n'
            f'data_dir = "{tmp}/queue-{port}"\nmax_queued = 10000000\n'
            f'callback_allow = ["127.0.0.1/32"]\n'
        )
    log = open(os.path.join(tmp, f"edgefn-{port}.log"), "w")
    p = subprocess.Popen(
        pin(0) + [binary, "serve", "--config", cfg, "--functions", FUNCTIONS],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    wait_port(port)
    # The first load (workers warm) is done once /readyz says ready.
    end = time.time() + 60
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", admin, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    return p, port, admin


def drain(admin, limit_s=600):
    """Waits until the backlog the rate run left is dispatched (edgefn_async_queued 0), so
    the latency of a call through the queue is measured on an empty queue, not behind it."""
    end = time.time() + limit_s
    while time.time() < end:
        c = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        queued = [float(l.split()[-1]) for l in text.splitlines()
                  if l.startswith("edgefn_async_queued")]
        if queued and sum(queued) == 0:
            return
        time.sleep(0.5)
    raise SystemExit(f"the queue did not drain within {limit_s} s")


def wrk(port, duration, connections):
    lua = os.path.join(tempfile.gettempdir(), "edgefn-async-post.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    out = subprocess.run(
        pin(1) + ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", lua,
                  f"http://127.0.0.1:{port}/async-function/async-noop"],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def added_latency(port, cb_port, n):
    """p50 of (enqueue → callback) and of a synchronous /function/ call, sequentially."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sync, through = [], []
    for i in range(n):
        t = time.perf_counter()
        c.request("POST", "/function/async-noop", body=b"payload")
        c.getresponse().read()
        sync.append(time.perf_counter() - t)
        t = time.perf_counter()
        c.request("POST", "/async-function/async-noop", body=b"payload",
                  headers={"X-Callback-Url": f"http://127.0.0.1:{cb_port}/cb"})
        r = c.getresponse()
        r.read()
        cid = r.getheader("x-call-id")
        with Receiver.cond:
            ok = Receiver.cond.wait_for(lambda: cid in Receiver.arrived, timeout=30)
        if not ok:
            raise SystemExit(f"callback for {cid} never arrived")
        through.append(Receiver.arrived[cid] - t)
    return statistics.median(sync) * 1000, statistics.median(through) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--command", default="bench/async.sh")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--stores", default="embedded,redis")
    ap.add_argument("--latency-calls", type=int, default=200)
    ap.add_argument("--debug", action="store_true")
    a = ap.parse_args()

    cb = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=cb.serve_forever, daemon=True).start()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for store in a.stores.split(","):
            redis = None
            url = "embedded"
            if store == "redis":
                if not shutil.which("redis-server"):
                    raise SystemExit("redis-server is missing (scripts/setup.sh --test installs it)")
                rport = free_port()
                redis = subprocess.Popen(
                    pin(0) + ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                wait_port(rport)
                url = f"redis://127.0.0.1:{rport}/0"
            gw, port, admin = start_edgefn(a.binary, tmp, url)
            try:
                rps, bad = wrk(port, a.duration, a.connections)
                drain(admin)
                sync_ms, through_ms = added_latency(port, cb.server_address[1], a.latency_calls)
                rows.append((store, rps, bad, sync_ms, through_ms))
                print(f"{store}: {rps:.0f} enqueues/s ({bad} non-2xx), sync p50 {sync_ms:.2f} ms, "
                      f"through the queue p50 {through_ms:.2f} ms", flush=True)
            finally:
                gw.terminate()
                gw.wait(timeout=30)
                if redis:
                    redis.terminate()
                    redis.wait(timeout=10)
    cb.shutdown()
    load = os.getloadavg()
    with open(RESULTS, "w") as f:
        f.write(f"# Async queue benchmark\n\n`{a.command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at the end, binary {a.binary}\n\n")
        f.write("| store | enqueues/s (202) | non-2xx | sync call p50 ms | through the queue p50 ms | added p50 ms |\n")
        f.write("|---|---|---|---|---|---|\n")
        for store, rps, bad, s, t in rows:
            f.write(f"| {store} | {rps:.0f} | {bad} | {s:.2f} | {t:.2f} | {t - s:.2f} |\n")
    print(f"wrote {os.path.relpath(RESULTS, ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
