--[[
  The tool gate (MCTC): one attempt to take a permit from a tenant's
  distributed semaphore, FIFO. Holders are leases (expire unless renewed),
  so a dead holder's permit comes back; waiters carry an expiry too, so a
  dead waiter stops blocking the queue. Class C callers have their own wait
  queue and a lower ceiling (mctcBatch), and yield to A/B waiters.
  Mirrors mayAcquire in src/runtime/gateRule.ts.

  Uncontended (nobody waits, a permit is free) this is five commands, seven
  for Class C: drop lapsed leases, EXISTS on the waiter expiry set (an empty
  set does not exist), ZCARD, ZADD, the usage count (its EXPIRE only when the
  bucket's field is new); plus one or two HGETs when the call names its
  dependency. The queues are only read when someone waits.
  When this call changes who may go (a lapsed lease or an expired wait was
  dropped, or the last A/B waiter left so Class C waiters may go), it wakes
  them (includes/gate.lua).

  KEYS[1] holders zset (permit id -> lease expiry)
  KEYS[2] Class C holders zset (subset of KEYS[1])
  KEYS[3] A/B waiters zset (id -> FIFO seq)
  KEYS[4] Class C waiters zset (id -> FIFO seq)
  KEYS[5] waiter expiry zset (id -> expires at; every waiter of KEYS[3] and KEYS[4])
  KEYS[6] FIFO sequence
  KEYS[7] usage-event bucket of `now` (<cell>:ev:<bucketStart>): counts
          "<tenant>|acq" and "<tenant>|gw" (wait ms) when a permit is granted,
          "<tenant>|thr" when the queue is full (THROTTLED)
  KEYS[8] the org's holders zset (every permit of its tenants; KEYS[1] when no org bound)
  KEYS[9] the call's dependency's operator mark   KEYS[10] its measured health signal
          (both hashes; unread when ARGV[14] is not "1")

  ARGV[1] permit / waiter id   ARGV[2] 1 when the caller is Class C
  ARGV[3] now   ARGV[4] lease until   ARGV[5] wait until (if it has to queue)
  ARGV[6] mctc   ARGV[7] mctcBatch   ARGV[8] queue depth
  ARGV[9] when the caller began waiting (epoch ms)   ARGV[10] tenant
  ARGV[11] usage-event bucket TTL (seconds)   ARGV[12] the cell's gate channel
  ARGV[13] the org's mctc (0: no org bound)
  ARGV[14] "1" when the call names a dependency: a dependency marked degraded or down (the operator's
           mark, else the measured signal) gets no permit, whoever marked it and however recently
           (mirrors gateRefuses in src/backpressure/healthRule.ts; one HGET, two without a mark)

  Returns {"acquired"} | {"queued", position} | {"waiting", position} | {"full", queued} | {"unhealthy", state}
]]
local rcall = redis.call
--- @include "gate"

if ARGV[14] == "1" then
  local state = rcall("HGET", KEYS[9], "state") or rcall("HGET", KEYS[10], "state")
  if state == "degraded" or state == "down" then return { "unhealthy", state } end
end

local g = { held = KEYS[1], heldC = KEYS[2], wait = KEYS[3], waitC = KEYS[4], waitExp = KEYS[5], orgHeld = KEYS[8],
  orgMctc = tonumber(ARGV[13]) }
local id, isC, now = ARGV[1], ARGV[2] == "1", tonumber(ARGV[3])
local mctc, mctcBatch = tonumber(ARGV[6]), tonumber(ARGV[7])
local queue = isC and g.waitC or g.wait

local changed = expireHolders(g, now)
local anyWaiting = rcall("EXISTS", g.waitExp) == 1
if anyWaiting then
  changed = changed + expireWaiters(g, now)
  anyWaiting = rcall("EXISTS", g.waitExp) == 1
end

local rank = anyWaiting and rcall("ZRANK", queue, id) or nil
local position = rank or (anyWaiting and rcall("ZCARD", queue) or 0)
local free = freePermits(g, mctc)

local can
if isC then
  can = not (anyWaiting and rcall("EXISTS", g.wait) == 1) and position < free and position < mctcBatch - rcall("ZCARD", g.heldC)
else
  can = position < free
end

local function count(name, by)
  -- The bucket's TTL is set by whichever field is written first in it.
  if rcall("HINCRBY", KEYS[7], ARGV[10] .. "|" .. name, by) == by then rcall("EXPIRE", KEYS[7], ARGV[11]) end
end

if can then
  rcall("ZADD", g.held, ARGV[4], id)
  if isC then rcall("ZADD", g.heldC, ARGV[4], id) end
  if g.orgMctc > 0 then rcall("ZADD", g.orgHeld, ARGV[4], id) end
  if rank then
    rcall("ZREM", queue, id)
    rcall("ZREM", g.waitExp, id)
    -- The last A/B waiter leaving lets Class C waiters in.
    if not isC and rcall("EXISTS", g.wait) == 0 and rcall("EXISTS", g.waitC) == 1 then changed = changed + 1 end
  end
  count("acq", 1)
  local waited = now - tonumber(ARGV[9])
  if waited > 0 then count("gw", waited) end
  if changed > 0 then wakeEligible(g, mctc, mctcBatch, ARGV[12]) end
  return { "acquired" }
end
if changed > 0 then wakeEligible(g, mctc, mctcBatch, ARGV[12]) end
if rank then
  rcall("ZADD", g.waitExp, ARGV[5], id)
  return { "waiting", rank }
end
local queued = anyWaiting and (rcall("ZCARD", g.wait) + rcall("ZCARD", g.waitC)) or 0
if queued >= tonumber(ARGV[8]) then
  count("thr", 1)
  return { "full", queued }
end
rcall("ZADD", queue, rcall("INCR", KEYS[6]), id)
rcall("ZADD", g.waitExp, ARGV[5], id)
return { "queued", position }
