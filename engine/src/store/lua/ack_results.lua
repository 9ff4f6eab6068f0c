-- Acknowledges result entries in order, copying those so asked to the dead-letter stream
-- first. A result is acknowledged only once its dead letter is written: if that XADD fails
-- (e.g. the dead-letter key holds another type), the entry stays pending, to be read and
-- settled again, and the others are acknowledged all the same.
-- KEYS[1] = ALERT:RESULTS, KEYS[2] = ALERT:DEAD
-- ARGV[1] = the engines' group, ARGV[2] = dead-letter MAXLEN (approximate), then four per
-- entry: entry id, '1' to dead-letter it (else '0'), reason, payload.
-- Returns the entries left pending: {entry id, error, entry id, error, ...}.
local failed = {}
for i = 3, #ARGV, 4 do
  local id = ARGV[i]
  local written = true
  if ARGV[i + 1] == '1' then
    local reply = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
      'result_id', id, 'reason', ARGV[i + 2], 'result', ARGV[i + 3])
    if type(reply) == 'table' and reply.err then
      written = false
      failed[#failed + 1] = id
      failed[#failed + 1] = reply.err
    end
  end
  if written then
    redis.call('XACK', KEYS[1], ARGV[1], id)
  end
end
return failed
