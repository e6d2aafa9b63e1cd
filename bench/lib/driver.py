#!/usr/bin/env python3
"""bench/run.sh's driver: starts edgefn and the peers pinned to the server core, runs wrk
(throughput) and oha (latency percentiles, JSON) pinned to the load core, parses both, and
writes bench/results/latest.md (Markdown) and latest.csv.

Flow: prepare (run dir, certificate, nginx config, edgefn configs, functions tree) →
start servers → probe each target once (a target answering an unexpected status is
reported, not measured) → for each scenario and tool, measure edgefn and its peers back
to back → ratios within the same run → report. Everything is stdlib; the release build
is run.sh's job.
"""

import argparse
import csv
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

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
    "worker-direct-python": 18088,
    "worker-direct-node": 18089,
}

# `nice -n -N` for servers and load tools when --priority N is given (root only).
PRIORITY = []

SCENARIOS = ["rejected", "python", "node", "hmac", "tls", "idle"]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- environment


def cpus():
    """(server cpu, load cpu): separate cores when there are two or more."""
    avail = sorted(os.sched_getaffinity(0))
    if len(avail) >= 2:
        return str(avail[0]), str(avail[1])
    return str(avail[0]), str(avail[0])


def tool_path(name):
    p = shutil.which(name)
    if p:
        return p
    cand = os.path.expanduser(f"~/.cargo/bin/{name}")
    return cand if os.access(cand, os.X_OK) else None


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "load": load,
    }


