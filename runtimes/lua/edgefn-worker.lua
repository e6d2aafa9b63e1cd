-- edgefn Lua worker: loads one FastFN-style handler once and serves framed requests (protocol
-- v2, runtimes/PROTOCOL.md), one at a time. Runs on Lua 5.4 or LuaJIT with lua-cjson and
-- LuaSocket (socket.unix, mime). Started as
--   lua5.4 edgefn-worker.lua <socket> <handler.lua> <concurrency>
-- Data flow: init frame → env kept once (event.env, and os.getenv looks there first) → handler
-- chunk run once (it returns a function or a table with `handler`/`main`, or defines a global
-- `handler`/`main`, or the `invoke.handler` name) → per req frame: event around the one body
-- string → handler(event, event.params) → response normalised → res frame. Frames that arrive
-- while a request runs wait in the socket; before each request every frame already readable
-- is drained, so a cancel for a queued request drops it unrun.
-- stdout/stderr belong to the handler (line-buffered; the gateway captures and masks them).

local cjson = require("cjson")
local socket = require("socket")
local unix = require("socket.unix")
local mime = require("mime")

local PROTOCOL = 2
local MAX_FRAME = (64 + 1) * 1024 * 1024

io.stdout:setvbuf("line")
io.stderr:setvbuf("line")

local function u32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
    math.floor(n / 256) % 256, n % 256)
end

local Channel = {}
Channel.__index = Channel

function Channel.connect(path)
  local sock = (unix.stream or unix)()
  local ok, err = sock:connect(path)
  if not ok then
    io.stderr:write("edgefn worker: cannot connect to ", path, ": ", tostring(err), "\n")
    os.exit(1)
  end
  return setmetatable({ sock = sock, queued = {} }, Channel)
end

function Channel:exactly(n)
  if n == 0 then
    return ""
  end
  local data = self.sock:receive(n)
  return data
end

-- One whole frame (header table, body string), or nil when the gateway closed the socket.
function Channel:read()
  local head = self:exactly(8)
  if not head then
    return nil
  end
  local total, hlen = u32(head, 1), u32(head, 5)
  if total > MAX_FRAME or total < 4 or hlen > total - 4 then
    io.stderr:write("edgefn worker: oversized or malformed frame from the gateway\n")
    os.exit(1)
  end
  local json = self:exactly(hlen)
  local body = self:exactly(total - 4 - hlen)
  if not json or not body then
    return nil
  end
  local ok, header = pcall(cjson.decode, json)
  if not ok or type(header) ~= "table" then
    io.stderr:write("edgefn worker: a frame header is not a JSON object\n")
    os.exit(1)
  end
  return { header, body }
end

function Channel:send(header, body)
  self:send_json(cjson.encode(header), body)
end

