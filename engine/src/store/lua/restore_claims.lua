-- Writes back the claims one engine instance made in still-open buckets, after Redis lost
-- its state (DESIGN §9): the claim rule of dispatch.lua (lib/claim.lua), without a job —
-- the jobs were issued before the loss. A ticker already claimed for the bucket (another
-- instance wrote it back, or dispatched it meanwhile) is left as it is; a stale bucket is
-- skipped. The hash's '# jobs' is raised to the highest job number the instance issued, so
-- a job number never repeats after the loss, and the records of its jobs not known settled
-- ('# job <start>-<n>' = their tickers) go back too, so a failure reported after the loss
-- still releases exactly its claims.
-- KEYS[2i - 1] = trigger hash STRAT:<id>:LAST of strategy i, KEYS[2i] = STRAT:<id>:LAST:PREV.
-- ARGV[1] = trigger grace ms, then per strategy i, in KEYS order: bucket start ms, bucket
-- end ms, ttl ms, highest job number issued, ticker count n, then n tickers, then the count
-- of job records m, then per record: job number, its ticker count c, then c tickers.
-- Returns the number of claims written.
local grace_ms = tonumber(ARGV[1])
local written = 0
local a = 2
for k = 1, #KEYS, 2 do
  local start, end_ms, ttl, issued = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local first = a + 5
  local last = a + 4 + tonumber(ARGV[a + 4])
  local records = {}
  a = last + 2
  for _ = 1, tonumber(ARGV[last + 1]) do
    local n, count = ARGV[a], tonumber(ARGV[a + 1])
    records[#records + 1] = '# job ' .. start .. '-' .. n
    records[#records + 1] = table.concat(ARGV, ' ', a + 2, a + 1 + count)
    a = a + 2 + count
  end
  local claimed, plan = claim(KEYS[k], KEYS[k + 1], start, end_ms, first, last, grace_ms)
  commit(KEYS[k], KEYS[k + 1], start, ttl, plan, claimed, false)
  if not plan.stale then
    written = written + #claimed
    local jobs = tonumber(redis.call('HGET', KEYS[k], '# jobs') or '0')
    if issued > jobs then
      redis.call('HSET', KEYS[k], '# jobs', issued)
    end
    for i = 1, #records, 2 do
      redis.call('HSETNX', KEYS[k], records[i], records[i + 1])
    end
  end
end
return written
