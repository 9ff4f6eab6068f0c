-- Settling one job, prepended to complete_job.lua (a worker's result) and reap_job.lua (a
-- job dead-lettered after its last delivery, settled as failed).
--
-- settle(triggers, run, start, n, failed): `triggers` = STRAT:<id>:LAST, `run` =
-- STRAT:<id>:RUN, `start` = the job's bucket start ms and `n` its number or 'run' (ARGV
-- strings, from the job id '<id>-<start>-<n>' / '<id>-<start>-run'). Forgets the job and,
-- if it failed, releases exactly the claims it made that are still held for its bucket.
-- Returns status, released:
--  * 1 — the job was open (issued and not settled yet): settled now. Its record outlives a
--    newer bucket's claim for a while (lib/claim.lua), emptied, so a late result still
--    counts as issued and releases nothing;
--  * 0 — nothing open by that name: a duplicate of a result already settled, or one later
--    than its record (pruned after the grace, or expired). It may well have been issued,
--    so it changes nothing and is not a dead letter;
--  * 2 — never issued: the strategy's live state proves it. '# bucket' is the newest bucket
--    start ever claimed into the hash and '# jobs' counts every job issued while the hash
--    lives (it survives the drop), so a per-ticker job with a later start, or with the same
--    start and a number above '# jobs', was never issued; likewise a run whose start is
--    after the one in the run key;
--  * 3 — the key the job lives in (`triggers` for a per-ticker job, `run` for a run) holds
--    another type: someone else wrote it, so it holds no job record nor claim of ours.
--    Nothing is written; a third value names the type found, so that only this result is
--    set aside (DESIGN §2.3, Isolation) and the others of its batch settle.
local function settle(triggers, run, start, n, failed)
  if n == 'run' then
    local last = redis.pcall('GET', run)
    if type(last) == 'table' and last.err then
      return 3, 0, redis.call('TYPE', run).ok
    end
    if last == start then
      if failed then
        redis.call('DEL', run)
        return 1, 1
      end
      return 1, 0
    end
    if last and tonumber(start) > tonumber(last) then
      return 2, 0
    end
    return 0, 0
  end
  local field = '# job ' .. start .. '-' .. n
  local head = redis.pcall('HMGET', triggers, field, '# bucket', '# jobs')
  if head.err then
    return 3, 0, redis.call('TYPE', triggers).ok
  end
  local symbols = head[1]
  if not symbols then
    if head[2] then
      local s, newest = tonumber(start), tonumber(head[2])
      if s > newest or (s == newest and tonumber(n) > tonumber(head[3] or '0')) then
        return 2, 0
      end
    end
    return 0, 0
  end
  redis.call('HDEL', triggers, field)
  if not failed then
    return 1, 0
  end
  local released = 0
  for ticker in string.gmatch(symbols, '%S+') do
    if redis.call('HGET', triggers, ticker) == start then
      redis.call('HDEL', triggers, ticker)
      released = released + 1
    end
  end
  return 1, released
end
