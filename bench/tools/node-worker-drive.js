'use strict';
// Plays the gateway's side of runtimes/PROTOCOL.md against one Node worker, with no gateway:
// binds a Unix socket, starts `node <worker> <socket> <handler> 16` (WORKER_WRAP, when set,
// is the command run instead of `node`: bench/node-worker-instructions.sh runs it under callgrind),
// sends init, then N copies of the request frame edgefn sends for `GET /node-hello` (flat
// when the worker's `ready` asks for it and ENCODING is not `json`), keeping
// INFLIGHT outstanding. LOCKSTEP=1 sends the next INFLIGHT only when all are answered, so every
// run reads the same batches. Every answer must be a 200 `res`. Prints requests/s and the
// worker's CPU µs per request (schedstat of all its threads).
//   node bench/tools/node-worker-drive.js WORKER_JS HANDLER N [INFLIGHT]
const net = require('net');
const fs = require('fs');
const os = require('os');
const cp = require('child_process');
const path = require('path');

const [workerJs, handler, nArg, inflightArg] = process.argv.slice(2);
if (!workerJs || !handler || !nArg) {
  console.error('usage: node-worker-drive.js WORKER_JS HANDLER N [INFLIGHT]');
  process.exit(2);
}
const N = Number(nArg);
const INFLIGHT = Number(inflightArg || 16);
const lockstep = process.env.LOCKSTEP === '1';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-worker-drive-'));
const sockPath = path.join(dir, 'w.sock');

function frame(header, body = Buffer.alloc(0)) {
  const text = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + text.length + body.length);
  out.writeUInt32BE(4 + text.length + body.length, 0);
  out.writeUInt32BE(text.length, 4);
  text.copy(out, 8);
  body.copy(out, 8 + text.length);
  return out;
}

// The event of bench/functions/node-hello as the gateway builds it for wrk's request.
function request(id) {
  const rid = id.toString(16).padStart(32, '0');
  return frame({
    type: 'req', id, binary: false,
    event: {
      id: rid, ts: 1796000000000 + id, method: 'GET', path: '/node-hello', raw_path: '/node-hello',
      query: {}, params: {}, path_params: {}, headers: { host: '127.0.0.1:18080' }, session: null,
      client: { ip: '127.0.0.1', ua: null },
      context: {
        request_id: rid, function: 'node-hello', function_name: 'node-hello', runtime: 'node',
        version: 'default', timeout_ms: 30000, max_body_bytes: 1048576, debug: { enabled: false },
        auth: { type: 'none', subject: null }, user: null,
      },
    },
  });
}
// The same request in the flat encoding (`flat1`), as the gateway sends it to a worker
// whose `ready` asks for it.
function flatRequest(id) {
  const rid = id.toString(16).padStart(32, '0');
  const fixed = 'F{"function":"node-hello","function_name":"node-hello","runtime":"node","version":"default","timeout_ms":30000,"max_body_bytes":1048576,"debug":{"enabled":false}}';
  const lines = [fixed, id, 0, rid, 1796000000000 + id, 'GET', '/node-hello', '', '{}', '{}',
    '{"host":"127.0.0.1:18080"}', 'null', '127.0.0.1', '', '{"type":"none","subject":null}'];
  const text = Buffer.from(lines.join('\n'));
  const out = Buffer.alloc(8 + text.length);
  out.writeUInt32BE(4 + text.length, 0);
  out.writeUInt32BE(text.length, 4);
  text.copy(out, 8);
  return out;
}
// Ids cycle through 1024 prepared frames (never more than INFLIGHT are outstanding), in the
// encoding the worker's `ready` asks for (ENCODING=json: always the JSON one).
let FRAMES = null;
const framesFor = (ready) => {
  const flat = ready.request_encoding === 'flat1' && process.env.ENCODING !== 'json';
  return Array.from({ length: 1024 }, (_, i) => (flat ? flatRequest : request)(i + 1));
};

function cpuNs(pid) {
  let t = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    t += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  }
  return t;
}

let worker;
let started = null;
const server = net.createServer((sock) => {
  sock.write(frame({ type: 'init', version: 2, function: 'node-hello', runtime: 'node', env: {}, handler_name: null }));
  let buf = Buffer.alloc(0);
  let sent = 0;
  let done = 0;
  let cpu0 = 0;
  const more = () => {
    if (lockstep && sent !== done) return;
    const out = [];
    while (sent < N && sent - done < INFLIGHT) out.push(FRAMES[sent++ % FRAMES.length]);
    if (out.length) sock.write(Buffer.concat(out));
  };
  sock.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 8 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const total = buf.readUInt32BE(0);
      const header = buf.toString('utf8', 8, 8 + buf.readUInt32BE(4));
      buf = buf.subarray(4 + total);
      if (header.startsWith('{"type":"res"') && header.includes('"status":200')) {
        done++;
      } else if (started === null && JSON.parse(header).type === 'ready') {
        FRAMES = framesFor(JSON.parse(header));
        started = process.hrtime.bigint();
        cpu0 = cpuNs(worker.pid);
      } else {
        console.error(`unexpected answer: ${header}`);
        process.exit(1);
      }
    }
    if (started !== null && done === N) {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      const cpu = (cpuNs(worker.pid) - cpu0) / 1e3 / N;
      console.log(`${N} requests, ${INFLIGHT} in flight${lockstep ? ' (lockstep)' : ''}: ${(N / wall).toFixed(0)} req/s, worker CPU ${cpu.toFixed(2)} µs/request`);
      sock.destroy();
      server.close();
      return;
    }
    if (started !== null) more();
  });
});

server.listen(sockPath, () => {
  const node = process.env.WORKER_WRAP ? process.env.WORKER_WRAP.split(' ').filter(Boolean) : ['node'];
  const cmd = [...node, path.resolve(workerJs), sockPath, path.resolve(handler), '16'];
  worker = cp.spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
  worker.on('exit', (code, signal) => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (started === null) {
      console.error(`the worker exited before it was ready (${signal || code})`);
      process.exit(1);
    }
  });
});
