-- Shared by the transition scripts (prepended to each when it is loaded).

-- The stored record, decoded, or nil.
-- The job record at `key`, or nil when there is none or it is not a job record (a record
-- rewritten into something else must not make every transition of its job raise an error).
local function stored(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local ok, job = pcall(cjson.decode, raw)
  if not ok or type(job) ~= 'table' or type(job.state) ~= 'string'
      or type(job.attempts) ~= 'number' then
    return nil
  end
  return job
end

local function is_terminal(state)
  return state == 'COMPLETED' or state == 'FAILED' or state == 'DEAD' or state == 'CANCELLED'
end

-- True when the queue entry is pending for `consumer`: the holder of a job is whoever holds its
-- entry (a reclaim moves the entry, and with it the right to record the outcome).
local function holds(stream, entry, consumer)
  local p = redis.call('XPENDING', stream, 'workers', entry, entry, 1)
  return p[1] ~= nil and p[1][2] == consumer
end

local function ack(stream, entry)
  redis.call('XACK', stream, 'workers', entry)
  redis.call('XDEL', stream, entry)
end

-- Writes a record; a finished one (ttl > 0) expires, with its log.
local function put(key, body, ttl, log, log_usage)
  if ttl > 0 then
    redis.call('SET', key, body, 'EX', ttl)
    redis.call('EXPIRE', log, ttl)
    redis.call('EXPIRE', log_usage, ttl)
  else
    redis.call('SET', key, body)
  end
end

-- The effects a transition carries besides the record (the webhook event, metric counters),
-- as JSON: the commands the outbox and the metrics would have sent on their own.
local function apply(effects_json)
  for _, command in ipairs(cjson.decode(effects_json).commands) do
    redis.call(unpack(command))
  end
end
