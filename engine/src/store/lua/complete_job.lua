-- Records a worker's result for one job: forgets the job and, if it failed, releases
-- exactly the claims it made (still held for its bucket), so the next tick retries them.
-- Idempotent: a second result for the same job finds nothing to do.
-- KEYS[1] = STRAT:<id>:LAST, KEYS[2] = STRAT:<id>:RUN
-- ARGV[1] = bucket start ms, ARGV[2] = job number n, or 'run' for a whole-strategy job,
-- ARGV[3] = 'succeeded' or 'failed'. Returns the number released.
if ARGV[2] == 'run' then
  if ARGV[3] == 'failed' and redis.call('GET', KEYS[2]) == ARGV[1] then
    redis.call('DEL', KEYS[2])
    return 1
  end
  return 0
end
local field = '# job ' .. ARGV[2]
local symbols = redis.call('HGET', KEYS[1], field)
if not symbols then
  return 0
end
redis.call('HDEL', KEYS[1], field)
if ARGV[3] == 'succeeded' then
  return 0
end
local released = 0
for ticker in string.gmatch(symbols, '%S+') do
  if redis.call('HGET', KEYS[1], ticker) == ARGV[1] then
    redis.call('HDEL', KEYS[1], ticker)
    released = released + 1
  end
end
return released
