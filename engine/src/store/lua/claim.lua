-- Claims tickers of one strategy for one bucket, atomically across every client.
-- KEYS[1] = trigger hash STRAT:<id>:LAST
-- ARGV[1] = bucket start ms, ARGV[2] = bucket end ms, ARGV[3] = ttl ms (bucket end plus
-- grace, relative to the caller's logical now), ARGV[4..] = tickers.
-- Returns the tickers newly claimed (see claim_fn.lua, prepended to this file).
local claimed = claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3], 4, #ARGV, false)
return claimed
