/**
 * Lua scripts of the Redis job store. Each runs atomically on the server. Every script takes the
 * key prefix as `ARGV[1]` and builds its keys from it, so a Redis Cluster needs a hash tag in the
 * prefix (e.g. `{jobs}:`) to keep all keys of one store in one slot.
 *
 * Keys: `job:<id>` hash; `q:<op>` queued ids by runAt; `r:<op>` running ids by lease expiry; `ops`
 * set of operation names; `idem:<scope>` id by idempotency scope; `exp` finished ids by expiresAt;
 * `gone` purged ids by purge time; `seq` creation counter. Changes are published on `changes`.
 */

/** Placeholder in the lease-expired problem, replaced by the job's maxAttempts. */
export const ATTEMPTS_PLACEHOLDER = '987654321';

const COMMON = `
local p = ARGV[1]
local function num(n) return string.format('%.0f', n) end
local function jobkey(id) return p .. 'job:' .. id end
local function touch(id, now)
  redis.call('HINCRBY', jobkey(id), 'version', 1)
  redis.call('HSET', jobkey(id), 'updatedAt', num(now))
  redis.call('PUBLISH', p .. 'changes', id)
end
local function finish(id, op, status, now, errjson, result)
  local key = jobkey(id)
  local expires = now + tonumber(redis.call('HGET', key, 'retentionMs'))
  redis.call('HSET', key, 'status', status, 'finishedAt', num(now), 'expiresAt', num(expires))
  if errjson then redis.call('HSET', key, 'error', errjson) end
  if result then redis.call('HSET', key, 'result', result) end
  redis.call('ZREM', p .. 'q:' .. op, id)
  redis.call('ZREM', p .. 'r:' .. op, id)
  redis.call('ZADD', p .. 'exp', num(expires), id)
  touch(id, now)
end
local function bury(id, now)
  local key = jobkey(id)
  local f = redis.call('HMGET', key, 'scope', 'operation')
  if f[1] and redis.call('GET', p .. 'idem:' .. f[1]) == id then redis.call('DEL', p .. 'idem:' .. f[1]) end
  if f[2] then
    redis.call('ZREM', p .. 'q:' .. f[2], id)
    redis.call('ZREM', p .. 'r:' .. f[2], id)
  end
  redis.call('DEL', key)
  redis.call('ZREM', p .. 'exp', id)
  redis.call('ZADD', p .. 'gone', num(now), id)
end
-- Returns the job's hash when ARGV worker and attempt hold its lease, else nil.
local function held(id, worker, attempt)
  local f = redis.call('HMGET', jobkey(id), 'status', 'leaseOwner', 'attempts', 'cancelRequested', 'operation', 'maxAttempts')
  if f[1] ~= 'running' or f[2] ~= worker or f[3] ~= attempt then return nil end
  return f
end
`;

/** ARGV: prefix, now, id, operation, scope|'', requestHash, maxQueued|'', runAt, field, value, ... */
export const CREATE = `${COMMON}
local now = tonumber(ARGV[2])
local id, op, scope, hash, maxq, runat = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if scope ~= '' then
  local existing = redis.call('GET', p .. 'idem:' .. scope)
  if existing then
    local f = redis.call('HMGET', jobkey(existing), 'operation', 'requestHash', 'expiresAt')
    if f[1] then
      if f[3] and tonumber(f[3]) <= now then
        bury(existing, now)
      else
        if f[1] == op and (f[2] or '') == hash then return {'existing', redis.call('HGETALL', jobkey(existing))} end
        return {'mismatch', existing}
      end
    end
  end
end
if maxq ~= '' and redis.call('ZCARD', p .. 'q:' .. op) >= tonumber(maxq) then return {'full'} end
local key = jobkey(id)
redis.call('HSET', key, 'seq', redis.call('INCR', p .. 'seq'), unpack(ARGV, 9))
redis.call('ZADD', p .. 'q:' .. op, runat, id)
redis.call('SADD', p .. 'ops', op)
if scope ~= '' then redis.call('SET', p .. 'idem:' .. scope, id) end
return {'created', redis.call('HGETALL', key)}
`;

