-- After Redis lost its state: writes back one strategy the engine knew, only where it is
-- missing (DESIGN §9) — never over what the platform wrote meanwhile, never reviving what
-- it deleted meanwhile — and records the change.
-- KEYS[1] = STRAT:CATALOG, KEYS[2..4] = version, change log, floor (see lib/change_log.lua),
-- KEYS[5] = TICKGATE:UNIV:BASE, KEYS[6] = STRAT:<id>:UNIV
-- ARGV[1] = strategy id, ARGV[2] = max change records, ARGV[3] = the entry as last read,
-- ARGV[4] = the digest of that entry's universe ('' for none), ARGV[5..] = the universe as
-- last used (none for a global strategy).
-- The entry is written only if the catalog has no entry for the id and the change log
-- (which restarted with the loss) does not name it: a write or a removal since the loss
-- (by the platform, or by another instance restoring it) is newer than what this engine
-- remembers. The universe and its base are written only if the universe key is missing.
-- Returns 1 if the entry was written, else 0.
local CHUNK = 1000
if redis.call('ZSCORE', KEYS[3], ARGV[1]) or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if #ARGV >= 5 and redis.call('EXISTS', KEYS[6]) == 0 then
  for first = 5, #ARGV, CHUNK do
    redis.call('SADD', KEYS[6], unpack(ARGV, first, math.min(first + CHUNK - 1, #ARGV)))
  end
  if ARGV[4] ~= '' then
    redis.call('HSET', KEYS[5], ARGV[1], ARGV[4])
  end
end
record_change(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
return 1
