"""A protected API, FastFN's API-key example reduced to its business logic.

The gateway has already checked the `x-api-key` header against the keys named in
fn.config.json (constant-time, before this worker was touched). A request that reaches
this handler is authenticated; `event["context"]["auth"]["subject"]` says which key
(its env name or keys_file id) was used, never the key itself.
"""

import json


def handler(event):
    auth = event["context"]["auth"]
    return {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "message": "secret data",
                "key_id": auth["subject"],
                "request_id": event["context"]["request_id"],
            }
        ),
    }
