'use strict';
// edgefn Node worker (protocol v2): loads one handler once and serves framed requests, several
// at once (the gateway caps in-flight requests at the function's `concurrency`).
// Started as `node edgefn-worker.js <socket> <handler.js> <concurrency>`; the protocol is in
// runtimes/PROTOCOL.md. Data flow: reads into one reused buffer → each complete frame parsed
// where it lies (requests in the flat encoding this worker asks for in `ready`) → event (built
// from fixed-shape literals, body decoded once, env the init object itself) → handler (a sync
// result is answered in the same turn) → response frames of the turn joined into one write
// (a large body follows its header uncopied). A cancelled request is forgotten at once
// (`cancelled` sent) and its later result discarded. stdout/stderr belong to the handler:
// the gateway captures them.

const net = require('net');
const path = require('path');

const PROTOCOL = 2;
const MAX_REQUEST_FRAME = (64 << 20) + (1 << 20);
// Keys that make a returned object a response envelope rather than a JSON body (FastFN's).
const ENVELOPE_KEYS = ['status', 'statusCode', 'headers', 'body', 'is_base64', 'isBase64Encoded', 'body_base64', 'proxy'];
const [sockPath, handlerPath] = process.argv.slice(2);

// The gateway moved NODE_EXTRA_CA_CERTS into the OpenSSL store this process was started
// with (read at the first TLS connection, not at start-up); the handler and its child
// processes see the operator's variable as it was.
if (process.env.EDGEFN_NODE_EXTRA_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.EDGEFN_NODE_EXTRA_CA_CERTS;
  delete process.env.EDGEFN_NODE_EXTRA_CA_CERTS;
}

class BadResponse extends Error {}
class Fatal extends Error {}

// Frames answered in one turn of the event loop (every answer settled while one batch of
// requests is read) are copied into one buffer that leaves in one write when the turn ends
// (`setImmediate`); a body over JOIN_LIMIT bytes is written as its own buffer, never copied.
const JOIN_LIMIT = 64 << 10;
let outSock = null;
// Pending frames of this turn: header text, then body (text, bytes or null), alternately.
const outParts = [];
// An upper bound of the bytes the joined frames need (text counted at 3 bytes a UTF-16 unit).
let outBound = 0;

function send(sock, header, body) {
  queueFrame(sock, JSON.stringify(header), body);
}

function queueFrame(sock, text, body) {
  if (outSock !== sock) {
    if (outSock !== null) flush();
    outSock = sock;
    setImmediate(flush);
  }
  let joined = 0;
  if (typeof body === 'string') {
    if (3 * body.length > JOIN_LIMIT) body = Buffer.from(body, 'utf8');
    else joined = 3 * body.length;
  }
  if (body !== null && typeof body !== 'string' && body.length <= JOIN_LIMIT) joined = body.length;
  outParts.push(text, body);
  outBound += 8 + 3 * text.length + joined;
}

function flush() {
  const sock = outSock;
  if (sock === null) return;
  outSock = null;
  const parts = outParts.splice(0);
  let buf = Buffer.allocUnsafe(outBound);
  outBound = 0;
  let at = 0;
  let corked = false;
  for (let i = 0; i < parts.length; i += 2) {
    const body = parts[i + 1];
    const hlen = buf.write(parts[i], at + 8);
    let len = 0;
    let separate = false;
    if (typeof body === 'string') {
      len = buf.write(body, at + 8 + hlen);
    } else if (body !== null) {
      len = body.length;
      separate = len > JOIN_LIMIT;
      if (!separate) buf.set(body, at + 8 + hlen);
    }
    buf.writeUInt32BE(4 + hlen + len, at);
    buf.writeUInt32BE(hlen, at + 4);
    at += 8 + hlen + (separate ? 0 : len);
    if (!separate) continue;
    if (!corked) {
      corked = true;
      sock.cork();
    }
    sock.write(buf.subarray(0, at));
    sock.write(body);
    buf = buf.subarray(at);
    at = 0;
  }
  if (at > 0) sock.write(buf.subarray(0, at));
  if (corked) sock.uncork();
}

// --- loading ---------------------------------------------------------------------------------

