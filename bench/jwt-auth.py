#!/usr/bin/env python3
"""JWT (RS256) accepted-path rps next to api_key's, verification cache on and off.

Usage: bench/jwt-auth.py [--edgefn target/release/edgefn] [--duration 10] [--connections 16]

Starts one edgefn on loopback serving three copies of the same Python handler behind
`api_key`, `bearer` + JWT (RS256, `jwks_file`, cache on) and the same with
`"cache_entries": 0`; mints the RS256 token with PyJWT; loads each with wrk (one thread) and
prints a markdown table with rps relative to api_key. The issue's target: cache on
>= 0.9x api_key. Build with `cargo build --release -p gateway` first for figures worth
quoting; the debug binary works but measures a debug build.
"""
import argparse
import statistics
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HANDLER = 'def handler(event):\n    return {"status": 200, "body": "ok"}\n'
KEY = "bench-key-0123456789abcdef0123456789"


# The server (and the workers it spawns) on CPU 0, the load on CPU 1, as bench/run.sh does.
TWO_CPUS = (os.cpu_count() or 1) >= 2
PIN_SERVER = ["taskset", "-c", "0"] if TWO_CPUS else []
PIN_LOAD = ["taskset", "-c", "1"] if TWO_CPUS else []
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "jwt-auth.md")


def mint():
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "bench", "alg": "RS256"})
    claims = {"sub": "bench", "iss": "https://bench.test", "aud": "edgefn",
              "exp": int(time.time()) + 3600, "scope": "read"}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    return {"keys": [jwk]}, token


def tree(root, jwks):
    jwt_cfg = {"jwks_file": "jwks.json", "issuer": "https://bench.test", "audience": "edgefn",
               "algorithms": ["RS256"], "required_scopes": "read"}
    fns = {
        "keyed": ({"type": "api_key", "secret": "KEY"}, {"KEY": {"value": KEY, "is_secret": True}}),
        "jwt": ({"type": "bearer", "jwt": jwt_cfg}, {}),
        "jwt-nocache": ({"type": "bearer", "jwt": dict(jwt_cfg, cache_entries=0)}, {}),
    }
    for name, (auth, env) in fns.items():
        d = os.path.join(root, name)
        os.makedirs(d)
        with open(os.path.join(d, "fn.config.json"), "w") as f:
            json.dump({"auth": auth, "workers": {"min": 2, "max": 2}}, f)
        with open(os.path.join(d, "fn.env.json"), "w") as f:
            json.dump(env, f)
        with open(os.path.join(d, "handler.py"), "w") as f:
            f.write(HANDLER)
        with open(os.path.join(d, "jwks.json"), "w") as f:
            json.dump(jwks, f)


def start(binary, root, cfg):
    p = subprocess.Popen(PIN_SERVER + [binary, "serve", "--config", cfg, "--functions", root,
                          "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stdout.readline()
        m = re.match(r"edgefn listening on https?://(\S+)", line)
        if m:
            return p, m.group(1).rstrip(",")
    p.kill()
    sys.exit("edgefn did not start")


def wrk(url, header, duration, conns):
    out = subprocess.run(PIN_LOAD + ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "-H", header, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(non2xx.group(1)) if non2xx else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgefn", default="target/release/edgefn")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    jwks, token = mint()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "functions")
        tree(root, jwks)
        cfg = os.path.join(tmp, "edgefn.toml")
        with open(cfg, "w") as f:
            f.write("[log]\naccess = false\n")
        proc, addr = start(a.edgefn, root, cfg)
        try:
            targets = [("keyed", f"x-api-key: {KEY}"),
                       ("jwt", f"authorization: Bearer {token}"),
                       ("jwt-nocache", f"authorization: Bearer {token}")]
            for name, header in targets:
                url = f"http://{addr}/{name}"
                req = urllib.request.Request(url, headers=dict([header.split(": ", 1)]))
                deadline = time.time() + 60
                while True:  # the probe: the pool is warm and the request admitted
                    try:
                        if urllib.request.urlopen(req, timeout=10).status == 200:
                            break
                    except Exception:
                        pass
                    if time.time() > deadline:
                        sys.exit(f"{name}: never answered 200")
                    time.sleep(0.2)
            # Interleaved rounds, median per function: drift over the run (CPU clocks, a
            # warming worker) falls on every row alike.
            runs = {name: [] for name, _ in targets}
            for _ in range(a.rounds):
                for name, header in targets:
                    runs[name].append(wrk(f"http://{addr}/{name}", header, a.duration, a.connections))
            rows = [(name, statistics.median(r for r, _ in runs[name]), sum(b for _, b in runs[name]))
                    for name, _ in targets]
        finally:
            proc.kill()
    base = rows[0][1]
    labels = {"keyed": "api_key", "jwt": "RS256, cache on", "jwt-nocache": "RS256, cache off"}
    lines = [
        "# JWT (RS256) accepted path against api_key\n",
        f"`bench/jwt-auth.py {' '.join(sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"edgefn {a.edgefn} {'on CPU 0, wrk -t1 on CPU 1' if TWO_CPUS else 'sharing one CPU with wrk'}, "
        f"median of {a.rounds} interleaved rounds of {a.duration} s, {a.connections} connections, load average {os.getloadavg()[0]:.1f} at the end. "
        "Each function answers from the same kind of warm Python worker; only the policy differs.\n",
        "| function | auth | rps | vs api_key | non-2xx |",
        "|---|---|---|---|---|",
    ]
    for name, rps, bad in rows:
        lines.append(f"| /{name} | {labels[name]} | {rps:.0f} | {rps / base:.2f}x | {bad} |")
    lines.append("\nEach round's rps, in run order: " + "; ".join(
        f"/{n} " + ", ".join(f"{r:.0f}" for r, _ in v) for n, v in runs.items()))
    cached = rows[1][1] / base
    lines.append(f"\nTarget (issue 15): RS256 with the verification cache >= 0.9x api_key: "
                 f"{'met' if cached >= 0.9 else 'NOT met'} ({cached:.2f}x).")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(RESULTS, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(RESULTS)}")

if __name__ == "__main__":
    main()
