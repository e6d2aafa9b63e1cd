"""The load side, pinned to the load core: one probe request per target, wrk (rps,
latency distribution) and oha (JSON: rps, percentiles, status codes), the idle-connection
measurement (RSS from /proc)."""
import http.client
import json
import os
import re
import resource
import ssl
import subprocess
import sys
import time

from common import BENCH, PRIORITY, RUN, log


class Target:
    """One server endpoint loaded in one scenario."""

    def __init__(self, scenario, server, url, expect, headers=(), method="GET",
                 body_file=None, http2=False, peer=True, note="", proc=None, keepalive=True,
                 logs=()):
        self.scenario, self.server, self.url = scenario, server, url
        # The process (Servers.procs key) behind the URL, when it is not named `server`.
        self.proc = proc or server
        self.expect = expect
        self.headers = list(headers)
        self.method, self.body_file, self.http2 = method, body_file, http2
        self.peer = peer
        self.note = note
        # False: a new connection per request (oha --disable-keepalive).
        self.keepalive = keepalive
        # Access-log files the server appends to while it is loaded (see `LogFiles`).
        self.logs = list(logs)


class LogFiles:
    """The access logs a target writes, emptied before each measurement and weighed after
    it. Emptying drops their dirty pages before the kernel writes them back: a full run's
    defaults scenario appended ~1.5 GB, whose writeback (unpinned flusher threads, the VM's
    block device) slowed the load generator and every server measured after it alike. The
    server's own cost of logging (formatting, its write() into the page cache) is measured
    unchanged; the bytes written per request show the log really was on."""

    def __init__(self, paths):
        self.paths = list(paths)

    def empty(self):
        for p in self.paths:
            try:
                os.truncate(p, 0)
            except OSError:
                pass

    def weigh(self):
        """Bytes appended since `empty`, then empties again."""
        total = 0
        for p in self.paths:
            try:
                total += os.path.getsize(p)
            except OSError:
                pass
        self.empty()
        return total


class LoadMeter:
    """The load generator's CPU share of its core over one run (from getrusage of the
    children: a share near 100% means the rate measured the client, not the server) and
    the machine's steal time (the hypervisor running something else: every figure of the
    run is inflated alike)."""

    def __enter__(self):
        self.t0 = time.monotonic()
        self.ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.steal0 = steal_ticks()
        return self

    def __exit__(self, *exc):
        wall = max(time.monotonic() - self.t0, 1e-6)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru.ru_utime - self.ru0.ru_utime) + (ru.ru_stime - self.ru0.ru_stime)
        self.client = cpu / wall
        ticks = os.sysconf("SC_CLK_TCK") * wall * (os.cpu_count() or 1)
        self.steal = (steal_ticks() - self.steal0) / ticks
        return False

    def into(self, res):
        res["client"] = self.client
        res["steal"] = self.steal
        return res


def steal_ticks():
    """Steal time of all CPUs so far, in clock ticks (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8])
    except (OSError, ValueError, IndexError):
        return 0


def probe(t):
    """One request with the target's method, headers and body; returns the status."""
    return probe_full(t)[0]


def probe_full(t):
    """One request; returns (status, headers) or (None, {})."""
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
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    except (OSError, http.client.HTTPException) as e:
        log(f"probe {t.server} {t.url}: {e}")
        return None, {}
    finally:
        conn.close()


def wait_started(t, deadline_s):
    """While the target answers 503 with `Retry-After` (edgefn: the function's pool is still
    starting, e.g. the gateway building a Rust handler), asks again until `deadline_s`;
    returns the last status. The build or install is not part of any measurement."""
    t0 = time.time()
    status, headers = probe_full(t)
    said = False
    while status == 503 and "retry-after" in headers and time.time() - t0 < deadline_s:
        if not said:
            log(f"{t.scenario}/{t.server}: still starting (503 + Retry-After), waiting "
                f"up to {deadline_s:.0f} s")
            said = True
        time.sleep(0.5)
        status, headers = probe_full(t)
    if said:
        log(f"{t.scenario}/{t.server}: answers {status} after {time.time() - t0:.0f} s")
    return status


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
    with LoadMeter() as meter:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.duration + 60)
    text = out.stdout
    res = meter.into({"tool": "wrk", "rps": None, "p50": None, "p99": None, "statuses": "",
                      "requests": None})
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
        res["requests"] = int(total.group(1))
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
    if not t.keepalive:
        argv.append("--disable-keepalive")
    for k, v in t.headers:
        argv += ["-H", f"{k}: {v}"]
    if t.method != "GET":
        argv += ["-m", t.method]
    if t.body_file:
        argv += ["-D", t.body_file]
    argv.append(t.url)
    with LoadMeter() as meter:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.duration + 60)
    res = meter.into({"tool": "oha", "rps": None, "p50": None, "p99": None, "statuses": "",
                      "requests": None})
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
    res["requests"] = sum(codes.values())
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


