"""edgefn Python worker (protocol v2): loads one handler once and serves framed requests.

Started by the gateway as `python3 edgefn_worker.py <socket> <handler.py> <concurrency>`;
the protocol is in runtimes/PROTOCOL.md. Data flow: the main thread takes whatever the
socket holds in one `recv` and parses every complete frame in it (the gateway may hand a busy
worker requests beyond `concurrency`: they wait here, in order, and a `cancel` for one drops
it unrun); a frame's body is a `memoryview` slice of the received bytes, never copied. Sync
handlers run inline (concurrency 1) or on up to `concurrency` threads, coroutines on one
asyncio loop thread, at most `concurrency` at once; every answer goes through
`Worker.finish`, which turns the answer of a request the gateway cancelled into its
`cancelled` acknowledgement. Answers of requests run back to back inline leave in one write
while the handler is fast.

Kept to the standard library and to modules written in C (`_socket`, `_thread`, `_queue`,
`_json`, `binascii`, `posix`): `json`, `os` and `struct` would import `re`, `enum` and
`collections`, most of a fresh worker's start. asyncio loads only when a handler first
returns a coroutine. The gateway runs this file precompiled (`edgefn_worker.pyc`, written
once per gateway start) so it is not compiled at each worker start either. stdout/stderr
belong to the handler: the gateway captures them and masks secrets.
"""

import _socket
import _thread
import binascii
import posix
import sys
from time import monotonic_ns

PROTOCOL = 2
MAX_REQUEST_FRAME = (64 << 20) + (1 << 20)
# Bodies up to this size are joined to their header for one send; larger ones are sent
# after it, never copied.
JOIN_LIMIT = 64 << 10
CO_COROUTINE = 0x80
CO_VARARGS = 0x04
CO_VARKEYWORDS = 0x08
# Keys that make a returned dict a response envelope rather than a JSON body (FastFN's).
ENVELOPE_KEYS = ("status", "statusCode", "headers", "body", "is_base64", "isBase64Encoded", "body_base64", "proxy")
# One recv takes up to this much; a frame larger than what is buffered plus this is read
# straight into a buffer of its own size.
RECV_SIZE = 1 << 16
# Answers of inline requests run back to back are held for one write while the handler's
# recent run time (a moving average) stays under this; a slower handler answers each at once.
HOLD_LIMIT_NS = 200_000
TEXT = "text/plain; charset=utf-8"


# --- JSON --------------------------------------------------------------------------------
# The `json` package's own C accelerators, configured as `json.loads` / `json.dumps` configure
# them; the package itself is imported only if this interpreter's `_json` differs.


