"""Starting and stopping the servers under test, pinned to the server core: edgefn
(its config and functions tree), hyper-header, nginx (config from nginx.conf.in), gunicorn,
node; the self-signed certificate; machine facts for the report."""
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

from common import API_KEY, BENCH, PORTS, PRIORITY, RELEASE, RUN, log


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


class Servers:
    """Processes this run started; stopped by their own process group at the end."""

    def __init__(self, server_cpu):
        self.cpu = server_cpu
        self.procs = {}

    def start(self, name, argv, port, env=None, cwd=None):
        if not port_free(port):
            log(f"port {port} for {name} is in use; {name} is skipped")
            return None
        # Every server logs to a file in the run dir: edgefn's access log and nginx's
        # buffered one land on the same disk.
        # Appending (O_APPEND), so the driver can empty a log under load (load.LogFiles).
        path = os.path.join(RUN, f"{name}.log")
        open(path, "wb").close()
        out = open(path, "ab")
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


def start_uvicorn(servers, port):
    """The same handler as an ASGI app under uvicorn (httptools parser, one process): what
    a Python user would run instead of a gateway with warm workers."""
    return servers.start(
        "uvicorn",
        [sys.executable, "-m", "uvicorn", "--http", "httptools", "--no-access-log",
         "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port),
         "--app-dir", os.path.join(BENCH, "peers", "asgi"), "app:app"],
        port,
    )


def start_granian(servers, name, port, interface):
    """The same answer under granian (its Rust HTTP server calling Python), one process
    (one worker, one runtime thread): `asgi` runs the uvicorn peer's app unchanged, `rsgi`
    granian's own interface (bench/peers/rsgi)."""
    app_dir = os.path.join(BENCH, "peers", "asgi" if interface == "asgi" else "rsgi")
    return servers.start(
        name,
        [sys.executable, "-m", "granian", "--interface", interface, "--workers", "1",
         "--runtime-threads", "1", "--no-ws", "--log-level", "warning", "--host", "127.0.0.1",
         "--port", str(port), "app:app"],
        port,
        cwd=app_dir,
    )


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


def edgefn_config(path, listen, admin, functions_dir, tls=None, access_log=False):
    lines = [
        "[server]",
        f'listen = "{listen}"',
        f'functions_dir = "{functions_dir}"',
        "max_connections = 50000",
        "idle_timeout_ms = 600000",
    ]
    if tls:
        lines.append(f'tls = {{ cert = "{tls[0]}", key = "{tls[1]}" }}')
    lines += ["", "[admin]", f'listen = "{admin}"', "", "[log]",
              f"access = {'true' if access_log else 'false'}", ""]
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
        "@PORT_MAP_LOG@": str(PORTS["nginx-map-log"]),
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
    """bench/tools/worker-direct, built by run.sh: drives the gateway's own pool code
    against one warm worker with no HTTP in between (the gateway-added latency baseline)."""
    exe = os.path.join(RELEASE, "worker-direct")
    return exe if os.access(exe, os.X_OK) else None
