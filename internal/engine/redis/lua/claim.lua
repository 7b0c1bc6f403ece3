-- Make (node, conn) the owner of a claim and return the previous owner.
-- KEYS: claim hash (conn, node), nodes zset, the node's claims index
-- ARGV: node, conn, index member
-- Returns {prev conn, prev node}, empty strings when there was none.
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return redis.error_reply('SBFENCED node ' .. ARGV[1] .. ' is not in the cluster')
end
local prev = redis.call('HMGET', KEYS[1], 'conn', 'node')
redis.call('HSET', KEYS[1], 'conn', ARGV[2], 'node', ARGV[1])
redis.call('SADD', KEYS[3], ARGV[3])
return {prev[1] or '', prev[2] or ''}
