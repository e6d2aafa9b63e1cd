-- Conformance handler (Lua): answers every case of runtimes/conformance/cases.json, selected
-- by ?case=NAME. Lua strings are bytes, so "bytes" bodies are strings that are not UTF-8; a
-- Lua table keeps no key order, so request_headers writes its JSON text in the table's order.

local B5 = "AAEC//4="

local CASES = {
  text_body = function() return { status = 200, body = "hello" } end,
  json_object = function() return { status = 200, body = { a = 1, b = { true, cjson.null }, c = "x" } } end,
  json_array = function() return { body = { 1, "two", { three = 3 } } } end,
  bare_object = function() return { hello = "world" } end,
  bare_array = function() return { 1, 2 } end,
  bare_string = function() return "plain" end,
  bare_html = function() return "<!doctype html><p>hi</p>" end,
  bare_number = function() return 42 end,
  bare_null = function() return nil end,
  bytes_body = function() return { status = 200, body = "\0\1\2\255\254" } end,
  nested_base64 = function() return { status = 200, body = { is_base64 = true, body = B5 } } end,
  is_base64_body_base64 = function()
    return { status = 200, is_base64 = true, body_base64 = B5, headers = { ["content-type"] = "image/png" } }
  end,
  is_base64_body = function() return { is_base64 = true, body = B5 } end,
  isBase64Encoded = function() return { statusCode = 200, isBase64Encoded = true, body = B5 } end,
  status_and_headers = function()
    return {
      status = 201,
      headers = { ["x-one"] = "1", ["x-num"] = 7, ["set-cookie"] = { "a=1", "b=2" }, ["content-type"] = "text/csv" },
      body = "a,b\n1,2\n",
    }
  end,
  statusCode_alias = function() return { statusCode = 202, body = "accepted" } end,
  status_only = function() return { status = 204 } end,
  empty_body = function() return { status = 200, body = "" } end,
  binary_echo = function(e)
    local bytes = require("mime").unb64(e.body_base64)
    return { status = 200, headers = { ["x-body-null"] = e.body == nil and "true" or "false" }, body = bytes }
  end,
  utf8_echo = function(e)
    return { status = 200, headers = { ["x-length"] = utf8.len(e.body) }, body = e.body }
  end,
  path_param = function(e) return { body = { id = e.params.id } } end,
  param_argument = function(_, params) return { body = { id = params.id } } end,
  repeated_query = function(e) return { body = { tag = e.query.tag } } end,
  request_headers = function(e)
    return { body = '{"x-conf":' .. cjson.encode(e.headers["x-conf"]) .. ',"method":' .. cjson.encode(e.method) .. "}" }
  end,
  raised_error = function() error("conformance: raised on purpose") end,
  bad_status = function() return { status = 700 } end,
  bad_header_value = function() return { status = 200, headers = { ["x-a"] = { nested = 1 } }, body = "x" } end,
  bad_body_type = function() return { status = 200, body = function() end } end,
  bad_base64 = function() return { is_base64 = true, body_base64 = "%%%" } end,
  large_response = function() return { status = 200, body = string.rep("0123456789abcdef", 262144) } end,
  large_request_echo = function(e) return { status = 200, body = e.body } end,
}

function handler(event, params)
  return CASES[event.query.case](event, params)
end
