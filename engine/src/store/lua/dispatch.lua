-- Step 5 of a tick (DESIGN §2.3): atomically claim tickers for (strategy, bucket) AND
-- enqueue one job for those newly claimed, so a claim can never exist without its job.
-- KEYS[1] = trigger hash STRAT:<id>:LAST, KEYS[2] = jobs stream ALERT:JOBS
-- ARGV[1] = bucket start ms, ARGV[2] = bucket end ms, ARGV[3] = ttl ms,
-- ARGV[4] = strategy id, ARGV[5] = user id, ARGV[6] = stream MAXLEN (approximate),
-- ARGV[7..] = tickers, sorted (so the job's symbols are sorted).
-- Returns {} when nothing was newly claimed, else {job_id, ticker...}.
-- The job's tickers are kept in the hash field '# job <n>' so that a failed result can
-- release exactly them, whichever engine instance receives it.
local claimed = claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3], 7)
if #claimed == 0 then
  return {}
end
local n = redis.call('HINCRBY', KEYS[1], '# jobs', 1)
local job_id = ARGV[4] .. '-' .. ARGV[1] .. '-' .. n
redis.call('HSET', KEYS[1], '# job ' .. n, table.concat(claimed, ' '))
local quoted = {}
for i, ticker in ipairs(claimed) do
  -- Tickers are printable ASCII: only '"' and '\' need escaping in JSON.
  quoted[i] = '"' .. string.gsub(ticker, '[\\"]', '\\%0') .. '"'
end
local job = '{"job_id":"' .. job_id .. '","strategy_id":' .. ARGV[4]
  .. ',"user_id":' .. ARGV[5] .. ',"bucket_start_ms":' .. ARGV[1]
  .. ',"mode":"per_ticker","symbols":[' .. table.concat(quoted, ',') .. ']}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'job', job)
table.insert(claimed, 1, job_id)
return claimed
