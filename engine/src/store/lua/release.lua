-- Releases claims of a failed run, so that the next tick retries those tickers.
-- KEYS[1] = trigger hash; ARGV[1] = bucket start ms; ARGV[2..] = tickers.
-- Only claims of that very bucket are released. Returns how many were.
local released = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    released = released + 1
  end
end
return released
