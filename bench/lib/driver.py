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
import datetime
import hashlib
import hmac
import os
import sys
import time

from common import (API_KEY, BENCH, HMAC_BODY_BYTES, PAIRED_REFUSAL, PORTS, PRIORITY, RELEASE, RUN,
                    SCENARIOS, WEBHOOK_SECRET, WRONG_KEY, log)
from load import (LogFiles, Target, cpu_per_request, idle_measure, oha_json_flag, probe, run_oha, run_worker_direct,
                  run_wrk, wait_started, warm_up)
import runtimes
import tls_handshake
from report import aggregate, judged, ratios, write_report
from servers import (Servers, cpus, edgefn_config, edgefn_functions, first_line, machine,
                     nginx_config, openssl_cert, raise_nofile, start_granian, start_gunicorn,
                     start_uvicorn,
                     tool_path,
                     worker_direct_tool)


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
        # A build that refuses the fixture answers 404 here: the probe lists it as not measured.
        out.append(Target("rejected", "edgefn", f"{e}/secure", 401, wrong, peer=False))
        out += [
            Target("rejected", "hyper-header", f"http://127.0.0.1:{PORTS['hyper-header']}/", 401, wrong),
            Target("rejected", "nginx-map", f"http://127.0.0.1:{PORTS['nginx-map']}/", 401, wrong),
            Target("rejected", "nginx-lua", f"http://127.0.0.1:{PORTS['nginx-lua']}/", 401, wrong),
        ]
    elif scenario == "defaults":
        # edgefn as shipped (access log on) against nginx with its buffered access log, and
        # against itself with the log off.
        d = f"http://127.0.0.1:{PORTS['edgefn-defaults']}"
        # The same oha and wrk options as `rejected`; the logs are emptied around each
        # measurement (load.LogFiles) so their writeback never lands in a later one.
        out.append(Target("defaults", "edgefn", f"{d}/secure", 401, wrong, peer=False,
                          proc="edgefn-defaults", note="access log on",
                          logs=[os.path.join(RUN, "edgefn-defaults.log")]))
        out.append(Target("defaults", "edgefn-log-off", f"{e}/secure", 401, wrong, proc="edgefn"))
        out.append(Target("defaults", "nginx-map-log",
                          f"http://127.0.0.1:{PORTS['nginx-map-log']}/", 401, wrong, proc="nginx",
                          logs=[os.path.join(RUN, "nginx-access.log")]))
    elif scenario == "python":
        out.append(Target("python", "edgefn", f"{e}/py-hello", 200, peer=False))
        out.append(Target("python", "nginx-gunicorn",
                          f"http://127.0.0.1:{PORTS['nginx-gunicorn']}/", 200, proc="nginx"))
        out.append(Target("python", "uvicorn", f"http://127.0.0.1:{PORTS['uvicorn']}/", 200))
        out.append(Target("python", "granian", f"http://127.0.0.1:{PORTS['granian']}/", 200,
                          note="ASGI: the uvicorn peer's app"))
        out.append(Target("python", "granian-rsgi",
                          f"http://127.0.0.1:{PORTS['granian-rsgi']}/", 200))
    elif scenario == "node":
        out.append(Target("node", "edgefn", f"{e}/node-hello", 200, peer=False))
        out.append(Target("node", "node-http", f"http://127.0.0.1:{PORTS['node-http']}/", 200))
    elif scenario == "runtimes":
        out += runtimes.targets()
    elif scenario == "tls-newconn":
        # A new connection per request with oha; its rustls client may resume sessions.
        note = "oha --disable-keepalive (its client caches sessions: handshakes may be resumed)"
        out.append(Target("tls-newconn", "edgefn", f"https://127.0.0.1:{PORTS['edgefn-tls']}/secure",
                          401, wrong, peer=False, keepalive=False, proc="edgefn-tls", note=note))
        out.append(Target("tls-newconn", "nginx-tls", f"https://127.0.0.1:{PORTS['nginx-tls']}/",
                          401, wrong, keepalive=False, proc="nginx"))
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
        for sc, h2 in (("tls-h1", False), ("tls-h2", True)):
            out.append(Target(sc, "edgefn", t + "/secure", 401, wrong, http2=h2, peer=False))
            out.append(Target(sc, "nginx-tls", n, 401, wrong, http2=h2))
    return out


class Config:
    pass


