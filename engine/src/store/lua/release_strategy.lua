-- Releases a whole-strategy claim of a failed run. KEYS[1] = STRAT:<id>:RUN;
-- ARGV[1] = bucket start ms. Returns 1 if that bucket's claim was released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
