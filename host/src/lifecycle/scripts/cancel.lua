-- cancel: a PENDING job is cancelled at once (its scheduled retry removed); a PROCESSING one
-- gets a cancel request its worker acts on. Anything else is refused.
-- KEYS: record, delayed, cancel, log, log usage
-- ARGV: the record as read, cancelled body, record ttl, delayed member, effects
local raw = redis.call('GET', KEYS[1])
if not raw then
  return {'missing', ''}
end
local job = cjson.decode(raw)
if job.state == 'PENDING' then
  if raw ~= ARGV[1] then
    return {'conflict', job.state}
  end
  put(KEYS[1], ARGV[2], tonumber(ARGV[3]), KEYS[4], KEYS[5])
  redis.call('ZREM', KEYS[2], ARGV[4])
  apply(ARGV[5])
  return {'cancelled', ''}
end
if job.state == 'PROCESSING' then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
  return {'requested', ''}
end
return {'illegal', job.state}