async function loadModule(file) {
  try {
    return require(file);
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') {
      const { pathToFileURL } = require('url');
      return import(pathToFileURL(file).href);
    }
    throw e;
  }
}

// A TypeScript handler runs as the file the gateway compiled it to (with a source map, so
// traces name the .ts lines).
function handlerFile(file) {
  if (!/\.[mc]?tsx?$/.test(file)) return file;
  const compiled = process.env.EDGEFN_TS_OUTPUT;
  if (!compiled) throw new Fatal(`${file} is TypeScript and the gateway gave no compiled file (EDGEFN_TS_OUTPUT)`);
  return compiled;
}

// FastFN's lookup: `invoke.handler` when set, else `handler`, else `main` (on the module or
// its default export), else the default export or the module itself when it is a function:
// with two or more parameters that is the OpenFaaS node template's
// `module.exports = async (event, context) => ...`. Returns `(event, raw body) => result`.
function findCallable(mod, file, handlerName) {
  const scopes = [mod, mod && mod.default].filter((s) => s !== null && s !== undefined);
  const fastfn = (fn) => (event) => fn(event, event.params || {});
  if (handlerName) {
    for (const s of scopes) if (typeof s[handlerName] === 'function') return fastfn(s[handlerName]);
    throw new Fatal(`${file} exports no function \`${handlerName}\` (invoke.handler)`);
  }
  for (const name of ['handler', 'main']) {
    for (const s of scopes) if (typeof s[name] === 'function') return fastfn(s[name]);
  }
  for (const s of scopes) {
    if (typeof s === 'function') return s.length >= 2 ? openfaas(s) : fastfn(s);
  }
  throw new Fatal(`${file} exports no handler function (exports.handler = async (event) => ...)`);
}

// --- the OpenFaaS node template's shape ------------------------------------------------------