/** ARGV: prefix, now, worker, leaseMs, limit, sweepLimit, operations JSON|'', concurrency JSON|'', canceled problem, lease problem. */
export const CLAIM = `${COMMON}
local now, worker, lease, limit, sweep = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ops
if ARGV[7] ~= '' then ops = cjson.decode(ARGV[7]) else ops = redis.call('SMEMBERS', p .. 'ops') end
local allowance = {}
if ARGV[8] ~= '' then
  for op, max in pairs(cjson.decode(ARGV[8])) do
    allowance[op] = max - redis.call('ZCOUNT', p .. 'r:' .. op, '(' .. num(now), '+inf')
  end
end
local candidates = {}
for _, op in ipairs(ops) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'r:' .. op, '-inf', num(now), 'LIMIT', 0, sweep)) do
    local f = redis.call('HMGET', jobkey(id), 'cancelRequested', 'attempts', 'maxAttempts', 'leaseExpiresAt', 'seq')
    if f[1] == '1' then
      finish(id, op, 'canceled', now, ARGV[9])
    elseif tonumber(f[2]) >= tonumber(f[3]) then
      finish(id, op, 'failed', now, (string.gsub(ARGV[10], '${ATTEMPTS_PLACEHOLDER}', f[3])))
    else
      table.insert(candidates, {id, op, 0, tonumber(f[4]), tonumber(f[5])})
    end
  end
  if allowance[op] == nil or allowance[op] > 0 then
    local due = redis.call('ZRANGEBYSCORE', p .. 'q:' .. op, '-inf', num(now), 'WITHSCORES', 'LIMIT', 0, limit)
    local seen = {}
    for i = 1, #due, 2 do
      seen[due[i]] = true
      table.insert(candidates, {due[i], op, 1, tonumber(due[i + 1]), tonumber(redis.call('HGET', jobkey(due[i]), 'seq'))})
    end
    -- Members with equal scores come back in id order, not creation order: take every job due in
    -- the last millisecond seen, and let the creation counter decide.
    if #due == 2 * limit then
      local last = due[#due]
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'q:' .. op, last, last)) do
        if not seen[id] then
          table.insert(candidates, {id, op, 1, tonumber(last), tonumber(redis.call('HGET', jobkey(id), 'seq'))})
        end
      end
    end
  end
end
table.sort(candidates, function(a, b)
  if a[3] ~= b[3] then return a[3] < b[3] end
  if a[4] ~= b[4] then return a[4] < b[4] end
  return a[5] < b[5]
end)
local claimed = {}
for _, c in ipairs(candidates) do
  if #claimed >= limit then break end
  local id, op = c[1], c[2]
  local left = allowance[op]
  if left == nil or left > 0 then
    if left ~= nil then allowance[op] = left - 1 end
    local key = jobkey(id)
    redis.call('ZREM', p .. 'q:' .. op, id)
    redis.call('ZADD', p .. 'r:' .. op, num(now + lease), id)
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'status', 'running', 'leaseOwner', worker, 'leaseExpiresAt', num(now + lease))
    redis.call('HSETNX', key, 'startedAt', num(now))
    touch(id, now)
    table.insert(claimed, redis.call('HGETALL', key))
  end
end
return claimed
`;

/** ARGV: prefix, id, worker, attempt, until. Answers 0 lost, 1 held, 2 cancel requested. */
export const HEARTBEAT = `${COMMON}
local f = held(ARGV[2], ARGV[3], ARGV[4])
if not f then return 0 end
redis.call('HSET', jobkey(ARGV[2]), 'leaseExpiresAt', ARGV[5])
redis.call('ZADD', p .. 'r:' .. f[5], ARGV[5], ARGV[2])
if f[4] == '1' then return 2 end
return 1
`;

/** ARGV: prefix, id, worker, attempt, now, progress JSON. Answers 0 lost, 1 held, 2 cancel requested. */
export const PROGRESS = `${COMMON}
local f = held(ARGV[2], ARGV[3], ARGV[4])
if not f then return 0 end
redis.call('HSET', jobkey(ARGV[2]), 'progress', ARGV[6])
touch(ARGV[2], tonumber(ARGV[5]))
if f[4] == '1' then return 2 end
return 1
`;

/** ARGV: prefix, id, worker, attempt, now, result JSON. */
export const COMPLETE = `${COMMON}
local f = held(ARGV[2], ARGV[3], ARGV[4])
if not f then return 'lost' end
finish(ARGV[2], f[5], 'succeeded', tonumber(ARGV[5]), nil, ARGV[6])
return 'succeeded'
`;

