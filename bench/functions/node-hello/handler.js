// Trivial Node handler (FastFN contract) for the `node` scenario.
exports.handler = async () => ({
  status: 200,
  headers: { "content-type": "application/json" },
  body: '{"ok":true}',
});
