-- Claims tickers of one strategy for one bucket, atomically across every client.
-- KEYS[1] = trigger hash STRAT:<id>:LAST
-- ARGV[1] = bucket start ms, ARGV[2] = bucket end ms, ARGV[3] = ttl ms (bucket end plus
-- grace, relative to the caller's logical now), ARGV[4..] = tickers.
-- Returns the tickers newly claimed, in argument order, each at most once.
--
-- The field '# bucket' holds the newest bucket start claimed into the hash:
--  * a claim for a bucket that ended at or before it is stale (another instance has moved
--    on): nothing is claimed, so a lagging clock cannot re-dispatch an old bucket;
--  * a claim for a newer bucket first drops the hash: older entries can never equal a
--    current bucket start again, and dropping them keeps the hash as small as one bucket;
--  * an older but still open bucket (the timeframe just got longer) compares field by field.
local key = KEYS[1]
local start = ARGV[1]
local gen = redis.call('HGET', key, '# bucket')
if gen then
  local gen_ms = tonumber(gen)
  if tonumber(ARGV[2]) <= gen_ms then
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
for i = 4, #ARGV do
  local ticker = ARGV[i]
  if redis.call('HGET', key, ticker) ~= start then
    redis.call('HSET', key, ticker, start)
    claimed[#claimed + 1] = ticker
  end
end
-- Only ever extend the expiry: a claim for an older open bucket must not shorten it.
local ttl = tonumber(ARGV[3])
local current = redis.call('PTTL', key)
if current < ttl then
  redis.call('PEXPIRE', key, ttl)
end
return claimed
