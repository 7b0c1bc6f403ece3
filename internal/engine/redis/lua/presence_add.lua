-- Make a node hold a user in a presence channel.
-- KEYS: members hash (user -> info), user\0node set, user -> node count hash,
--       nodes zset, the node's presence index
-- ARGV: node, user, info, limit, index member
-- Returns 1 if the user is new to the channel (member_added), 0 if not,
-- -1 if the user is new and the channel already has limit members.
local node, user = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', KEYS[4], node) then
  return redis.error_reply('SBFENCED node ' .. node .. ' is not in the cluster')
end
local held = user .. '\0' .. node
if redis.call('SISMEMBER', KEYS[2], held) == 1 then
  redis.call('HSET', KEYS[1], user, ARGV[3])
  return 0
end
local count = tonumber(redis.call('HGET', KEYS[3], user) or '0')
local limit = tonumber(ARGV[4])
if count == 0 and limit > 0 and redis.call('HLEN', KEYS[1]) >= limit then
  return -1
end
redis.call('SADD', KEYS[2], held)
redis.call('HSET', KEYS[3], user, count + 1)
redis.call('HSET', KEYS[1], user, ARGV[3])
redis.call('SADD', KEYS[5], ARGV[5])
if count == 0 then return 1 end
return 0
