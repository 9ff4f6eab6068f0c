-- Replaces a universe atomically (no reader ever sees it empty or half-written, which the
-- original's DEL + SADD pipeline allowed) and records the change.
-- KEYS[1] = STRAT:<id>:UNIV, KEYS[2..4] = version, change log, floor (see lib/change_log.lua)
-- ARGV[1] = strategy id, ARGV[2] = max change records, ARGV[3..] = tickers (validated,
-- never empty). SADD takes them in chunks: unpack() is bounded by Lua's C stack.
local CHUNK = 1000
redis.call('DEL', KEYS[1])
for first = 3, #ARGV, CHUNK do
  redis.call('SADD', KEYS[1], unpack(ARGV, first, math.min(first + CHUNK - 1, #ARGV)))
end
return record_change(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
