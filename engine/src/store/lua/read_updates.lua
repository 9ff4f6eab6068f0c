-- Reads the update set incrementally. KEYS[1] TICK:UPD, KEYS[2] TICK:SEQ,
-- KEYS[3] TICK:SEQ:META, KEYS[4] TICK:PRE. ARGV[1] the epoch of the caller's last read
-- ('' for none), ARGV[2] its sequence cursor, ARGV[3] since_ms of a full read, ARGV[4] the
-- epoch to set when META has none, ARGV[5] the most changes answered as a delta, ARGV[6]
-- recent_ms: a delta also holds every ticker whose time is at or after it.
--
-- The epoch names one incarnation of the update set: it is set once by the first reader
-- after META was created, so a Redis that lost its data (restart, flush) shows a new one,
-- even if writers have pushed the new sequence past the caller's cursor.
--
-- Returns {kind, epoch, seq, ticker1, ms1, before1, ...}: each ticker with its time and its
-- time in TICK:PRE (false, a nil reply, when it has none). kind 0: a delta, the tickers
-- written after the cursor, and every ticker with a time at or after recent_ms: a direct
-- writer (a plain `ZADD [GT] TICK:UPD`, as the original system's ingestion does) takes no
-- sequence number, so the recent window is how its writes are seen within one read, at a
-- cost proportional to what changed in the window. kind 1: a full read, every ticker
-- updated at or after since_ms: when the caller has no epoch, a different one, a cursor
-- beyond the sequence, or more changes than ARGV[5] (then the full read is no dearer).
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[3], 'epoch', epoch)
end
local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
local out = {0, epoch, seq}

-- Appends {member, score, before} for each of `members` that has a score. `scores` holds
-- their scores when the caller already read them (a full read); else they are looked up.
-- ZMSCORE in chunks: Lua's unpack is limited to a few thousand values.
local function emit(members, scores)
  for i = 1, #members, 1000 do
    local last = math.min(i + 999, #members)
    local before = redis.call('ZMSCORE', KEYS[4], unpack(members, i, last))
    local looked = {}
    if not scores then
      looked = redis.call('ZMSCORE', KEYS[1], unpack(members, i, last))
    end
    for j = i, last do
      local score
      if scores then
        score = scores[j]
      else
        score = looked[j - i + 1]
      end
      if score then
        out[#out + 1] = members[j]
        out[#out + 1] = score
        out[#out + 1] = before[j - i + 1]
      end
    end
  end
end

local cursor = tonumber(ARGV[2])
if ARGV[1] == epoch and cursor <= seq
    and redis.call('ZCOUNT', KEYS[2], '(' .. cursor, '+inf')
      + redis.call('ZCOUNT', KEYS[1], ARGV[6], '+inf') <= tonumber(ARGV[5]) then
  local written = redis.call('ZRANGE', KEYS[2], '(' .. cursor, '+inf', 'BYSCORE')
  emit(written, nil)
  local seen = {}
  for _, member in ipairs(written) do
    seen[member] = true
  end
  local recent = redis.call('ZRANGE', KEYS[1], ARGV[6], '+inf', 'BYSCORE', 'WITHSCORES')
  local members, scores = {}, {}
  for i = 1, #recent, 2 do
    if not seen[recent[i]] then
      members[#members + 1] = recent[i]
      scores[#scores + 1] = recent[i + 1]
    end
  end
  emit(members, scores)
  return out
end
out[1] = 1
local all = redis.call('ZRANGE', KEYS[1], ARGV[3], '+inf', 'BYSCORE', 'WITHSCORES')
local members, scores = {}, {}
for i = 1, #all, 2 do
  members[#members + 1] = all[i]
  scores[#scores + 1] = all[i + 1]
end
emit(members, scores)
return out
