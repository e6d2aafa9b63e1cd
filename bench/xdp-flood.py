#!/usr/bin/env python3
"""Cost per refused connection attempt: XDP vs the user-space fallback, same flood.

For each layer it creates a network namespace and a veth pair (10.203.<n>.0/24, only on
interfaces it creates and deletes), starts edgefn with its public listener on the host end
and `[xdp] enabled = true|false`, then from inside the namespace floods paced connection
attempts from one address (bench/tools/connflood.py) while a second address makes polite
requests. It reads the gateway's CPU time (/proc/<pid>/stat), the machine's busy CPU time
(/proc/stat) and the refusal counters from /metrics, and writes Markdown.

Usage (root): bench/xdp-flood.py --bin target/release/edgefn [--rate 5000] [--duration 10]
              [--out bench/results/xdp.md]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOOD = os.path.join(ROOT, "bench", "tools", "connflood.py")
TICK = os.sysconf("SC_CLK_TCK")


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


class Net:
    def __init__(self, tag):
        pid = os.getpid() % 10000
        n = (os.getpid() * 2 + tag) % 250 + 1
        self.ns, self.host, self.peer = f"edgefn-bench-{pid}-{tag}", f"efb{pid}h{tag}", f"efb{pid}p{tag}"
        self.net = f"10.203.{n}"

    def __enter__(self):
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host, "type", "veth", "peer", "name", self.peer)
        sh("ip", "link", "set", self.peer, "netns", self.ns)
        sh("ip", "addr", "add", f"{self.net}.1/24", "dev", self.host)
        sh("ip", "link", "set", self.host, "up")
        for a in ([f"addr", "add", f"{self.net}.2/24", "dev", self.peer],
                  ["addr", "add", f"{self.net}.3/24", "dev", self.peer],
                  ["link", "set", self.peer, "up"], ["link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", self.ns, "ip", *a)
        return self

    def __exit__(self, *exc):
        sh("ip", "link", "del", self.host, check=False)
        sh("ip", "netns", "del", self.ns, check=False)


def cpu_of(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def busy():
    """(busy, softirq) CPU seconds of the whole machine."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK, v[6] / TICK  # minus idle and iowait; softirq


def xdp_prog_stats(pid):
    """(run_cnt, run_time_ns) of the XDP programs the gateway holds, from fdinfo; needs
    kernel.bpf_stats_enabled = 1."""
    cnt = ns = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            info = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        f = dict(l.split(":", 1) for l in info.splitlines() if ":" in l)
        if f.get("prog_type", "").strip() == "6":  # BPF_PROG_TYPE_XDP
            cnt += int(f.get("run_cnt", "0"))
            ns += int(f.get("run_time_ns", "0"))
    return cnt, ns


