-- Moves retries that are due back to their streams (several workers run this at once).
-- KEYS: delayed, high stream, normal stream, low stream
-- ARGV: now ms
local streams = {high = KEYS[2], normal = KEYS[3], low = KEYS[4]}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, ':', 1, true)
  local stream = streams[string.sub(member, 1, sep - 1)] or KEYS[3]
  redis.call('XADD', stream, '*', 'job', string.sub(member, sep + 1))
end
return #due
