-- Whole-strategy dispatch (strategy-level mode, global strategies, missing universe):
-- at most once per bucket, claim and job in one atomic step.
-- KEYS[1] = STRAT:<id>:RUN, KEYS[2] = ALERT:JOBS
-- ARGV[1] = bucket start ms, ARGV[2] = bucket end ms, ARGV[3] = ttl ms,
-- ARGV[4] = strategy id, ARGV[5] = user id, ARGV[6] = mode ("strategy" or "global"),
-- ARGV[7..] = symbols, sorted (none: no symbol filter, and the job has no "symbols" field).
-- The jobs stream is never capped here (see dispatch.lua). Returns {job_id}, {} when this
-- bucket already ran or is stale (a newer bucket has run), or {'# damaged', type} when the
-- run key is not a string: someone else wrote it, so only this strategy is skipped
-- (DESIGN §2.3, Isolation) and nothing is written to it.
local last = redis.pcall('GET', KEYS[1])
if type(last) == 'table' and last.err then
  return {'# damaged', redis.call('TYPE', KEYS[1]).ok}
end
if last and (last == ARGV[1] or tonumber(ARGV[2]) <= tonumber(last)) then
  return {}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local job_id = ARGV[4] .. '-' .. ARGV[1] .. '-run'
local job = '{"job_id":"' .. job_id .. '","strategy_id":' .. ARGV[4]
  .. ',"user_id":' .. ARGV[5] .. ',"bucket_start_ms":' .. ARGV[1]
  .. ',"mode":"' .. ARGV[6] .. '"'
if #ARGV >= 7 then
  local quoted = {}
  for i = 7, #ARGV do
    quoted[#quoted + 1] = '"' .. string.gsub(ARGV[i], '[\\"]', '\\%0') .. '"'
  end
  job = job .. ',"symbols":[' .. table.concat(quoted, ',') .. ']'
end
job = job .. '}'
redis.call('XADD', KEYS[2], '*', 'job', job)
return {job_id}
