-- Re-delivers (or dead-letters) one job a worker took and never acknowledged.
-- KEYS[1] = ALERT:JOBS, KEYS[2] = ALERT:DEAD, and when the caller could read the job id
-- from the entry: KEYS[3] = STRAT:<id>:LAST, KEYS[4] = STRAT:<id>:RUN of its strategy.
-- ARGV[1] = entry id, ARGV[2] = deliveries the caller saw when it judged the entry stale,
-- ARGV[3] = max deliveries, ARGV[4] = dead-letter MAXLEN, ARGV[5] = group, ARGV[6] = reaper
-- consumer; with KEYS[3]: ARGV[7] = the job id, ARGV[8] = its bucket start ms, ARGV[9] = its
-- number or 'run'.
-- The delivery count is compared first: if it changed (another engine instance reaped it,
-- or a worker took it again), nothing happens — so each stale delivery is reaped once.
-- A dead-lettered job is settled as failed (lib/settle.lua, DESIGN §2.8): its claims are
-- released, so a later tick retries its tickers in the same bucket. That happens only when
-- the entry really holds the job id the caller named (entries never change, so a mismatch
-- means the caller read another entry, and nothing is released).
-- Returns {outcome, released}: outcome 0 (nothing to do), 1 (re-delivered as a new entry)
-- or 2 (dead-lettered); released = claims released (a run counts 1).
local pending = redis.call('XPENDING', KEYS[1], ARGV[5], ARGV[1], ARGV[1], 1)
if #pending == 0 or tostring(pending[1][4]) ~= ARGV[2] then
  return {0, 0}
end
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[5], ARGV[6], 0, ARGV[1])
redis.call('XACK', KEYS[1], ARGV[5], ARGV[1])
local entry = claimed[1]
local job, attempt = nil, 1
if entry then
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'job' then
      job = fields[i + 1]
    elseif fields[i] == 'attempt' then
      attempt = tonumber(fields[i + 1]) or 1
    end
  end
end
if job and attempt < tonumber(ARGV[3]) then
  redis.call('XADD', KEYS[1], '*', 'job', job, 'attempt', attempt + 1)
  return {1, 0}
end
local reason = job and ('not acknowledged after ' .. attempt .. ' deliveries') or 'job entry was trimmed'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'job_entry', ARGV[1], 'reason', reason, 'job', job or '')
local released = 0
if job and KEYS[3] then
  local ok, decoded = pcall(cjson.decode, job)
  if ok and type(decoded) == 'table' and decoded.job_id == ARGV[7] then
    -- A damaged key (status 3) holds no claim of ours: nothing is released, and the job is
    -- dead-lettered all the same.
    local _
    _, released = settle(KEYS[3], KEYS[4], ARGV[8], ARGV[9], true)
  end
end
return {2, released}