// event.body as the template's body-parser leaves it: JSON parsed, form fields as an object,
// text (also when there is no content type) as a string, anything else the raw Buffer.
function openfaasBody(headers, raw) {
  const type = String(headers['content-type'] || 'text/plain').split(';')[0].trim().toLowerCase();
  if (type === 'application/json') {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch (e) {
      return raw.toString('utf8');
    }
  }
  if (type === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  if (type.startsWith('text/')) return raw.toString('utf8');
  return raw;
}

class OpenFaaSContext {
  constructor(event, done) {
    const ctx = event.context || {};
    this.statusCode = 200;
    this.headerValues = {};
    this.cbCalled = 0;
    this.done = done;
    // What the gateway verified, beside the template's own methods.
    this.auth = ctx.auth;
    this.request_id = ctx.request_id;
    this.env = event.env;
  }

  status(code) {
    if (!code) return this.statusCode;
    this.statusCode = code;
    return this;
  }

  headers(value) {
    if (!value) return this.headerValues;
    this.headerValues = value;
    return this;
  }

  succeed(value) {
    this.cbCalled++;
    this.done(undefined, value);
  }

  fail(error) {
    if (this.statusCode === 200) this.statusCode = 500;
    this.cbCalled++;
    this.done(error === undefined ? 'error' : error);
  }
}

// An answer as the template's express app sends it: text as HTML, objects and arrays as
// JSON, Buffers as bytes; a failure is its text with the context's status (500 by default).
function fromOpenFaaS(ctx, error, value) {
  const headers = Object.assign({}, ctx.headerValues);
  if (error !== undefined) {
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'text/html; charset=utf-8';
    return { status: ctx.statusCode, headers, body: error && error.toString ? error.toString() : String(error) };
  }
  let body = value;
  if (body !== null && typeof body === 'object' && !(body instanceof Uint8Array)) {
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/json; charset=utf-8';
    body = JSON.stringify(body);
  } else if (typeof body === 'string' || typeof body === 'number' || typeof body === 'boolean') {
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'text/html; charset=utf-8';
    body = String(body);
  }
  return { status: ctx.statusCode, headers, body: body === undefined || body === null ? '' : body };
}

function openfaas(fn) {
  return (event, raw) =>
    new Promise((resolve) => {
      let settled = false;
      const done = (error, value) => {
        if (settled) return;
        settled = true;
        resolve(fromOpenFaaS(ctx, error, value));
      };
      const ctx = new OpenFaaSContext(event, done);
      const fevent = {
        body: openfaasBody(event.headers || {}, raw),
        headers: event.headers,
        method: event.method,
        query: event.query,
        path: event.path,
      };
      Promise.resolve()
        .then(() => fn(fevent, ctx, done))
        .then(
          (res) => {
            if (!ctx.cbCalled) ctx.succeed(res);
          },
          (e) => {
            console.error(e && e.stack ? e.stack : String(e));
            done(e);
          },
        );
    });
}

// --- responses -------------------------------------------------------------------------------

function hasHeader(headers, name) {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

function looksLikeHtml(text) {
  const t = text.trimStart().slice(0, 15).toLowerCase();
  return t.startsWith('<!doctype html') || t.startsWith('<html');
}

function decodeBase64(data) {
  if (typeof data !== 'string') throw new BadResponse('base64 body is not a string');
  if (data.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) {
    throw new BadResponse('base64 body is not valid base64');
  }
  return Buffer.from(data, 'base64');
}

// The content type a body form implies, set by encodeBody beside its result.
let impliedType = null;

// Body forms: text, Buffer, JSON value, `{is_base64: true, body: ...}`. Text (and JSON) stays
// a string: it is encoded once, straight into the frame.
function encodeBody(body, bare) {
  if (body === undefined || body === null) {
    impliedType = null;
    return null;
  }
  if (typeof body === 'string') {
    impliedType = bare && looksLikeHtml(body) ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8';
    return body;
  }
  if (body instanceof Uint8Array) {
    impliedType = 'application/octet-stream';
    return body;
  }
  if (typeof body === 'object' && !Array.isArray(body) && body.is_base64 === true) {
    impliedType = 'application/octet-stream';
    return decodeBase64(body.body === undefined ? '' : body.body);
  }
  if (bare && (typeof body === 'number' || typeof body === 'boolean')) {
    impliedType = 'text/plain; charset=utf-8';
    return String(body);
  }
  if (typeof body === 'object' || typeof body === 'number' || typeof body === 'boolean') {
    impliedType = 'application/json';
    const text = JSON.stringify(body);
    if (text === undefined) throw new BadResponse('body cannot be sent as JSON');
    return text;
  }
  throw new BadResponse(`body of type ${typeof body} cannot be sent`);
}

function isEnvelope(result) {
  for (let i = 0; i < ENVELOPE_KEYS.length; i++) if (ENVELOPE_KEYS[i] in result) return true;
  return false;
}

// The {status, headers, body, bare} a handler's return value stands for.
function envelope(result) {
  const isObj = result !== null && typeof result === 'object' && !Array.isArray(result) && !(result instanceof Uint8Array);
  if (!isObj || !isEnvelope(result)) {
    return { status: 200, headers: undefined, body: result, bare: true, proxy: undefined };
  }
  const status = 'status' in result ? result.status : 'statusCode' in result ? result.statusCode : 200;
  let body = result.body;
  if (result.is_base64 === true) {
    const raw = 'body_base64' in result ? result.body_base64 : body;
    body = { is_base64: true, body: raw === undefined || raw === null ? '' : raw };
  } else if (result.isBase64Encoded === true && !('is_base64' in result)) {
    body = { is_base64: true, body: body === undefined || body === null ? '' : body };
  }
  const p = result.proxy;
  const proxy = p !== null && typeof p === 'object' && !Array.isArray(p) ? p : undefined;
  return { status, headers: result.headers, body, bare: false, proxy };
}

// {status, pairs: [name, value, name, value, ...], payload: string | bytes | null, proxy}.
function toResponse(result) {
  const { status, headers: rawHeaders, body, bare, proxy } = envelope(result);
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new BadResponse('status must be a valid HTTP code');
  }
  const raw = rawHeaders === undefined || rawHeaders === null ? {} : rawHeaders;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new BadResponse('headers must be an object');
  const names = Object.keys(raw);
  const payload = encodeBody(body, bare);
  const type = impliedType;
  const pairs = [];
  let typed = false;
  for (let i = 0; i < names.length; i++) {
    const k = names[i];
    const v = raw[k];
    if (!typed && k.length === 12 && k.toLowerCase() === 'content-type') typed = true;
    if (Array.isArray(v)) {
      for (let j = 0; j < v.length; j++) pairs.push(k, headerValue(v[j]));
    } else {
      pairs.push(k, headerValue(v));
    }
  }
  if (!typed && type !== null) pairs.push('content-type', type);
  return { status, pairs, payload, proxy };
}

function headerValue(item) {
  if (typeof item === 'string') return item;
  if (typeof item === 'number') return String(item);
  throw new BadResponse('a header value is not a string or number');
}

// --- serving ---------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);

// --- the flat request encoding (`flat1`, announced in `ready`) -------------------------------
// The gateway sends the event's fields one a line instead of its JSON (runtimes/PROTOCOL.md):
// the event is built here from object literals of fixed shape, in the JSON event's key order,
// and only the variable-shaped parts (query, params, headers, session, auth) are parsed, when
// not empty. The handler gets a plain object equal to the JSON encoding's.
const FLAT_TAG = 0x46; // 'F'
const AUTH_NONE = '{"type":"none","subject":null}';
// The per-function first line (`F{...}`) → its parsed fields; a folder's shared pool sees
// one line per function it serves.
const fixedParts = new Map();

// The last line seen, compared before the map is asked (a map lookup hashes the line).
let lastLine = null;
let lastFixed = null;

function fixedPart(line) {
  if (line === lastLine) return lastFixed;
  let fixed = fixedParts.get(line);
  if (fixed === undefined) {
    fixed = JSON.parse(line.slice(1));
    fixedParts.set(line, fixed);
  }
  lastLine = line;
  lastFixed = fixed;
  return fixed;
}

function object(text) {
  return text === '{}' ? {} : JSON.parse(text);
}

function flatRequest(text) {
  const f = text.split('\n');
  if (f.length !== 15) throw new Error(`flat request frame has ${f.length} fields, not 15`);
  const fixed = fixedPart(f[0]);
  const rid = f[3];
  const path = f[6];
  const auth = f[14] === AUTH_NONE ? { type: 'none', subject: null } : JSON.parse(f[14]);
  const ua = f[13];
  const session = f[11];
  const event = {
    id: rid,
    ts: Number(f[4]),
    method: f[5],
    path,
    raw_path: f[7] === '' ? path : path + f[7],
    query: object(f[8]),
    params: object(f[9]),
    path_params: object(f[9]),
    headers: object(f[10]),
    session: session === 'null' ? null : JSON.parse(session),
    client: { ip: f[12] === '' ? null : f[12], ua: ua === '' ? null : ua.slice(1) },
    context: {
      request_id: rid,
      function: fixed.function,
      function_name: fixed.function_name,
      runtime: fixed.runtime,
      version: fixed.version,
      timeout_ms: fixed.timeout_ms,
      max_body_bytes: fixed.max_body_bytes,
      debug: { enabled: fixed.debug.enabled },
      auth,
      user: auth.type === 'none' ? null : { id: auth.subject, auth: auth.type },
    },
  };
  return { type: 'req', id: Number(f[1]), binary: f[2] === '1', handler: fixed.handler, event };
}

function buildEvent(header, body, env) {
  const event = header.event;
  if (header.binary) {
    event.body = null;
    event.body_base64 = body.toString('base64');
  } else if (body.length > 0) {
    // No body, no `body` field: FastFN's event (`event.body || {}` sees undefined).
    event.body = body.toString('utf8');
  }
  event.env = env;
  return event;
}

/** FastFN's `error` text for a thrown value: its message, else its string form. */
function errorText(e) {
  if (e && e.message) return String(e.message);
  try {
    return String(e);
  } catch (_) {
    return 'Error';
  }
}

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function';
}