def raise_nofile(n=200_000):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(n, soft), max(n, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_port(port, proc, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------- servers


class Servers:
    """Processes this run started; stopped by their own process group at the end."""

    def __init__(self, server_cpu):
        self.cpu = server_cpu
        self.procs = {}

    def start(self, name, argv, port, env=None, cwd=None):
        if not port_free(port):
            log(f"port {port} for {name} is in use; {name} is skipped")
            return None
        out = open(os.path.join(RUN, f"{name}.log"), "wb")
        proc = subprocess.Popen(
            PRIORITY + ["taskset", "-c", self.cpu] + argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        if not wait_port(port, proc):
            log(f"{name} did not start (see bench/.run/{name}.log)")
            self.stop_one(proc)
            return None
        self.procs[name] = proc
        return proc

    @staticmethod
    def stop_one(proc):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self):
        for proc in self.procs.values():
            self.stop_one(proc)
        self.procs.clear()


def openssl_cert():
    cert, key = os.path.join(RUN, "cert.pem"), os.path.join(RUN, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
             "-days", "30", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True,
        )
    return cert, key


def edgefn_functions(edgefn):
    """Copies bench/functions into the run dir, keeping only the functions this build of
    edgefn accepts (`edgefn check` per function). Returns (dir, accepted, refused)."""
    dest = os.path.join(RUN, "functions")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    src = os.path.join(BENCH, "functions")
    accepted, refused = [], {}
    for name in sorted(os.listdir(src)):
        probe = os.path.join(RUN, "probe-fn")
        shutil.rmtree(probe, ignore_errors=True)
        shutil.copytree(os.path.join(src, name), os.path.join(probe, name))
        out = subprocess.run([edgefn, "check", "--functions", probe],
                             capture_output=True, text=True)
        if out.returncode == 0:
            shutil.copytree(os.path.join(src, name), os.path.join(dest, name))
            accepted.append(name)
        else:
            why = [w.strip() for w in (out.stderr or out.stdout).strip().splitlines()]
            why = next((w for w in why if w.startswith("error:")), why[-1] if why else "")
            why = why.replace(probe + "/", "").split("; see ")[0]
            refused[name] = why.removeprefix("error: ") or f"exit {out.returncode}"
        shutil.rmtree(probe, ignore_errors=True)
    return dest, accepted, refused


def edgefn_config(path, listen, admin, functions_dir, tls=None):
    lines = [
        "[server]",
        f'listen = "{listen}"',
        f'functions_dir = "{functions_dir}"',
        "max_connections = 50000",
        "idle_timeout_ms = 600000",
    ]
    if tls:
        lines.append(f'tls = {{ cert = "{tls[0]}", key = "{tls[1]}" }}')
    lines += ["", "[admin]", f'listen = "{admin}"', "", "[log]", "access = false", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def nginx_config(cert, key):
    with open(os.path.join(BENCH, "peers", "nginx", "nginx.conf.in")) as f:
        text = f.read()
    subst = {
        "@RUN@": RUN,
        "@KEY@": API_KEY,
        "@CERT@": cert,
        "@CERTKEY@": key,
        "@PORT_MAP@": str(PORTS["nginx-map"]),
        "@PORT_LUA@": str(PORTS["nginx-lua"]),
        "@PORT_TLS@": str(PORTS["nginx-tls"]),
        "@PORT_WSGI@": str(PORTS["nginx-gunicorn"]),
    }
    for k, v in subst.items():
        text = text.replace(k, v)
    for d in ("nginx-body", "nginx-proxy", "nginx-fastcgi", "nginx-uwsgi", "nginx-scgi"):
        os.makedirs(os.path.join(RUN, d), exist_ok=True)
    path = os.path.join(RUN, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def worker_direct_tool():
    """The lead's tool that serves one function's worker over HTTP without the gateway,
    if it exists on this branch: bench/worker-direct(.py|.sh|/)."""
    for cand in ("worker-direct", "worker-direct.py", "worker-direct.sh", "worker_direct.py"):
        p = os.path.join(BENCH, cand)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return [p]
        if os.path.isfile(p) and p.endswith(".py"):
            return [sys.executable, p]
        if os.path.isdir(p):
            for inner in ("run.sh", "worker-direct", "main.py"):
                q = os.path.join(p, inner)
                if os.path.isfile(q):
                    return [q] if os.access(q, os.X_OK) else [sys.executable, q]
    exe = os.path.join(RELEASE, "worker-direct")
    return [exe] if os.access(exe, os.X_OK) else None


# ---------------------------------------------------------------- requests


class Target:
    """One server endpoint loaded in one scenario."""

    def __init__(self, scenario, server, url, expect, headers=(), method="GET",
                 body_file=None, http2=False, peer=True, note=""):
        self.scenario, self.server, self.url = scenario, server, url
        self.expect = expect
        self.headers = list(headers)
        self.method, self.body_file, self.http2 = method, body_file, http2
        self.peer = peer
        self.note = note


def probe(t):
    """One request with the target's method, headers and body; returns the status."""
    m = re.match(r"(https?)://([^/:]+):(\d+)(/.*)?$", t.url)
    scheme, host, port, path = m.group(1), m.group(2), int(m.group(3)), m.group(4) or "/"
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=10)
    body = None
    if t.body_file:
        with open(t.body_file, "rb") as f:
            body = f.read()
    try:
        conn.request(t.method, path, body=body, headers=dict(t.headers))
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException) as e:
        log(f"probe {t.server} {t.url}: {e}")
        return None
    finally:
        conn.close()


# ---------------------------------------------------------------- load tools


def parse_duration_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        return None
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk_lua(t):
    """A wrk script for POST bodies (the HMAC webhook)."""
    path = os.path.join(RUN, f"wrk-{t.scenario}-{t.server}.lua")
    hdrs = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in t.headers)
    with open(path, "w") as f:
        f.write(
            f'wrk.method = "{t.method}"\n'
            f'local f = assert(io.open("{t.body_file}", "rb"))\n'
            "wrk.body = f:read(\"*a\")\nf:close()\n" + hdrs
        )
    return path


def run_wrk(t, cfg):
    argv = PRIORITY + ["taskset", "-c", cfg.load_cpu, cfg.wrk, "-t1", f"-c{cfg.conns(t)}",
                       f"-d{cfg.duration}s", "--latency", "--timeout", "5s"]
    if t.body_file:
        argv += ["-s", wrk_lua(t)]
    else:
        for k, v in t.headers:
            argv += ["-H", f"{k}: {v}"]
    argv.append(t.url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.duration + 60)
    text = out.stdout
    res = {"tool": "wrk", "rps": None, "p50": None, "p99": None, "statuses": ""}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m:
            res[key] = parse_duration_ms(m.group(1))
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errs = re.search(r"Socket errors: (.*)", text)
    parts = []
    if total:
        parts.append(f"{total.group(1)} req")
    if non2xx:
        parts.append(f"{non2xx.group(1)} non-2xx")
    if errs:
        parts.append("socket errors " + errs.group(1).strip())
    res["statuses"] = ", ".join(parts)
    if res["rps"] is None:
        log(f"wrk failed for {t.server}: {out.stderr.strip()[:300]}")
    return res


def oha_json_flag(oha):
    helptext = subprocess.run([oha, "--help"], capture_output=True, text=True).stdout
    if "--output-format" in helptext:
        return ["--output-format", "json"]
    return ["--json"]


def run_oha(t, cfg):
    argv = PRIORITY + ["taskset", "-c", cfg.load_cpu, cfg.oha, "-z", f"{cfg.duration}s",
            "-c", str(cfg.conns(t)), "--no-tui"] + cfg.oha_json
    if t.url.startswith("https"):
        argv.append("--insecure")
    if t.http2:
        argv.append("--http2")
    for k, v in t.headers:
        argv += ["-H", f"{k}: {v}"]
    if t.method != "GET":
        argv += ["-m", t.method]
    if t.body_file:
        argv += ["-D", t.body_file]
    argv.append(t.url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.duration + 60)
    res = {"tool": "oha", "rps": None, "p50": None, "p99": None, "statuses": ""}
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        log(f"oha failed for {t.server}: {out.stderr.strip()[:300]}")
        return res
    summary = data.get("summary", {})
    res["rps"] = summary.get("requestsPerSec")
    pct = data.get("latencyPercentiles", {})
    for key in ("p50", "p99"):
        v = pct.get(key)
        res[key] = v * 1000.0 if isinstance(v, (int, float)) else None
    codes = data.get("statusCodeDistribution", {})
    errors = data.get("errorDistribution", {})
    parts = [f"{k}: {v}" for k, v in sorted(codes.items())]
    # Requests cut by the -z deadline are not failures of the server.
    real = {k: v for k, v in errors.items() if "deadline" not in k}
    if real:
        parts.append("errors: " + ", ".join(f"{k} ({v})" for k, v in real.items()))
    res["statuses"] = ", ".join(parts)
    return res


def warm_up(t, cfg):
    """A short wrk burst so JITs, pools and caches are warm before measuring."""
    if cfg.warmup <= 0 or not cfg.wrk:
        return
    argv = PRIORITY + ["taskset", "-c", cfg.load_cpu, cfg.wrk, "-t1", f"-c{cfg.conns(t)}",
                       f"-d{cfg.warmup}s"]
    if t.body_file:
        argv += ["-s", wrk_lua(t)]
    else:
        for k, v in t.headers:
            argv += ["-H", f"{k}: {v}"]
    subprocess.run(argv + [t.url], capture_output=True, timeout=cfg.warmup + 30)


# ---------------------------------------------------------------- idle connections


def rss_kib(pid):
    """Resident set of pid and its descendants, KiB (edgefn's workers are children)."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                             capture_output=True, text=True).stdout.split()
        pids += [int(x) for x in out]
    except OSError:
        pass
    own = None
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        v = int(line.split()[1])
                        total += v
                        if p == pid:
                            own = v
        except OSError:
            pass
    return own, total


def idle_measure(name, port, path, n, cfg):
    proc = cfg.servers.procs.get(name)
    if proc is None:
        return None
    before, _ = rss_kib(proc.pid)
    tool = subprocess.Popen(
        PRIORITY + ["taskset", "-c", cfg.load_cpu, sys.executable,
                    os.path.join(BENCH, "lib", "idle_conns.py"), "127.0.0.1", str(port), str(n), path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    t0 = time.time()
    line = tool.stdout.readline().strip()
    opened = time.time() - t0
    if not line.startswith("READY"):
        err = tool.stderr.read()[:300] if tool.poll() is not None else ""
        log(f"idle: {name}: the connection tool failed: {line} {err}")
        tool.kill()
        tool.wait()
        return None
    time.sleep(1.0)
    after, _ = rss_kib(proc.pid)
    tool.stdin.close()
    try:
        tool.wait(timeout=10)
    except subprocess.TimeoutExpired:
        tool.kill()
        tool.wait()
    time.sleep(0.5)
    per_conn = (after - before) * 1024 / n if before is not None and after else None
    return {
        "server": name, "connections": n, "rss_before_kib": before, "rss_after_kib": after,
        "bytes_per_conn": per_conn, "open_s": opened, "detail": line,
    }


# ---------------------------------------------------------------- scenarios


def hmac_fixture():
    body_path = os.path.join(RUN, "webhook-16k.json")
    # A GitHub-like push payload padded to exactly 16 KiB.
    head = b'{"ref":"refs/heads/main","repository":{"full_name":"acme/edge"},"padding":"'
    tail = b'"}'
    body = head + b"x" * (HMAC_BODY_BYTES - len(head) - len(tail)) + tail
    with open(body_path, "wb") as f:
        f.write(body)
    sig = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body_path, sig


def targets(scenario, env):
    """The servers measured in one scenario: edgefn first, then its peers."""
    e = f"http://127.0.0.1:{PORTS['edgefn']}"
    wrong = [("x-api-key", WRONG_KEY)]
    out = []
    if scenario == "rejected":
        if "secure" in env.accepted:
            out.append(Target("rejected", "edgefn", f"{e}/secure", 401, wrong, peer=False))
        else:
            out.append(Target("rejected", "edgefn", f"{e}/no-such-function", 404, wrong,
                              peer=False,
                              note="stand-in: 404 before any worker (api_key auth not in this build)"))
        out += [
            Target("rejected", "hyper-header", f"http://127.0.0.1:{PORTS['hyper-header']}/", 401, wrong),
            Target("rejected", "nginx-map", f"http://127.0.0.1:{PORTS['nginx-map']}/", 401, wrong),
            Target("rejected", "nginx-lua", f"http://127.0.0.1:{PORTS['nginx-lua']}/", 401, wrong),
        ]
    elif scenario == "python":
        out.append(Target("python", "edgefn", f"{e}/py-hello", 200, peer=False))
        out.append(Target("python", "nginx-gunicorn",
                          f"http://127.0.0.1:{PORTS['nginx-gunicorn']}/", 200))
        if "worker-direct-python" in env.servers.procs:
            out.append(Target("python", "worker-direct",
                              f"http://127.0.0.1:{PORTS['worker-direct-python']}/", 200))
    elif scenario == "node":
        out.append(Target("node", "edgefn", f"{e}/node-hello", 200, peer=False))
        out.append(Target("node", "node-http", f"http://127.0.0.1:{PORTS['node-http']}/", 200))
        if "worker-direct-node" in env.servers.procs:
            out.append(Target("node", "worker-direct",
                              f"http://127.0.0.1:{PORTS['worker-direct-node']}/", 200))
    elif scenario == "hmac":
        body, sig = env.hmac
        good = [("Content-Type", "application/json"), ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", sig)]
        bad = good[:2] + [("X-Hub-Signature-256", "sha256=" + "0" * 64)]
        out.append(Target("hmac", "edgefn", f"{e}/webhook", 200, good, "POST", body,
                          peer=False, note="valid signature, 16 KiB body, Node handler"))
        out.append(Target("hmac-rejected", "edgefn", f"{e}/webhook", 401, bad, "POST", body,
                          peer=False, note="bad signature, 16 KiB body: gateway only"))
    elif scenario == "tls":
        t = f"https://127.0.0.1:{PORTS['edgefn-tls']}"
        n = f"https://127.0.0.1:{PORTS['nginx-tls']}/"
        if "secure" in env.accepted:
            path, code, note = "/secure", 401, ""
        else:
            path, code, note = "/no-such-function", 404, "stand-in: 404 (api_key auth not in this build)"
        for sc, h2 in (("tls-h1", False), ("tls-h2", True)):
            out.append(Target(sc, "edgefn", t + path, code, wrong, http2=h2, peer=False, note=note))
            out.append(Target(sc, "nginx-tls", n, 401, wrong, http2=h2))
    return out


class Config:
    pass


def measure(scenario, cfg, env, rows):
    """Probes every target, warms each up, then runs `cfg.rounds` interleaved rounds
    (each tool on each server in turn) and keeps the median of each figure: drifts in
    background load hit every server of a scenario alike instead of one of them."""
    live = []
    for t in targets(scenario, env):
        if t.server != "edgefn" and t.server not in cfg.servers.procs \
                and not t.server.startswith("worker-direct"):
            rows.append(row(t, "-", None, note=f"{t.server} not running"))
            continue
        status = probe(t)
        if status != t.expect:
            rows.append(row(t, "-", None,
                            note=f"not measured: answers {status}, expected {t.expect}"
                            + (f" ({t.note})" if t.note else "")))
            log(f"{t.scenario}/{t.server}: answers {status}, expected {t.expect}: skipped")
            continue
        warm_up(t, cfg)
        live.append(t)
    runs = {}
    for rnd in range(cfg.rounds):
        for tool in cfg.tools:
            for t in live:
                if tool == "wrk" and t.http2:
                    continue  # wrk speaks HTTP/1.1 only
                log(f"{t.scenario}/{t.server}/{tool} round {rnd + 1}/{cfg.rounds} "
                    f"({cfg.duration}s, {cfg.conns(t)} conns)")
                res = run_wrk(t, cfg) if tool == "wrk" else run_oha(t, cfg)
                runs.setdefault((id(t), tool), (t, []))[1].append(res)
    for t, results in runs.values():
        rows.append(row(t, results[0]["tool"], aggregate(results), note=t.note))


def median(values):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def aggregate(results):
    """Median rps, p50 and p99 over rounds; the responses of every round."""
    if len(results) == 1:
        return results[0]
    return {
        "rps": median(r["rps"] for r in results),
        "p50": median(r["p50"] for r in results),
        "p99": median(r["p99"] for r in results),
        "statuses": " / ".join(r["statuses"] for r in results),
    }


def row(t, tool, res, note=""):
    res = res or {}
    return {
        "scenario": t.scenario, "server": t.server, "tool": tool,
        "rps": res.get("rps"), "p50_ms": res.get("p50"), "p99_ms": res.get("p99"),
        "statuses": res.get("statuses", ""), "peer": t.peer, "note": note,
    }


def ratios(rows):
    """For each edgefn row: rps ratio against every peer row of the same scenario and tool."""
    for r in rows:
        if r["server"] != "edgefn" or not r["rps"]:
            r["ratio"] = ""
            continue
        parts = []
        for p in rows:
            if p["scenario"] == r["scenario"] and p["tool"] == r["tool"] and p["peer"] \
                    and p["rps"]:
                parts.append(f"{r['rps'] / p['rps']:.2f}× {p['server']}")
        r["ratio"] = "; ".join(parts)
        # Gateway-added latency over calling the worker directly.
        for p in rows:
            if p["scenario"] == r["scenario"] and p["tool"] == r["tool"] \
                    and p["server"] == "worker-direct" and p["p50_ms"] and r["p50_ms"]:
                added = r["p50_ms"] - p["p50_ms"]
                r["note"] = (r["note"] + "; " if r["note"] else "") + \
                    f"gateway adds {added * 1000:.0f} µs at p50 over worker-direct"
    for r in rows:
        r.setdefault("ratio", "")


def targets_check(rows):
    """The issue's targets for the rejected request: ≥0.95× hyper-header, ≥1× nginx map."""
    lines = []
    for tool in ("wrk", "oha"):
        e = next((r for r in rows if r["scenario"] == "rejected" and r["server"] == "edgefn"
                  and r["tool"] == tool and r["rps"]), None)
        if not e:
            continue
        for peer, goal in (("hyper-header", 0.95), ("nginx-map", 1.0)):
            p = next((r for r in rows if r["scenario"] == "rejected" and r["server"] == peer
                      and r["tool"] == tool and r["rps"]), None)
            if p:
                ratio = e["rps"] / p["rps"]
                verdict = "met" if ratio >= goal else "NOT met"
                lines.append(f"- {tool}: edgefn / {peer} = **{ratio:.2f}×** "
                             f"(target ≥ {goal}×: {verdict})")
    if any(r["scenario"] == "rejected" and r["server"] == "edgefn" and "stand-in" in r["note"]
           for r in rows):
        lines.append("- edgefn was measured on its 404 path (no auth in this build): "
                     "indicative only, not the 401 target.")
    return lines


# ---------------------------------------------------------------- report


def fmt(v, digits=0):
    if v is None or v == "":
        return "—"
    return f"{v:,.{digits}f}"


def write_report(rows, idle, cfg, env, started, elapsed):
    os.makedirs(RESULTS, exist_ok=True)
    m = env.machine
    md = [
        "# edgefn benchmark results",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')} (took {elapsed:.0f} s)",
        f"- command: `{cfg.command}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, "
        f"load average at start {m['load']}",
        f"- pinning: servers (edgefn, its workers, peers) on CPU {cfg.server_cpu}, "
        f"load generator on CPU {cfg.load_cpu} (`taskset`)"
        + (f", both at `{' '.join(PRIORITY)}`" if PRIORITY else ""),
        f"- load: {cfg.duration} s per measurement after a {cfg.warmup} s warm-up, "
        f"median of {cfg.rounds} interleaved round(s), "
        f"{cfg.connections} connections ({cfg.worker_connections} for worker paths), "
        "wrk 1 thread; oha for latency percentiles",
        f"- tools: {env.versions}",
        f"- edgefn functions loaded: {', '.join(env.accepted) or 'none'}"
        + (f"; refused by this build: "
           + "; ".join(f"{k} ({v})" for k, v in env.refused.items()) if env.refused else ""),
        "",
        "| scenario | server | tool | rps | p50 ms | p99 ms | edgefn rps vs peers | responses | note |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['scenario']} | {r['server']} | {r['tool']} | {fmt(r['rps'])} | "
            f"{fmt(r['p50_ms'], 3)} | {fmt(r['p99_ms'], 3)} | {r['ratio']} | "
            f"{r['statuses']} | {r['note']} |"
        )
    checks = targets_check(rows)
    if checks:
        md += ["", "Rejected-request targets (issue 6):", ""] + checks
    if idle:
        md += ["", "Idle keep-alive connections (RSS from /proc/PID/status, server process only):",
               "", "| server | connections | RSS before KiB | RSS after KiB | bytes / connection | vs hyper-header |",
               "|---|---:|---:|---:|---:|---|"]
        base = next((i for i in idle if i["server"] == "hyper-header"), None)
        for i in idle:
            ratio = ""
            if base and base["bytes_per_conn"] and i["bytes_per_conn"] and i is not base:
                ratio = f"{i['bytes_per_conn'] / base['bytes_per_conn']:.2f}×"
            md.append(f"| {i['server']} | {i['connections']} | {fmt(i['rss_before_kib'])} | "
                      f"{fmt(i['rss_after_kib'])} | {fmt(i['bytes_per_conn'])} | {ratio} |")
    if env.notes:
        md += [""] + [f"- {n}" for n in env.notes]
    md.append("")
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(RESULTS, "latest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "scenario", "server", "tool", "rps", "p50_ms", "p99_ms",
                    "ratio_vs_peers", "responses", "note"])
        stamp = started.strftime("%Y-%m-%dT%H:%M:%SZ")
        for r in rows:
            w.writerow([stamp, r["scenario"], r["server"], r["tool"], r["rps"] or "",
                        r["p50_ms"] or "", r["p99_ms"] or "", r["ratio"], r["statuses"],
                        r["note"]])
        for i in idle:
            w.writerow([stamp, "idle", i["server"], "idle_conns.py", "", "", "",
                        "", f"{i['connections']} conns, {i['bytes_per_conn']:.0f} B/conn"
                        if i["bytes_per_conn"] else "", ""])
    return "\n".join(md)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs: finishes in under 2 min")
    ap.add_argument("--only", nargs="+", choices=SCENARIOS, metavar="SCENARIO",
                    help=f"run only these scenarios ({', '.join(SCENARIOS)})")
    ap.add_argument("--duration", type=int, help="seconds per measurement")
    ap.add_argument("--rounds", type=int,
                    help="interleaved rounds per measurement, median kept (1 quick, 3 full)")
    ap.add_argument("--priority", type=int, default=0, metavar="N",
                    help="run servers and load tools at nice -N (root): less noise on a shared machine")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--idle-connections", type=int, default=10_000)
    ap.add_argument("--command", default="bench/run.sh", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.priority > 0:
        PRIORITY[:] = ["nice", "-n", str(-args.priority)]
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.time()
    scenarios = args.only or SCENARIOS
    cfg = Config()
    cfg.command = args.command
    cfg.server_cpu, cfg.load_cpu = cpus()
    cfg.duration = args.duration or (2 if args.quick else 10)
    cfg.warmup = 1 if args.quick else 3
    cfg.rounds = args.rounds or (1 if args.quick else 3)
    cfg.connections = args.connections
    cfg.worker_connections = min(16, args.connections)
    cfg.conns = lambda t: (cfg.worker_connections
                           if t.scenario in ("python", "node", "hmac") else cfg.connections)
    cfg.wrk, cfg.oha = tool_path("wrk"), tool_path("oha")
    cfg.tools = [t for t in ("wrk", "oha") if getattr(cfg, t)]
    cfg.oha_json = oha_json_flag(cfg.oha) if cfg.oha else []

    env = Config()
    env.machine = machine()
    env.notes = []
    if cfg.server_cpu == cfg.load_cpu:
        env.notes.append("only one CPU available: servers and load generator share it")
    for t in ("wrk", "oha"):
        if not getattr(cfg, t):
            env.notes.append(f"{t} not found: its rows are missing (scripts/install-bench-tools.sh)")
    env.versions = ", ".join(v for v in (
        " ".join(first_line([cfg.wrk, "-v"]).split()[:2]) if cfg.wrk else "",
        first_line([cfg.oha, "--version"]) if cfg.oha else "",
        first_line(["nginx", "-v"]).replace("nginx version: ", ""),
        "gunicorn " + first_line(["gunicorn", "--version"]).split()[-1].rstrip(")"),
        "node " + first_line(["node", "--version"]),
    ) if v)

    os.makedirs(RUN, exist_ok=True)
    raise_nofile()
    edgefn = os.path.join(RELEASE, "edgefn")
    hyper = os.path.join(RELEASE, "hyper-header")
    cert, key = openssl_cert()
    fdir, env.accepted, env.refused = edgefn_functions(edgefn)
    env.hmac = hmac_fixture()
    if "hmac" in scenarios and "webhook" not in env.accepted:
        env.notes.append("hmac: not measured, this build refuses the webhook function "
                         "(hmac auth not merged yet)")
        scenarios = [s for s in scenarios if s != "hmac"]

    servers = Servers(cfg.server_cpu)
    cfg.servers = servers
    env.servers = servers
    rows, idle = [], []
    try:
        need = set(scenarios)
        pa = PORTS
        servers.start("edgefn", [edgefn, "serve", "--config", edgefn_config(
            os.path.join(RUN, "edgefn.toml"), f"127.0.0.1:{pa['edgefn']}",
            f"127.0.0.1:{pa['edgefn-admin']}", fdir)], pa["edgefn"])
        if need & {"rejected", "idle"}:
            servers.start("hyper-header", [hyper, f"127.0.0.1:{pa['hyper-header']}", API_KEY],
                          pa["hyper-header"])
        if need & {"tls"}:
            servers.start("edgefn-tls", [edgefn, "serve", "--config", edgefn_config(
                os.path.join(RUN, "edgefn-tls.toml"), f"127.0.0.1:{pa['edgefn-tls']}",
                f"127.0.0.1:{pa['edgefn-tls-admin']}", fdir, (cert, key))], pa["edgefn-tls"])
        if need & {"rejected", "tls", "python"}:
            if need & {"python"}:
                sock = os.path.join(RUN, "gunicorn.sock")
                if os.path.exists(sock):
                    os.unlink(sock)
                start_gunicorn(servers, sock)
            conf = nginx_config(cert, key)
            servers.start("nginx", ["nginx", "-c", conf, "-p", RUN], pa["nginx-map"])
            for alias in ("nginx-map", "nginx-lua", "nginx-tls", "nginx-gunicorn"):
                if servers.procs.get("nginx"):
                    servers.procs[alias] = servers.procs["nginx"]
        if need & {"node"}:
            servers.start("node-http", ["node", os.path.join(BENCH, "peers", "node-http",
                                                             "server.js"), str(pa["node-http"])],
                          pa["node-http"])
        direct = worker_direct_tool()
        if direct and need & {"python", "node"}:
            if "python" in need:
                servers.start("worker-direct-python", direct + [
                    "--listen", f"127.0.0.1:{pa['worker-direct-python']}",
                    os.path.join(fdir, "py-hello")], pa["worker-direct-python"])
            if "node" in need:
                servers.start("worker-direct-node", direct + [
                    "--listen", f"127.0.0.1:{pa['worker-direct-node']}",
                    os.path.join(fdir, "node-hello")], pa["worker-direct-node"])
        elif need & {"python", "node"}:
            env.notes.append("no bench/worker-direct tool on this branch: the gateway-added "
                             "latency over calling the worker directly is not reported")
        time.sleep(0.5)

        for sc in scenarios:
            if sc == "idle":
                continue
            measure(sc, cfg, env, rows)
        if "idle" in scenarios:
            for name, port, path in (("edgefn", pa["edgefn"], "/_fn/health"),
                                     ("hyper-header", pa["hyper-header"], "/")):
                log(f"idle/{name}: {args.idle_connections} keep-alive connections")
                r = idle_measure(name, port, path, args.idle_connections, cfg)
                if r:
                    idle.append(r)
    finally:
        servers.stop_all()

    ratios(rows)
    text = write_report(rows, idle, cfg, env, started, time.time() - t0)
    print(text)
    log(f"wrote bench/results/latest.md and latest.csv in {time.time() - t0:.0f} s")


def start_gunicorn(servers, sock):
    """gunicorn (2 sync workers) on a Unix socket behind nginx; ready when the socket
    accepts."""
    out = open(os.path.join(RUN, "gunicorn.log"), "wb")
    proc = subprocess.Popen(
        PRIORITY + ["taskset", "-c", servers.cpu, sys.executable, "-m", "gunicorn", "-w", "2",
         "--bind", f"unix:{sock}", "--chdir", os.path.join(BENCH, "peers", "wsgi"),
         "app:app"],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 20
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
                servers.procs["gunicorn"] = proc
                return proc
        except OSError:
            time.sleep(0.1)
    log("gunicorn did not start (see bench/.run/gunicorn.log)")
    servers.stop_one(proc)
    return None


if __name__ == "__main__":
    main()
