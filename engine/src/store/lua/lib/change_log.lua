-- The change log, shared by replace_universe.lua and catalog_write.lua (prepended at load
-- time). Every catalog or universe change bumps a version and records the strategy id at
-- it, so other engine instances reload exactly what changed, in one read per tick.
-- Records beyond max_records are dropped oldest first; the floor key remembers the highest
-- dropped version, so a reader older than it knows to reload everything.
local function record_change(version_key, changes_key, floor_key, id, max_records)
  local version = redis.call('INCR', version_key)
  redis.call('ZADD', changes_key, version, id)
  local excess = redis.call('ZCARD', changes_key) - tonumber(max_records)
  if excess > 0 then
    local dropped = redis.call('ZRANGE', changes_key, 0, excess - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', changes_key, 0, excess - 1)
    local top = tonumber(dropped[#dropped])
    local floor = tonumber(redis.call('GET', floor_key) or '0')
    if top > floor then
      redis.call('SET', floor_key, top)
    end
  end
  return version
end
