import json


def handler(event):
    name = event["query"].get("name", "world")
    return {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"hello": name, "runtime": "python"}),
    }
