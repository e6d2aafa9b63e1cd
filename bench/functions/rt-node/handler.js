// `runtimes` scenario: the same small JSON answer in every runtime.
exports.handler = async () => ({
  status: 200,
  headers: { "content-type": "application/json" },
  body: '{"ok":true}',
});