# Offered loads of the CPU-per-request measurement: a moderate one, where wake-ups dominate,
# and a busy one; both well under every server's ceiling here.
CPU_RATES = (2_000, 20_000)
# Scenarios measured at those rates: refusals, and the accepted path (gateway vs workers).
CPU_SCENARIOS = {"rejected": CPU_RATES, "defaults": CPU_RATES, "python": (2_000,),
                 "node": (2_000,)}


def measure(scenario, cfg, env, rows):
    """Probes every target, warms each up, then runs `cfg.rounds` interleaved rounds
    (each tool on each server in turn) and keeps the median of each figure: drifts in
    background load hit every server of a scenario alike instead of one of them."""
    live = []
    for t in targets(scenario, env):
        if t.server != "edgefn" and t.proc not in cfg.servers.procs:
            rows.append(row(t, "-", None, note=f"{t.server} not running"))
            continue
        # A pool still starting (a Rust build) answers 503 + Retry-After: wait for it.
        status = wait_started(t, START_DEADLINE_S)
        if status != t.expect:
            rows.append(row(t, "-", None,
                            note=f"not measured: answers {status}, expected {t.expect}"
                            + (f" ({t.note})" if t.note else "")))
            log(f"{t.scenario}/{t.server}: answers {status}, expected {t.expect}: skipped")
            continue
        warm_up(t, cfg)
        LogFiles(t.logs).empty()
        live.append(t)
    runs = {}
    for rnd in range(cfg.rounds):
        for tool in cfg.tools:
            for t in live:
                if tool == "wrk" and (t.http2 or not t.keepalive):
                    continue  # wrk speaks HTTP/1.1 only and always keeps connections alive
                log(f"{t.scenario}/{t.server}/{tool} round {rnd + 1}/{cfg.rounds} "
                    f"({cfg.duration}s, {cfg.conns(t)} conns)")
                res = run_wrk(t, cfg) if tool == "wrk" else run_oha(t, cfg)
                if t.logs:
                    res["log_bytes"] = LogFiles(t.logs).weigh()
                runs.setdefault((id(t), tool), (t, []))[1].append(res)
    for t, results in runs.values():
        rows.append(row(t, results[0]["tool"], aggregate(results),
                        note=load_note(t.note, results)))
    if scenario in CPU_SCENARIOS and cfg.oha:
        # The same offered load for every server, below all their ceilings: CPU per
        # answer, median of the interleaved rounds.
        measured = live + paired_refusal(scenario)
        for rate in CPU_SCENARIOS[scenario]:
            per, set_aside = {}, {}
            for rnd in range(cfg.cpu_rounds):
                for t in measured:
                    proc = cfg.servers.procs.get(t.proc)
                    if proc is None:
                        continue
                    # A round the host stole CPU from is measured again (at most twice):
                    # the stolen time lands on whichever server ran then, not on all alike.
                    for attempt in range(1 + CPU_REMEASURE):
                        log(f"{scenario}-cpu/{t.server} round {rnd + 1}/{cfg.cpu_rounds} "
                            f"({rate} req/s for {max(cfg.duration, 3)}s)")
                        r = cpu_per_request(t, cfg, proc.pid, rate, max(cfg.duration, 3))
                        LogFiles(t.logs).empty()
                        if not r or (r.get("steal") or 0) < STEAL_NOTE or attempt == CPU_REMEASURE:
                            break
                        set_aside[t.server] = set_aside.get(t.server, 0) + 1
                    if r:
                        r["round"] = rnd
                        per.setdefault(t.server, []).append(r)
            for server, results in per.items():
                # Each round's gateway figure, for ratios paired round by round.
                by_round = {r["round"]: r["us_leader"] for r in results}
                results.sort(key=lambda r: r["us_per_req"])
                mid = dict(results[len(results) // 2])
                mid["remeasured"] = set_aside.get(server, 0)
                mid["rounds"] = by_round
                cfg.cpu_rows.append(mid)


def paired_refusal(scenario):
    """For the accepted-path scenarios, the same edgefn process refusing a request (the
    `rejected` scenario's 401) in the same interleaved CPU rounds: the accepted/refusal
    ratio is then taken round by round, minutes apart at most, where the host's drift
    between scenarios (the same refusal has cost 1.6× more ten minutes later) would
    otherwise land on one side of it."""
    if scenario not in ("python", "node"):
        return []
    t = Target(scenario, PAIRED_REFUSAL, f"http://127.0.0.1:{PORTS['edgefn']}/secure", 401,
               [("x-api-key", WRONG_KEY)], peer=False, proc="edgefn")
    return [t] if probe(t) == 401 else []


# A load generator busier than this on its core was the ceiling of the rate it measured.
CLIENT_BOUND = 0.9
# Steal time (share of all CPUs) past which a run is flagged as disturbed.
STEAL_NOTE = 0.02
# Extra attempts at a CPU-per-request round the host disturbed (steal ≥ STEAL_NOTE).
CPU_REMEASURE = 2


def load_note(note, results):
    """The target's note, plus what the rounds say about the measurement itself: the load
    generator's CPU share (client-bound when it filled its core), steal time, and the
    access-log bytes written per request."""
    parts = [note] if note else []
    client = sorted(r["client"] for r in results if r.get("client") is not None)
    if client:
        share = client[len(client) // 2]
        if share >= CLIENT_BOUND:
            parts.append(f"client-bound: {results[0]['tool']} used {share * 100:.0f}% of the load core")
    steal = max((r.get("steal") or 0) for r in results)
    if steal >= STEAL_NOTE:
        parts.append(f"disturbed: {steal * 100:.0f}% steal time")
    logged = [(r["log_bytes"], r["requests"]) for r in results
              if r.get("log_bytes") is not None and r.get("requests")]
    if logged:
        per = sorted(b / n for b, n in logged)[len(logged) // 2]
        parts.append(f"{per:.0f} log bytes written per request")
    return "; ".join(parts)


# How long a target may answer "starting" (503 + Retry-After) before it is reported as not
# measured: a Rust function's first build on a busy machine takes minutes.
START_DEADLINE_S = 1200


def measure_runtimes(cfg, env, rows):
    """Gateway rps per runtime (interleaved like every scenario), then worker-direct per
    runtime, joined in the report's runtimes table."""
    measure("runtimes", cfg, env, rows)
    results = runtimes.direct(cfg, env.direct) if env.direct else {}
    for rt, res in results.items():
        d = Target("runtimes", f"worker-direct ({rt})", "-", 200, peer=False)
        rows.append(row(d, "worker-direct", res, note=res.get("ready", res.get("error", ""))))
    cfg.sections.append(("Per runtime (issue 13 point 6): the same small JSON handler; gateway rps "
                         f"with {cfg.worker_connections} connections to one worker; worker-direct "
                         "one request at a time; fresh worker ready time: `PoolRegistry::ensure` "
                         "until the first worker is ready, median of the fresh starts (Rust: "
                         "after the build)", runtimes.table(rows, results)))


def measure_tls_handshake(cfg, env, rows):
    """Full TLS 1.3 handshakes (bench/tools/tls-load) on edgefn and nginx with the same
    P-256 certificate, per key-exchange group, interleaved rounds, median; oha with a new
    connection per request; session resumption on each."""
    servers = [("edgefn", "edgefn-tls", PORTS["edgefn-tls"]), ("nginx-tls", "nginx", PORTS["nginx-tls"])]
    per = {}
    for name, proc_name, port in servers:
        proc = cfg.servers.procs.get(proc_name)
        if proc is not None:
            # Warm-up, not counted: the first connections fault in the server's memory.
            tls_handshake.full_handshakes(port, cfg, proc.pid, 1)
    for rnd in range(cfg.rounds):
        for group in tls_handshake.GROUPS:
            for name, proc_name, port in servers:
                proc = cfg.servers.procs.get(proc_name)
                if proc is None:
                    continue
                log(f"tls-handshake/{name}/{group} round {rnd + 1}/{cfg.rounds} ({cfg.duration}s, "
                    f"{tls_handshake.CONNECTIONS} connections)")
                r = tls_handshake.full_handshakes(port, cfg, proc.pid, cfg.duration, group)
                if r:
                    per.setdefault((name, group), []).append(r)
    med = {}
    for group in tls_handshake.GROUPS:
        for name, _, _ in servers:
            t = Target("tls-handshake", name, "-", 0, peer=name != "edgefn")
            t.scenario = f"tls-handshake ({group})"
            results = sorted(per.get((name, group), []), key=lambda r: r["rps"])
            if not results:
                rows.append(row(t, "tls-load", None, note="not measured: tls-load failed (see log)"))
                continue
            m = med[(name, group)] = results[len(results) // 2]
            rows.append(row(t, "tls-load", {
                "rps": m["rps"], "p50": m["p50"], "p99": m["p99"],
                "statuses": f"{m['handshakes']} full handshakes, {m['connections']} connections"
                            + (f", {m['errors']} failed" if m["errors"] else "")
                            + (f", {m['resumed']} resumed" if m["resumed"] else ""),
            }, note=f"{m['us_per_handshake']:.0f} µs server CPU per handshake "
                    f"(≈ {1e6 / m['us_per_handshake']:,.0f}/s per core); server core "
                    f"{m['busy'] * 100:.0f}% busy"))
    measure("tls-newconn", cfg, env, rows)
    lines = []
    for group in tls_handshake.GROUPS:
        e, n = med.get(("edgefn", group)), med.get(("nginx-tls", group))
        if not (e and n):
            continue
        for what, ratio in (("handshakes/s", e["rps"] / n["rps"]),
                            ("per-core capacity from server CPU per handshake",
                             n["us_per_handshake"] / e["us_per_handshake"])):
            verdict = judged(ratio, 1.5)[:-1]
            lines.append(f"- full TLS 1.3 handshakes ({group}), {what}: edgefn / nginx = "
                         f"{verdict}; server core busy: edgefn {e['busy'] * 100:.0f}%, "
                         f"nginx {n['busy'] * 100:.0f}%)")
    for name, proc_name, port in servers:
        if cfg.servers.procs.get(proc_name) is None:
            continue
        ok, detail = tls_handshake.resumption(port, name)
        lines.append(f"- session resumption, {name}: {'works' if ok else 'NOT working'} "
                     f"(`openssl s_client -sess_out` then `-sess_in`: {detail})")
    cfg.sections.append(("TLS handshakes (issue 17 point 5): a full TLS 1.3 handshake per "
                         "connection (`bench/tools/tls-load`: rustls client, TLS_AES_128_GCM_SHA256, "
                         "one key share, no session reuse, no certificate checks on the client), "
                         "ECDSA P-256 certificate, the server on one core", lines))


def measure_direct(scenario, cfg, env, rows):
    """Gateway-added latency: edgefn with one connection (one request in flight) against
    bench/tools/worker-direct driving the same handler's warm worker through the gateway's
    pool code without HTTP, also one request at a time."""
    if not env.direct:
        return
    fn = {"python": "py-hello", "node": "node-hello"}[scenario]
    handler = {"python": "handler.py", "node": "handler.js"}[scenario]
    sc = f"{scenario}-c1"
    t = Target(sc, "edgefn", f"http://127.0.0.1:{PORTS['edgefn']}/{fn}", 200, peer=False)
    if probe(t) != 200:
        return
    for tool in cfg.tools:
        log(f"{sc}/edgefn/{tool} ({cfg.duration}s, 1 conn)")
        res = run_wrk(t, cfg) if tool == "wrk" else run_oha(t, cfg)
        rows.append(row(t, tool, res))
    n, cold = (5000, 3) if cfg.quick else (20000, 10)
    log(f"{sc}/worker-direct ({n} requests, {cold} fresh starts)")
    res = run_worker_direct(env.direct, os.path.join(BENCH, "functions", fn, handler), n, cold,
                            cfg.server_cpu)
    d = Target(sc, "worker-direct", "-", 200, peer=False)
    rows.append(row(d, "worker-direct", res, note=res.get("ready", "")))


def row(t, tool, res, note=""):
    res = res or {}
    return {
        "scenario": t.scenario, "server": t.server, "tool": tool,
        "rps": res.get("rps"), "p50_ms": res.get("p50"), "p99_ms": res.get("p99"),
        "statuses": res.get("statuses", ""), "peer": t.peer, "note": note,
        "client": res.get("client"),
    }


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
    # CPU per request at a fixed rate is the finer comparison (a few % apart): more rounds.
    cfg.cpu_rounds = args.rounds or (1 if args.quick else 5)
    cfg.connections = args.connections
    cfg.worker_connections = min(16, args.connections)
    cfg.conns = lambda t: (1 if t.scenario.endswith("-c1") else cfg.worker_connections
                           if t.scenario in ("python", "node", "runtimes", "hmac")
                           else cfg.connections)
    cfg.quick = args.quick
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
        "gunicorn " + first_line([sys.executable, "-c",
                                  "import gunicorn; print(gunicorn.__version__)"]),
        "uvicorn " + first_line([sys.executable, "-c",
                                 "import uvicorn; print(uvicorn.__version__)"]),
        "granian " + first_line([sys.executable, "-c",
                                 "import granian; print(granian.__version__)"]),
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
    cfg.cpu_rows = []
    cfg.sections = []
    env.servers = servers
    rows, idle = [], []
    try:
        need = set(scenarios)
        pa = PORTS
        edgefn_argv = [edgefn, "serve", "--config", edgefn_config(
            os.path.join(RUN, "edgefn.toml"), f"127.0.0.1:{pa['edgefn']}",
            f"127.0.0.1:{pa['edgefn-admin']}", fdir)]
        servers.start("edgefn", edgefn_argv, pa["edgefn"])
        if need & {"defaults"}:
            servers.start("edgefn-defaults", [edgefn, "serve", "--config", edgefn_config(
                os.path.join(RUN, "edgefn-defaults.toml"), f"127.0.0.1:{pa['edgefn-defaults']}",
                f"127.0.0.1:{pa['edgefn-defaults-admin']}", fdir, access_log=True)],
                pa["edgefn-defaults"])
        if need & {"rejected", "idle"}:
            servers.start("hyper-header", [hyper, f"127.0.0.1:{pa['hyper-header']}", API_KEY],
                          pa["hyper-header"])
        if need & {"tls", "tls-handshake"}:
            servers.start("edgefn-tls", [edgefn, "serve", "--config", edgefn_config(
                os.path.join(RUN, "edgefn-tls.toml"), f"127.0.0.1:{pa['edgefn-tls']}",
                f"127.0.0.1:{pa['edgefn-tls-admin']}", fdir, (cert, key))], pa["edgefn-tls"])
        if need & {"python"}:
            start_uvicorn(servers, pa["uvicorn"])
            start_granian(servers, "granian", pa["granian"], "asgi")
            start_granian(servers, "granian-rsgi", pa["granian-rsgi"], "rsgi")
        if need & {"rejected", "defaults", "tls", "tls-handshake", "python"}:
            if need & {"python"}:
                sock = os.path.join(RUN, "gunicorn.sock")
                if os.path.exists(sock):
                    os.unlink(sock)
                start_gunicorn(servers, sock)
            conf = nginx_config(cert, key)
            servers.start("nginx", ["nginx", "-c", conf, "-p", RUN], pa["nginx-map"])
            for alias in ("nginx-map", "nginx-lua", "nginx-tls", "nginx-gunicorn", "nginx-map-log"):
                if servers.procs.get("nginx"):
                    servers.procs[alias] = servers.procs["nginx"]
        if need & {"node"}:
            servers.start("node-http", ["node", os.path.join(BENCH, "peers", "node-http",
                                                             "server.js"), str(pa["node-http"])],
                          pa["node-http"])
        env.direct = worker_direct_tool()
        if not env.direct and need & {"python", "node", "runtimes"}:
            env.notes.append("no bench/tools/worker-direct build: the gateway-added latency "
                             "over calling the worker directly is not reported")
        time.sleep(0.5)

        for sc in scenarios:
            if sc == "idle":
                continue
            if sc == "runtimes":
                measure_runtimes(cfg, env, rows)
                continue
            if sc == "tls-handshake":
                measure_tls_handshake(cfg, env, rows)
                continue
            measure(sc, cfg, env, rows)
            if sc in ("python", "node"):
                measure_direct(sc, cfg, env, rows)
        if "idle" in scenarios:
            # edgefn twice: after a request its HTTP/1 front answered (the connection stays
            # in the front) and after one a worker served (the connection went to hyper).
            for label, name, port, path in (
                    ("edgefn", "edgefn", pa["edgefn"], "/_fn/health"),
                    ("edgefn (after a worker request)", "edgefn", pa["edgefn"], "/hello-py"),
                    ("hyper-header", "hyper-header", pa["hyper-header"], "/")):
                if name == "edgefn":
                    # A fresh process each time: memory freed by an earlier case would
                    # otherwise be reused and hide what this one costs.
                    old = servers.procs.pop("edgefn", None)
                    if old is not None:
                        servers.stop_one(old)
                    if not servers.start("edgefn", edgefn_argv, pa["edgefn"]):
                        continue
                log(f"idle/{label}: {args.idle_connections} keep-alive connections")
                r = idle_measure(name, port, path, args.idle_connections, cfg, label)
                if r:
                    idle.append(r)
    finally:
        servers.stop_all()

    ratios(rows)
    text = write_report(rows, idle, cfg, env, started, time.time() - t0)
    print(text)
    log(f"wrote bench/results/latest.md and latest.csv in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