def group_cpu_ns(pgid):
    """Nanoseconds on CPU of every live thread of every process in process group `pgid` (a
    server started in its own session: nginx's workers, edgefn's runtime workers included),
    from the scheduler's own accounting (`/proc/PID/task/TID/schedstat`): exact, where
    utime/stime are sampled at clock ticks."""
    return group_cpu_split_ns(pgid)[0]


def group_tasks(pgid):
    """(pid, /proc/PID/task/TID directory) of every thread in process group `pgid`."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:  # pgrp
                continue
            tids = os.listdir(f"/proc/{d}/task")
        except (OSError, ValueError, IndexError):
            continue
        for tid in tids:
            yield int(d), f"/proc/{d}/task/{tid}"


def group_cpu_split_ns(pgid):
    """(all of process group `pgid`, its leader process alone): for edgefn, the leader is
    the gateway and the rest are its workers."""
    total = leader = 0
    for pid, task in group_tasks(pgid):
        try:
            with open(f"{task}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        total += ns
        if pid == pgid:
            leader += ns
    return total, leader


def cpu_per_request(t, cfg, pgid, rate, duration):
    """Server CPU per request at a fixed offered load (oha -q): what each answer costs the
    server, whatever the load generator's own ceiling."""
    argv = PRIORITY + ["taskset", "-c", cfg.load_cpu, cfg.oha, "-z", f"{duration}s",
                       "-q", str(rate), "-c", str(cfg.connections), "--no-tui"] + cfg.oha_json
    for k, v in t.headers:
        argv += ["-H", f"{k}: {v}"]
    argv.append(t.url)
    before, before_leader = group_cpu_split_ns(pgid)
    with LoadMeter() as meter:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    after, after_leader = group_cpu_split_ns(pgid)
    try:
        codes = json.loads(out.stdout).get("statusCodeDistribution", {})
    except json.JSONDecodeError:
        log(f"oha failed for {t.server}: {out.stderr.strip()[:300]}")
        return None
    n = sum(codes.values())
    if n == 0:
        return None
    return {"scenario": t.scenario, "server": t.server, "rate": rate, "requests": n,
            "us_per_req": (after - before) / 1e3 / n,
            "us_leader": (after_leader - before_leader) / 1e3 / n,
            "steal": meter.steal,
            "statuses": ", ".join(f"{k}: {v}" for k, v in sorted(codes.items()))}


def idle_measure(name, port, path, n, cfg, label=None):
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
        err = tool.stderr.read().strip()[-300:] if tool.poll() is not None else ""
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
    time.sleep(2.0)  # let the closed connections drain before the next server
    per_conn = (after - before) * 1024 / n if before is not None and after else None
    return {
        "server": label or name, "connections": n, "rss_before_kib": before, "rss_after_kib": after,
        "bytes_per_conn": per_conn, "open_s": opened, "detail": line,
    }




def run_worker_direct(exe, handler, n, cold, server_cpu):
    """One closed-loop run of bench/tools/worker-direct on the server core (the tool and
    the worker it spawns stand where edgefn and its worker stand); one request in flight."""
    argv = PRIORITY + ["taskset", "-c", server_cpu, exe, handler, str(n), str(cold)]
    # The first start may build a Rust handler (untimed): a generous bound.
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    res = {"tool": "worker-direct", "rps": None, "p50": None, "p99": None, "statuses": ""}
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("{")), None)
    if not line:
        res["error"] = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1][-200:]
        log(f"worker-direct failed for {handler}: {out.stderr.strip()[-300:]}")
        return res
    data = json.loads(line)
    res["rps"] = data.get("rps")
    res["p50"] = data["p50_us"] / 1000.0 if data.get("p50_us") is not None else None
    res["p99"] = data["p99_us"] / 1000.0 if data.get("p99_us") is not None else None
    res["statuses"] = f"{data.get('requests')} req, all 200"
    res["ready_p50"], res["ready_max"] = data.get("ready_ms_p50"), data.get("ready_ms_max")
    if data.get("ready_ms_p50") is not None:
        res["ready"] = (f"fresh worker ready in {data['ready_ms_p50']:.0f} ms p50, "
                        f"{data['ready_ms_max']:.0f} ms max ({data.get('cold_starts')} starts)")
    return res
