--[[
  The fair dispatcher's one atomic step for one pool of one cell: decide and
  move up to ARGV[5] workflows from ingress queues into the pool's exec queue,
  taking a slot lease for each in the same script. Several dispatchers may
  run it concurrently: every decision and move is atomic, so no cap is
  exceeded and no job moves twice. The rule (DESIGN.md, mirrored by
  src/dispatch/policy/dispatchRule.ts):
    1. Class A from the head of ready:A, into any free slot (reserve first);
    2. else a general slot (not the Class A reserve) to Class C below its
       guaranteed minimum share, else to Class B, else to Class C within its
       maximum share and the workers' batch limits (lowered while they lag);
    among tenants of a class, the head of the ready set: the lowest virtual
    time (slot-time received / weight, with the estimate of its running
    work counted in: wfq.lua), ties to the least recently served. The same
    steps as PoolDispatch.dispatch.
  Jobs whose deadline passed while queued are failed DEADLINE_EXCEEDED and
  never started. Jobs whose workflow type declares a dependency that is down
  (health signal or operator mark) are parked instead of started, so a known
  outage gets no new fan-out while the tenant's other work flows. When Class
  A waits and no slot is free, the most recently dispatched Class C workflows
  are asked to yield (PUBLISH "preempt <id>"). Each is in its tenant's trail.

  KEYS[1]  pool workers zset (id -> heartbeat expiry)
  KEYS[2]  pool concurrency hash
  KEYS[3]  pool used hash (total, A, C)
  KEYS[4]  pool ready:A    KEYS[5] pool ready:B    KEYS[6] pool ready:C
  KEYS[7]  cell dirty set    KEYS[8] cell timers zset    KEYS[9] cell seq    KEYS[10] cell slots hash
  KEYS[11] exec queue wait list   KEYS[12] exec queue marker (both written through
           includes/moveJob.lua, which derives the same keys from ARGV[3] and the pool's queue name)
  KEYS[13] cell queued counter (and with it, derived from ARGV[2], the tenant's queued payload
           bytes <cell>:qbytes:<t>: includes/queuedBytes.lua; a counter only, never read here)
  KEYS[14] pool runC zset (running Class C id -> dispatch seq)
  KEYS[15] pool preempting zset
  KEYS[16] pool wfq:A    KEYS[17] pool wfq:B    KEYS[18] pool wfq:C

  ARGV[1]  now (epoch ms)
  ARGV[2]  cell own-key prefix (<root>:{<root>.<cell>}:fl)
  ARGV[3]  cell BullMQ prefix (<root>:{<root>.<cell>})
  ARGV[4]  pool    ARGV[5] max workflows to move in this call
  ARGV[6]  Class A reserve fraction (at least 1 slot when capacity >= 2)
  ARGV[7]  Class C max share     ARGV[8] Class C min share
  ARGV[9]  exec job opts (JSON)
  ARGV[10] signals channel
  ARGV[11] max dirty tenants refreshed per call
  ARGV[12] capacity cap (0 = none)
  ARGV[13] record TTL in seconds once a workflow ends (the tenant's retention wins: includes/endRecord.lua)

  Returns {moved, expired, preempted, capacity, used, refreshed, parked}
]]
local rcall = redis.call
local now, own, bull, pool = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local maxMoves, recordTtl = tonumber(ARGV[5]), tonumber(ARGV[13])

--- @include "keys"
--- @include "refreshTenant"
--- @include "queuedBytes"
--- @include "moveJob"
--- @include "endRecord"
--- @include "trail"

-- 1. Readiness changes since the last call: dirty tenants and due cooldown timers.
local refreshed = 0
for _, t in ipairs(rcall("SPOP", KEYS[7], tonumber(ARGV[11]))) do
  refreshTenant(own, bull, t, now)
  refreshed = refreshed + 1
end
for _, t in ipairs(rcall("ZRANGEBYSCORE", KEYS[8], "-inf", now, "LIMIT", 0, 100)) do
  rcall("ZREM", KEYS[8], t)
  refreshTenant(own, bull, t, now)
  refreshed = refreshed + 1
end

-- 2. Capacity: the live workers' concurrency; their batch limits bound Class C (none: its concurrency).
local capacity, batchCap = 0, 0
local live = rcall("ZRANGEBYSCORE", KEYS[1], "(" .. now, "+inf")
if #live > 0 then
  local conc = rcall("HMGET", KEYS[2], unpack(live))
  local lim = rcall("HMGET", cellKey_poolBatch(own, pool), unpack(live))
  for i = 1, #live do
    local c = tonumber(conc[i] or "0") or 0
    capacity, batchCap = capacity + c, batchCap + math.min(c, tonumber(lim[i] or "") or c)
  end
end
local capCap = tonumber(ARGV[12])
if capCap > 0 and capacity > capCap then capacity = capCap end

local reserveA = 0
if capacity >= 2 then
  reserveA = math.min(math.max(1, math.floor(capacity * tonumber(ARGV[6]))), capacity - 1)
end
local minC = 0
if capacity > 0 then minC = math.max(1, math.ceil(capacity * tonumber(ARGV[8]))) end
local maxC = math.max(minC, math.min(math.floor(capacity * tonumber(ARGV[7])), batchCap))

local u = rcall("HMGET", KEYS[3], "total", "A", "C")
local used, usedA, usedC = tonumber(u[1] or "0"), tonumber(u[2] or "0"), tonumber(u[3] or "0")

local readyKeys = { A = KEYS[4], B = KEYS[5], C = KEYS[6] }
local wfqKeys = { A = KEYS[16], B = KEYS[17], C = KEYS[18] }

local function chooseClass()
  if capacity - used <= 0 then return nil end
  if rcall("ZCARD", KEYS[4]) > 0 then return "A" end
  if (capacity - reserveA) - (used - usedA) <= 0 then return nil end
  local readyC = rcall("ZCARD", KEYS[6]) > 0
  if readyC and usedC < minC then return "C" end
  if rcall("ZCARD", KEYS[5]) > 0 then return "B" end
  if readyC and usedC < maxC then return "C" end
  return nil
end

local expired, parked = 0, 0
local execName = execQueue(pool)

-- The first declared dependency of a workflow type that is down, if any. Nothing to
-- look up when no workflow type declares a dependency; each type looked up once per call.
local hasDeps = rcall("EXISTS", cellKey_workflowDeps(own)) == 1
local depsOf = {}
local function downDependency(jobKey)
  if not hasDeps then return nil end
  local name = rcall("HGET", jobKey, "name") or ""
  if depsOf[name] == nil then depsOf[name] = rcall("HGET", cellKey_workflowDeps(own), name) or false end
  local deps = depsOf[name]
  if not deps then return nil end
  for dep in string.gmatch(deps, "[^,]+") do
    local mark = rcall("HGET", cellKey_healthOverride(own, dep), "state")
    if mark == "down" or (mark ~= "healthy" and rcall("HGET", cellKey_health(own, dep), "state") == "down") then
      return dep
    end
  end
  return nil
end

-- Ends a workflow that leaves ingress without running: out of the queued counts, its record failed.
local function failQueued(tenant, id, rec, bytes, code, message)
  rcall("DECR", KEYS[13])
  queuedBytesBy(own, bytes, tenant, -1)
  rcall("HSET", rec, "state", "failed", "finishedAt", now, "errorCode", code, "errorMessage", message)
  expireEnded(own, id, tenant, rcall("HGET", rec, "idem"), recordTtl)
  trail(own, tenant, id, "ended", "dispatcher", "failed " .. code)
  expired = expired + 1
end

-- Pops the oldest queued workflow of a tenant's class queue, failing the expired
-- ones and parking those whose dependency is down, and moves its job into the exec
-- queue (includes/moveJob.lua): the ingress hash already has the layout BullMQ's
-- addStandardJob writes (name, data, opts, timestamp, delay, priority), and both keys
-- share the cell's hash tag, so it is renamed rather than copied through Lua; Class A
-- goes to the head of the exec queue's wait list (see below). Returns its id, record
-- key and the record's {deadlineAt, bytes, runBudgetMs}.
local function takeHead(tenant, cls)
  local q = ingressQueue(tenant, cls)
  local waitKey = bullQueueKey(bull, q, "wait")
  for _ = 1, 100 do
    local id = rcall("RPOP", waitKey)
    if not id then return nil end
    local rec = cellKey_workflow(own, id)
    local jobKey = bullJobKey(bull, q, id)
    local f = rcall("HMGET", rec, "deadlineAt", "bytes", "runBudgetMs")
    local deadline = tonumber(f[1] or "")
    if deadline and deadline <= now then
      rcall("DEL", jobKey)
      failQueued(tenant, id, rec, f[2], "DEADLINE_EXCEEDED", "the deadline passed while the workflow was queued; it was never started")
    else
      local dep = downDependency(jobKey)
      if not dep then
        -- BullMQ workers take the right end of the wait list (RPOPLPUSH): Class A goes there, so a
        -- worker takes it before any Class C dispatched earlier (BullMQ's own lifo does the same).
        if moveJob(jobKey, bull, execName, id, ARGV[9], now, cls == "A" and "head" or "tail", "rename") then
          return id, rec, f
        end
        -- Its job hash is gone (never written so; nothing else deletes it): fail it, and keep
        -- every counter right, rather than stop the call half-way with its counters unwritten.
        failQueued(tenant, id, rec, f[2], "LOST", "its queued job was missing at dispatch")
      else
        moveJob(jobKey, bull, PARKED_QUEUE, id, "{}", now, "tail", "copy")
        rcall("DECR", KEYS[13])
        queuedBytesBy(own, f[2], tenant, -1)
        rcall("HSET", rec, "state", "parked", "queue", PARKED_QUEUE, "parkedDep", dep, "parkedAt", now,
          "parkReason", "held back at dispatch: " .. dep .. " is down")
        rcall("ZADD", cellKey_parked(own, dep), now, id)
        rcall("SADD", cellKey_deps(own), dep)
        trail(own, tenant, id, "parked", "dispatcher", dep .. " down")
        parked = parked + 1
      end
    end
  end
  return nil
end

local moved = 0
local steps = 0
-- Counters every move changes, read once and written once after the loop.
local used0, usedA0, usedC0 = used, usedA, usedC
local seq = tonumber(rcall("GET", KEYS[9]) or "0")
local movedBytes = {}
while moved < maxMoves and steps < maxMoves * 4 do
  steps = steps + 1
  local cls = chooseClass()
  if not cls then break end
  local top = rcall("ZRANGE", readyKeys[cls], 0, 0, "WITHSCORES")
  local head, v = top[1], tonumber(top[2])
  local tenant = string.match(head, "^%d+:(.+)$")
  local caps = readCaps(own, tenant)
  local runA, runBC = readRunning(own, tenant)
  local ok, startsBurst = false, false
  if caps and caps.paused ~= "1" then
    if cls == "A" then ok = aEligible(caps, runA) else ok, startsBurst = bcEligible(caps, runBC, now) end
  end
  local id, rec, f
  if ok then id, rec, f = takeHead(tenant, cls) end
  if not id then
    -- Not eligible (cap, burst, pause) or nothing left to run: recompute, which drops it.
    rcall("ZREM", readyKeys[cls], head)
    refreshTenant(own, bull, tenant, now)
  else
    movedBytes[tenant] = (movedBytes[tenant] or 0) + (tonumber(f[2] or "0") or 0)

    -- The slot lease and the counters derived from it. The dispatch sequence orders
    -- Class C runs for preemption (newest first) and is the WFQ tie-break below.
    -- The lease keeps what was charged, for the release to settle.
    seq = seq + 1
    local charge, inflight = wfqCharge(wfqKeys[cls], tenant)
    rcall("HSET", KEYS[10], id, tenant .. "|" .. cls .. "|" .. pool .. "|" .. now .. "|" .. wfqNum(charge))
    local run = cellKey_running(own, tenant)
    rcall("HINCRBY", run, "p:" .. pool, 1)
    used = used + 1
    if cls == "A" then
      runA = rcall("HINCRBY", run, "A", 1)
      usedA = usedA + 1
    else
      runBC = rcall("HINCRBY", run, "BC", 1)
      if startsBurst then
        rcall("HSET", cellKey_tenantCaps(own, tenant), "burstStart", now)
        caps.burstStart = tostring(now)
      end
      if cls == "C" then
        rcall("ZADD", KEYS[14], seq, id)
        usedC = usedC + 1
      end
    end

    -- The record: dispatched now; Class C's run budget starts here (a deadline only shrinks).
    local fields = { "state", "dispatched", "dispatchedAt", now, "queue", execName, "pool", pool }
    if cls == "C" then
      local budget = now + tonumber(f[3] or "0")
      local current = tonumber(f[1] or "")
      if not current or budget < current then
        fields[#fields + 1] = "deadlineAt"
        fields[#fields + 1] = budget
      end
    end
    rcall("HSET", rec, unpack(fields))
    trail(own, tenant, id, "dispatched", "dispatcher", pool)

    -- WFQ bookkeeping in this pool: the served tenant's virtual time grows by
    -- its charge / weight, and it gets a new "last served" member. Only the
    -- ready sets the tenant was in can keep it (more load never makes it
    -- eligible elsewhere), each with its own score; other pools notice a
    -- reached cap when they pick it.
    local nv = wfqServe(wfqKeys[cls], tenant, v, charge, tonumber(caps.weight), inflight)
    local member = string.format("%014d:%s", seq, tenant)
    local old = memberFor(caps, tenant, pool)
    rcall("HSET", cellKey_tenantCaps(own, tenant), "m:" .. pool, member)
    local eligBC, _, retryAt = bcEligible(caps, runBC, now)
    if retryAt then rcall("ZADD", KEYS[8], retryAt, tenant) end
    local eligible = { A = aEligible(caps, runA), B = eligBC, C = eligBC }
    for x, key in pairs(readyKeys) do
      -- The served class's ready set holds the head read above: no need to ask for its score.
      local score = (x == cls and old == head) and v or rcall("ZSCORE", key, old)
      local backlog = score ~= false
      if backlog then rcall("ZREM", key, old) end
      if x == cls then
        backlog = rcall("LLEN", bullQueueKey(bull, ingressQueue(tenant, cls), "wait")) > 0
        score = wfqNum(nv)
      end
      if backlog and eligible[x] then rcall("ZADD", key, score, member) end
    end
    moved = moved + 1
  end
end

if moved > 0 then
  rcall("SET", KEYS[9], seq)
  rcall("DECRBY", KEYS[13], moved)
  for tenant, bytes in pairs(movedBytes) do queuedBytesBy(own, bytes, tenant, -1) end
  for _, d in ipairs({ { "total", used - used0 }, { "A", usedA - usedA0 }, { "C", usedC - usedC0 } }) do
    if d[2] > 0 then rcall("HINCRBY", KEYS[3], d[1], d[2]) end
  end
  -- One marker for the whole call wakes the pool's blocked BullMQ workers.
  addJobMarker(bull, execName)
end

-- 3. Preemption: Class A is ready but no slot is free for it.
local preempted = 0
if capacity > 0 and capacity - used <= 0 and rcall("ZCARD", KEYS[4]) > 0 then
  local head = rcall("ZRANGE", KEYS[4], 0, 0)[1]
  local tenant = string.match(head, "^%d+:(.+)$")
  local caps = readCaps(own, tenant)
  local runA = readRunning(own, tenant)
  if caps and caps.paused ~= "1" and aEligible(caps, runA) then
    local demand = rcall("LLEN", bullQueueKey(bull, ingressQueue(tenant, "A"), "wait")) + rcall("ZCARD", KEYS[4]) - 1
    local want = math.min(demand - rcall("ZCARD", KEYS[15]), maxMoves)
    while want > 0 do
      local victim = rcall("ZREVRANGE", KEYS[14], 0, 0)[1]
      if not victim then break end
      rcall("ZREM", KEYS[14], victim)
      rcall("ZADD", KEYS[15], now, victim)
      rcall("HSET", cellKey_workflow(own, victim), "preemptRequested", now)
      local of = rcall("HGET", cellKey_workflow(own, victim), "tenant")
      if of then trail(own, of, victim, "preempt-requested", "dispatcher", "Class A waiting") end
      rcall("PUBLISH", ARGV[10], "preempt " .. victim)
      preempted = preempted + 1
      want = want - 1
    end
  end
end

return { moved, expired, preempted, capacity, used, refreshed, parked }