class Worker {
  constructor(sock, call, handlerName) {
    this.sock = sock;
    this.call = call;
    this.handlerName = handlerName;
    // The other handler files of the folder, when the gateway shares this worker between
    // them (FastFN runs a folder's handlers in one process): file → callable promise.
    this.others = new Map();
    // Ids in flight; an id leaves when answered or cancelled, so a late result is dropped.
    this.inflight = new Set();
  }

  callFor(file) {
    let p = this.others.get(file);
    if (!p) {
      p = loadModule(file).then((mod) => findCallable(mod, file, this.handlerName));
      this.others.set(file, p);
      // A file that failed to load is tried again by the next request.
      p.catch(() => this.others.delete(file));
    }
    return p;
  }

  request(id, event, raw, file) {
    this.inflight.add(id);
    if (file) {
      this.callFor(file).then(
        (call) => this.run(call, id, event, raw),
        (e) => this.failed(id, e),
      );
    } else {
      this.run(this.call, id, event, raw);
    }
  }

  // A synchronous handler is answered in the same turn, an async one when its promise
  // settles: no promise is made for a value that is not one.
  run(call, id, event, raw) {
    let result;
    try {
      result = call(event, raw);
    } catch (e) {
      this.failed(id, e);
      return;
    }
    if (isThenable(result)) {
      Promise.resolve(result).then(
        (value) => this.answer(id, value),
        (e) => this.failed(id, e),
      );
    } else {
      this.answer(id, result);
    }
  }

