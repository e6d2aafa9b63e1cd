#!/usr/bin/env python3
"""Opens N keep-alive HTTP/1.1 connections to HOST:PORT, sends one request on each and
reads its response (so the server has parsed a request and holds a live, idle
keep-alive connection, not a half-accepted socket), prints `READY <n>` and then keeps
every connection open, sending nothing, until stdin closes or SIGTERM.

Usage: idle_conns.py HOST PORT N [PATH]
"""

import resource
import signal
import socket
import sys
import time


def read_response(sock):
    """Reads one response with a Content-Length body; returns the status code."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the body")
        rest += chunk
    return status


def open_one(host, port, request, i, attempts=5):
    """One connection with one answered request; a refused or timed-out attempt (a full
    accept backlog on a busy core) is retried after a short pause."""
    for attempt in range(attempts):
        s = None
        try:
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(request)
            return s, read_response(s)
        except OSError as e:
            if s is not None:
                s.close()
            if attempt == attempts - 1:
                sys.exit(f"idle_conns: connection {i}: {e!r}")
            time.sleep(0.2 * (attempt + 1))


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/"
    want = n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nx-api-key: wrong-key\r\n\r\n").encode()
    conns = []
    statuses = {}
    for i in range(n):
        s, code = open_one(host, port, request, i)
        statuses[code] = statuses.get(code, 0) + 1
        conns.append(s)
    print(f"READY {len(conns)} statuses={statuses}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sys.stdin.read()
    finally:
        for s in conns:
            s.close()


if __name__ == "__main__":
    main()
