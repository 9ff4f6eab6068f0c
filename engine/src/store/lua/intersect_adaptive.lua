-- Tickers of a universe updated at or after ARGV[1], iterating the smaller side.
-- KEYS[1] = TICK:UPD, KEYS[2] = STRAT:<id>:UNIV; ARGV[1] = since ms. Returns the members,
-- or {'# damaged', type} when the universe key is not a set.
-- Member lists are passed to ZMSCORE / SMISMEMBER in chunks: Lua's unpack() is limited by
-- its C stack (LUAI_MAXCSTACK, 8000 slots), so a 50,000-member universe cannot go at once.
local CHUNK = 1000
local updates, universe, since = KEYS[1], KEYS[2], tonumber(ARGV[1])
local universe_size = redis.pcall('SCARD', universe)
if type(universe_size) == 'table' then
  -- Not a set (someone else wrote it): the caller skips this strategy only.
  return {'# damaged', redis.call('TYPE', universe).ok}
end
if universe_size == 0 then
  return {}
end
local updated_size = redis.call('ZCOUNT', updates, ARGV[1], '+inf')
if updated_size == 0 then
  return {}
end
local result = {}
if universe_size <= updated_size then
  local members = redis.call('SMEMBERS', universe)
  for first = 1, #members, CHUNK do
    local last = math.min(first + CHUNK - 1, #members)
    local scores = redis.call('ZMSCORE', updates, unpack(members, first, last))
    for i = first, last do
      local score = scores[i - first + 1]
      if score and tonumber(score) >= since then
        result[#result + 1] = members[i]
      end
    end
  end
else
  local members = redis.call('ZRANGE', updates, ARGV[1], '+inf', 'BYSCORE')
  for first = 1, #members, CHUNK do
    local last = math.min(first + CHUNK - 1, #members)
    local present = redis.call('SMISMEMBER', universe, unpack(members, first, last))
    for i = first, last do
      if present[i - first + 1] == 1 then
        result[#result + 1] = members[i]
      end
    end
  end
end
return result
