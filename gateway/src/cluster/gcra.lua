-- GCRA on the Redis server, atomically, for every bucket of one batch: KEYS[i] holds a
-- bucket's theoretical arrival time (microseconds of the server clock, so the nodes'
-- clocks do not matter). For bucket i: ARGV[3i-2] emission interval (us), ARGV[3i-1]
-- burst tolerance (us), ARGV[3i] tokens wanted. Grants as many as the bucket holds, up to
-- the tokens wanted.
-- Returns {granted_1, wait_1, granted_2, wait_2, ...}: wait is how long (us) until the
-- bucket holds a token again (0 when it still does).
-- An idle bucket expires (absent = full), so memory follows the active clients.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local wanted = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local allow_at = tat - tolerance
  local granted = 0
  if allow_at <= now then
    granted = math.floor((now - allow_at) / interval) + 1
    if granted > wanted then
      granted = wanted
    end
    tat = tat + granted * interval
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  local wait = tat - tolerance - now
  if wait < 0 then
    wait = 0
  end
  out[2 * i - 1] = granted
  out[2 * i] = wait
end
return out
