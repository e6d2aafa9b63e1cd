'use strict';
// edgefn Node worker (protocol v2): loads one handler once and serves framed requests, several
// at once (the gateway caps in-flight requests at the function's `concurrency`).
// Started as `node edgefn-worker.js <socket> <handler.js> <concurrency>`; the protocol is in
// runtimes/PROTOCOL.md. Data flow: socket chunks → one Buffer per frame → event (body decoded
// once, env the init object itself) → handler → response frame (header, then the body as its
// own write: no copy). A cancelled request is forgotten at once (`cancelled` sent) and its
// later result discarded. stdout/stderr belong to the handler: the gateway captures them.

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

// Bodies up to this size are copied behind their header (one buffer per frame); larger
// ones follow it as their own buffer, never copied.
const JOIN_LIMIT = 64 << 10;
let corked = null;

// Frames written in one turn of the event loop (every answer settled while one batch of
// requests is read) leave in one writev when it ends, not one write each.
function send(sock, header, body) {
  const text = JSON.stringify(header);
  const hlen = Buffer.byteLength(text);
  const len = body ? body.length : 0;
  const join = len <= JOIN_LIMIT;
  const frame = Buffer.allocUnsafe(8 + hlen + (join ? len : 0));
  frame.writeUInt32BE(4 + hlen + len, 0);
  frame.writeUInt32BE(hlen, 4);
  frame.write(text, 8, hlen, 'utf8');
  if (join && len > 0) frame.set(body, 8 + hlen);
  if (corked !== sock) {
    corked = sock;
    sock.cork();
    setImmediate(uncork, sock);
  }
  sock.write(frame);
  if (!join) sock.write(body);
}

function uncork(sock) {
  corked = null;
  sock.uncork();
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

function defaultType(headers, value) {
  if (!hasHeader(headers, 'content-type')) headers['content-type'] = value;
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

// Body forms: text, Buffer, JSON value, `{is_base64: true, body: ...}`.
function encodeBody(body, headers, bare) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') {
    defaultType(headers, bare && looksLikeHtml(body) ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8');
    return Buffer.from(body, 'utf8');
  }
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    defaultType(headers, 'application/octet-stream');
    return body;
  }
  if (typeof body === 'object' && !Array.isArray(body) && body.is_base64 === true) {
    defaultType(headers, 'application/octet-stream');
    return decodeBase64(body.body === undefined ? '' : body.body);
  }
  if (bare && (typeof body === 'number' || typeof body === 'boolean')) {
    defaultType(headers, 'text/plain; charset=utf-8');
    return Buffer.from(String(body));
  }
  if (typeof body === 'object' || typeof body === 'number' || typeof body === 'boolean') {
    defaultType(headers, 'application/json');
    return Buffer.from(JSON.stringify(body));
  }
  throw new BadResponse(`body of type ${typeof body} cannot be sent`);
}

// The {status, headers, body, bare} a handler's return value stands for.
function envelope(result) {
  const isObj = result !== null && typeof result === 'object' && !Array.isArray(result) && !(result instanceof Uint8Array);
  if (!isObj || !ENVELOPE_KEYS.some((k) => k in result)) {
    return { status: 200, headers: undefined, body: result, bare: true };
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

function toResponse(result) {
  const { status, headers: rawHeaders, body, bare, proxy } = envelope(result);
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new BadResponse('status must be a valid HTTP code');
  }
  const raw = rawHeaders === undefined || rawHeaders === null ? {} : rawHeaders;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new BadResponse('headers must be an object');
  const headers = Object.assign({}, raw);
  const payload = encodeBody(body, headers, bare);
  const pairs = [];
  for (const [k, v] of Object.entries(headers)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (typeof item !== 'string' && typeof item !== 'number') {
        throw new BadResponse('a header value is not a string or number');
      }
      pairs.push([k, String(item)]);
    }
  }
  return { status, pairs, payload, proxy };
}

// --- serving ---------------------------------------------------------------------------------

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
    if (!file) return Promise.resolve(this.call);
    let p = this.others.get(file);
    if (!p) {
      p = loadModule(file).then((mod) => findCallable(mod, file, this.handlerName));
      this.others.set(file, p);
      // A file that failed to load is tried again by the next request.
      p.catch(() => this.others.delete(file));
    }
    return p;
  }

  async request(id, event, raw, file) {
    this.inflight.add(id);
    let header;
    let payload = null;
    try {
      const call = await this.callFor(file);
      const res = toResponse(await call(event, raw));
      header = { type: 'res', id, status: res.status, headers: res.pairs };
      if (res.proxy !== undefined) header.proxy = res.proxy;
      payload = res.payload;
    } catch (e) {
      if (!this.inflight.has(id)) return;
      // FastFN's daemon answers 500 with the error's message (404 for ENOENT).
      if (e instanceof BadResponse) {
        console.error(`edgefn: handler returned an invalid response: ${e.message}`);
        header = { type: 'err', id, kind: 'bad_response', status: 500, detail: e.message };
      } else {
        console.error(e && e.stack ? e.stack : String(e));
        const status = e && e.code === 'ENOENT' ? 404 : 500;
        header = { type: 'err', id, kind: 'handler_error', status, detail: errorText(e) };
      }
    }
    if (!this.inflight.delete(id)) return;
    send(this.sock, header, payload);
  }

  cancel(id) {
    this.inflight.delete(id);
    send(this.sock, { type: 'cancelled', id });
  }
}

/** FastFN's daemon shows a function's `fn.env.json` in `process.env` too, not only in
 * `event.env`; this process serves one function (or one folder's), so once is enough. */
function exportEnv(env) {
  for (const [k, v] of Object.entries(env)) {
    if (k && v !== null && v !== undefined) process.env[k] = String(v);
  }
}

function fatal(sock, text) {
  send(sock, { type: 'fatal', error: text });
  sock.end(() => process.exit(1));
}

function main() {
  const sock = net.createConnection(sockPath);
  let chunks = [];
  let buffered = 0;
  let worker = null;
  let env = null;
  const queued = [];

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
    send(sock, { type: 'ready', version: PROTOCOL, pid: process.pid });
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
    }
    else if (header.type === 'cancel') worker.cancel(header.id);
  }

  sock.on('data', (chunk) => {
    chunks.push(chunk);
    buffered += chunk.length;
    while (buffered >= 8) {
      // Only the 8-byte prefix is joined early (when it straddles chunks); the frame is
      // joined once, when complete: joining on every chunk is quadratic in the body size.
      if (chunks[0].length < 8) chunks = [Buffer.concat(chunks, buffered)];
      const total = chunks[0].readUInt32BE(0);
      const hlen = chunks[0].readUInt32BE(4);
      if (total > MAX_REQUEST_FRAME || total < 4 || hlen > total - 4) {
        console.error('edgefn worker: oversized or malformed frame from the gateway');
        process.exit(1);
      }
      if (buffered < 4 + total) break;
      let buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
      const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8'));
      const body = buf.subarray(8 + hlen, 4 + total);
      buf = buf.subarray(4 + total);
      chunks = buf.length > 0 ? [buf] : [];
      buffered = buf.length;
      onFrame(header, body);
    }
  });
  sock.on('close', () => process.exit(0));
  sock.on('error', () => process.exit(1));
}

process.on('unhandledRejection', (e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

main();
