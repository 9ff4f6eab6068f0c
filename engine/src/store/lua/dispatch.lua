-- Step 5 of a tick (DESIGN §2.3) for a group of strategies: for each, atomically claim its
-- tickers for (strategy, bucket) AND enqueue one job for those newly claimed. The job is
-- written before the claims (lib/claim.lua decides, then commits): scripts do not roll
-- back, so a failing XADD leaves no claim without its job. One call serves many
-- strategies: the fixed cost of a script call is several times that of its few commands
-- per strategy.
-- KEYS[1] = jobs stream ALERT:JOBS, then per strategy i: KEYS[2i] = its trigger hash
-- STRAT:<id>:LAST, KEYS[2i + 1] = the hash that one replaced, STRAT:<id>:LAST:PREV.
-- ARGV[1] = trigger grace ms (how long job records outlive a newer bucket's claim), then per
-- strategy i, in KEYS order: bucket start ms, bucket end ms, ttl ms, strategy id, user id,
-- ticker count n, then n distinct tickers, sorted (so the job's symbols are sorted), then
-- their JSON array (built by the engine: when every ticker is newly claimed, the usual case,
-- the job pastes it rather than quoting each ticker here).
-- The jobs stream is never capped here: the engine trims it only below what every consumer
-- group has acknowledged (trim_stream.lua), so an unread job, and its claims, never vanish.
-- Returns one array per strategy: {} when nothing was newly claimed, {'# damaged', type}
-- when its trigger key is not a hash, {job_id} when every ticker was newly claimed, else
-- {job_id, ticker...} (those newly claimed): the reply does not echo what the caller sent. The job's tickers are kept
-- in the hash field '# job <start>-<n>' so that a failed result can release exactly them,
-- whichever engine instance receives it.
local out = {}
local grace_ms = tonumber(ARGV[1])
local a = 2
for k = 2, #KEYS, 2 do
  local start, end_ms, ttl = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local id, user = ARGV[a + 3], ARGV[a + 4]
  local n = tonumber(ARGV[a + 5])
  local first = a + 6
  local last = a + 5 + n
  local symbols = ARGV[last + 1]
  a = last + 2
  local claimed, plan = claim(KEYS[k], KEYS[k + 1], start, end_ms, first, last, grace_ms)
  local job_n = false
  local reply = {}
  if #claimed > 0 then
    -- The job first: if its XADD fails the script stops here, before any claim exists.
    job_n = plan.jobs + 1
    local job_id = id .. '-' .. start .. '-' .. job_n
    local all = #claimed == n
    if not all then
      local quoted = {}
      for i, ticker in ipairs(claimed) do
        -- Tickers are printable ASCII: only '"' and '\' need escaping in JSON.
        quoted[i] = '"' .. string.gsub(ticker, '[\\"]', '\\%0') .. '"'
      end
      symbols = '[' .. table.concat(quoted, ',') .. ']'
    end
    local job = '{"job_id":"' .. job_id .. '","strategy_id":' .. id
      .. ',"user_id":' .. user .. ',"bucket_start_ms":' .. start
      .. ',"mode":"per_ticker","symbols":' .. symbols .. '}'
    redis.call('XADD', KEYS[1], '*', 'job', job)
    reply = {job_id}
    if not all then
      for _, ticker in ipairs(claimed) do
        reply[#reply + 1] = ticker
      end
    end
  end
  commit(KEYS[k], KEYS[k + 1], start, ttl, plan, claimed, job_n)
  if plan.damaged then
    reply = {'# damaged', plan.damaged}
  end
  out[#out + 1] = reply
end
return out
