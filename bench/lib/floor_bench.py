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
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(__file__))
from common import API_KEY, BENCH, RELEASE, RESULTS, WRONG_KEY, log  # noqa: E402
from load import Target, cpu_per_request, oha_json_flag, probe  # noqa: E402
from servers import cpus, tool_path  # noqa: E402

EDGEFN_PORT, FLOOR_PORT = 18095, 18096
# A round the host stole more than this share of the CPUs from is measured again (twice at most).
STEAL_LIMIT = 0.02


def start(argv, env=None):
    """In its own session, so its process group is the server and its workers."""
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_for(t, proc):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"floor bench: {t.url}: the server exited ({proc.returncode})")
        if probe(t) == t.expect:
            return
        time.sleep(0.1)
    sys.exit(f"floor bench: {t.url} never answered {t.expect}")


def cpu_round(t, cfg, pgid, rate, seconds):
    """load.cpu_per_request, which must have measured something."""
    r = cpu_per_request(t, cfg, pgid, rate, seconds)
    if not r:
        sys.exit(f"floor bench: no responses from {t.url}")
    return r


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
    refuse = [("x-api-key", WRONG_KEY)]
    targets = {
        "edgefn": (Target("floor", "edgefn", f"http://127.0.0.1:{EDGEFN_PORT}/hello-py", 200),
                   Target("floor", "edgefn", f"http://127.0.0.1:{EDGEFN_PORT}/secure", 401, refuse)),
        "floor": (Target("floor", "floor", f"http://127.0.0.1:{FLOOR_PORT}/accept", 200),
                  Target("floor", "floor", f"http://127.0.0.1:{FLOOR_PORT}/refuse", 401, refuse)),
    }
    cfg = SimpleNamespace(load_cpu=load_cpu, oha=oha, connections=args.connections,
                          oha_json=oha_json_flag(oha))
    try:
        for name, (acc, ref) in targets.items():
            wait_for(acc, procs[name])
            wait_for(ref, procs[name])
            # Warm-up: pools at their steady size, caches hot.
            cpu_round(acc, cfg, procs[name].pid, args.rate, 3)
        per = {(name, kind): [] for name in targets for kind in ("accepted", "refusal")}
        set_aside = 0
        for rnd in range(args.rounds):
            for name, (acc, ref) in targets.items():
                for kind, t in (("accepted", acc), ("refusal", ref)):
                    for attempt in range(3):
                        log(f"floor/{name}/{kind} round {rnd + 1}/{args.rounds}")
                        r = cpu_round(t, cfg, procs[name].pid, args.rate, args.seconds)
                        if (r["steal"] or 0) < STEAL_LIMIT or attempt == 2:
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
        server = statistics.median(r["us_leader"] for r in rs)
        worker = statistics.median(r["us_per_req"] - r["us_leader"] for r in rs)
        med[(name, kind)] = server
        lines.append(f"| {name} | {kind} | {server:.1f} | {worker:.1f} | "
                     f"{int(statistics.median(r['requests'] for r in rs)):,} |")
    lines.append("")
    for name in ("edgefn", "floor"):
        ratios = [a["us_leader"] / r["us_leader"]
                  for a, r in zip(per[(name, "accepted")], per[(name, "refusal")])]
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