def _no_json(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


class _Decoding:
    """The attributes `_json.make_scanner` reads from a `json.JSONDecoder`."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


def _c_json():
    from _json import encode_basestring, encode_basestring_ascii, make_encoder, make_scanner

    scan = make_scanner(_Decoding())

    def loads(data):
        text = str(data, "utf-8") if not isinstance(data, str) else data
        try:
            value, end = scan(text, 0)
        except StopIteration:
            raise ValueError("not a JSON document") from None
        if end != len(text):
            raise ValueError("extra data after a JSON document")
        return value

    def encoder(escape, item, key):
        encode = make_encoder({}, _no_json, escape, None, key, item, False, False, True)
        return lambda value: "".join(encode(value, 0))

    compact = encoder(encode_basestring_ascii, ",", ":")
    compact_utf8 = encoder(encode_basestring, ",", ":")
    spaced = encoder(encode_basestring_ascii, ", ", ": ")
    probe = {"a": [1, 2.5, None, True, "\u00e9\n"]}
    if compact(probe) != '{"a":[1,2.5,null,true,"\\u00e9\\n"]}' or loads(compact(probe)) != probe:
        raise ImportError("_json behaves differently here")
    if encode_basestring_ascii("\u00e9\"") != '"\\u00e9\\""':
        raise ImportError("_json behaves differently here")
    return loads, compact, compact_utf8, spaced, encode_basestring_ascii


try:
    json_loads, json_compact, json_compact_utf8, json_dumps, json_string = _c_json()
except (ImportError, TypeError, ValueError):
    import json

    json_loads = json.loads
    json_compact = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731
    json_compact_utf8 = lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    json_dumps = json.dumps
    json_string = json.dumps


class BadResponse(Exception):
    """The handler returned something that is not a response."""


class Fatal(Exception):
    """The worker cannot serve this function; the text goes to the gateway."""


def bad_frame():
    raise SystemExit("edgefn worker: oversized or malformed frame from the gateway")


class Reader:
    """Frames from the gateway. Each `recv` takes everything waiting (up to RECV_SIZE), and
    every complete frame in it is parsed: (header dict, memoryview of the body)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def frames(self, wait=True):
        """The complete frames now available, waiting for the first one unless `wait` is
        false (then possibly none); None once the gateway closed the socket."""
        out = []
        buf = self.buf
        tried = False
        while True:
            pos, n = 0, len(buf)
            while n - pos >= 8:
                total = int.from_bytes(buf[pos : pos + 4], "big")
                hlen = int.from_bytes(buf[pos + 4 : pos + 8], "big")
                if total > MAX_REQUEST_FRAME or total < 4 or hlen > total - 4:
                    bad_frame()
                end = pos + 4 + total
                if end > n:
                    break
                start = pos + 8
                out.append((json_loads(buf[start : start + hlen]), memoryview(buf)[start + hlen : end]))
                pos = end
            if pos:
                buf = buf[pos:]
            if out or tried and not wait:
                self.buf = buf
                return out
            if len(buf) >= 8:
                total = int.from_bytes(buf[:4], "big")
                if total + 4 > len(buf) + RECV_SIZE:
                    frame = self.read_large(buf, total + 4)
                    if frame is None:
                        return None
                    buf = frame
                    continue
            try:
                data = self.sock.recv(RECV_SIZE) if wait else self.sock.recv(RECV_SIZE, _socket.MSG_DONTWAIT)
            except BlockingIOError:
                self.buf = buf
                return out
            tried = True
            if not data:
                return None
            buf = buf + data if buf else data

    def read_large(self, start, size):
        """One large frame into a buffer of its own (no copies as it arrives)."""
        frame = bytearray(size)
        frame[: len(start)] = start
        view = memoryview(frame)
        got = len(start)
        while got < size:
            k = self.sock.recv_into(view[got:])
            if not k:
                return None
            got += k
        return frame


class Channel:
    """The socket to the gateway. `lock` serialises whole frames and also guards the
    worker's table of requests in flight (see Worker.finish). `held` collects the frames
    of answers sent with `hold`: they leave with the next frame sent without it, or at
    `flush` (before the main thread waits for the gateway)."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = _thread.allocate_lock()
        self.held = []

    def send_locked(self, header, body=b"", hold=False):
        self.send_frame(json_compact(header).encode(), body, hold)

    def send_frame(self, h, body, hold=False):
        head = (4 + len(h) + len(body)).to_bytes(4, "big") + len(h).to_bytes(4, "big")
        held = self.held
        if len(body) <= JOIN_LIMIT:
            held.append(head + h + body)
            if not hold:
                self.flush_locked()
            return
        self.flush_locked()
        self.sock.sendall(head + h)
        self.sock.sendall(body)

    def flush_locked(self):
        held = self.held
        if held:
            data = held[0] if len(held) == 1 else b"".join(held)
            held.clear()
            self.sock.sendall(data)

    def flush(self):
        if self.held:
            with self.lock:
                self.flush_locked()

    def send(self, header, body=b""):
        with self.lock:
            self.send_locked(header, body)


# --- loading -----------------------------------------------------------------------------


def load_module(path, name="handler"):
    head, slash, _ = path.rpartition("/")
    folder = head.rstrip("/") or slash
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = type(sys)(name)
    module.__file__ = path
    sys.modules[name] = module
    with open(path, "rb") as f:
        source = f.read()
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def find_callable(module, path, handler_name):
    """FastFN's lookup: `invoke.handler` when set, else `handler`, else `main`; else an
    OpenFaaS `handle`. Returns the callable and how to call it."""
    if handler_name:
        fn = getattr(module, handler_name, None)
        if not callable(fn):
            raise Fatal(f"{path} defines no callable `{handler_name}` (invoke.handler)")
        return make_caller(fn)
    for name in ("handler", "main"):
        fn = getattr(module, name, None)
        if callable(fn):
            return make_caller(fn)
    fn = getattr(module, "handle", None)
    if callable(fn):
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_argcount >= 2:
            return openfaas_http(fn)
        return openfaas_classic(fn)
    raise Fatal(f"{path} defines no callable `handler(event)`, `main(event)` or `handle`")


def make_caller(fn):
    """How to call a FastFN-style `fn` with (event, raw body): route parameters become
    keyword arguments when the callable declares them by name (`def handler(event, id)`)
    or takes `**kwargs`."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_flags & CO_VARARGS:
        return lambda event, raw: fn(event)
    argc = code.co_argcount
    if argc == 0 and not code.co_kwonlyargcount and not code.co_flags & CO_VARKEYWORDS:
        return lambda event, raw: fn()
    wanted = frozenset(code.co_varnames[1 : argc + code.co_kwonlyargcount])
    every = bool(code.co_flags & CO_VARKEYWORDS)

    def call(event, raw):
        params = event.get("params")
        if params and isinstance(params, dict):
            if every:
                return fn(event, **params)
            kwargs = {k: v for k, v in params.items() if k in wanted}
            if kwargs:
                return fn(event, **kwargs)
        return fn(event)

    call.is_async = bool(code.co_flags & CO_COROUTINE)
    return call


# --- OpenFaaS handler shapes -------------------------------------------------------------


class CaseInsensitive(dict):
    """Header names looked up in any case, as the python3-http template's werkzeug
    Headers are (the event's names are already lower-case)."""

    def __getitem__(self, key):
        return dict.__getitem__(self, key.lower())

    def get(self, key, default=None):
        return dict.get(self, key.lower(), default)

    def __contains__(self, key):
        return dict.__contains__(self, key.lower())


class Query(dict):
    """request.args of the python3-http template: `get`, `[name]` and `getlist`."""

    def getlist(self, key):
        return [self[key]] if key in self else []


class OpenFaaSEvent:
    def __init__(self, event, raw):
        self.body = bytes(raw)
        self.headers = CaseInsensitive(event.get("headers") or {})
        self.method = event.get("method")
        self.query = Query(event.get("query") or {})
        self.path = event.get("path")


class OpenFaaSContext:
    """The template's context (`hostname`) plus what the gateway verified (`auth`)."""

    def __init__(self, event):
        ctx = event.get("context") or {}
        self.hostname = posix.uname().nodename
        self.auth = ctx.get("auth")
        self.request_id = ctx.get("request_id")
        self.env = event.get("env")


def after(result, convert):
    """`convert(result)`, after awaiting it when the handler is a coroutine."""
    if hasattr(result, "__await__"):

        async def later():
            return convert(await result)

        return later()
    return convert(result)


HTML = "text/html; charset=utf-8"


def from_openfaas_http(resp):
    """python3-http's answer: a dict with statusCode, body (a dict is JSON, anything else
    its text) and headers; None is an empty 200; other values are Flask's (text is HTML)."""
    if resp is None:
        return {"status": 200, "body": ""}
    if isinstance(resp, dict):
        headers = dict(resp.get("headers") or {})
        body = resp.get("body", "")
        if not isinstance(body, (dict, list, bytes, bytearray, str)) and body is not None:
            body = str(body)
        if isinstance(body, str):
            default_type(headers, HTML)
        return {"status": resp.get("statusCode", 200), "headers": headers, "body": body}
    if isinstance(resp, str):
        return {"status": 200, "headers": {"content-type": HTML}, "body": resp}
    return resp


def openfaas_http(fn):
    return lambda event, raw: after(fn(OpenFaaSEvent(event, raw), OpenFaaSContext(event)), from_openfaas_http)


def from_openfaas_classic(ret):
    """The classic template prints what `handle` returns: its text and a newline."""
    if ret is None:
        return {"status": 200, "body": ""}
    return {"status": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": f"{ret}\n"}


def openfaas_classic(fn):
    return lambda event, raw: after(fn(str(raw, "utf-8", "replace")), from_openfaas_classic)


# --- responses ---------------------------------------------------------------------------


def has_header(headers, name):
    return name in headers or any(k.lower() == name for k in headers)


def default_type(headers, value):
    if not has_header(headers, "content-type"):
        headers["content-type"] = value


def looks_like_html(text):
    t = text.lstrip()[:15].lower()
    return t.startswith("<!doctype html") or t.startswith("<html")


def decode_base64(data):
    if not isinstance(data, str):
        raise BadResponse("base64 body is not a string")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (ValueError, binascii.Error):
        raise BadResponse("base64 body is not valid base64") from None


def encode_body(body, headers, bare):
    """Body forms: text, bytes, JSON value, `{"is_base64": true, "body": ...}`."""
    if body is None:
        return b""
    if isinstance(body, str):
        if bare and looks_like_html(body):
            default_type(headers, "text/html; charset=utf-8")
        else:
            default_type(headers, "text/plain; charset=utf-8")
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        default_type(headers, "application/octet-stream")
        return body
    if isinstance(body, dict) and body.get("is_base64") is True:
        default_type(headers, "application/octet-stream")
        return decode_base64(body.get("body", ""))
    if bare and isinstance(body, (bool, int, float)):
        default_type(headers, "text/plain; charset=utf-8")
        return json_dumps(body).encode()
    if isinstance(body, (dict, list, int, float)):
        default_type(headers, "application/json")
        return json_compact_utf8(body).encode()
    raise BadResponse(f"body of type {type(body).__name__} cannot be sent")


def envelope(result):
    """The (status, headers, body, bare) a handler's return value stands for."""
    if isinstance(result, tuple):
        n = len(result)
        return (
            result[1] if n > 1 else 200,
            result[2] if n > 2 else None,
            result[0] if n > 0 else None,
            False,
        )
    if isinstance(result, dict) and not result.keys().isdisjoint(ENVELOPE_KEYS):
        status = result["status"] if "status" in result else result.get("statusCode", 200)
        body = result.get("body")
        if result.get("is_base64") is True:
            raw = result["body_base64"] if "body_base64" in result else body
            body = {"is_base64": True, "body": "" if raw is None else raw}
        elif result.get("isBase64Encoded") is True and "is_base64" not in result:
            body = {"is_base64": True, "body": "" if body is None else body}
        return status, result.get("headers"), body, False
    return 200, None, result, True


def to_response(result):
    """Returns (status, header pairs, body bytes, proxy) or raises BadResponse."""
    status, raw_headers, body, bare = envelope(result)
    proxy = result.get("proxy") if isinstance(result, dict) and not bare else None
    if proxy is not None and not isinstance(proxy, dict):
        raise BadResponse("proxy must be an object when provided")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResponse("status must be a valid HTTP code")
    if raw_headers is None:
        raw_headers = {}
    if not isinstance(raw_headers, dict):
        raise BadResponse("headers must be an object")
    headers = dict(raw_headers)
    for k in headers:
        if not isinstance(k, str):
            raise BadResponse("a header name is not a string")
    payload = encode_body(body, headers, bare)
    pairs = []
    for k, v in headers.items():
        if type(v) is str:
            pairs.append([k, v])
            continue
        for item in v if isinstance(v, list) else (v,):
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise BadResponse("a header value is not a string or number")
            pairs.append([k, str(item)])
    return status, pairs, payload, proxy


FAST_KEYS = frozenset(("status", "headers", "body"))
# Encoded `[name,value]` pairs of text headers seen before: handlers answer the same few.
HEADER_PAIRS = {}


def fast_answer(rid, result):
    """The frame (header JSON bytes, body) of the most common answer, an envelope of an
    integer `status`, `headers` of text values and a text or empty `body`, built without
    `to_response`'s general walk; None for every other shape (then `answer` decides). The
    bytes are the ones `answer` and `json_compact` would give."""
    if type(result) is not dict or not result or not FAST_KEYS.issuperset(result):
        return None
    status = result.get("status", 200)
    headers = result.get("headers")
    body = result.get("body")
    if type(status) is not int or not 100 <= status <= 599:
        return None
    if body is None:
        payload = b""
    elif type(body) is str:
        payload = body.encode("utf-8")
    else:
        return None
    pairs = []
    typed = body is None
    if headers:
        if type(headers) is not dict:
            return None
        for k, v in headers.items():
            if type(k) is not str or type(v) is not str:
                return None
            known = HEADER_PAIRS.get((k, v))
            if known is None:
                known = f"[{json_string(k)},{json_string(v)}]", k.lower() == "content-type"
                if len(HEADER_PAIRS) < 256:
                    HEADER_PAIRS[k, v] = known
            pairs.append(known[0])
            typed = typed or known[1]
    elif headers is not None and headers != {}:
        return None
    if not typed:
        pairs.append('["content-type","text/plain; charset=utf-8"]')
    return f'{{"type":"res","id":{rid},"status":{status},"headers":[{",".join(pairs)}]}}'.encode(), payload


def answer(rid, result):
    """The frame (header, body) that answers request `rid` with `result`."""
    try:
        status, pairs, payload, proxy = to_response(result)
    except BadResponse as e:
        print(f"edgefn: handler returned an invalid response: {e}", file=sys.stderr, flush=True)
        # FastFN's daemon raises ValueError here, which it answers with 400.
        return {"type": "err", "id": rid, "kind": "bad_response", "status": 400, "detail": str(e)}, b""
    header = {"type": "res", "id": rid, "status": status, "headers": pairs}
    if proxy is not None:
        header["proxy"] = proxy
    return header, payload


def failure(rid, error=None):
    """The `err` frame for a handler that raised: FastFN's daemon answers the exception's
    text, with 400 for a ValueError and 404 for a FileNotFoundError, else 500."""
    import traceback

    if error is None:
        error = sys.exc_info()[1]
    traceback.print_exception(error)
    sys.stderr.flush()
    status = 400 if isinstance(error, ValueError) else 404 if isinstance(error, FileNotFoundError) else 500
    try:
        detail = str(error)
    except Exception:
        detail = type(error).__name__
    return {"type": "err", "id": rid, "kind": "handler_error", "status": status, "detail": detail}, b""


# --- serving -----------------------------------------------------------------------------


class Event(dict):
    """A request without a body has no `body` key, as in FastFN (`event.get("body", {})`
    sees its default), yet `event["body"]` is still the empty text edgefn always handed."""

    __slots__ = ()

    def __missing__(self, key):
        if key == "body":
            return ""
        raise KeyError(key)


def build_event(header, body, env):
    event = Event(header["event"])
    if header.get("binary"):
        event["body"] = None
        event["body_base64"] = binascii.b2a_base64(body, newline=False).decode("ascii")
    elif len(body):
        event["body"] = str(body, "utf-8")
    event["env"] = env
    return event


class Worker:
    """Requests in flight and their cancellation. `inflight` maps an id to how it runs
    ("inline", "thread" or "task"); `cancelled` holds ids the gateway gave up on whose
    handler has not finished yet. Both change only under the channel lock. Coroutines
    beyond `concurrency` wait in `backlog` (loop thread only) for a task to end."""

    def __init__(self, call, channel, concurrency, handler_name=None):
        self.call = call
        self.handler_name = handler_name
        # The other handler files of the folder, when the gateway shares this worker between
        # them (FastFN runs them in one process): path → caller, loaded on first use.
        self.others = {}
        self.load_lock = _thread.allocate_lock()
        self.channel = channel
        self.concurrency = concurrency
        self.inflight = {}
        self.cancelled = set()
        self.jobs = None
        self.threads = 0
        self.loop = None
        self.loop_lock = _thread.allocate_lock()
        self.tasks = {}
        self.backlog = {}
        # Moving average of inline run times, ns: decides whether answers are held.
        self.run_ns = 0

    def finish(self, rid, header, body=b"", hold=False):
        with self.channel.lock:
            self.inflight.pop(rid, None)
            if rid in self.cancelled:
                self.cancelled.discard(rid)
                header, body = {"type": "cancelled", "id": rid}, b""
            self.channel.send_locked(header, body, hold)

    def call_for(self, file):
        """The caller of `file` (the `handler` a request names), else the worker's own; a
        file that fails to load raises here and is tried again by the next request."""
        if not file:
            return self.call
        call = self.others.get(file)
        if call is None:
            with self.load_lock:
                call = self.others.get(file)
                if call is None:
                    module = load_module(file, f"handler_{len(self.others) + 1}")
                    call = find_callable(module, file, self.handler_name)
                    self.others[file] = call
        return call

    def request(self, rid, event, raw, more=False, file=None):
        """Starts request `rid` (of handler `file`, else the worker's own); `more`: another
        request is waiting to run inline after it."""
        with self.channel.lock:
            self.inflight[rid] = "inline" if self.concurrency == 1 else "thread"
        if self.concurrency == 1:
            t0 = monotonic_ns()
            self.run(rid, event, raw, more and self.run_ns < HOLD_LIMIT_NS, file)
            self.run_ns += (monotonic_ns() - t0 - self.run_ns) >> 3
            return
        if self.jobs is None:
            from _queue import SimpleQueue

            self.jobs = SimpleQueue()
        if self.threads < self.concurrency:
            self.threads += 1
            _thread.start_new_thread(self.thread_main, ())
        self.jobs.put((rid, event, raw, file))

    def thread_main(self):
        while True:
            rid, event, raw, file = self.jobs.get()
            if rid in self.cancelled:
                self.finish(rid, {"type": "cancelled", "id": rid})
                continue
            try:
                self.run(rid, event, raw, file=file)
            except BaseException:
                # SystemExit and the like end a thread silently: answer instead.
                self.finish(rid, *failure(rid))

    def run(self, rid, event, raw, hold=False, file=None):
        try:
            result = self.call_for(file)(event, raw)
        except Exception:
            self.finish(rid, *failure(rid))
            return
        if hasattr(result, "__await__"):
            self.start_task(rid, result)
            return
        fast = fast_answer(rid, result)
        if fast is None:
            self.finish(rid, *answer(rid, result), hold)
            return
        channel = self.channel
        with channel.lock:
            self.inflight.pop(rid, None)
            if rid in self.cancelled:
                self.cancelled.discard(rid)
                channel.send_locked({"type": "cancelled", "id": rid}, b"", hold)
            else:
                channel.send_frame(fast[0], fast[1], hold)

    def start_task(self, rid, awaitable):
        with self.channel.lock:
            self.inflight[rid] = "task"
        loop = self.event_loop()
        loop.call_soon_threadsafe(self.on_loop_start, rid, awaitable)

    def event_loop(self):
        with self.loop_lock:
            if self.loop is None:
                import asyncio

                self.asyncio = asyncio
                self.loop = asyncio.new_event_loop()
                _thread.start_new_thread(self.loop.run_forever, ())
        return self.loop

    def on_loop_start(self, rid, awaitable):
        if len(self.tasks) >= self.concurrency:
            self.backlog[rid] = awaitable
            return
        task = self.asyncio.ensure_future(awaitable, loop=self.loop)
        self.tasks[rid] = task
        task.add_done_callback(lambda t: self.on_task_done(rid, t))
        if rid in self.cancelled:
            task.cancel()

    def on_task_done(self, rid, task):
        self.tasks.pop(rid, None)
        if self.backlog:
            first = next(iter(self.backlog))
            self.on_loop_start(first, self.backlog.pop(first))
        if task.cancelled():
            self.finish(rid, {"type": "cancelled", "id": rid})
            return
        error = task.exception()
        if error is not None:
            self.finish(rid, *failure(rid, error))
            return
        self.finish(rid, *answer(rid, task.result()))

    def cancel(self, rid):
        with self.channel.lock:
            how = self.inflight.get(rid)
            if how is None:
                self.channel.send_locked({"type": "cancelled", "id": rid})
                return
            self.cancelled.add(rid)
        if how == "task":
            self.loop.call_soon_threadsafe(self.on_loop_cancel, rid)

    def on_loop_cancel(self, rid):
        task = self.tasks.get(rid)
        if task is not None:
            task.cancel()
            return
        waiting = self.backlog.pop(rid, None)
        if waiting is not None:
            if hasattr(waiting, "close"):
                waiting.close()
            self.finish(rid, {"type": "cancelled", "id": rid})


def serve(reader, channel, worker, env):
    """The main thread: frames in arrival order. Requests wait in `queued` until started,
    and before each start every frame already waiting is read (a cancel for a queued
    request answers `cancelled` and drops it unrun); with concurrency 1 each runs here."""
    queued = {}
    while True:
        if queued:
            # What arrived meanwhile, without waiting: a cancel for a queued request is
            # seen before it would start.
            batch = reader.frames(wait=False)
        else:
            channel.flush()
            batch = reader.frames()
        if batch is None:
            return
        for header, body in batch:
            kind = header.get("type")
            if kind == "req":
                queued[header["id"]] = (header, body)
            elif kind == "cancel":
                rid = header["id"]
                if queued.pop(rid, None) is None:
                    worker.cancel(rid)
                else:
                    channel.send({"type": "cancelled", "id": rid})
        if queued:
            rid = next(iter(queued))
            header, body = queued.pop(rid)
            worker.request(rid, build_event(header, body, env), body, bool(queued), header.get("handler"))


def export_env(env):
    """FastFN's daemon shows a function's `fn.env.json` in `os.environ` too, not only in
    `event["env"]`; this process serves one function (or one folder's), so once is enough.
    `os` is not imported yet (it costs start time): `posix.environ` is what it copies."""
    os_module = sys.modules.get("os")
    for k, v in env.items():
        if not isinstance(k, str) or not k or "=" in k or v is None:
            continue
        v = str(v)
        try:
            if os_module is not None:
                os_module.environ[k] = v
            else:
                posix.putenv(k, v)
                posix.environ[k.encode()] = v.encode()
        except (ValueError, UnicodeEncodeError):
            continue


def main():
    sock_path, handler_path, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.stdout.reconfigure(line_buffering=True)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.connect(sock_path)
    reader = Reader(sock)
    channel = Channel(sock)
    first = reader.frames()
    init = first[0][0] if first else None
    if init is None or init.get("type") != "init":
        raise SystemExit("edgefn worker: no init frame from the gateway")
    if init.get("version") != PROTOCOL:
        sent = json_dumps(init.get("version"))
        text = f"edgefn worker speaks protocol {PROTOCOL}; the gateway sent version {sent}"
        print(text, file=sys.stderr, flush=True)
        channel.send({"type": "fatal", "error": text})
        sys.exit(1)
    env = init.get("env") or {}
    export_env(env)
    try:
        module = load_module(handler_path)
        call = find_callable(module, handler_path, init.get("handler_name"))
    except Fatal as e:
        print(f"edgefn: {e}", file=sys.stderr, flush=True)
        channel.send({"type": "fatal", "error": str(e)})
        sys.exit(1)
    except BaseException as e:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        # The exception's text, as FastFN's daemon answers a handler that cannot be imported.
        channel.send({"type": "fatal", "error": str(e) or type(e).__name__})
        sys.exit(1)
    channel.send({"type": "ready", "version": PROTOCOL, "pid": posix.getpid()})
    worker = Worker(call, channel, max(1, concurrency), init.get("handler_name"))
    if getattr(call, "is_async", False):
        # asyncio costs tens of milliseconds to import: after `ready`, not before the first
        # request would need it.
        _thread.start_new_thread(worker.event_loop, ())
    serve(reader, channel, worker, env)


if __name__ == "__main__":
    main()