/** ARGV: prefix, then (id, worker, attempt, now, result JSON) per completion. Answers one outcome per completion, in order. */
export const COMPLETE_MANY = `${COMMON}
local out = {}
for i = 2, #ARGV, 5 do
  local f = held(ARGV[i], ARGV[i + 1], ARGV[i + 2])
  if f then
    finish(ARGV[i], f[5], 'succeeded', tonumber(ARGV[i + 3]), nil, ARGV[i + 4])
    out[#out + 1] = 'succeeded'
  else
    out[#out + 1] = 'lost'
  end
end
return out
`;

/** ARGV: prefix, id, worker, attempt, now, error JSON, retryDelayMs|'', canceled problem. */
export const FAIL = `${COMMON}
local id, now = ARGV[2], tonumber(ARGV[5])
local f = held(id, ARGV[3], ARGV[4])
if not f then return 'lost' end
if f[4] == '1' then
  finish(id, f[5], 'canceled', now, ARGV[8])
  return 'canceled'
end
if ARGV[7] ~= '' and tonumber(f[3]) < tonumber(f[6]) then
  local runat = num(now + tonumber(ARGV[7]))
  local key = jobkey(id)
  redis.call('HSET', key, 'status', 'queued', 'runAt', runat, 'error', ARGV[6])
  redis.call('HDEL', key, 'leaseOwner', 'leaseExpiresAt')
  redis.call('ZREM', p .. 'r:' .. f[5], id)
  redis.call('ZADD', p .. 'q:' .. f[5], runat, id)
  touch(id, now)
  return 'retrying'
end
finish(id, f[5], 'failed', now, ARGV[6])
return 'failed'
`;

/** ARGV: prefix, id, worker, attempt, now, canceled problem. Queues the job again without counting the attempt. */
export const RELEASE = `${COMMON}
local id, now = ARGV[2], tonumber(ARGV[5])
local f = held(id, ARGV[3], ARGV[4])
if not f then return 'lost' end
if f[4] == '1' then
  finish(id, f[5], 'canceled', now, ARGV[6])
  return 'canceled'
end
local key = jobkey(id)
local attempts = redis.call('HINCRBY', key, 'attempts', -1)
redis.call('HSET', key, 'status', 'queued', 'runAt', num(now))
redis.call('HDEL', key, 'leaseOwner', 'leaseExpiresAt')
if attempts == 0 then redis.call('HDEL', key, 'startedAt') end
redis.call('ZREM', p .. 'r:' .. f[5], id)
redis.call('ZADD', p .. 'q:' .. f[5], num(now), id)
touch(id, now)
return 'released'
`;

/** ARGV: prefix, id, now, canceled problem. */
export const CANCEL = `${COMMON}
local id, now = ARGV[2], tonumber(ARGV[3])
local key = jobkey(id)
local f = redis.call('HMGET', key, 'status', 'operation', 'cancelRequested', 'expiresAt')
if not f[1] then
  if redis.call('ZSCORE', p .. 'gone', id) then return {'gone'} end
  return {'missing'}
end
if f[4] and tonumber(f[4]) <= now then return {'gone'} end
if f[1] == 'queued' then
  finish(id, f[2], 'canceled', now, ARGV[4])
  return {'canceled', redis.call('HGETALL', key)}
end
if f[1] == 'running' then
  if f[3] ~= '1' then
    redis.call('HSET', key, 'cancelRequested', '1')
    touch(id, now)
  end
  return {'cancel-requested', redis.call('HGETALL', key)}
end
return {'finished', redis.call('HGETALL', key)}
`;

/** ARGV: prefix, id, now, callback JSON. */
export const SET_CALLBACK = `${COMMON}
if redis.call('EXISTS', jobkey(ARGV[2])) == 0 then return 0 end
redis.call('HSET', jobkey(ARGV[2]), 'callback', ARGV[4])
touch(ARGV[2], tonumber(ARGV[3]))
return 1
`;

/** ARGV: prefix, now, tombstones purged at or before this time, batch size. */
export const PURGE = `${COMMON}
local now = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', num(now), 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do bury(id, now) end
redis.call('ZREMRANGEBYSCORE', p .. 'gone', '-inf', ARGV[3])
return #ids
`;
