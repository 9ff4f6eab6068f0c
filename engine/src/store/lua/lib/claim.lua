-- The claim rule, prepended to dispatch.lua at load time, in two halves so that the job can
-- be enqueued between them: a claim must never exist without its job, and Redis scripts do
-- not roll back, so the claims are written only once the job's XADD has succeeded.
--
-- claim(key, prev, start, end_ms, first, last, grace_ms): reads the trigger hash `key` (and,
-- for a bucket older than its newest, `prev`, the hash it replaced) and decides which of
-- ARGV[first..last] (tickers of one strategy) are newly claimed for the bucket
-- [start, end_ms); start/end are ARGV strings, grace_ms a number. Writes nothing. Returns
-- the tickers newly claimed (in argument order, each at most once) and a plan for commit();
-- when `key` is not a hash, nothing and a plan whose `damaged` names the type found.
--
-- commit(key, prev, start, ttl, plan, claimed, job_n): replaces the hash if the plan says so,
-- writes the claims (into `prev` for the bucket it holds), the bucket field and, when job_n
-- is a number, the job record ('# jobs' = n, '# job <start>-<n>' = the tickers, always in
-- `key`), and sets the hash's expiry to ttl ms when it starts a bucket.
--
-- The field '# bucket' holds the newest bucket start claimed into the hash:
--  * a claim for a newer bucket replaces the hash: the old one is renamed to `prev`
--    (STRAT:<id>:LAST:PREV, replacing the one before, keeping its expiry), so the live hash
--    stays as small as one bucket and the bucket just replaced keeps its claims. The
--    records of open jobs of the bucket replaced, or of a bucket that started less than
--    grace_ms before the new one, are copied into the new hash, emptied: a result later
--    than the next bucket's claim still finds its job (it was issued, so its used_symbols
--    count), but releases nothing — a claim with the same start may now belong to a later
--    job (an older open bucket may share the start). Older records go: a job whose result
--    never came (or came malformed) cannot keep a live hash growing;
--  * a claim for the bucket `prev` holds (it ended at or before '# bucket') compares field by
--    field with `prev`: the closing pass (DESIGN §2.3 step 6) of an instance that reaches a
--    bucket's end after another instance claimed the next bucket still claims what the
--    closed bucket never ran, and never what it did;
--  * a claim for any other bucket that ended at or before '# bucket' is stale (older than
--    anything kept): nothing is claimed, so a lagging clock cannot re-dispatch it;
--  * an older but still open bucket (the timeframe just got longer) compares field by field.
-- A hash without '# bucket' (new, or written by the original Go backend, whose hashes hold
-- only ticker → bucket start) is compared field by field for every ticker.
--
-- Job records name their bucket ('# job <start>-<n>', job id '<strategy>-<start>-<n>') and
-- '# jobs' survives the replacement, so n never repeats while the hash lives: a result
-- settles only the job it names, however late it comes (a bucket's job 1 can never be
-- mistaken for the next bucket's, nor for an older open bucket's that shares its start).
-- '# end' is the latest bucket end the hash's expiry was set for: the expiry is set once per
-- bucket, not at every claim.
-- Field names starting with '# ' contain a space, so they never collide with a ticker.
--
-- Cost: every redis.call costs a few microseconds inside a script, so the whole claim is
-- one HMGET (per 1,000 fields) and one HSET, whatever the ticker count; a newer bucket adds
-- a PEXPIRE and a RENAME (which frees the hash before last, as the DEL it replaced did).
local function claim(key, prev, start, end_ms, first, last_arg, grace_ms)
  local last = math.min(first + 996, last_arg)
  local head = {'# bucket', '# jobs', '# end'}
  for j = first, last do
    head[#head + 1] = ARGV[j]
  end
  local current = redis.pcall('HMGET', key, unpack(head))
  if current.err then
    -- Not a hash (someone else wrote it): only this strategy is skipped (plan.damaged).
    return {}, {stale = true, damaged = redis.call('TYPE', key).ok}
  end
  local gen = current[1]
  local plan = {gen = gen, jobs = tonumber(current[2] or '0'), stale = false, drop = false,
    end_ms = end_ms, expires_for = current[3]}
  -- The hash the claims are compared with and written to.
  plan.target = key
  if gen then
    local gen_ms = tonumber(gen)
    if tonumber(end_ms) <= gen_ms then
      -- Older than the live hash's bucket: only the bucket it replaced can still be claimed.
      local kept = redis.pcall('HMGET', prev, unpack(head))
      if kept.err or kept[1] ~= start then
        plan.stale = true
        return {}, plan
      end
      plan.target = prev
      current = kept
    end
    if tonumber(start) > gen_ms then
      -- Replaced by commit(), once the job is enqueued; until then read as empty.
      plan.gen = false
      plan.drop = true
      plan.keep_from = math.min(gen_ms, tonumber(start) - grace_ms)
      current = {}
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
    consider(ARGV[j], current[j - first + 4] or false)
  end
  for i = last + 1, last_arg, 1000 do
    local part = {}
    for j = i, math.min(i + 999, last_arg) do
      part[#part + 1] = ARGV[j]
    end
    -- A hash about to be replaced is read as empty.
    local values = plan.drop and {} or redis.call('HMGET', plan.target, unpack(part))
    for j, ticker in ipairs(part) do
      consider(ticker, values[j] or false)
    end
  end
  return claimed, plan
end

-- The records of open jobs of buckets starting at or after `from`, emptied ('# job
-- <start>-<n>', '' pairs). HSCAN visits the whole hash, as freeing it later does anyway.
local function job_records(key, from)
  local kept = {}
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', key, cursor, 'MATCH', '# job *', 'COUNT', 1000)
    cursor = page[1]
    local items = page[2]
    for i = 1, #items, 2 do
      local job_start = tonumber(string.match(items[i], '^# job (%d+)%-'))
      if job_start and job_start >= from then
        kept[#kept + 1] = items[i]
        kept[#kept + 1] = ''
      end
    end
  until cursor == '0'
  return kept
end

-- HSET of field/value pairs, at most 1,000 pairs per call (unpack's stack limit).
local function hset_all(key, fields)
  for i = 1, #fields, 2000 do
    redis.call('HSET', key, unpack(fields, i, math.min(i + 1999, #fields)))
  end
end

local function commit(key, prev, start, ttl, plan, claimed, job_n)
  if plan.stale then
    return
  end
  local fields = {}
  if plan.target == prev then
    -- Claims of the replaced bucket go back into it (its expiry already covers the bucket);
    -- the job record and the counter stay in the live hash, where results look for them.
    for _, ticker in ipairs(claimed) do
      fields[#fields + 1] = ticker
      fields[#fields + 1] = start
    end
    hset_all(prev, fields)
    if job_n then
      -- The live hash is a newer bucket's: its expiry is already later than this one's.
      redis.call('HSET', key, '# jobs', job_n, '# job ' .. start .. '-' .. job_n,
        table.concat(claimed, ' '))
    end
    return
  end
  if plan.drop then
    fields = job_records(key, plan.keep_from)
    redis.call('RENAME', key, prev)
  end
  if not plan.gen then
    fields[#fields + 1] = '# bucket'
    fields[#fields + 1] = start
  end
  -- '# end': the latest bucket end the hash's expiry covers (see the expiry below).
  local extend = not plan.gen or tonumber(plan.end_ms) > tonumber(plan.expires_for or '0')
  if extend then
    fields[#fields + 1] = '# end'
    fields[#fields + 1] = plan.end_ms
  end
  for _, ticker in ipairs(claimed) do
    fields[#fields + 1] = ticker
    fields[#fields + 1] = start
  end
  if job_n then
    fields[#fields + 1] = '# jobs'
    fields[#fields + 1] = job_n
    fields[#fields + 1] = '# job ' .. start .. '-' .. job_n
    fields[#fields + 1] = table.concat(claimed, ' ')
  elseif plan.drop and plan.jobs > 0 then
    -- The counter outlives the replacement, so job numbers never repeat.
    fields[#fields + 1] = '# jobs'
    fields[#fields + 1] = plan.jobs
  end
  hset_all(key, fields)
  -- The expiry is set when the hash starts a bucket (created, replaced, or the original's
  -- hash taken over) and then only by a claim for a bucket that ends later than '# end' (the
  -- timeframe got longer): ttl is the bucket's end plus the grace, relative to now, so a
  -- later claim in the same bucket would set the same instant (give or take the instances'
  -- clock skew, bounded by max_clock_skew_ms). One PEXPIRE per bucket, not one per claim;
  -- an extension never shortens it (GT).
  if not plan.gen then
    redis.call('PEXPIRE', key, ttl)
  elseif extend then
    redis.call('PEXPIRE', key, ttl, 'GT')
  end
end
