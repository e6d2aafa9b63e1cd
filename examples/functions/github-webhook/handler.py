"""GitHub webhook receiver: only the business logic.

The gateway verified `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the secret
named in fn.config.json) before this worker saw the request, so the payload is genuine.
"""

import json


def handler(event):
    headers = event["headers"]
    kind = headers.get("x-github-event", "unknown")
    try:
        payload = json.loads(event.get("body") or "null")
    except ValueError:
        payload = None
    repo = None
    if isinstance(payload, dict):
        repo = (payload.get("repository") or {}).get("full_name")
    return {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "received": kind,
                "delivery": headers.get("x-github-delivery"),
                "repository": repo,
                "verified_with": event["context"]["auth"]["subject"],
            }
        ),
    }
