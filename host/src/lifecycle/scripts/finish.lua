-- complete, fail, dead, retry, cancel of a running job, hand-back, and dead after a reclaim:
-- the worker holding a PROCESSING job records how its attempt ended and acknowledges the entry.
-- KEYS: record, live, stream, delayed, log, log usage, cancel
-- ARGV: consumer, entry, attempts as read, new body, record ttl (0: keep), requeue ('' | 'now'
--       | 'later'), job id or delayed member, due ms, effects
local job = stored(KEYS[1])
if not job then
  return {'illegal', 'no record'}
end
if job.state ~= 'PROCESSING' then
  return {'illegal', job.state}
end
if job.attempts ~= tonumber(ARGV[3]) then
  return {'illegal', 'attempt ' .. tostring(job.attempts)}
end
if not holds(KEYS[3], ARGV[2], ARGV[1]) then
  return {'illegal', 'the queue entry is held by another worker'}
end
local ttl = tonumber(ARGV[5])
put(KEYS[1], ARGV[4], ttl, KEYS[5], KEYS[6])
redis.call('DEL', KEYS[2])
if ttl > 0 then
  redis.call('DEL', KEYS[7])
end
if ARGV[6] == 'now' then
  redis.call('XADD', KEYS[3], '*', 'job', ARGV[7])
elseif ARGV[6] == 'later' then
  redis.call('ZADD', KEYS[4], ARGV[8], ARGV[7])
end
ack(KEYS[3], ARGV[2])
apply(ARGV[9])
return {'ok', ''}
