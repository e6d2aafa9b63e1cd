#!/usr/bin/env python3
"""bench/cluster.sh's driver: one redis-server and three edgefn processes (the local
limiter; `[cluster] store` per request; the store with a token lease), measured back to back
with wrk on the same two paths: a rate-limited function whose limit admits everything
(Python worker answers) and one whose limit is spent (every request a 429 from the gateway:
the limiter's cost alone). edgefn gets the server core; wrk and redis-server the load core
(taskset), so Redis does not take the gateway's CPU. Writes bench/results/cluster.md.
"""
import argparse
import datetime
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import RESULTS, ROOT, RUN, log  # noqa: E402

PORTS = {"local": 18180, "redis": 18181, "lease": 18182, "store": 16379}
ADMIN = {"local": 19180, "redis": 19181, "lease": 19182}
MODES = ("local", "redis", "lease")
# Worker path: fewer connections than the pool's queue (2 workers x 8 + slack), so the row
# counts admitted requests, not 503s from a full queue.
WORKER_CONNS = 16
HELLO = 'def handler(event):\n    return {"status": 200, "body": "hello"}\n'


def pin(core):
    n = os.cpu_count() or 1
    return ["taskset", "-c", str(core if n > 1 else 0)] if shutil.which("taskset") else []


def wait_port(port, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def functions_tree(root):
    shutil.rmtree(root, ignore_errors=True)
    for name, limit in (("rl-open", {"per_second": 1000000, "burst": 100000}),
                        ("rl-spent", {"per_second": 0.001, "burst": 1})):
        os.makedirs(os.path.join(root, name))
        with open(os.path.join(root, name, "fn.config.json"), "w") as f:
            f.write('{"rate_limit": %s, "workers": {"min": 2, "max": 2}}' % (
                str(limit).replace("'", '"')))
        with open(os.path.join(root, name, "handler.py"), "w") as f:
            f.write(HELLO)


def edgefn_config(path, which, functions):
    lines = ["[server]", f'listen = "127.0.0.1:{PORTS[which]}"', f'functions_dir = "{functions}"',
             "", "[admin]", f'listen = "127.0.0.1:{ADMIN[which]}"', "", "[log]", "access = false"]
    if which in ("redis", "lease"):
        lines += ["", "[cluster]", f'store = "redis://127.0.0.1:{PORTS["store"]}/0"', "nodes_hint = 1"]
    if which == "lease":
        lines += ["lease_tokens = 100", "lease_ms = 100"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def ready(port, path, expect, deadline_s=60):
    """Waits until `path` answers `expect` (workers started, store connected)."""
    import http.client
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", path)
            if str(c.getresponse().status) == expect:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def wrk(url, duration, conns):
    out = subprocess.run(pin(1) + ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    return rps, total, int(non2xx.group(1)) if non2xx else 0, p50.group(1) if p50 else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--debug", action="store_true", help="use target/debug/edgefn")
    ap.add_argument("-d", "--duration", type=int, default=10)
    ap.add_argument("-c", "--connections", type=int, default=50)
    args = ap.parse_args()
    binary = os.path.join(ROOT, "target", "debug" if args.debug else "release", "edgefn")
    run = os.path.join(RUN, "cluster")
    os.makedirs(run, exist_ok=True)
    functions = os.path.join(run, "functions")
    functions_tree(functions)
    procs = []
    try:
        procs.append(subprocess.Popen(
            pin(1) + ["redis-server", "--port", str(PORTS["store"]), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
        assert wait_port(PORTS["store"]), "redis-server did not start"
        for which in MODES:
            cfg = os.path.join(run, f"edgefn-{which}.toml")
            edgefn_config(cfg, which, functions)
            logf = open(os.path.join(run, f"edgefn-{which}.log"), "w")
            procs.append(subprocess.Popen(pin(0) + [binary, "serve", "--config", cfg],
                                          stdout=logf, stderr=logf))
            assert wait_port(PORTS[which]), f"edgefn ({which}) did not start"
        rows = []
        for path, expect in (("/rl-open", "200"), ("/rl-spent", "429")):
            res = {}
            conns = min(args.connections, WORKER_CONNS) if expect == "200" else args.connections
            for which in MODES:
                url = f"http://127.0.0.1:{PORTS[which]}{path}"
                assert ready(PORTS[which], path, expect), f"{which}{path} never answered {expect}"
                wrk(url, max(2, args.duration // 2), conns)  # warm-up: workers, the script
                log(f"{path} {which}: {args.duration}s, {conns} connections")
                res[which] = wrk(url, args.duration, conns)
            for which in MODES:
                rps, total, non2xx, p50 = res[which]
                ratio = rps / res["local"][0] if res["local"][0] else 0
                rows.append(f"| {path} (expect {expect}) | {which} | {rps:,.0f} | {ratio:.2f} | "
                            f"{p50} | {total} req, {non2xx} non-2xx |")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    load = open("/proc/loadavg").read().split()[:3]
    report = [
        "# Rate-limited function: local limiter vs `[cluster]` Redis store",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs, load average {' '.join(load)}, "
        f"`bench/cluster.sh{' --debug' if args.debug else ''} -d {args.duration} -c {args.connections}`"
        f" ({'debug' if args.debug else 'release'} build).",
        "",
        "| path | store | rps (wrk) | × local | p50 | responses |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "edgefn on the server core; wrk and redis-server on the load core (taskset), so Redis "
        "does not take the gateway's CPU. Modes: `local` (in-memory limiter), `redis` "
        "(`[cluster] store`, per request: concurrent requests' calls combined into one script "
        "call), `lease` (the same with `lease_tokens = 100`, `lease_ms = 100`). `/rl-open` "
        "admits every request (Python worker answers, 16 connections so the pool's queue never "
        "overflows); `/rl-spent` refuses every one with 429 (the gateway and the limiter alone; "
        "with the store the refusal is repeated locally for up to 1 s, see cluster::lease).",
    ]
    with open(os.path.join(RESULTS, "cluster.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
