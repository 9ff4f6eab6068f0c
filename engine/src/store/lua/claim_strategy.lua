-- Claims a whole-strategy run for one bucket (strategy-level and global mode).
-- KEYS[1] = STRAT:<id>:RUN; ARGV[1] = bucket start ms, ARGV[2] = bucket end ms,
-- ARGV[3] = ttl ms. Returns 1 if claimed, 0 if this bucket already ran or is stale
-- (a newer bucket has run: see claim.lua).
local last = redis.call('GET', KEYS[1])
if last then
  if last == ARGV[1] or tonumber(ARGV[2]) <= tonumber(last) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
