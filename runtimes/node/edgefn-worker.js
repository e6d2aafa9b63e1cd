'use strict';
// edgefn Node worker: loads one FastFN-style handler once and serves framed requests,
// several at once (the gateway caps in-flight requests at the function's `concurrency`).
// Started as `node edgefn-worker.js <socket> <handler.js> <concurrency>`; the protocol is
// in runtimes/PROTOCOL.md. stdout/stderr belong to the handler: the gateway captures them.

const net = require('net');
const path = require('path');
const { pathToFileURL } = require('url');

const MAX_REQUEST_FRAME = (64 << 20) + (1 << 20);
const [sockPath, handlerPath] = process.argv.slice(2);

class BadResponse extends Error {}

function send(sock, header, body) {
  const h = Buffer.from(JSON.stringify(header));
  const b = body || Buffer.alloc(0);
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32BE(4 + h.length + b.length, 0);
  head.writeUInt32BE(h.length, 4);
  sock.write(b.length > 0 ? Buffer.concat([head, h, b]) : Buffer.concat([head, h]));
}

async function loadHandler(file) {
  let mod;
  try {
    mod = require(file);
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') {
      mod = await import(pathToFileURL(file).href);
    } else {
      throw e;
    }
  }
  const candidates = [mod && mod.handler, mod && mod.default && mod.default.handler, mod && mod.default, mod];
  const fn = candidates.find((c) => typeof c === 'function');
  if (!fn) throw new Error(`${file} exports no handler function (exports.handler = async (event) => ...)`);
  return fn;
}

function hasHeader(headers, name) {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

// Body forms of the FastFN contract: text, Buffer, JSON value, or a base64 object.
function encodeBody(body, headers) {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') {
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'text/plain; charset=utf-8';
    return Buffer.from(body, 'utf8');
  }
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/octet-stream';
    return Buffer.from(body);
  }
  if (typeof body === 'object' && body.is_base64 === true) {
    if (typeof body.body !== 'string') throw new BadResponse('is_base64 body is not a string');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body.body)) throw new BadResponse('is_base64 body is not valid base64');
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/octet-stream';
    return Buffer.from(body.body, 'base64');
  }
  if (typeof body === 'object' || typeof body === 'number' || typeof body === 'boolean') {
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/json';
    return Buffer.from(JSON.stringify(body));
  }
  throw new BadResponse(`body of type ${typeof body} cannot be sent`);
}

function toResponse(result) {
  let status;
  let rawHeaders;
  let body;
  const isObj = result !== null && typeof result === 'object' && !Array.isArray(result) && !Buffer.isBuffer(result);
  if (isObj && ('status' in result || 'statusCode' in result || 'body' in result || 'headers' in result)) {
    status = 'status' in result ? result.status : 'statusCode' in result ? result.statusCode : 200;
    rawHeaders = result.headers || {};
    body = result.body;
    if (result.is_base64 === true || result.isBase64Encoded === true) {
      body = { is_base64: true, body: body === undefined || body === null ? '' : body };
    }
  } else if (result === undefined || result === null) {
    status = 204;
    rawHeaders = {};
    body = null;
  } else {
    status = 200;
    rawHeaders = {};
    body = result;
  }
  if (!Number.isInteger(status)) throw new BadResponse('status is not an integer');
  if (typeof rawHeaders !== 'object' || Array.isArray(rawHeaders)) throw new BadResponse('headers is not an object');
  const headers = Object.assign({}, rawHeaders);
  const payload = encodeBody(body, headers);
  const pairs = [];
  for (const [k, v] of Object.entries(headers)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (typeof item !== 'string' && typeof item !== 'number') {
        throw new BadResponse('a header value is not a string or number');
      }
      pairs.push([k, String(item)]);
    }
  }
  return { status, pairs, payload };
}

async function serve(sock, handler, header, body, env) {
  const event = header.event;
  if (header.binary) {
    event.body = null;
    event.body_base64 = body.toString('base64');
  } else {
    event.body = body.toString('utf8');
  }
  event.env = Object.assign({}, env);
  let res;
  try {
    res = toResponse(await handler(event));
  } catch (e) {
    if (e instanceof BadResponse) {
      console.error(`edgefn: handler returned an invalid response: ${e.message}`);
      send(sock, { type: 'err', id: header.id, kind: 'bad_response', detail: e.message });
    } else {
      console.error(e && e.stack ? e.stack : String(e));
      send(sock, { type: 'err', id: header.id, kind: 'handler_error' });
    }
    return;
  }
  send(sock, { type: 'res', id: header.id, status: res.status, headers: res.pairs }, res.payload);
}

function main() {
  const sock = net.createConnection(sockPath);
  let chunks = [];
  let buffered = 0;
  let handler = null;
  let env = {};
  let loading = null;
  const queued = [];

  function onFrame(header, body) {
    if (header.type === 'init') {
      env = header.env || {};
      loading = loadHandler(path.resolve(handlerPath)).then(
        (fn) => {
          handler = fn;
          send(sock, { type: 'ready', pid: process.pid });
          for (const [h, b] of queued.splice(0)) serve(sock, handler, h, b, env);
        },
        (e) => {
          console.error(e && e.stack ? e.stack : String(e));
          send(sock, { type: 'fatal', error: `${(e && e.name) || 'Error'} while loading the handler` });
          sock.end(() => process.exit(1));
        },
      );
      return;
    }
    if (header.type !== 'req') return;
    if (handler === null) queued.push([header, body]);
    else serve(sock, handler, header, body, env);
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
  void loading;
}

process.on('unhandledRejection', (e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

main();
