"""The RSGI peer of the `python` scenario: the same JSON answer as bench/functions/py-hello,
in granian's own interface (one call, no ASGI message dicts): the fastest way a Python user
serves it with granian."""

BODY = b'{"ok":true}'
HEADERS = [("content-type", "application/json")]


async def app(scope, proto):
    proto.response_bytes(200, HEADERS, BODY)
