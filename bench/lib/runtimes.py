"""The `runtimes` scenario: the same small JSON handler in every runtime
(`bench/functions/rt-<runtime>`), measured three ways — rps through the gateway (wrk, oha),
worker-direct rps (one warm worker driven by the gateway's pool code, no HTTP) and the
ready time of fresh workers (median of N starts) against issue 13's targets.

Flow: the driver measures the gateway rows with the other scenarios' `measure` (the Rust
function answers 503 + Retry-After while the gateway builds it; the probe waits, the build
is not timed; Go's likewise), then `direct` runs worker-direct once per runtime, and `table` joins both
into the report's runtimes table."""
import os

from common import BENCH, PORTS
from load import Target, run_worker_direct

RUNTIMES = ("python", "node", "typescript", "php", "lua", "rust", "go")
HANDLERS = {"python": "handler.py", "node": "handler.js", "typescript": "handler.ts",
            "php": "handler.php", "lua": "handler.lua", "rust": "handler.rs",
            "go": "handler.go"}
# Fresh-worker ready time targets (issue 13 point 6), ms. TypeScript runs on Node once
# compiled, so it has Node's; Rust's and Go's are after the build.
READY_TARGET_MS = {"python": 50, "node": 100, "typescript": 100, "php": 50, "lua": 20, "rust": 10,
                   "go": 10}


def label(rt):
    return f"edgefn ({rt})"


def targets():
    e = f"http://127.0.0.1:{PORTS['edgefn']}"
    return [Target("runtimes", label(rt), f"{e}/rt-{rt}", 200, peer=False, proc="edgefn",
                   note=f"bench/functions/rt-{rt}") for rt in RUNTIMES]


def direct(cfg, exe):
    """worker-direct per runtime: {runtime: result} (a result with `error` when it failed)."""
    n, fresh = (5000, 5) if cfg.quick else (20000, 10)
    out = {}
    for rt in RUNTIMES:
        handler = os.path.join(BENCH, "functions", f"rt-{rt}", HANDLERS[rt])
        out[rt] = run_worker_direct(exe, handler, n, fresh, cfg.server_cpu)
    return out


def _cell(v, digits=0):
    return "—" if v is None else f"{v:,.{digits}f}"


def table(rows, direct_results):
    """Markdown lines: one row per runtime, with the ready-time target and whether met."""
    lines = ["| runtime | gateway rps (wrk) | gateway rps (oha) | gateway p50 ms (oha) | "
             "worker-direct rps | worker-direct p50 ms | fresh worker ready p50 ms (max) | "
             "target | met |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for rt in RUNTIMES:
        def gw(tool, rt=rt):
            return next((r for r in rows if r["scenario"] == "runtimes"
                         and r["server"] == label(rt) and r["tool"] == tool), None)
        w, o = gw("wrk"), gw("oha")
        d = direct_results.get(rt) or {}
        goal = READY_TARGET_MS[rt]
        ready = d.get("ready_p50")
        if ready is None:
            met = "not measured" + (f": {d['error']}" if d.get("error") else "")
            ready_cell = "—"
        else:
            met = "met" if ready <= goal else "NOT met"
            ready_cell = f"{ready:.1f} ({d['ready_max']:.1f})"
        skipped = next((r["note"] for r in rows if r["scenario"] == "runtimes"
                        and r["server"] == label(rt) and r["tool"] == "-"), "")
        lines.append(
            f"| {rt} | {_cell(w and w['rps'])} | {_cell(o and o['rps'])} | "
            f"{_cell(o and o['p50_ms'], 3)} | {_cell(d.get('rps'))} | {_cell(d.get('p50'), 3)} | "
            f"{ready_cell} | ≤ {goal} | {met}{'; gateway ' + skipped if skipped else ''} |")
    return lines
