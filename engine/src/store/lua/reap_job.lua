-- Re-delivers (or dead-letters) one job a worker took and never acknowledged.
-- KEYS[1] = ALERT:JOBS, KEYS[2] = ALERT:DEAD
-- ARGV[1] = entry id, ARGV[2] = deliveries the caller saw when it judged the entry stale,
-- ARGV[3] = max deliveries, ARGV[4] = MAXLEN, ARGV[5] = group, ARGV[6] = reaper consumer.
-- The delivery count is compared first: if it changed (another engine instance reaped it,
-- or a worker took it again), nothing happens — so each stale delivery is reaped once.
-- Returns 0 (nothing to do), 1 (re-delivered as a new entry) or 2 (dead-lettered).
local pending = redis.call('XPENDING', KEYS[1], ARGV[5], ARGV[1], ARGV[1], 1)
if #pending == 0 or tostring(pending[1][4]) ~= ARGV[2] then
  return 0
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
if not job or attempt >= tonumber(ARGV[3]) then
  local reason = job and ('not acknowledged after ' .. attempt .. ' deliveries') or 'job entry was trimmed'
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'job_entry', ARGV[1], 'reason', reason, 'job', job or '')
  return 2
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'job', job, 'attempt', attempt + 1)
return 1
