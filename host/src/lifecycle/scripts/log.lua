-- One job log line, within the job's budget of lines and bytes; the first line over it is
-- replaced by one "log limit reached" line and nothing is appended after it.
-- KEYS: log, log usage
-- ARGV: line, its length, max lines, max bytes, the limit line
if redis.call('HGET', KEYS[2], 'full') then
  return 0
end
local lines = redis.call('LLEN', KEYS[1])
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
if lines + 1 >= tonumber(ARGV[3]) or bytes + tonumber(ARGV[2]) > tonumber(ARGV[4]) then
  redis.call('RPUSH', KEYS[1], ARGV[5])
  redis.call('HSET', KEYS[2], 'full', '1')
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'bytes', ARGV[2])
return 1
