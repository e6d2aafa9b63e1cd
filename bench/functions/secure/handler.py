# Fixture for the `rejected` scenario: the gateway answers 401 before this ever runs.
def handler(event):
    return {"status": 200, "headers": {"content-type": "application/json"}, "body": '{"ok":true}'}