function Channel:send_json(h, body)
  body = body or ""
  local frame = be32(4 + #h + #body) .. be32(#h) .. h .. body
  local sent, err, last = 0, nil, nil
  while sent < #frame do
    sent, err, last = self.sock:send(frame, sent + 1)
    if not sent then
      if err ~= "timeout" then
        os.exit(1)
      end
      sent = last
    end
  end
end

-- A request that is not running (queued, or already answered) is acknowledged at once.
function Channel:cancel(id)
  for i = #self.queued, 1, -1 do
    local h = self.queued[i][1]
    if h.type == "req" and h.id == id then
      table.remove(self.queued, i)
    end
  end
  self:send({ type = "cancelled", id = id })
end

-- Reads every frame already waiting, without blocking for a new one.
function Channel:drain()
  while true do
    local readable = socket.select({ self.sock }, nil, 0)
    if not readable or #readable == 0 then
      return
    end
    local frame = self:read()
    if not frame then
      return
    end
    if frame[1].type == "cancel" then
      self:cancel(frame[1].id)
    else
      self.queued[#self.queued + 1] = frame
    end
  end
end

function Channel:next()
  if #self.queued > 0 then
    return table.remove(self.queued, 1)
  end
  return self:read()
end

local BadResponse = {}

local function bad(msg)
  error(setmetatable({ msg = msg }, BadResponse), 0)
end

local function has_header(headers, name)
  for k in pairs(headers) do
    if type(k) == "string" and k:lower() == name then
      return true
    end
  end
  return false
end

local function default_type(headers, value)
  if not has_header(headers, "content-type") then
    headers["content-type"] = value
  end
end

-- JSON text of a Lua value. Objects are written with their keys sorted: a Lua table keeps
-- no key order, and the same answer should be the same bytes every time. A table whose keys
-- are exactly 1..n is an array; an empty table is an object (as cjson decodes `{}`).
local function json(value, depth)
  depth = depth or 0
  if depth > 100 then
    bad("body nests deeper than 100 levels")
  end
  local t = type(value)
  if value == nil or value == cjson.null then
    return "null"
  elseif t == "string" or t == "boolean" then
    return cjson.encode(value)
  elseif t == "number" then
    if value ~= value or value == math.huge or value == -math.huge then
      bad("body holds a number JSON cannot represent")
    end
    if value == math.floor(value) and math.abs(value) < 2 ^ 53 then
      return string.format("%d", value)
    end
    return string.format("%.17g", value)
  elseif t ~= "table" then
    bad("body holds a value of type " .. t .. " that cannot be sent")
  end
  local n, keys = #value, {}
  for k in pairs(value) do
    keys[#keys + 1] = k
  end
  if n > 0 and #keys == n then
    local out = {}
    for i = 1, n do
      out[i] = json(value[i], depth + 1)
    end
    return "[" .. table.concat(out, ",") .. "]"
  end
  for _, k in ipairs(keys) do
    if type(k) ~= "string" then
      bad("an object key is not a string")
    end
  end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do
    out[i] = cjson.encode(k) .. ":" .. json(value[k], depth + 1)
  end
  return "{" .. table.concat(out, ",") .. "}"
end

local function unbase64(s)
  if type(s) ~= "string" then
    bad("is_base64 body is not a string")
  end
  if #s % 4 ~= 0 or not s:match("^[A-Za-z0-9+/]*=?=?$") then
    bad("is_base64 body is not valid base64")
  end
  return (mime.unb64(s)) or ""
end

local function is_integer(n)
  return type(n) == "number" and n == math.floor(n)
end

-- Lua 5.4's utf8.len, else a byte-pattern check (LuaJIT has no utf8 library).
local function is_utf8(s)
  if utf8 and utf8.len then
    return utf8.len(s) ~= nil
  end
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or nil
    if not len or i + len - 1 > n then
      return false
    end
    for j = i + 1, i + len - 1 do
      local b = s:byte(j)
      if b < 0x80 or b > 0xBF then
        return false
      end
    end
    i = i + len
  end
  return true
end

local function looks_html(s)
  local t = s:match("^%s*(.*)"):sub(1, 15):lower()
  return t:sub(1, 14) == "<!doctype html" or t:sub(1, 5) == "<html"
end

-- Body forms of the contract: text (bytes that are not UTF-8 default to octet-stream), a
-- JSON value, or { is_base64 = true, body = "..." }; `bare` is a value returned without an
-- envelope, whose scalars are sent as text.
local function encode_body(body, headers, bare)
  local t = type(body)
  if body == nil or body == cjson.null then
    return ""
  elseif t == "string" then
    if not is_utf8(body) then
      default_type(headers, "application/octet-stream")
    elseif bare and looks_html(body) then
      default_type(headers, "text/html; charset=utf-8")
    else
      default_type(headers, "text/plain; charset=utf-8")
    end
    return body
  elseif t == "table" and body.is_base64 == true then
    default_type(headers, "application/octet-stream")
    return unbase64(body.body or "")
  elseif bare and (t == "number" or t == "boolean") then
    default_type(headers, "text/plain; charset=utf-8")
    return json(body)
  elseif t == "table" or t == "number" or t == "boolean" then
    default_type(headers, "application/json")
    return json(body)
  end
  bad("body of type " .. t .. " cannot be sent")
end

local CONTRACT = { "status", "statusCode", "headers", "body", "is_base64", "isBase64Encoded", "body_base64", "proxy" }

local function is_list(t)
  local n, count = #t, 0
  for _ in pairs(t) do
    count = count + 1
  end
  return n > 0 and count == n
end

local function to_response(result)
  local status, headers, body
  local explicit, bare = false, false
  if type(result) == "table" then
    for _, k in ipairs(CONTRACT) do
      if result[k] ~= nil then
        explicit = true
      end
    end
  end
  if explicit then
    status = result.status or result.statusCode or 200
    headers = result.headers or {}
    body = result.body
    if result.is_base64 == true or result.isBase64Encoded == true then
      body = { is_base64 = true, body = result.body_base64 or body or "" }
    end
  else
    status, headers, body, bare = 200, {}, result, true
  end
  if not is_integer(status) or status < 100 or status > 599 then
    bad("status must be a valid HTTP code")
  end
  if type(headers) ~= "table" then
    bad("headers must be an object")
  end
  -- FastFN's edge proxy: the gateway fetches it, checked against the function's `edge`.
  local proxy = explicit and result.proxy or nil
  if proxy ~= nil and (type(proxy) ~= "table" or is_list(proxy)) then
    bad("proxy must be an object when provided")
  end
  local copy = {}
  for k, v in pairs(headers) do
    copy[k] = v
  end
  local payload = encode_body(body, copy, bare)
  local pairs_out = {}
  for name, value in pairs(copy) do
    if type(name) ~= "string" or name == "" then
      bad("a header name is not a string")
    end
    if type(value) == "table" and not is_list(value) then
      bad("header " .. name .. " is an object, not a value or a list")
    end
    local values = type(value) == "table" and value or { value }
    for _, item in ipairs(values) do
      local it = type(item)
      if it ~= "string" and it ~= "number" then
        bad("a header value is not a string or number")
      end
      pairs_out[#pairs_out + 1] = { name, is_integer(item) and string.format("%d", item) or tostring(item) }
    end
  end
  return status, pairs_out, payload, proxy and json(proxy)
end

-- The handler chunk runs in the worker's globals: it may define `handler`, `main`, or
-- return either; `cjson` and `json` are there as in FastFN, and modules beside it load
-- with require.
local function load_handler(path, wanted)
  local dir = path:match("^(.*)/[^/]+$") or "."
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  local chunk, err = loadfile(path)
  if not chunk then
    error(err, 0)
  end
  local returned = chunk()
  local function pick(name)
    if type(returned) == "table" and type(returned[name]) == "function" then
      return returned[name]
    end
    if type(_G[name]) == "function" then
      return _G[name]
    end
  end
  if wanted then
    return pick(wanted) or error(path .. " defines no function `" .. wanted .. "` (invoke.handler)", 0)
  end
  if type(returned) == "function" then
    return returned
  end
  return pick("handler") or pick("main")
    or error(path .. " must define handler(event) or main(event), or return one", 0)
end

-- JSON nulls decode to cjson.null, a light userdata that is truthy and cannot be indexed;
-- FastFN's Lua handlers see an absent field as nil (`event.session or {}`, `not session.id`).
local function drop_nulls(t, depth)
  if depth > 32 then
    return
  end
  for k, v in pairs(t) do
    if v == cjson.null then
      t[k] = nil
    elseif type(v) == "table" then
      drop_nulls(v, depth + 1)
    end
  end
end

local function serve(ch, id, event, handler)
  local ok, result = xpcall(function()
    return handler(event, event.params)
  end, function(e)
    if getmetatable(e) == BadResponse then
      return e
    end
    return { text = tostring(e), trace = debug.traceback(tostring(e), 2) }
  end)
  if not ok then
    local text = type(result) == "table" and (result.text or result.msg) or tostring(result)
    io.stderr:write(type(result) == "table" and result.trace or text, "\n")
    -- FastFN's Lua runtime answers 500 with this text.
    ch:send({ type = "err", id = id, kind = "handler_error", status = 500, detail = "lua handler error: " .. text })
    return
  end
  local ok2, status, headers, payload, proxy = pcall(to_response, result)
  if not ok2 then
    local msg = getmetatable(status) == BadResponse and status.msg or tostring(status)
    io.stderr:write("edgefn: handler returned an invalid response: ", msg, "\n")
    ch:send({ type = "err", id = id, kind = "bad_response", status = 500, detail = msg })
    return
  end
  -- cjson writes an empty table as an object; the header list must be an array.
  local list = #headers == 0 and "[]" or cjson.encode(headers)
  local extra = proxy and (',"proxy":' .. proxy) or ""
  ch:send_json(
    string.format('{"type":"res","id":%s,"status":%d,"headers":%s%s}', cjson.encode(id), status, list, extra),
    payload
  )
end

local function main(sock_path, handler_path)
  local ch = Channel.connect(sock_path)
  local first = ch:read()
  if not first or first[1].type ~= "init" then
    io.stderr:write("edgefn worker: no init frame from the gateway\n")
    os.exit(1)
  end
  local init = first[1]
  if init.version ~= PROTOCOL then
    local v = init.version == nil and "null" or cjson.encode(init.version)
    ch:send({ type = "fatal", error = "edgefn worker speaks protocol 2; the gateway sent version " .. v })
    os.exit(1)
  end
  local env = type(init.env) == "table" and init.env or {}
  local native_getenv = os.getenv
  os.getenv = function(name)
    local v = env[name]
    if v ~= nil then
      return v
    end
    return native_getenv(name)
  end
  _G.cjson, _G.json = cjson, cjson
  local wanted = type(init.handler_name) == "string" and init.handler_name or nil
  local ok, handler = xpcall(load_handler, debug.traceback, handler_path, wanted)
  if not ok then
    io.stderr:write(tostring(handler), "\n")
    ch:send({ type = "fatal", error = "cannot load the handler: " .. tostring(handler):match("^[^\n]*") })
    os.exit(1)
  end
  ch:send({ type = "ready", version = PROTOCOL, pid = tonumber(io.open("/proc/self/stat"):read("*l"):match("^%d+")) })
  while true do
    ch:drain()
    local frame = ch:next()
    if not frame then
      return
    end
    local header, body = frame[1], frame[2]
    if header.type == "cancel" then
      ch:cancel(header.id)
    elseif header.type == "req" then
      local event = type(header.event) == "table" and header.event or {}
      drop_nulls(event, 0)
      if header.binary == true then
        event.body = nil
        event.body_base64 = (mime.b64(body)) or ""
      elseif #body > 0 then
        -- No body, event.body is nil: FastFN's event.
        event.body = body
      end
      event.env = env
      serve(ch, header.id, event, handler)
    end
  end
end

main(arg[1], arg[2])
