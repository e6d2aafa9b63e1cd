// A page behind HTTP Basic auth. The gateway checked the user's PBKDF2 hash (from
// fn.env.json, produced by `edgefn hash-key --basic`) before this worker saw the request;
// event.context.auth.subject is the user name.
exports.handler = async (event) => ({
  status: 200,
  headers: { "content-type": "text/plain; charset=utf-8" },
  body: `Hello, ${event.context.auth.subject}! (request ${event.context.request_id})\n`,
});
