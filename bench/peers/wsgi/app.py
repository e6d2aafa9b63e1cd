"""The warm-worker peer a user would run today: a WSGI app under gunicorn behind nginx.
Answers the same JSON as bench/functions/py-hello."""

BODY = b'{"ok":true}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
