-- accept: a new job is stored and queued, and its Idempotency-Key remembered, together. A job
-- accepted already finished (answered from the result cache) is stored to expire, not queued.
-- KEYS: idempotency, record, stream, index, log, log usage
-- ARGV: idempotency value, body, job id, idempotency ttl, use idempotency (1/0), created ms,
--       index entries older than this are dropped, effects, record ttl (0: queue the job)
if ARGV[5] == '1' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
    return {'duplicate', redis.call('GET', KEYS[1])}
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'illegal', 'exists'}
end
local ttl = tonumber(ARGV[9])
put(KEYS[2], ARGV[2], ttl, KEYS[5], KEYS[6])
if ttl == 0 then
  redis.call('XADD', KEYS[3], '*', 'job', ARGV[3])
end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7])
apply(ARGV[8])
return {'ok', ''}
