-- Trims a stream only below what every consumer group still needs (DESIGN §2.8), and
-- reports one group's unacknowledged work. Nothing unread or pending is ever trimmed.
-- KEYS[1] = the stream (ALERT:JOBS or ALERT:RESULTS)
-- ARGV[1] = the group whose backlog is reported.
-- A group needs its oldest pending entry and everything after its last-delivered id; the
-- stream is trimmed (XTRIM MINID ~, whole macro nodes only, at most the default LIMIT per
-- call) below the lowest such id of all groups. Without any group nothing is trimmed: a
-- group created later from '0' would want the entries.
-- Returns {entries trimmed, backlog, pending}: backlog = the group's pending entries plus
-- those not yet delivered to it (its lag; when Redis cannot tell it, the stream's length, an
-- upper bound), pending = the group's delivered and unacknowledged entries; 0 when the
-- stream or the group does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0, 0}
end
-- Stream ids are '<ms>-<seq>'; both parts below 2^53 in practice, exact as Lua numbers.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return {tonumber(ms), tonumber(seq)}
end
local function below(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local floor, floor_id = nil, nil
local backlog, pending = 0, 0
for _, flat in ipairs(groups) do
  local g = {}
  for i = 1, #flat, 2 do
    g[flat[i]] = flat[i + 1]
  end
  local needed_id = g['last-delivered-id']
  if g['pending'] > 0 then
    local summary = redis.call('XPENDING', KEYS[1], g['name'])
    if below(parse(summary[2]), parse(needed_id)) then
      needed_id = summary[2]
    end
  end
  local needed = parse(needed_id)
  if not floor or below(needed, floor) then
    floor, floor_id = needed, needed_id
  end
  if g['name'] == ARGV[1] then
    pending = g['pending']
    if type(g['lag']) == 'number' then
      backlog = g['pending'] + g['lag']
    else
      backlog = redis.call('XLEN', KEYS[1])
    end
  end
end
local trimmed = 0
if floor_id then
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', '~', floor_id)
end
return {trimmed, backlog, pending}
