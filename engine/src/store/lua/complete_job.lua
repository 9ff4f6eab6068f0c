-- Records a worker's result for one job (lib/settle.lua): forgets the job and, if it
-- failed, releases exactly the claims it made (still held for its bucket), so the next tick
-- retries them. Idempotent: a second result for the same job finds nothing to do.
-- KEYS[1] = STRAT:<id>:LAST, KEYS[2] = STRAT:<id>:RUN
-- ARGV[1] = bucket start ms, ARGV[2] = job number n, or 'run' for a whole-strategy job,
-- ARGV[3] = 'succeeded' or 'failed'.
-- Returns {status, released}: status 1 settled an open job, 0 nothing open by that name
-- (late or duplicate), 2 never issued; or {3, 0, type} when the job's key holds another
-- type (see settle()).
local status, released, found = settle(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3] == 'failed')
return {status, released, found}
