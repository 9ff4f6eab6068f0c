-- Reads the update set incrementally. KEYS[1] TICK:UPD, KEYS[2] TICK:SEQ,
-- KEYS[3] TICK:SEQ:META. ARGV[1] the epoch of the caller's last read ('' for none),
-- ARGV[2] its sequence cursor, ARGV[3] since_ms of a full read, ARGV[4] the epoch to set
-- when META has none, ARGV[5] the most changes answered as a delta.
--
-- The epoch names one incarnation of the update set: it is set once by the first reader
-- after META was created, so a Redis that lost its data (restart, flush) shows a new one,
-- even if writers have pushed the new sequence past the caller's cursor.
--
-- Returns {kind, epoch, seq, ticker1, ms1, ...}. kind 0: a delta, the tickers written after
-- the cursor with their current times. kind 1: a full read, every ticker updated at or
-- after since_ms: when the caller has no epoch, a different one, a cursor beyond the
-- sequence, or more changes than ARGV[5] (then the full read is no dearer).
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[3], 'epoch', epoch)
end
local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
local out = {0, epoch, seq}
local cursor = tonumber(ARGV[2])
if ARGV[1] == epoch and cursor <= seq
    and redis.call('ZCOUNT', KEYS[2], '(' .. cursor, '+inf') <= tonumber(ARGV[5]) then
  local members = redis.call('ZRANGE', KEYS[2], '(' .. cursor, '+inf', 'BYSCORE')
  -- ZMSCORE in chunks: Lua's unpack is limited to a few thousand values.
  for i = 1, #members, 1000 do
    local part = {}
    for j = i, math.min(i + 999, #members) do
      part[#part + 1] = members[j]
    end
    local scores = redis.call('ZMSCORE', KEYS[1], unpack(part))
    for j, m in ipairs(part) do
      if scores[j] then
        out[#out + 1] = m
        out[#out + 1] = scores[j]
      end
    end
  end
  return out
end
out[1] = 1
local all = redis.call('ZRANGE', KEYS[1], ARGV[3], '+inf', 'BYSCORE', 'WITHSCORES')
for i = 1, #all do
  out[#out + 1] = all[i]
end
return out
