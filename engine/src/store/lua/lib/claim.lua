-- The claim rule, prepended to dispatch.lua at load time, in two halves so that the job can
-- be enqueued between them: a claim must never exist without its job, and Redis scripts do
-- not roll back, so the claims are written only once the job's XADD has succeeded.
--
-- claim(key, start, end_ms, first, last): reads the trigger hash `key` and decides which of
-- ARGV[first..last] (tickers of one strategy) are newly claimed for the bucket
-- [start, end_ms); start/end are ARGV strings. Writes nothing, except dropping the hash
-- when the bucket is newer than everything in it. Returns the tickers newly claimed (in
-- argument order, each at most once) and a plan for commit(); when `key` is not a hash,
-- nothing and a plan whose `damaged` names the type found.
--
-- commit(key, start, ttl, plan, claimed, job_n): writes the claims, the bucket field and,
-- when job_n is a number, the job record ('# jobs' = n, '# job <n>' = the tickers), and
-- extends the hash's expiry to ttl ms.
--
-- The field '# bucket' holds the newest bucket start claimed into the hash:
--  * a claim for a bucket that ended at or before it is stale (another instance has moved
--    on): nothing is claimed, so a lagging clock cannot re-dispatch an old bucket;
--  * a claim for a newer bucket first drops the hash: older entries can never equal a
--    current bucket start again, and dropping them keeps the hash as small as one bucket;
--  * an older but still open bucket (the timeframe just got longer) compares field by field.
-- A hash without '# bucket' (new, or written by the original Go backend, whose hashes hold
-- only ticker → bucket start) is compared field by field for every ticker.
-- Field names starting with '# ' contain a space, so they never collide with a ticker.
--
-- Cost: every redis.call costs a few microseconds inside a script, so the whole claim is
-- one HMGET (per 1,000 tickers), one HSET and one PEXPIRE, whatever the ticker count.
local function claim(key, start, end_ms, first, last_arg)
  local last = math.min(first + 997, last_arg)
  local head = {'# bucket', '# jobs'}
  for j = first, last do
    head[#head + 1] = ARGV[j]
  end
  local current = redis.pcall('HMGET', key, unpack(head))
  if current.err then
    -- Not a hash (someone else wrote it): only this strategy is skipped (plan.damaged).
    return {}, {stale = true, damaged = redis.call('TYPE', key).ok}
  end
  local gen = current[1]
  local plan = {gen = gen, jobs = tonumber(current[2] or '0'), stale = false}
  local dropped = false
  if gen then
    local gen_ms = tonumber(gen)
    if tonumber(end_ms) <= gen_ms then
      plan.stale = true
      return {}, plan
    end
    if tonumber(start) > gen_ms then
      redis.call('DEL', key)
      plan.gen = false
      plan.jobs = 0
      current = {}
      dropped = true
    end
  end
  local claimed = {}
  local seen = {}
  local function consider(ticker, value)
    if value ~= start and not seen[ticker] then
      seen[ticker] = true
      claimed[#claimed + 1] = ticker
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
    -- Only a hash this call just dropped is known to be empty.
    local values = dropped and {} or redis.call('HMGET', key, unpack(part))
    for j, ticker in ipairs(part) do
      consider(ticker, values[j] or false)
    end
  end
  return claimed, plan
end

local function commit(key, start, ttl, plan, claimed, job_n)
  if plan.stale then
    return
  end
  local fields = {}
  if not plan.gen then
    fields = {'# bucket', start}
  end
  for _, ticker in ipairs(claimed) do
    fields[#fields + 1] = ticker
    fields[#fields + 1] = start
  end
  if job_n then
    fields[#fields + 1] = '# jobs'
    fields[#fields + 1] = job_n
    fields[#fields + 1] = '# job ' .. job_n
    fields[#fields + 1] = table.concat(claimed, ' ')
  end
  for i = 1, #fields, 2000 do
    redis.call('HSET', key, unpack(fields, i, math.min(i + 1999, #fields)))
  end
  -- Only ever extend the expiry: a claim for an older open bucket must not shorten it.
  -- A hash created just now has none yet (GT would treat that as infinite).
  if plan.gen then
    redis.call('PEXPIRE', key, ttl, 'GT')
  else
    redis.call('PEXPIRE', key, ttl)
  end
end
