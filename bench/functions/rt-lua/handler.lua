-- `runtimes` scenario: the same small JSON answer in every runtime.
function handler(event, params)
  return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"ok":true}' }
end
