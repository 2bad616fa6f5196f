--[[
  The tool gate (MCTC): one attempt to take a permit from a tenant's
  distributed semaphore, FIFO. Holders are leases (expire unless renewed),
  so a dead holder's permit comes back; waiters carry an expiry too, so a
  dead waiter stops blocking the queue. Class C callers have their own wait
  queue and a lower ceiling (mctcBatch), and yield to A/B waiters.
  Mirrors src/runtime/gateRule.ts.

  KEYS[1] holders zset (permit id -> lease expiry)
  KEYS[2] Class C holders zset (subset of KEYS[1])
  KEYS[3] A/B waiters zset (id -> FIFO seq)
  KEYS[4] Class C waiters zset (id -> FIFO seq)
  KEYS[5] waiter expiry zset (id -> expires at)
  KEYS[6] FIFO sequence
  KEYS[7] usage-event bucket of `now` (<cell>:ev:<bucketStart>): counts
          "<tenant>|acq" and "<tenant>|gw" (wait ms) when a permit is granted,
          "<tenant>|thr" when the queue is full (THROTTLED)

  ARGV[1] permit / waiter id   ARGV[2] 1 when the caller is Class C
  ARGV[3] now   ARGV[4] lease until   ARGV[5] wait until (if it has to queue)
  ARGV[6] mctc   ARGV[7] mctcBatch   ARGV[8] queue depth
  ARGV[9] when the caller began waiting (epoch ms)   ARGV[10] tenant
  ARGV[11] usage-event bucket TTL (seconds)

  Returns {"acquired"} | {"queued", position} | {"waiting", position} | {"full", queued}
]]
local rcall = redis.call
local id, isC, now = ARGV[1], ARGV[2] == "1", tonumber(ARGV[3])

for _, h in ipairs(rcall("ZRANGEBYSCORE", KEYS[1], "-inf", now)) do
  rcall("ZREM", KEYS[1], h)
  rcall("ZREM", KEYS[2], h)
end
for _, w in ipairs(rcall("ZRANGEBYSCORE", KEYS[5], "-inf", now)) do
  rcall("ZREM", KEYS[5], w)
  rcall("ZREM", KEYS[3], w)
  rcall("ZREM", KEYS[4], w)
end

local free = tonumber(ARGV[6]) - rcall("ZCARD", KEYS[1])
local queue = isC and KEYS[4] or KEYS[3]
local rank = rcall("ZRANK", queue, id)
local position = rank or rcall("ZCARD", queue)

local can
if isC then
  local batchFree = tonumber(ARGV[7]) - rcall("ZCARD", KEYS[2])
  can = rcall("ZCARD", KEYS[3]) == 0 and position < math.min(free, batchFree)
else
  can = position < free
end

if can then
  rcall("ZADD", KEYS[1], ARGV[4], id)
  if isC then rcall("ZADD", KEYS[2], ARGV[4], id) end
  rcall("ZREM", queue, id)
  rcall("ZREM", KEYS[5], id)
  rcall("HINCRBY", KEYS[7], ARGV[10] .. "|acq", 1)
  local waited = now - tonumber(ARGV[9])
  if waited > 0 then rcall("HINCRBY", KEYS[7], ARGV[10] .. "|gw", waited) end
  rcall("EXPIRE", KEYS[7], ARGV[11])
  return { "acquired" }
end
if rank then
  rcall("ZADD", KEYS[5], ARGV[5], id)
  return { "waiting", rank }
end
local queued = rcall("ZCARD", KEYS[3]) + rcall("ZCARD", KEYS[4])
if queued >= tonumber(ARGV[8]) then
  rcall("HINCRBY", KEYS[7], ARGV[10] .. "|thr", 1)
  rcall("EXPIRE", KEYS[7], ARGV[11])
  return { "full", queued }
end
rcall("ZADD", queue, rcall("INCR", KEYS[6]), id)
rcall("ZADD", KEYS[5], ARGV[5], id)
return { "queued", position }
