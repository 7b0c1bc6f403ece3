-- KEYS: the user's node set, nodes zset, the node's users index
-- ARGV: node, index member
-- Returns 1 if the user just came online cluster-wide.
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return redis.error_reply('SBFENCED node ' .. ARGV[1] .. ' is not in the cluster')
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[3], ARGV[2])
if redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
