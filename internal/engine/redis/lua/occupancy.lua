-- Add a node's delta to a channel's subscription count, with the total.
-- KEYS: occupancy hash, occupied zset, nodes zset, the node's occupancy index
-- ARGV: node, delta (an integer, or "all" to drop the node's whole count
--       when reaping), channel name, index member
-- Returns {total, applied delta}. A decrement never takes the node's count
-- below zero, so a -1 for a count that a reaper already removed is a no-op.
local node = ARGV[1]
local mine = tonumber(redis.call('HGET', KEYS[1], node) or '0')
local d
if ARGV[2] == 'all' then d = -mine else d = tonumber(ARGV[2]) end
if d > 0 and not redis.call('ZSCORE', KEYS[3], node) then
  return redis.error_reply('SBFENCED node ' .. node .. ' is not in the cluster')
end
if d < 0 and -d > mine then d = -mine end
if d == 0 then
  redis.call('SREM', KEYS[4], ARGV[4])
  return {tonumber(redis.call('HGET', KEYS[1], '_t') or '0'), 0}
end
mine = mine + d
if mine == 0 then
  redis.call('HDEL', KEYS[1], node)
  redis.call('SREM', KEYS[4], ARGV[4])
else
  redis.call('HSET', KEYS[1], node, mine)
  if mine == d then redis.call('SADD', KEYS[4], ARGV[4]) end
end
local total = redis.call('HINCRBY', KEYS[1], '_t', d)
if total <= 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[3])
  return {0, d}
end
if total == d then redis.call('ZADD', KEYS[2], 0, ARGV[3]) end
return {total, d}
