-- Drop a claim if conn owns it; with conn "" (reaping), if node owns it.
-- KEYS: claim hash, the node's claims index
-- ARGV: node, conn, index member
-- The index entry goes whenever this node no longer owns the claim, so a
-- kicked connection's release cleans up after it.
local cur = redis.call('HMGET', KEYS[1], 'conn', 'node')
local mine
if ARGV[2] == '' then mine = cur[2] == ARGV[1] else mine = cur[1] == ARGV[2] end
if mine then redis.call('DEL', KEYS[1]) end
if mine or cur[2] ~= ARGV[1] then redis.call('SREM', KEYS[2], ARGV[3]) end
if mine then return 1 end
return 0
