-- Take the reap lock on a node and drop its record, if it is still silent
-- (ARGV[4] "force": a node leaving on its own).
-- KEYS: lock, nodes zset   ARGV: node, reaper, lock ms, timeout ms or "force"
-- Returns 1 when the caller now reaps the node.
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
local s = redis.call('ZSCORE', KEYS[2], ARGV[1])
if s and ARGV[4] ~= 'force' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if tonumber(s) >= now - tonumber(ARGV[4]) then
    redis.call('DEL', KEYS[1])
    return 0
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
