#!/usr/bin/env python3
"""Connection-attempt flooder and polite client for the XDP tests and benchmark.

Run inside a network namespace (``ip netns exec NS python3 connflood.py ...``); it only
talks to the address it is given, which the caller assigns inside its own namespaces.

  flood  --src A --dst B --port P --duration S [--inflight N] [--timeout T] [--rate R]
      opens non-blocking connections from A (R per second, or as fast as it can), keeping
      at most N pending;
      a pending attempt is abandoned (closed with RST, before the kernel would retransmit
      its SYN) after T seconds. Prints JSON: attempts, connected, abandoned, seconds,
      cpu_seconds (its own).
  polite --src A --dst B --port P --count C --interval S
      C HTTP GET /_fn/health requests, each on a new connection, S seconds apart.
      Prints JSON: statuses (one per request; 0 = no response), seconds.
"""
import argparse
import collections
import json
import resource
import select
import socket
import struct
import sys
import time

LINGER_RST = struct.pack("ii", 1, 0)


def flood(a):
    ep = select.epoll()
    pending = {}
    order = collections.deque()
    attempts = connected = abandoned = 0
    start = time.monotonic()
    end = start + a.duration
    while True:
        now = time.monotonic()
        if now >= end:
            break
        budget = a.inflight - len(pending)
        if a.rate > 0:
            budget = min(budget, int(a.rate * (now - start)) - attempts)
        while budget > 0:
            budget -= 1
            s = socket.socket(socket.AF_INET6 if ":" in a.dst else socket.AF_INET,
                              socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            s.bind((a.src, 0))
            s.connect_ex((a.dst, a.port))
            attempts += 1
            fd = s.fileno()
            pending[fd] = s
            order.append((now, s))
            ep.register(fd, select.EPOLLOUT)
        for fd, _ev in ep.poll(0.002):
            s = pending.pop(fd, None)
            if s is None:
                continue
            ep.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected += 1
            s.close()
        now = time.monotonic()
        # Abandon attempts older than the timeout; completed ones are already closed
        # (fileno() == -1) and just leave the queue.
        while order and (order[0][1].fileno() == -1 or now - order[0][0] > a.timeout):
            _t, s = order.popleft()
            fd = s.fileno()
            if fd != -1:
                del pending[fd]
                ep.unregister(fd)
                s.close()
                abandoned += 1
    for s in pending.values():
        s.close()
    abandoned += len(pending)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"attempts": attempts, "connected": connected,
                      "abandoned": abandoned, "seconds": time.monotonic() - start,
                      "cpu_seconds": ru.ru_utime + ru.ru_stime}))


def polite(a):
    statuses = []
    start = time.monotonic()
    req = f"GET /_fn/health HTTP/1.1\r\nHost: {a.dst}\r\nConnection: close\r\n\r\n".encode()
    for i in range(a.count):
        status = 0
        try:
            fam = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.bind((a.src, 0))
                s.connect((a.dst, a.port))
                s.sendall(req)
                data = b""
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/") else 0
        except OSError as e:
            print(f"polite request {i}: {e}", file=sys.stderr)
        statuses.append(status)
        if i + 1 < a.count:
            time.sleep(a.interval)
    print(json.dumps({"statuses": statuses, "seconds": time.monotonic() - start}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["flood", "polite"])
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--inflight", type=int, default=512)
    p.add_argument("--rate", type=float, default=0, help="attempts per second; 0 = flat out")
    p.add_argument("--timeout", type=float, default=0.3)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.2)
    a = p.parse_args()
    flood(a) if a.mode == "flood" else polite(a)


if __name__ == "__main__":
    main()
