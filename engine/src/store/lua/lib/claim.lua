-- The claim rule, shared by dispatch.lua (prepended at load time).
-- claim(key, start, end_ms, ttl, first, last, job): claims ARGV[first..last] (tickers) of one
-- strategy for the bucket [start, end_ms) in the trigger hash `key`; start/end/ttl are
-- ARGV strings. Returns the tickers newly claimed (in argument order, each at most once)
-- and, when `job` is true and something was claimed, the number n of the job recording
-- them (fields '# jobs' = n and '# job <n>' = the tickers, written with the claims).
--
-- The field '# bucket' holds the newest bucket start claimed into the hash:
--  * a claim for a bucket that ended at or before it is stale (another instance has moved
--    on): nothing is claimed, so a lagging clock cannot re-dispatch an old bucket;
--  * a claim for a newer bucket first drops the hash: older entries can never equal a
--    current bucket start again, and dropping them keeps the hash as small as one bucket;
--  * an older but still open bucket (the timeframe just got longer) compares field by field.
-- Field names starting with '# ' contain a space, so they never collide with a ticker.
--
-- Cost: every redis.call costs a few microseconds inside a script, so the whole claim is
-- one HMGET (per 1,000 tickers), one HSET and one PEXPIRE, whatever the ticker count.
local function claim(key, start, end_ms, ttl, first, last_arg, job)
  local last = math.min(first + 997, last_arg)
  local head = {'# bucket', '# jobs'}
  for j = first, last do
    head[#head + 1] = ARGV[j]
  end
  local current = redis.call('HMGET', key, unpack(head))
  local gen = current[1]
  local jobs = tonumber(current[2] or '0')
  if gen then
    local gen_ms = tonumber(gen)
    if tonumber(end_ms) <= gen_ms then
      return {}, 0
    end
    if tonumber(start) > gen_ms then
      redis.call('DEL', key)
      gen = false
      jobs = 0
      current = {}
    end
  end
  local fields = {}
  if not gen then
    fields = {'# bucket', start}
  end
  local claimed = {}
  local seen = {}
  local function consider(ticker, value)
    if value ~= start and not seen[ticker] then
      seen[ticker] = true
      claimed[#claimed + 1] = ticker
      fields[#fields + 1] = ticker
      fields[#fields + 1] = start
    end
  end
  for j = first, last do
    consider(ARGV[j], current[j - first + 3] or false)
  end
  for i = last + 1, last_arg, 1000 do
    local part = {}
    for j = i, math.min(i + 999, last_arg) do
      part[#part + 1] = ARGV[j]
    end
    local values = gen and redis.call('HMGET', key, unpack(part)) or {}
    for j, ticker in ipairs(part) do
      consider(ticker, values[j] or false)
    end
  end
  local n = 0
  if job and #claimed > 0 then
    n = jobs + 1
    fields[#fields + 1] = '# jobs'
    fields[#fields + 1] = n
    fields[#fields + 1] = '# job ' .. n
    fields[#fields + 1] = table.concat(claimed, ' ')
  end
  for i = 1, #fields, 2000 do
    redis.call('HSET', key, unpack(fields, i, math.min(i + 1999, #fields)))
  end
  -- Only ever extend the expiry: a claim for an older open bucket must not shorten it.
  -- A hash created just now has none yet (GT would treat that as infinite).
  if gen then
    redis.call('PEXPIRE', key, ttl, 'GT')
  else
    redis.call('PEXPIRE', key, ttl)
  end
  return claimed, n
end
