-- Forget a reaped node once all its indexes are empty, and drop the lock
-- if the caller still holds it.
-- KEYS: lock, known set, then the node's indexes   ARGV: node, reaper
-- Returns 1 when the node is forgotten.
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
return 1