def metrics(admin):
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("edgefn_xdp_") or line.startswith("edgefn_rate_limited_total"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def run_layer(binary, enabled, rate, duration, tag, mode="skb"):
    with Net(tag) as net, tempfile.TemporaryDirectory() as d:
        os.makedirs(f"{d}/functions/hello")
        open(f"{d}/functions/hello/handler.py", "w").write(
            "def handler(event):\n    return {'status': 200, 'body': 'hi'}\n")
        open(f"{d}/edgefn.toml", "w").write(
            f'[xdp]\nenabled = {"true" if enabled else "false"}\ninterface = "{net.host}"\n'
            f'mode = "{mode}"\nnew_connections_per_second = 20\nburst = 20\n')
        gw = subprocess.Popen(
            [binary, "serve", "--config", f"{d}/edgefn.toml", "--functions", f"{d}/functions",
             "--listen", f"{net.net}.1:0", "--admin-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "RUST_LOG": "warn"})
        try:
            line = ""
            deadline = time.monotonic() + 60
            while not line.startswith("edgefn listening on ") and time.monotonic() < deadline:
                line = gw.stdout.readline()
            m = re.search(r"://[\d.]+:(\d+) \(admin http://([\d.:]+),.*connection limit: (.*)\)$", line)
            if not m:
                raise SystemExit(f"edgefn did not start: {line!r}")
            port, admin, layer = m.group(1), m.group(2), m.group(3)
            before = metrics(admin)
            g0, b0, p0 = cpu_of(gw.pid), busy(), xdp_prog_stats(gw.pid)
            flood = subprocess.Popen(
                ["ip", "netns", "exec", net.ns, "python3", FLOOD, "flood", "--src", f"{net.net}.2",
                 "--dst", f"{net.net}.1", "--port", port, "--duration", str(duration),
                 "--rate", str(rate), "--inflight", "8192", "--timeout", "0.5"],
                stdout=subprocess.PIPE, text=True)
            polite = subprocess.run(
                ["ip", "netns", "exec", net.ns, "python3", FLOOD, "polite", "--src", f"{net.net}.3",
                 "--dst", f"{net.net}.1", "--port", port, "--count", str(int(duration * 2)),
                 "--interval", "0.5"], capture_output=True, text=True)
            report = json.loads(flood.communicate()[0])
            g1, b1, p1 = cpu_of(gw.pid), busy(), xdp_prog_stats(gw.pid)
            time.sleep(1.5)  # let the 1 s metrics poller publish the final XDP totals
            after = metrics(admin)
        finally:
            gw.terminate()
            gw.wait()
    key = ('edgefn_rate_limited_total{function="_connection",layer="xdp"}' if enabled
           else 'edgefn_rate_limited_total{function="_connection",layer="user_space"}')
    refused = after.get(key, 0) - before.get(key, 0)
    statuses = json.loads(polite.stdout)["statuses"] if polite.stdout else []
    gw_cpu = g1 - g0
    sys_cpu = (b1[0] - b0[0]) - report["cpu_seconds"]
    softirq = b1[1] - b0[1]
    return {
        "layer": layer, "attempts": report["attempts"], "seconds": report["seconds"],
        "refused": refused, "gateway_cpu": gw_cpu, "system_cpu": sys_cpu, "softirq": softirq,
        "flooder_cpu": report["cpu_seconds"],
        "prog_runs": p1[0] - p0[0], "prog_ns": p1[1] - p0[1],
        "polite_ok": sum(1 for s in statuses if s == 200), "polite_total": len(statuses),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "edgefn"))
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "xdp.md"))
    a = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, XDP)")
    stats = "/proc/sys/kernel/bpf_stats_enabled"
    old = open(stats).read().strip()
    open(stats, "w").write("1")
    try:
        rows = [run_layer(a.bin, True, a.rate, a.duration, 0, "skb"),
                run_layer(a.bin, True, a.rate, a.duration, 2, "driver"),
                run_layer(a.bin, False, a.rate, a.duration, 1)]
    finally:
        open(stats, "w").write(old)
    for r in rows[:2]:
        if not r["layer"].startswith("xdp"):
            raise SystemExit(f"XDP did not attach: {r['layer']}")
    lines = [
        "# Connection flood: XDP vs user-space limiter",
        "",
        f"One source floods paced `connect()` attempts at {a.rate:.0f}/s for {a.duration:.0f} s "
        "across a veth pair into a network namespace; the limit is 20 new connections/s, "
        "burst 20. A second source makes one polite request every 0.5 s meanwhile.",
        f"Binary: `{os.path.relpath(a.bin, ROOT)}`; machine: {os.cpu_count()} CPUs, "
        f"kernel {os.uname().release}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| layer | attempts | refused | refused % | gateway CPU s | gateway µs / refused | "
        "machine softirq s | softirq µs / refused | machine busy s (excl. flooder) | "
        "polite served |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per = lambda cpu: f"{cpu / r['refused'] * 1e6:.1f}" if r["refused"] else "n/a"
        lines.append(
            f"| {r['layer']} | {r['attempts']} | {r['refused']:.0f} | "
            f"{100 * r['refused'] / max(r['attempts'], 1):.1f} | {r['gateway_cpu']:.2f} | "
            f"{per(r['gateway_cpu'])} | {r['softirq']:.2f} | {per(r['softirq'])} | "
            f"{r['system_cpu']:.2f} | {r['polite_ok']}/{r['polite_total']} |")
    lines.append("")
    for x in rows[:2]:
        if x["prog_runs"]:
            lines.append(
                f"- XDP program itself, {x['layer']} (kernel.bpf_stats_enabled): "
                f"{x['prog_runs']} runs, {x['prog_ns'] / x['prog_runs']:.0f} ns per packet on "
                "average (every packet on the interface, SYNs and the rest).")
    lines += [
        "",
        "Gateway CPU is utime + stime of the edgefn process: what the flood costs the "
        "gateway itself. Softirq is the machine's softirq time (/proc/stat), where the veth "
        "receive path, the XDP program (skb mode) and the kernel's TCP handshakes run; busy "
        "is all non-idle CPU minus the flooder's own. Both are machine-wide, and this machine "
        "is shared with other builds, so they are upper bounds and noisy; the gateway CPU "
        "and the program's own ns per packet are the precise numbers.",
        "",
    ]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
