-- Persists a discovered universe into its catalog entry (DESIGN §2.7), unless a newer write
-- has superseded it (DESIGN §2.3 step 2: the newest write wins), and records the change.
-- KEYS[1] = STRAT:CATALOG, KEYS[2..4] = version, change log, floor (see lib/change_log.lua),
-- KEYS[5] = TICKGATE:UNIV:BASE, KEYS[6] = STRAT:<id>:UNIV
-- ARGV[1] = strategy id, ARGV[2] = max change records, ARGV[3] = the new entry, ARGV[4] =
-- the entry it was made from (compare and swap), ARGV[5] = the digest of that entry's
-- universe, ARGV[6] = the digest of the discovered universe, ARGV[7..] = its tickers.
-- Returns 1 written; 0 the entry changed since it was read (read again and retry); 2
-- superseded, nothing written: the entry's universe is a catalog write that the Redis
-- universe has not taken in yet (the base differs), or the Redis universe is no longer the
-- discovered one (a catalog write or a newer discovery replaced it).
local CHUNK = 1000
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[4] then
  return 0
end
if redis.call('HGET', KEYS[5], ARGV[1]) ~= ARGV[5] then
  return 2
end
local size = redis.pcall('SCARD', KEYS[6])
if type(size) == 'table' or size ~= #ARGV - 6 then
  return 2
end
for first = 7, #ARGV, CHUNK do
  local last = math.min(first + CHUNK - 1, #ARGV)
  for _, present in ipairs(redis.call('SMISMEMBER', KEYS[6], unpack(ARGV, first, last))) do
    if present == 0 then
      return 2
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[6])
record_change(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
return 1
