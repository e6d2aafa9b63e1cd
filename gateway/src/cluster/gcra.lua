-- GCRA on the Redis server, atomically: KEYS[1] holds the bucket's theoretical arrival
-- time (microseconds of the server clock, so the nodes' clocks do not matter).
-- ARGV[1]: emission interval (us), ARGV[2]: burst tolerance (us), ARGV[3]: tokens wanted
-- (1, or the node's lease size). Grants as many as the bucket holds, up to ARGV[3].
-- Returns {granted, 0} when at least one token was granted, {0, retry_after_us} when not.
-- An idle bucket expires (absent = full), so memory follows the active clients.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local allow_at = tat - tolerance
if allow_at > now then
  return {0, allow_at - now}
end
local granted = math.floor((now - allow_at) / interval) + 1
if granted > wanted then
  granted = wanted
end
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {granted, 0}