  answer(id, result) {
    let res;
    try {
      res = toResponse(result);
    } catch (e) {
      this.failed(id, e);
      return;
    }
    if (!this.inflight.delete(id)) return;
    queueFrame(this.sock, resHeader(id, res), res.payload);
  }

  failed(id, e) {
    if (!this.inflight.has(id)) return;
    let header;
    // FastFN's daemon answers 500 with the error's message (404 for ENOENT).
    if (e instanceof BadResponse) {
      console.error(`edgefn: handler returned an invalid response: ${e.message}`);
      header = { type: 'err', id, kind: 'bad_response', status: 500, detail: e.message };
    } else {
      console.error(e && e.stack ? e.stack : String(e));
      const status = e && e.code === 'ENOENT' ? 404 : 500;
      header = { type: 'err', id, kind: 'handler_error', status, detail: errorText(e) };
    }
    this.inflight.delete(id);
    send(this.sock, header, null);
  }

  cancel(id) {
    this.inflight.delete(id);
    send(this.sock, { type: 'cancelled', id }, null);
  }
}

// Printable ASCII without `"` and `\`: a JSON string as it stands.
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function jsonString(text) {
  return PLAIN.test(text) ? `"${text}"` : JSON.stringify(text);
}

// `{"type":"res","id":N,"status":S,"headers":[[name,value],...]}` (and `proxy`), written
// out rather than through JSON.stringify of a fresh object: header names and values are
// nearly always plain text, which needs no escaping.
function resHeader(id, res) {
  let text = `{"type":"res","id":${id},"status":${res.status},"headers":[`;
  const pairs = res.pairs;
  for (let i = 0; i < pairs.length; i += 2) {
    if (i > 0) text += ',';
    text += `[${jsonString(pairs[i])},${jsonString(pairs[i + 1])}]`;
  }
  text += ']';
  if (res.proxy !== undefined) text += `,"proxy":${JSON.stringify(res.proxy)}`;
  return text + '}';
}

/** FastFN's daemon shows a function's `fn.env.json` in `process.env` too, not only in
 * `event.env`; this process serves one function (or one folder's), so once is enough. */
function exportEnv(env) {
  for (const [k, v] of Object.entries(env)) {
    if (k && v !== null && v !== undefined) process.env[k] = String(v);
  }
}

function fatal(sock, text) {
  send(sock, { type: 'fatal', error: text }, null);
  flush();
  sock.end(() => process.exit(1));
}

// Reads land in one reused buffer (`onread`), and every complete frame in it is handled
// where it lies: its header text and body are copied out (a body only when present), so
// nothing is joined. Only a frame that does not fit in what was read is assembled, in a
// buffer of exactly its size allocated once its length is known.
const READ_SIZE = 256 << 10;

class FrameReader {
  constructor(onFrame) {
    this.onFrame = onFrame;
    // The frame being assembled across reads (its first `filled` bytes), or null.
    this.partial = null;
    this.filled = 0;
    // Up to 7 bytes of a length prefix split across reads.
    this.prefix = Buffer.allocUnsafe(8);
    this.prefixLen = 0;
  }

