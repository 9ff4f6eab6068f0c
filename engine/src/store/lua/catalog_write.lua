-- Writes (ARGV[3] non-empty) or removes (ARGV[3] empty) a catalog entry and records the
-- change; with ARGV[4] present, only if the entry currently equals ARGV[4] (compare and
-- swap, so a read-modify-write never overwrites a concurrent writer).
-- KEYS[1] = STRAT:CATALOG, KEYS[2..4] = version, change log, floor (see lib/change_log.lua)
-- ARGV[1] = strategy id, ARGV[2] = max change records. Returns 1 if written, 0 if not.
if ARGV[4] and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[4] then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
record_change(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
return 1
