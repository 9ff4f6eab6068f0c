-- Replaces a universe atomically (no reader ever sees it empty or half-written, which the
-- original's DEL + SADD pipeline allowed) and records the change.
-- KEYS[1] = STRAT:<id>:UNIV, KEYS[2..4] = version, change log, floor (see lib/change_log.lua),
-- KEYS[5] = TICKGATE:UNIV:BASE
-- ARGV[1] = strategy id, ARGV[2] = max change records, ARGV[3] = the digest of the catalog
-- universe being written ('' for a discovery, which leaves the base as it is), ARGV[4..] =
-- tickers (validated, never empty; none only for a catalog write of a missing universe,
-- which deletes the set). SADD takes them in chunks: unpack() is bounded by Lua's C stack.
-- Returns the new version; 0 when a catalog write found the set already equal (only the
-- base is recorded: no change for other instances to reload); -1 when a catalog write found
-- a key of another type (someone else wrote it: left alone, the caller skips the strategy;
-- a discovery, the newest write, replaces it).
local CHUNK = 1000
if ARGV[3] ~= '' then
  local size = redis.pcall('SCARD', KEYS[1])
  if type(size) == 'table' then
    return -1
  end
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[3])
  if size == #ARGV - 3 then
    local same = true
    for first = 4, #ARGV, CHUNK do
      local last = math.min(first + CHUNK - 1, #ARGV)
      for _, present in ipairs(redis.call('SMISMEMBER', KEYS[1], unpack(ARGV, first, last))) do
        if present == 0 then
          same = false
        end
      end
      if not same then
        break
      end
    end
    if same then
      return 0
    end
  end
end
redis.call('DEL', KEYS[1])
for first = 4, #ARGV, CHUNK do
  redis.call('SADD', KEYS[1], unpack(ARGV, first, math.min(first + CHUNK - 1, #ARGV)))
end
return record_change(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
