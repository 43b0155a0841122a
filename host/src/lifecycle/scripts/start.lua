-- start (and reclaim): the worker holding the job's queue entry begins an attempt.
-- KEYS: record, live, stream
-- ARGV: consumer, entry, attempts as read, new body, effects
local job = stored(KEYS[1])
if not job then
  ack(KEYS[3], ARGV[2])
  return {'missing', ''}
end
if is_terminal(job.state) then
  ack(KEYS[3], ARGV[2])
  return {'terminal', job.state}
end
if not holds(KEYS[3], ARGV[2], ARGV[1]) then
  return {'illegal', 'the queue entry is held by another worker'}
end
if job.attempts ~= tonumber(ARGV[3]) then
  return {'conflict', job.state}
end
redis.call('SET', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'holder', ARGV[1], 'progress', '0')
apply(ARGV[5])
return {'ok', ''}
