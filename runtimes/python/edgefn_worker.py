"""edgefn Python worker: imports one FastFN-style handler once and serves framed requests.

Started by the gateway as `python3 edgefn_worker.py <socket> <handler.py> <concurrency>`;
the protocol is in runtimes/PROTOCOL.md. Kept to the standard library and to cheap imports
(`_socket` rather than `socket`, `binascii` rather than `base64`, no importlib; asyncio,
threads and traceback load only when needed) so a fresh worker is ready fast.
stdout/stderr belong to the handler: the gateway captures them and masks secrets.
"""

import _socket
import binascii
import json
import os
import struct
import sys

MAX_REQUEST_FRAME = (64 << 20) + (1 << 20)
HEAD = struct.Struct(">II")


class BadResponse(Exception):
    """The handler returned something that is not a response."""


def read_exact(rfile, n):
    data = rfile.read(n)
    if data is None or len(data) < n:
        return None
    return data


def read_frame(rfile):
    head = read_exact(rfile, 8)
    if head is None:
        return None, None
    total, hlen = HEAD.unpack(head)
    if total > MAX_REQUEST_FRAME or total < 4 or hlen > total - 4:
        raise SystemExit("edgefn worker: oversized or malformed frame from the gateway")
    data = read_exact(rfile, total - 4)
    if data is None:
        return None, None
    return json.loads(data[:hlen]), data[hlen:]


class Channel:
    """The socket to the gateway; writes are whole frames, serialised by a lock when
    several requests run at once."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = None

    def send(self, header, body=b""):
        h = json.dumps(header, separators=(",", ":")).encode()
        frame = HEAD.pack(4 + len(h) + len(body), len(h)) + h + body
        if self.lock is None:
            self.sock.sendall(frame)
        else:
            with self.lock:
                self.sock.sendall(frame)


def load_handler(path):
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = type(sys)("handler")
    module.__file__ = path
    sys.modules["handler"] = module
    with open(path, "rb") as f:
        source = f.read()
    exec(compile(source, path, "exec"), module.__dict__)
    fn = getattr(module, "handler", None)
    if not callable(fn):
        raise RuntimeError(f"{path} defines no callable `handler(event)`")
    return fn


def has_header(headers, name):
    return any(k.lower() == name for k in headers)


def encode_body(body, headers):
    """Body forms of the FastFN contract: text, bytes, JSON value, or base64 object."""
    if body is None:
        return b""
    if isinstance(body, str):
        if not has_header(headers, "content-type"):
            headers["content-type"] = "text/plain; charset=utf-8"
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        if not has_header(headers, "content-type"):
            headers["content-type"] = "application/octet-stream"
        return bytes(body)
    if isinstance(body, dict) and body.get("is_base64") is True:
        data = body.get("body", "")
        if not isinstance(data, str):
            raise BadResponse("is_base64 body is not a string")
        if not has_header(headers, "content-type"):
            headers["content-type"] = "application/octet-stream"
        try:
            return binascii.a2b_base64(data, strict_mode=True)
        except (ValueError, binascii.Error):
            raise BadResponse("is_base64 body is not valid base64") from None
    if isinstance(body, (dict, list, int, float, bool)):
        if not has_header(headers, "content-type"):
            headers["content-type"] = "application/json"
        return json.dumps(body, separators=(",", ":")).encode()
    raise BadResponse(f"body of type {type(body).__name__} cannot be sent")


def to_response(result):
    """Returns (status, header pairs, body bytes) or raises BadResponse."""
    if isinstance(result, dict) and (
        "status" in result or "statusCode" in result or "body" in result or "headers" in result
    ):
        status = result.get("status", result.get("statusCode", 200))
        raw_headers = result.get("headers") or {}
        body = result.get("body")
        if result.get("is_base64") is True or result.get("isBase64Encoded") is True:
            body = {"is_base64": True, "body": body if body is not None else ""}
    elif result is None:
        status, raw_headers, body = 204, {}, None
    else:
        status, raw_headers, body = 200, {}, result
    if isinstance(status, bool) or not isinstance(status, int):
        raise BadResponse("status is not an integer")
    if not isinstance(raw_headers, dict):
        raise BadResponse("headers is not an object")
    headers = {}
    for k, v in raw_headers.items():
        if not isinstance(k, str):
            raise BadResponse("a header name is not a string")
        headers[k] = v
    payload = encode_body(body, headers)
    pairs = []
    for k, v in headers.items():
        values = v if isinstance(v, list) else [v]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise BadResponse("a header value is not a string or number")
            pairs.append([k, str(item)])
    return status, pairs, payload


def build_event(header, body, env):
    event = header["event"]
    if header.get("binary"):
        event["body"] = None
        event["body_base64"] = binascii.b2a_base64(body, newline=False).decode("ascii")
    else:
        event["body"] = body.decode("utf-8")
    event["env"] = dict(env)
    return event


class Runner:
    def __init__(self, handler, channel, concurrency):
        self.handler = handler
        self.channel = channel
        self.loop = None
        self.pool = None
        if concurrency > 1:
            import threading
            from concurrent.futures import ThreadPoolExecutor

            channel.lock = threading.Lock()
            self.pool = ThreadPoolExecutor(max_workers=concurrency)

    def event_loop(self):
        if self.loop is None:
            import asyncio

            self.loop = asyncio.new_event_loop()
            if self.pool is not None:
                import threading

                threading.Thread(target=self.loop.run_forever, daemon=True).start()
        return self.loop

    def call(self, event):
        result = self.handler(event)
        if hasattr(result, "__await__"):
            loop = self.event_loop()
            if self.pool is None:
                result = loop.run_until_complete(result)
            else:
                import asyncio

                result = asyncio.run_coroutine_threadsafe(result, loop).result()
        return result

    def serve(self, rid, event):
        try:
            status, pairs, payload = to_response(self.call(event))
        except BadResponse as e:
            print(f"edgefn: handler returned an invalid response: {e}", file=sys.stderr, flush=True)
            self.channel.send({"type": "err", "id": rid, "kind": "bad_response", "detail": str(e)})
            return
        except Exception:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            self.channel.send({"type": "err", "id": rid, "kind": "handler_error"})
            return
        self.channel.send({"type": "res", "id": rid, "status": status, "headers": pairs}, payload)

    def submit(self, rid, event):
        if self.pool is None:
            self.serve(rid, event)
        else:
            self.pool.submit(self.serve, rid, event)


def main():
    sock_path, handler_path, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.stdout.reconfigure(line_buffering=True)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.connect(sock_path)
    rfile = open(sock.fileno(), "rb", buffering=1 << 16, closefd=False)
    channel = Channel(sock)
    init, _ = read_frame(rfile)
    if init is None or init.get("type") != "init":
        raise SystemExit("edgefn worker: no init frame from the gateway")
    env = init.get("env") or {}
    try:
        handler = load_handler(handler_path)
    except BaseException as e:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        channel.send({"type": "fatal", "error": f"{type(e).__name__} while importing the handler"})
        sys.exit(1)
    channel.send({"type": "ready", "pid": os.getpid()})
    runner = Runner(handler, channel, max(1, concurrency))
    while True:
        header, body = read_frame(rfile)
        if header is None:
            return
        if header.get("type") == "req":
            runner.submit(header["id"], build_event(header, body, env))


if __name__ == "__main__":
    main()
