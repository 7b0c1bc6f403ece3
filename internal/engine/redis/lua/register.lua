-- Add a node record with Redis's clock; every node compares against the
-- same clock, so skew between machines does not matter.
-- KEYS: nodes zset, known set   ARGV: node
-- Returns the number of nodes.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('ZCARD', KEYS[1])
