-- Records ticker updates. KEYS[1] TICK:UPD, KEYS[2] TICK:SEQ, KEYS[3] TICK:SEQ:META;
-- ARGV: ts1, ticker1, ts2, ticker2, ... (at most a few thousand values: one write chunk).
-- A ticker's time is only ever raised (ZADD GT). The call also takes the next write
-- sequence number (META field `seq`) and stamps every ticker it wrote with it in TICK:SEQ,
-- so a reader fetches exactly the tickers written since its last read (read_updates.lua)
-- and compares their times with what it knew. One script, so no reader ever sees a write
-- without its number; three variadic commands, whatever the number of updates.
-- Returns the sequence number taken.
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
local stamps = {}
for i = 2, #ARGV, 2 do
  stamps[#stamps + 1] = seq
  stamps[#stamps + 1] = ARGV[i]
end
for i = 1, #ARGV, 2000 do
  local j = math.min(i + 1999, #ARGV)
  redis.call('ZADD', KEYS[1], 'GT', unpack(ARGV, i, j))
  redis.call('ZADD', KEYS[2], unpack(stamps, i, j))
end
return seq