  push(buf, end) {
    let at = 0;
    if (this.prefixLen > 0) {
      const take = Math.min(8 - this.prefixLen, end);
      buf.copy(this.prefix, this.prefixLen, 0, take);
      this.prefixLen += take;
      at = take;
      if (this.prefixLen < 8) return;
      this.prefixLen = 0;
      this.begin(this.prefix, 0, 8);
    }
    if (this.partial !== null) {
      const take = Math.min(this.partial.length - this.filled, end - at);
      buf.copy(this.partial, this.filled, at, at + take);
      this.filled += take;
      at += take;
      if (this.filled < this.partial.length) return;
      const frame = this.partial;
      this.partial = null;
      this.frame(frame, 0, frame.length, true);
    }
    while (end - at >= 8) {
      const total = this.checkedLength(buf, at);
      if (end - at < 4 + total) {
        this.begin(buf, at, end);
        return;
      }
      this.frame(buf, at, at + 4 + total, false);
      at += 4 + total;
    }
    if (at < end) {
      buf.copy(this.prefix, 0, at, end);
      this.prefixLen = end - at;
    }
  }

  checkedLength(buf, at) {
    const total = buf.readUInt32BE(at);
    const hlen = buf.readUInt32BE(at + 4);
    if (total > MAX_REQUEST_FRAME || total < 4 || hlen > total - 4) {
      console.error('edgefn worker: oversized or malformed frame from the gateway');
      process.exit(1);
    }
    return total;
  }

  // Starts assembling the frame whose first bytes are buf[at, end) (at least its prefix).
  begin(buf, at, end) {
    const total = this.checkedLength(buf, at);
    this.partial = Buffer.allocUnsafe(4 + total);
    buf.copy(this.partial, 0, at, end);
    this.filled = end - at;
  }

  // The frame buf[at, end); `owned`: buf is the frame's own memory, its body need not be copied.
  frame(buf, at, end, owned) {
    const hlen = buf.readUInt32BE(at + 4);
    const text = buf.toString('utf8', at + 8, at + 8 + hlen);
    const header = text.charCodeAt(0) === FLAT_TAG ? flatRequest(text) : JSON.parse(text);
    const start = at + 8 + hlen;
    let body = EMPTY;
    if (start < end) body = owned ? buf.subarray(start, end) : Buffer.from(buf.subarray(start, end));
    this.onFrame(header, body);
  }
}

function main() {
  let worker = null;
  let env = null;
  const queued = [];
  const reader = new FrameReader(onFrame);
  const sock = net.createConnection({
    path: sockPath,
    onread: {
      buffer: Buffer.allocUnsafe(READ_SIZE),
      callback: (n, buf) => {
        reader.push(buf, n);
      },
    },
  });

  async function start(init) {
    if (init.version !== PROTOCOL) {
      const text = `edgefn worker speaks protocol ${PROTOCOL}; the gateway sent version ${JSON.stringify(init.version === undefined ? null : init.version)}`;
      console.error(text);
      fatal(sock, text);
      return;
    }
    env = init.env || {};
    exportEnv(env);
    let fn;
    try {
      const file = handlerFile(path.resolve(handlerPath));
      fn = findCallable(await loadModule(file), file, init.handler_name);
    } catch (e) {
      if (e instanceof Fatal) {
        console.error(`edgefn: ${e.message}`);
        fatal(sock, e.message);
      } else {
        console.error(e && e.stack ? e.stack : String(e));
        // The error's message, as FastFN's daemon answers a handler that cannot be loaded.
        fatal(sock, errorText(e));
      }
      return;
    }
    worker = new Worker(sock, fn, init.handler_name);
    send(sock, { type: 'ready', version: PROTOCOL, pid: process.pid, request_encoding: 'flat1' }, null);
    for (const [h, b] of queued.splice(0)) onFrame(h, b);
  }

  function onFrame(header, body) {
    if (header.type === 'init') {
      start(header);
      return;
    }
    if (worker === null) {
      queued.push([header, body]);
      return;
    }
    if (header.type === 'req') {
      worker.request(header.id, buildEvent(header, body, env), body, header.handler);
    } else if (header.type === 'cancel') worker.cancel(header.id);
  }

  sock.on('close', () => process.exit(0));
  sock.on('error', () => process.exit(1));
}

process.on('unhandledRejection', (e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

main();
