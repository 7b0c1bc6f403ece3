-- List the nodes to reap: records older than the timeout, and known ids
-- with no record (a reap or a leave that stopped halfway).
-- KEYS: nodes zset, known set   ARGV: timeout ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('(%.0f', now - tonumber(ARGV[1])))
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not redis.call('ZSCORE', KEYS[1], id) then table.insert(out, id) end
end
return out
