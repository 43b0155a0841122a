-- Takes or renews one of a limited number of run permits; lapsed ones are dropped first.
-- KEYS: running
-- ARGV: now ms, lapses at ms, consumer, limit
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or
   redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
return 0
