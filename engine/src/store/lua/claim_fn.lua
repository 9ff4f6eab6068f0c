-- The claim rule, shared by claim.lua and dispatch.lua (prepended to both at load time).
-- claim(key, start, end_ms, ttl, first): claims ARGV[first..] (tickers) of one strategy for
-- the bucket [start, end_ms) in the trigger hash `key`; start/end/ttl are ARGV strings.
-- Returns the tickers newly claimed, in argument order, each at most once.
--
-- The field '# bucket' holds the newest bucket start claimed into the hash:
--  * a claim for a bucket that ended at or before it is stale (another instance has moved
--    on): nothing is claimed, so a lagging clock cannot re-dispatch an old bucket;
--  * a claim for a newer bucket first drops the hash: older entries can never equal a
--    current bucket start again, and dropping them keeps the hash as small as one bucket;
--  * an older but still open bucket (the timeframe just got longer) compares field by field.
-- Field names starting with '# ' contain a space, so they never collide with a ticker.
local function claim(key, start, end_ms, ttl, first)
  local gen = redis.call('HGET', key, '# bucket')
  if gen then
    local gen_ms = tonumber(gen)
    if tonumber(end_ms) <= gen_ms then
      return {}
    end
    if tonumber(start) > gen_ms then
      redis.call('DEL', key)
      gen = false
    end
  end
  if not gen then
    redis.call('HSET', key, '# bucket', start)
  end
  local claimed = {}
  for i = first, #ARGV do
    local ticker = ARGV[i]
    if redis.call('HGET', key, ticker) ~= start then
      redis.call('HSET', key, ticker, start)
      claimed[#claimed + 1] = ticker
    end
  end
  -- Only ever extend the expiry: a claim for an older open bucket must not shorten it.
  local ttl_ms = tonumber(ttl)
  local current = redis.call('PTTL', key)
  if current < ttl_ms then
    redis.call('PEXPIRE', key, ttl_ms)
  end
  return claimed
end
