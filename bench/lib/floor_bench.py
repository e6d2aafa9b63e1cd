"""The accepted/refusal floor (`bench/floor.sh`): edgefn and `peers/floor/floor.c` (an epoll
loop that refuses at once or hands a frame to a forked worker, with nothing else) refuse and
accept requests in the same interleaved CPU rounds at a fixed offered load. The floor's ratio
is what this machine's kernel alone makes of the worker hand-off; edgefn's gap over the
floor's gap is the gateway's own work on the accepted path.

With `--worker-us` the floor runs a second time, its worker spending that long and touching
`--worker-kb` of memory per request (a handler's CPU and cache footprint, as Python's worker
has them): what the same hand-off costs the server when its worker runs as long as a
handler and evicts the server's caches meanwhile."""
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
from load import Target, cpu_per_request, group_tasks, oha_json_flag, probe  # noqa: E402
from servers import cpus, tool_path  # noqa: E402

EDGEFN_PORT, FLOOR_PORT, LOADED_PORT = 18095, 18096, 18097
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


def switches(pgid):
    """(voluntary context switches of the group leader's threads, involuntary ones of the
    rest of process group `pgid`): how often the server slept, how often its workers were
    preempted."""
    slept = preempted = 0
    for pid, task in group_tasks(pgid):
        try:
            with open(f"{task}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if pid == pgid:
                slept += int(fields["voluntary_ctxt_switches"])
            else:
                preempted += int(fields["nonvoluntary_ctxt_switches"])
        except (OSError, ValueError, KeyError):
            continue
    return slept, preempted


def cpu_round(t, cfg, pgid, rate, seconds):
    """load.cpu_per_request, which must have measured something, with the server's sleeps
    and its workers' preemptions per request."""
    before = switches(pgid)
    r = cpu_per_request(t, cfg, pgid, rate, seconds)
    after = switches(pgid)
    if not r:
        sys.exit(f"floor bench: no responses from {t.url}")
    r["sleeps"] = (after[0] - before[0]) / r["requests"]
    r["preempted"] = (after[1] - before[1]) / r["requests"]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--worker-us", type=int, default=0,
                    help="also run the floor with a worker spending this long per request")
    ap.add_argument("--worker-kb", type=int, default=512,
                    help="memory that worker touches per request (KiB)")
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
    if args.worker_us:
        procs[loaded_name(args)] = start(["taskset", "-c", server_cpu, args.floor, str(LOADED_PORT),
                                          str(args.worker_us), str(args.worker_kb)])
    refuse = [("x-api-key", WRONG_KEY)]
    targets = {
        "edgefn": (Target("floor", "edgefn", f"http://127.0.0.1:{EDGEFN_PORT}/hello-py", 200),
                   Target("floor", "edgefn", f"http://127.0.0.1:{EDGEFN_PORT}/secure", 401, refuse)),
        "floor": (Target("floor", "floor", f"http://127.0.0.1:{FLOOR_PORT}/accept", 200),
                  Target("floor", "floor", f"http://127.0.0.1:{FLOOR_PORT}/refuse", 401, refuse)),
    }
    if args.worker_us:
        name = loaded_name(args)
        targets[name] = (Target("floor", name, f"http://127.0.0.1:{LOADED_PORT}/accept", 200),
                         Target("floor", name, f"http://127.0.0.1:{LOADED_PORT}/refuse", 401, refuse))
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


def loaded_name(args):
    return f"floor, {args.worker_us} µs {args.worker_kb} KiB worker"


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
        "- *sleeps*: voluntary context switches of the server's threads per request (one sleep "
        "may serve several requests); *preempted*: involuntary switches of its workers per request",
        "",
        "| server | request | server µs / request | worker µs / request | sleeps / request | "
        "worker preempted / request | requests (median round) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    med = {}
    for (name, kind), rs in per.items():
        server = statistics.median(r["us_leader"] for r in rs)
        worker = statistics.median(r["us_per_req"] - r["us_leader"] for r in rs)
        med[(name, kind)] = server
        sleeps = statistics.median(r["sleeps"] for r in rs)
        preempted = statistics.median(r["preempted"] for r in rs)
        lines.append(f"| {name} | {kind} | {server:.1f} | {worker:.1f} | {sleeps:.2f} | {preempted:.2f} | "
                     f"{int(statistics.median(r['requests'] for r in rs)):,} |")
    lines.append("")
    for name in dict.fromkeys(n for n, _ in per):
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
    if args.worker_us:
        name = loaded_name(args)
        l_gap = med[(name, "accepted")] - med[(name, "refusal")]
        lines.append(f"- with a worker spending {args.worker_us} µs and touching {args.worker_kb} KiB per "
                     f"request, the floor's accepted − refusal is {l_gap:.1f} µs ({l_gap - f_gap:+.1f} µs on "
                     f"the bare floor's): edgefn's accepted-path work above it is {e_gap - l_gap:.1f} µs")
    text = "\n".join(lines) + "\n"
    path = os.path.join(RESULTS, "floor.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
