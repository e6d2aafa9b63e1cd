exports.handler = async (event) => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ hello: event.query.name || 'world', runtime: 'node' }),
});
