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
    work counted in: wfq.lua), ties to the least recently served. An org is
    one flow in that set, under its own caps, and its tenants take turns in
    the org's own set the same way (includes/flows.lua). The same steps as
    PoolDispatch.dispatch.
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
  KEYS[11] exec queue wait list (the call's moves pushed once at its end: includes/dispatchCache.lua)
  KEYS[12] exec queue marker (includes/moveJob.lua, which derives it from ARGV[3] and the pool's queue name)
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
  ARGV[9]  signals channel
  ARGV[10] max dirty tenants refreshed per call
  ARGV[11] capacity cap (0 = none)
  ARGV[12] record TTL in seconds once a workflow ends (the tenant's retention wins: includes/endRecord.lua)
  ARGV[13] a preemption request older than this (ms) whose workflow still holds its slot counts as
           ignored ("" = not counted, 0 returned)
  ARGV[14] prefetch: how many more than its capacity the pool may hold dispatched, waiting in the exec
           queue for the next free worker (src/dispatch/policy/prefetch.ts; "" = off: 0, and none of
           the reads below that only the prefetch needs). Shares and the reserve stay those of the
           capacity.
  ARGV[15] "1": keep ARGV[14] as `prefetch:<pool>` in the cell's dispatch settings, for explanations
           (the dispatcher asks when it changed)

  Returns {moved, expired, preempted, capacity, used, refreshed, parked, ignored, waiting, full}: `waiting`
  the exec queue's length when the call began, `full` 1 when it left Class B/C work ready for want of
  a slot (src/dispatch/policy/prefetch.ts learns from both; both 0 when the prefetch is off)
]]
local rcall = redis.call
local now, own, bull, pool = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local maxMoves, recordTtl = tonumber(ARGV[5]), tonumber(ARGV[12])
-- `now` as every move writes it: formatted once per call, not at each use.
local nowText = tostring(now)

--- @include "keys"
--- @include "refreshTenant"
--- @include "queuedBytes"
--- @include "moveJob"
--- @include "endRecord"
--- @include "trail"
--- @include "flows"
--- @include "releaseSlot"

-- 0. The releases noted since the last call (the exec consumer's finishes), before anything reads what they change.
settleReleased(own)

-- 1. Readiness changes since the last call: dirty tenants and due cooldown timers.
-- Tenants before orgs ("@<org>"), whatever order SPOP gives: each org is placed once, after all of its
-- tenants, and the flows entering a ready set enter together, against its lowest v as it was before any of
-- them (enterAll). Placed one at a time, the order SPOP gave them decided where they started, and an org
-- one tenant was leaving and another joining could enter the pool's set for a moment. PoolDispatch.dispatch
-- refreshes in the same steps.
local refreshed = 0
local dirty = rcall("SPOP", KEYS[7], tonumber(ARGV[10]))
local batch = { orgs = {}, entries = {} }
for _, t in ipairs(dirty) do
  if string.sub(t, 1, 1) == "@" then
    batch.orgs[t] = true
  else
    refreshTenant(own, bull, t, now, batch)
    refreshed = refreshed + 1
  end
end
enterAll(batch)
for o in pairs(batch.orgs) do
  refreshTenant(own, bull, o, now, batch)
  refreshed = refreshed + 1
end
enterAll(batch)
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
local capCap = tonumber(ARGV[11])
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
-- Slots the dispatch may fill: the capacity, and the prefetch while any worker is live.
local prefetchOn, prefetch = (ARGV[14] or "") ~= "", tonumber(ARGV[14] or "") or 0
if ARGV[15] == "1" then rcall("HSET", cellKey_dispatchSettings(own), "prefetch:" .. pool, prefetch) end
local limit = capacity > 0 and capacity + prefetch or 0

local readyKeys = { A = KEYS[4], B = KEYS[5], C = KEYS[6] }
local wfqKeys = { A = KEYS[16], B = KEYS[17], C = KEYS[18] }

--- @include "dispatchCache"

local function chooseClass()
  if limit - used <= 0 then return nil end
  if card("A") > 0 then return "A" end
  if (limit - reserveA) - (used - usedA) <= 0 then return nil end
  local readyC = card("C") > 0
  if readyC and usedC < minC then return "C" end
  if card("B") > 0 then return "B" end
  if readyC and usedC < maxC then return "C" end
  return nil
end

local expired, parked = 0, 0
local execName = execQueue(pool)
--- @include "dispatchTake"

local moved = 0
local waiting = prefetchOn and rcall("LLEN", KEYS[11]) or 0
local steps = 0
-- Counters every move changes, read once and written once after the loop.
local used0, usedA0, usedC0 = used, usedA, usedC
local seq = tonumber(rcall("GET", KEYS[9]) or "0")
local movedBytes = {}

while moved < maxMoves and steps < maxMoves * 4 do
  steps = steps + 1
  local cls = chooseClass()
  if not cls then break end
  local h = headOf(cls)
  local tenant, org = h.tenant, h.org
  local caps = tenant and capsFor(tenant)
  local runA, runBC = 0, 0
  local ok, startsBurst = false, false
  if caps and caps.paused ~= "1" and (caps.org or "") == (org or "") then
    runA, runBC = runningFor(tenant)
    if cls == "A" then ok = aEligible(caps, runA) else ok, startsBurst = bcEligible(caps, runBC, now) end
  end
  local ocaps, orunA, orunBC, orgOk = nil, 0, 0, true
  if ok and org then
    ocaps = capsFor(h.flow)
    orunA, orunBC = runningFor(h.flow)
    orgOk = ocaps ~= nil and ((cls == "A" and aEligible(ocaps, orunA)) or (cls ~= "A" and (bcEligible(ocaps, orunBC, now))))
  end
  local id, rec, f, at
  if ok and orgOk then
    at = placeOf(cls, caps, runBC + 1, ocaps, orunBC + 1, usedA > usedA0)
    id, rec, f = takeHead(tenant, cls)
  end
  if not id then
    writeHeld() -- what the recompute reads
    -- Not eligible (cap, burst, pause) or nothing left to run: recompute, which drops it. In an
    -- org, the tenant at its head leaves the org's set, unless the org itself is at its cap.
    if org and tenant and orgOk then
      rcall("ZREM", h.inner, h.imember)
      refreshTenant(own, bull, tenant, now)
    else
      rcall("ZREM", readyKeys[cls], h.member)
      refreshTenant(own, bull, h.flow, now)
    end
    forget()
  else
    movedBytes[tenant] = (movedBytes[tenant] or 0) + (tonumber(f[2] or "0") or 0)

    -- The slot lease and the counters derived from it. The dispatch sequence orders
    -- Class C runs for preemption (newest first) and is the WFQ tie-break below.
    -- The lease keeps what was charged (the org's too), for the release to settle.
    seq = seq + 1
    local tReady, tWfq = levelOf(own, pool, cls, org)
    local charge, inflight, chargeText = chargeFor(tWfq, tenant)
    local lease = tenant .. "|" .. cls .. "|" .. pool .. "|" .. nowText .. "|" .. chargeText
    local ocharge, oinflight, ochargeText
    if org then
      ocharge, oinflight, ochargeText = chargeFor(wfqKeys[cls], h.flow)
      lease = lease .. "|" .. org .. "|" .. ochargeText
      if cls == "A" then orunA = orunA + 1 else orunBC = orunBC + 1 end
      holdIncr(cellKey_running(own, h.flow), cls == "A" and "A" or "BC", 1)
      runOf[h.flow] = { orunA, orunBC }
    end
    holdMove(id, lease, at)
    local run = cellKey_running(own, tenant)
    used = used + 1
    if cls == "A" then
      runA = runA + 1
      holdIncr(run, "A", 1)
      usedA = usedA + 1
    else
      runBC = runBC + 1
      holdIncr(run, "BC", 1)
      if startsBurst then
        rcall("HSET", cellKey_tenantCaps(own, tenant), "burstStart", nowText)
        caps.burstStart = nowText
      end
      if cls == "C" then
        rcall("ZADD", KEYS[14], seq, id)
        usedC = usedC + 1
      end
    end
    runOf[tenant] = { runA, runBC }

    -- The record: dispatched now; Class C's run budget starts here (a deadline only shrinks).
    -- Its lease too, which the run's finish then notes its release by without reading the slots (includes/releaseSlot.lua).
    local fields = { "state", "dispatched", "dispatchedAt", nowText, "queue", execName, "pool", pool, "lease", lease }
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

    -- WFQ bookkeeping in this pool: the served tenant's virtual time (in its org's sets, for a
    -- tenant of an org; then the org's, in the pool's) grows by its charge / weight, and it gets a
    -- new "last served" member. Only the ready sets it was in can keep it (more load never makes
    -- it eligible elsewhere), each with its own score; other pools notice a reached cap when they
    -- pick it.
    local member = string.format("%014d:%s", seq, tenant)
    local nv = serve(tWfq, tenant, org and h.iv or h.v, charge, tonumber(caps.weight), inflight)
    local old = memberFor(caps, tenant, pool)
    holdSet(cellKey_tenantCaps(own, tenant), "m:" .. pool, member)
    caps["m:" .. pool] = member
    local eligBC, _, retryAt = bcEligible(caps, runBC, now)
    if retryAt then rcall("ZADD", KEYS[8], retryAt, tenant) end
    local queue = bullQueueKey(bull, ingressQueue(tenant, cls), "wait")
    -- A tenant of an org is re-seated in its org's sets; the pool's (counted in `cards`) hold the org.
    reseat(function(x) return (levelOf(own, pool, x, org)) end, old, member, org and h.imember or h.member, cls, nv,
      function()
        depths[queue] = depths[queue] or rcall("LLEN", queue)
        return depths[queue] > 0
      end, { A = aEligible(caps, runA), B = eligBC, C = eligBC }, seats, not org and cards or nil, heads, seatWrites)
    if org then
      local onv = serve(wfqKeys[cls], h.flow, h.v, ocharge, tonumber(ocaps.weight), oinflight)
      local omember = string.format("%014d:%s", seq, h.flow)
      holdSet(cellKey_tenantCaps(own, h.flow), "m:" .. pool, omember)
      ocaps["m:" .. pool] = omember
      local oBC = bcEligible(ocaps, orunBC, now)
      reseat(function(x) return readyKeys[x] end, h.member, omember, h.member, cls, onv,
        function() return nonEmpty(h.inner) end, { A = aEligible(ocaps, orunA), B = oBC, C = oBC }, seats, cards, heads, seatWrites)
    end
    moved = moved + 1
  end
end
writeHeld()

if moved > 0 then
  rcall("SET", KEYS[9], seq)
  rcall("DECRBY", KEYS[13], moved)
  for tenant, bytes in pairs(movedBytes) do queuedBytesBy(own, bytes, tenant, -1) end
  for _, d in ipairs({ { "total", used - used0 }, { "A", usedA - usedA0 }, { "C", usedC - usedC0 } }) do
    if d[2] > 0 then rcall("HINCRBY", KEYS[3], d[1], d[2]) end
  end
  -- One marker for the whole call wakes one blocked BullMQ worker, whose fetch wakes the next. A Class A
  -- move wakes one per live exec process (up to 3) at once: whichever fetches first takes it (it is at
  -- the head), so a process whose event loop is busy does not hold it up.
  addJobMarker(bull, execName, usedA > usedA0 and math.min(#live, 3) or 1)
end

-- 3. Preemption: Class A is ready but no slot is free for it.
local preempted = 0
if capacity > 0 and limit - used <= 0 and card("A") > 0 then preempted = preemptForA(headOf("A")) end

-- 4. The dispatcher's gauge of ignored preemptions, read here rather than by a round trip of its own
-- after every call (on a busy machine each one delays the next pass, and a woken Class A with it).
local ignored = 0
if ARGV[13] ~= nil and ARGV[13] ~= "" then ignored = rcall("ZCOUNT", KEYS[15], "-inf", now - tonumber(ARGV[13])) end

local full = 0
if prefetchOn and capacity > 0 and (limit - used <= 0 or ((limit - reserveA) - (used - usedA) <= 0 and (card("B") > 0 or card("C") > 0))) then
  full = 1
end
return { moved, expired, preempted, capacity, used, refreshed, parked, ignored, waiting, full }
