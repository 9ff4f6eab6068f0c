-- The original Go backend's server-side intersection, kept verbatim in behaviour as the
-- baseline that benches and the simulator compare against: it reads the whole updated set
-- since ARGV[1] and the whole universe on every call, whichever is larger.
-- KEYS[1] = TICK:UPD, KEYS[2] = STRAT:<id>:UNIV; ARGV[1] = since ms.
local updated = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local universe = redis.call('SMEMBERS', KEYS[2])
local in_universe = {}
for _, ticker in ipairs(universe) do
  in_universe[ticker] = true
end
local result = {}
for _, ticker in ipairs(updated) do
  if in_universe[ticker] then
    result[#result + 1] = ticker
  end
end
return result
