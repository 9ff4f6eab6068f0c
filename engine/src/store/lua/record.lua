-- Records ticker updates. KEYS[1] TICK:UPD, KEYS[2] TICK:SEQ, KEYS[3] TICK:SEQ:META,
-- KEYS[4] TICK:PRE; ARGV: ts1, ticker1, ts2, ticker2, ... (each ticker at most once; at most
-- a few thousand values: one write chunk).
-- A ticker's time is only ever raised (ZADD GT). The call also takes the next write
-- sequence number (META field `seq`) and stamps every ticker it wrote with it in TICK:SEQ,
-- so a reader fetches exactly the tickers written since its last read (read_updates.lua)
-- and compares their times with what it knew. One script, so no reader ever sees a write
-- without its number.
-- TICK:PRE keeps, per ticker, its latest time in an earlier minute than its time in
-- TICK:UPD: the closing pass of a bucket (DESIGN §2.3 step 6) must see an update at :55
-- that an update at :00.2 of the next bucket replaced before the engine read it. Every
-- bucket boundary is a minute boundary, so one earlier minute is enough as long as the
-- engine reads at least once a minute. That time only grows, so ZADD GT keeps it.
-- Returns the sequence number taken.
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
local function minute(ms)
  return math.floor(ms / 60000)
end
for i = 1, #ARGV, 2000 do
  local j = math.min(i + 1999, #ARGV)
  local members, stamps, before = {}, {}, {}
  for k = i + 1, j, 2 do
    members[#members + 1] = ARGV[k]
    stamps[#stamps + 1] = seq
    stamps[#stamps + 1] = ARGV[k]
  end
  local current = redis.call('ZMSCORE', KEYS[1], unpack(members))
  for n, member in ipairs(members) do
    local cur = current[n] and tonumber(current[n])
    local ts = tonumber(ARGV[i + 2 * (n - 1)])
    if cur and minute(ts) > minute(cur) then
      before[#before + 1] = cur
      before[#before + 1] = member
    elseif cur and minute(ts) < minute(cur) then
      before[#before + 1] = ts
      before[#before + 1] = member
    end
  end
  redis.call('ZADD', KEYS[1], 'GT', unpack(ARGV, i, j))
  redis.call('ZADD', KEYS[2], unpack(stamps))
  if #before > 0 then
    redis.call('ZADD', KEYS[4], 'GT', unpack(before))
  end
end
return seq
