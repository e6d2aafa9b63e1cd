"""Medians over rounds, ratios against the peers of the same scenario and tool, the
issue's targets, and the Markdown/CSV report."""
import csv
import os

from common import PAIRED_REFUSAL, PRIORITY, RESULTS


def median(values):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def median_round(results):
    """The round whose rps is the median: its response counts stand for the others."""
    ranked = sorted((r for r in results if r["rps"] is not None), key=lambda r: r["rps"])
    return ranked[len(ranked) // 2] if ranked else results[0]


def aggregate(results):
    """Median rps, p50 and p99 over rounds; the responses of every round."""
    if len(results) == 1:
        return results[0]
    return {
        "rps": median(r["rps"] for r in results),
        "p50": median(r["p50"] for r in results),
        "p99": median(r["p99"] for r in results),
        "client": median(r.get("client") for r in results),
        "statuses": median_round(results)["statuses"] + f" (median round of {len(results)})",
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
            if p["scenario"] == r["scenario"] and p["server"] == "worker-direct" \
                    and p["p50_ms"] and r["p50_ms"]:
                added = r["p50_ms"] - p["p50_ms"]
                r["note"] = (r["note"] + "; " if r["note"] else "") + \
                    f"gateway adds {added * 1000:.0f} µs at p50 over worker-direct"
    for r in rows:
        r.setdefault("ratio", "")


# Mirrors driver.CLIENT_BOUND: a load generator this busy measured its own ceiling.
CLIENT_BOUND = 0.9


def bound_note(e, p):
    """A remark for a ratio whose two rates were both the load generator's ceiling."""
    if (e.get("client") or 0) >= CLIENT_BOUND and (p.get("client") or 0) >= CLIENT_BOUND:
        return " — both client-bound: the ratio compares the load generator, not the servers"
    return ""


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
                lines.append(f"- {tool}: edgefn / {peer} = {judged(e['rps'] / p['rps'], goal)}"
                             + bound_note(e, p))
    if any(r["scenario"] == "rejected" and r["server"] == "edgefn" and "stand-in" in r["note"]
           for r in rows):
        lines.append("- edgefn was measured on its 404 path (no auth in this build): "
                     "indicative only, not the 401 target.")
    return lines


def rps_checks(rows):
    """The shipped-defaults and worker-path targets (issue 17), per tool."""
    goals = (("defaults", "nginx-map-log", 1.0), ("defaults", "edgefn-log-off", 0.95),
             ("node", "node-http", 0.8), ("python", "uvicorn", 1.0), ("python", "granian", 1.0),
             ("python", "granian-rsgi", 1.0))
    lines = []
    for tool in ("wrk", "oha"):
        for scenario, peer, goal in goals:
            e = next((r for r in rows if r["scenario"] == scenario and r["server"] == "edgefn"
                      and r["tool"] == tool and r["rps"]), None)
            p = next((r for r in rows if r["scenario"] == scenario and r["server"] == peer
                      and r["tool"] == tool and r["rps"]), None)
            if e and p:
                lines.append(f"- {scenario}, {tool}: edgefn / {peer} = "
                             f"{judged(e['rps'] / p['rps'], goal)}{bound_note(e, p)}")
    return lines


def cpu_checks(cpu_rows):
    """CPU targets (issue 17): refusal ≤ 1.1× bare hyper at 2 000 req/s and ≤ 1.0× at
    20 000; the gateway's own CPU per accepted request ≤ 1.5× its CPU per refusal."""
    def at(scenario, server, rate):
        return next((c for c in cpu_rows if c["scenario"] == scenario and c["server"] == server
                     and c["rate"] == rate), None)
    lines = []
    for rate, goal in ((2_000, 1.1), (20_000, 1.0)):
        e, h = at("rejected", "edgefn", rate), at("rejected", "hyper-header", rate)
        if e and h and h["us_per_req"]:
            lines.append(f"- CPU per refusal at {rate:,} req/s: edgefn / hyper-header = "
                         f"{judged(e['us_per_req'] / h['us_per_req'], goal, at_most=True)}")
    apart = at("rejected", "edgefn", 2_000)
    for scenario in ("python", "node"):
        acc = at(scenario, "edgefn", 2_000)
        paired = at(scenario, PAIRED_REFUSAL, 2_000)
        if acc and paired:
            # Round by round: both measured on the same process within the same round.
            both = sorted(set(acc["rounds"]) & set(paired["rounds"]))
            per = sorted(acc["rounds"][k] / paired["rounds"][k] for k in both
                         if paired["rounds"][k])
            if per:
                lines.append(
                    f"- gateway CPU per accepted {scenario} request / per refusal at 2,000 req/s, "
                    f"the same process in the same rounds = "
                    f"{judged(per[len(per) // 2], 1.5, at_most=True)[:-1]}; the median of the "
                    f"per-round ratios {', '.join(f'{x:.2f}' for x in per)}; medians "
                    f"{acc['us_leader']:.1f} / {paired['us_leader']:.1f} µs)")
        if acc and apart and apart["us_leader"]:
            lines.append(f"- the same against the `rejected` scenario's refusal (measured minutes "
                         f"apart, for reference): {acc['us_leader'] / apart['us_leader']:.2f}×")
    return lines


def judged(ratio, goal, at_most=False):
    """`ratio` as the report prints it (two decimals) and the verdict on that same figure:
    a ratio printed as 1.00× meets "≤ 1.0×" and "≥ 1.0×" alike, whatever lies in the third
    decimal (below the noise of any of these measurements)."""
    shown = round(ratio, 2)
    ok = shown <= goal if at_most else shown >= goal
    return f"**{shown:.2f}×** (target {'≤' if at_most else '≥'} {goal}×: {'met' if ok else 'NOT met'})"


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
        + ("; refused by this build: "
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
    checks = rps_checks(rows)
    if checks:
        md += ["", "Shipped-defaults and worker-path targets (issue 17):", ""] + checks
    if getattr(cfg, "cpu_rows", None):
        md += ["", "Server CPU per request at fixed offered loads (oha -q; CPU time of every thread "
               "of the server's process group from the scheduler's /proc/PID/task/TID/schedstat; "
               "median of the rounds; a round with ≥ 2% steal time is measured again, at most "
               "twice). *gateway* is edgefn's own process, the rest its workers:",
               "", "| scenario | req/s | server | requests | CPU µs / request | gateway µs | "
               "edgefn vs this peer | responses |",
               "|---|---:|---|---:|---:|---:|---|---|"]
        for c in cfg.cpu_rows:
            edge = next((e for e in cfg.cpu_rows if e["server"] == "edgefn"
                         and e["scenario"] == c["scenario"] and e["rate"] == c["rate"]), None)
            ratio = ""
            if edge and c is not edge and c["us_per_req"] and c["server"] != PAIRED_REFUSAL:
                ratio = f"{edge['us_per_req'] / c['us_per_req']:.2f}× the CPU"
            own = f"{c['us_leader']:.2f}" if c["server"] in ("edgefn", PAIRED_REFUSAL) else ""
            steal = c.get("steal") or 0
            disturbed = f" (disturbed: {steal * 100:.0f}% steal time)" if steal >= 0.02 else ""
            if c.get("remeasured"):
                disturbed += (f" ({c['remeasured']} disturbed attempt(s) measured again, "
                              "not counted)")
            md.append(f"| {c['scenario']} | {c['rate']:,} | {c['server']} | {c['requests']:,} | "
                      f"{c['us_per_req']:.2f} | {own} | {ratio} | {c['statuses']}{disturbed} |")
        md += [""] + cpu_checks(cfg.cpu_rows)
    for title, lines in getattr(cfg, "sections", []):
        if lines:
            md += ["", title + ":", ""] + lines
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


