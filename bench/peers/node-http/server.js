// The Node peer a user would run: a plain `http` server answering the same JSON as
// bench/functions/node-hello. Usage: node server.js PORT
const http = require("http");
const port = Number(process.argv[2] || 18087);
const body = '{"ok":true}';
http
  .createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
      res.end(body);
    });
  })
  .listen(port, "127.0.0.1", () => console.log(`node-http listening on 127.0.0.1:${port}`));
