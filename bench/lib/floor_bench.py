"""The accepted/refusal floor (`bench/floor.sh`): edgefn and `peers/floor/floor.c` (an epoll
loop that refuses at once or hands a frame to a forked worker, with nothing else) refuse and
accept requests in the same interleaved CPU rounds at a fixed offered load. The floor's ratio
is what this machine's kernel alone makes of the worker hand-off; edgefn's gap over the
floor's gap is the gateway's own work on the accepted path."""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from common import API_KEY, BENCH, RELEASE, RESULTS, WRONG_KEY, log  # noqa: E402
from load import LoadMeter, group_cpu_split_ns  # noqa: E402
from servers import cpus, tool_path  # noqa: E402

EDGEFN_PORT, FLOOR_PORT = 18095, 18096
# A round the host stole more than this share of the CPUs from is measured again (twice at most).
STEAL_LIMIT = 0.02


def start(argv, env=None):
    """In its own session, so its process group is the server and its workers."""
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def status(url, headers):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_for(url, headers, want, proc):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"floor bench: {url}: the server exited ({proc.returncode})")
        if status(url, headers) == want:
            return
        time.sleep(0.1)
    sys.exit(f"floor bench: {url} never answered {want}")


def cpu_round(oha, load_cpu, pgid, url, headers, rate, seconds, conns):
    """(gateway µs per request, worker µs per request, steal share, requests)."""
    argv = ["taskset", "-c", load_cpu, oha, "-z", f"{seconds}s", "-q", str(rate), "-c", str(conns),
            "--no-tui"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(url)
    before, before_leader = group_cpu_split_ns(pgid)
    with LoadMeter() as meter:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    after, after_leader = group_cpu_split_ns(pgid)
    n = 0
    for line in out.stdout.splitlines():
        parts = line.split()
        # oha's text summary: "[200] 20000 responses"
        if len(parts) == 3 and parts[0].startswith("[") and parts[2] == "responses":
            n += int(parts[1])
    if n == 0:
        sys.exit(f"floor bench: no responses from {url}: {out.stderr.strip()[:300]}")
    leader = (after_leader - before_leader) / 1e3 / n
    workers = (after - before - (after_leader - before_leader)) / 1e3 / n
    return leader, workers, meter.steal, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--floor", required=True, help="the compiled peers/floor/floor.c")
    ap.add_argument("--command", default="bench/floor.sh")
    args = ap.parse_args()
    server_cpu, load_cpu = cpus()
    oha = tool_path("oha") or sys.exit("floor bench: oha not found (scripts/install-bench-tools.sh)")
    work = tempfile.mkdtemp(prefix="edgefn-floor-")
    fn = os.path.join(work, "fn")
    os.makedirs(fn)
    for name in ("secure", "hello-py"):
        subprocess.run(["cp", "-r", os.path.join(BENCH, "functions", name), fn], check=True)
    conf = os.path.join(work, "edgefn.toml")
    with open(conf, "w") as f:
        # The shipped defaults but the ports: access log on.
        f.write(f'[server]\nlisten = "127.0.0.1:{EDGEFN_PORT}"\n[admin]\nlisten = "127.0.0.1:0"\n')
    env = dict(os.environ, API_KEY=API_KEY)
    procs = {
        "edgefn": start(["taskset", "-c", server_cpu, os.path.join(RELEASE, "edgefn"), "serve",
                         "--config", conf, "--functions", fn], env),
        "floor": start(["taskset", "-c", server_cpu, args.floor, str(FLOOR_PORT)]),
    }
    refuse = {"x-api-key": WRONG_KEY}
    paths = {
        "edgefn": (f"http://127.0.0.1:{EDGEFN_PORT}/hello-py", f"http://127.0.0.1:{EDGEFN_PORT}/secure"),
        "floor": (f"http://127.0.0.1:{FLOOR_PORT}/accept", f"http://127.0.0.1:{FLOOR_PORT}/refuse"),
    }
    try:
        for name, (acc, ref) in paths.items():
            wait_for(acc, {}, 200, procs[name])
            wait_for(ref, refuse, 401, procs[name])
            # Warm-up: pools at their steady size, caches and JIT-free paths hot.
            cpu_round(oha, load_cpu, procs[name].pid, acc, {}, args.rate, 3, args.connections)
        per = {(name, kind): [] for name in paths for kind in ("accepted", "refusal")}
        set_aside = 0
        for rnd in range(args.rounds):
            for name, (acc, ref) in paths.items():
                for kind, url, headers in (("accepted", acc, {}), ("refusal", ref, refuse)):
                    for attempt in range(3):
                        log(f"floor/{name}/{kind} round {rnd + 1}/{args.rounds}")
                        r = cpu_round(oha, load_cpu, procs[name].pid, url, headers, args.rate,
                                      args.seconds, args.connections)
                        if r[2] < STEAL_LIMIT or attempt == 2:
                            break
                        set_aside += 1
                    per[(name, kind)].append(r)
    finally:
        for p in procs.values():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)
        subprocess.run(["rm", "-rf", work])
    write(args, per, set_aside)


def write(args, per, set_aside):
    lines = [
        "# Accepted/refusal floor",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- command: `{args.command}`",
        f"- load: oha -q {args.rate}, {args.connections} connections, {args.seconds} s per "
        f"measurement, {args.rounds} interleaved rounds (each server's accepted and refused "
        f"requests in turn); {set_aside} round(s) with ≥ {STEAL_LIMIT * 100:.0f}% steal measured again",
        "- CPU from /proc/PID/task/TID/schedstat: *server* is the process answering HTTP "
        "(edgefn's gateway, the floor's epoll loop), *worker* its worker processes",
        "",
        "| server | request | server µs / request | worker µs / request | requests (median round) |",
        "|---|---|---:|---:|---:|",
    ]
    med = {}
    for (name, kind), rs in per.items():
        server = statistics.median(r[0] for r in rs)
        worker = statistics.median(r[1] for r in rs)
        med[(name, kind)] = server
        lines.append(f"| {name} | {kind} | {server:.1f} | {worker:.1f} | "
                     f"{int(statistics.median(r[3] for r in rs)):,} |")
    lines.append("")
    for name in ("edgefn", "floor"):
        ratios = [a[0] / r[0] for a, r in zip(per[(name, "accepted")], per[(name, "refusal")])]
        gap = med[(name, "accepted")] - med[(name, "refusal")]
        lines.append(f"- {name}: accepted / refusal, median of the per-round ratios = "
                     f"**{statistics.median(ratios):.2f}×** "
                     f"({', '.join(f'{q:.2f}' for q in sorted(ratios))}); accepted − refusal = {gap:.1f} µs")
    e_gap = med[("edgefn", "accepted")] - med[("edgefn", "refusal")]
    f_gap = med[("floor", "accepted")] - med[("floor", "refusal")]
    lines.append(f"- edgefn's accepted-path work above the floor's: {e_gap - f_gap:.1f} µs per request; "
                 f"its refusal above the floor's: {med[('edgefn', 'refusal')] - med[('floor', 'refusal')]:.1f} µs")
    text = "\n".join(lines) + "\n"
    path = os.path.join(RESULTS, "floor.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
