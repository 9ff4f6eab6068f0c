-- Removes at most ARGV[2] entries of KEYS[1] (TICK:UPD) whose score is below ARGV[1]
-- (the cutoff: logical now minus effective retention), and the same tickers' change
-- sequence numbers from KEYS[2] (TICK:SEQ) and earlier-minute times from KEYS[3]
-- (TICK:PRE, never above the ticker's time, so just as stale). One bounded step of a
-- cleanup run; read and remove happen in one atomic script, so an entry updated meanwhile
-- is never removed, and concurrent runs on several instances simply share the work.
-- Returns the number removed.
local members = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
if #members == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], unpack(members))
redis.call('ZREM', KEYS[3], unpack(members))
return redis.call('ZREM', KEYS[1], unpack(members))
