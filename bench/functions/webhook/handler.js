// GitHub-style webhook receiver for the `hmac` scenario: the gateway has verified
// X-Hub-Signature-256 over the raw 16 KiB body before this runs.
exports.handler = async (event) => ({
  status: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ received: event.body.length }),
});
