// The Node peer a user would run: a plain `http` server calling the very handler module edgefn
// serves in the `node` scenario (bench/functions/node-hello/handler.js by default) and sending
// its {status, headers, body}. Usage: node server.js PORT [HANDLER_FILE]
const http = require("http");
const path = require("path");

const port = Number(process.argv[2] || 18087);
const file = process.argv[3] || path.join(__dirname, "..", "..", "functions", "node-hello", "handler.js");
const { handler } = require(path.resolve(file));

async function answer(req, res) {
  const r = await handler({ method: req.method, path: req.url, headers: req.headers });
  const body = Buffer.from(r.body);
  res.writeHead(r.status, { ...r.headers, "content-length": body.length });
  res.end(body);
}

http
  .createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      answer(req, res).catch((e) => {
        console.error(e);
        res.writeHead(500).end();
      });
    });
  })
  .listen(port, "127.0.0.1", () => console.log(`node-http listening on 127.0.0.1:${port} (${file})`));
