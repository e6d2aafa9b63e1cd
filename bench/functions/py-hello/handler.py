# Trivial Python handler (FastFN contract) for the `python` scenario.
def handler(event):
    return {"status": 200, "headers": {"content-type": "application/json"}, "body": '{"ok":true}'}
