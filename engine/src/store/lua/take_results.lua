-- Takes over results another engine instance read and never acknowledged (it crashed, or
-- was renamed), so they are settled — a failure's claims released — and stop holding back
-- the trimming of the results stream (DESIGN §2.8); then forgets consumers left empty.
-- KEYS[1] = ALERT:RESULTS
-- ARGV[1] = the engines' group, ARGV[2] = this instance's consumer, ARGV[3] = n, then n
-- triples: entry id, the consumer it was pending with, deliveries the caller saw when it
-- judged the entry orphaned; then the consumers to forget if nothing is pending with them.
-- An entry is claimed only if it is still pending with the consumer and delivery count the
-- caller saw (XCLAIM bumps the count): of two instances taking over at once, only the first
-- gets it, and a result its owner acknowledged meanwhile is left alone.
-- A consumer is forgotten (XGROUP DELCONSUMER) only when nothing is pending with it: the
-- check and the deletion are one script, so no pending entry is ever dropped with it.
-- Returns {claimed, forgotten}: claimed = {entry id, payload or false, ...} in the order
-- asked; forgotten = how many of the consumers had nothing pending (and are gone now).
local claimed = {}
local n = tonumber(ARGV[3])
local owners, order = {}, {}
for i = 4, 3 + 3 * n, 3 do
  local id, owner, seen = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if not owners[owner] then
    owners[owner] = true
    order[#order + 1] = owner
  end
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p == 1 and p[1][2] == owner and tostring(p[1][4]) == seen then
    local entry = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)[1]
    if entry then
      local payload = false
      local fields = entry[2]
      for f = 1, #fields, 2 do
        if fields[f] == 'result' then
          payload = fields[f + 1]
        end
      end
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = payload
    else
      -- Trimmed while pending: XCLAIM drops it from the pending list; nothing to settle.
      redis.call('XACK', KEYS[1], ARGV[1], id)
    end
  end
end
for i = 4 + 3 * n, #ARGV do
  if not owners[ARGV[i]] then
    owners[ARGV[i]] = true
    order[#order + 1] = ARGV[i]
  end
end
local forgotten = 0
for _, owner in ipairs(order) do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, owner) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], owner)
    forgotten = forgotten + 1
  end
end
return {claimed, forgotten}
