-- progress: the holder of a running attempt updates its fraction done and each output's state
-- and progress (JSON), never the record.
-- KEYS: live
-- ARGV: consumer, progress, outputs
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'outputs', ARGV[3])
return 1
