-- Drop a node's hold on a user in a presence channel (also used to reap).
-- KEYS: members hash, user\0node set, user -> node count hash, the node's index
-- ARGV: node, user, index member
-- Returns 1 if that was the user's last node (member_removed), else 0.
local user = ARGV[2]
redis.call('SREM', KEYS[4], ARGV[3])
if redis.call('SREM', KEYS[2], user .. '\0' .. ARGV[1]) == 0 then return 0 end
local count = redis.call('HINCRBY', KEYS[3], user, -1)
if count <= 0 then
  redis.call('HDEL', KEYS[3], user)
  redis.call('HDEL', KEYS[1], user)
  return 1
end
return 0
