-- KEYS: the user's node set, the node's users index
-- ARGV: node, index member
-- Returns 1 if the user just went offline cluster-wide (also used to reap).
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
return 0
