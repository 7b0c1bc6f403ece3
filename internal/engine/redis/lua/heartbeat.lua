-- Refresh a node record, only if it is still there: a missing record means
-- the node was reaped (or Redis lost its data) and must fence, never come
-- back with its old state.
-- KEYS: nodes zset   ARGV: node
-- Returns the number of nodes, or -1 for "unknown".
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[1])
return redis.call('ZCARD', KEYS[1])
