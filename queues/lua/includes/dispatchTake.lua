--[[
  Part of dispatch-18.lua, kept apart for its length: reading a class's head, taking one job from
  a tenant's ingress queue, and asking Class C to yield to Class A. Uses the script's locals (now,
  nowText, own, bull, pool, KEYS, ARGV, maxMoves, recordTtl, execName, readyKeys) and counts into its
  `expired` and `parked`.
]]
-- The first declared dependency of a workflow type (its record's `type`, else its job's name) that is
-- down, if any. Nothing to look up when no workflow type declares a dependency; each type and each
-- dependency looked up once per call.
local hasDeps = rcall("EXISTS", cellKey_workflowDeps(own)) == 1
local depsOf, isDown = {}, {}
local function downDependency(jobKey, wfType)
  if not hasDeps then return nil end
  local name = wfType or rcall("HGET", jobKey, "name") or ""
  if depsOf[name] == nil then depsOf[name] = rcall("HGET", cellKey_workflowDeps(own), name) or false end
  local deps = depsOf[name]
  if not deps then return nil end
  for dep in string.gmatch(deps, "[^,]+") do
    if isDown[dep] == nil then
      local mark = rcall("HGET", cellKey_healthOverride(own, dep), "state")
      isDown[dep] = mark == "down" or (mark ~= "healthy" and rcall("HGET", cellKey_health(own, dep), "state") == "down")
    end
    if isDown[dep] then return dep end
  end
  return nil
end

-- The head of class `cls`: the flow at the head of the pool's ready set and, when that flow is an
-- org, the tenant at the head of the org's own set (includes/flows.lua). A set's first members are read
-- as many as a call may move, up to 32, and kept for the call (`heads`, includes/headWindow.lua).
local headWindow = math.max(1, math.min(maxMoves, 32))
local function headOf(cls)
  local member, v = windowHead(heads, readyKeys[cls], headWindow, syncSeats)
  local h = { member = member, v = v, flow = string.match(member, "^%d+:(.+)$") }
  if string.sub(h.flow, 1, 1) == "@" then
    h.org = string.sub(h.flow, 2)
    h.inner = cellKey_orgReady(own, pool, cls, h.org)
    h.imember, h.iv = windowHead(heads, h.inner, headWindow, syncSeats)
    h.tenant = h.imember and string.match(h.imember, "^%d+:(.+)$")
  else
    h.tenant = h.flow
  end
  return h
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

-- Where a move goes in the exec queue (src/dispatch/policy/dispatchRule.ts execPlace): Class A at
-- the head (the right end of the wait list, which BullMQ workers take next, as BullMQ's own lifo),
-- before any Class C dispatched earlier; with a prefetch, a Class B move that leaves its tenant
-- (runBC after it) or org (orunBC) at its cap too, unless Class A moved in this call (`movedA`), so
-- its wait is not running time lost from the cap.
local function placeOf(cls, caps, runBC, ocaps, orunBC, movedA)
  if cls == "A" then return "head" end
  if prefetch <= 0 or cls ~= "B" or movedA then return "tail" end
  if not bcEligible(caps, runBC, now) or (ocaps ~= nil and not bcEligible(ocaps, orunBC, now)) then return "head" end
  return "tail"
end

-- Pops the oldest queued workflow of a tenant's class queue, failing the expired
-- ones and parking those whose dependency is down, and moves its job into the exec
-- queue (includes/moveJob.lua): the ingress hash already has the layout BullMQ's
-- addStandardJob writes (name, data, opts, timestamp, delay, priority), and both keys
-- share the cell's hash tag, so it is renamed rather than copied through Lua; its place
-- in the exec queue's wait list is the caller's (placeOf, includes/dispatchCache.lua).
-- Returns its id, record key and the record's {deadlineAt, bytes, runBudgetMs, type}.
local function takeHead(tenant, cls)
  local q = ingressQueue(tenant, cls)
  local waitKey = bullQueueKey(bull, q, "wait")
  for _ = 1, 100 do
    local id = rcall("RPOP", waitKey)
    if not id then
      depths[waitKey] = 0
      return nil
    end
    if depths[waitKey] then depths[waitKey] = depths[waitKey] - 1 end
    local rec = cellKey_workflow(own, id)
    local jobKey = bullJobKey(bull, q, id)
    local f = rcall("HMGET", rec, "deadlineAt", "bytes", "runBudgetMs", "type")
    local deadline = tonumber(f[1] or "")
    if deadline and deadline <= now then
      rcall("DEL", jobKey)
      failQueued(tenant, id, rec, f[2], "DEADLINE_EXCEEDED", "the deadline passed while the workflow was queued; it was never started")
    else
      local dep = downDependency(jobKey, f[4])
      if not dep then
        if moveJob(jobKey, bull, execName, id, nil, nil, "rename") then
          return id, rec, f
        end
        -- Its job hash is gone (never written so; nothing else deletes it): fail it, and keep
        -- every counter right, rather than stop the call half-way with its counters unwritten.
        failQueued(tenant, id, rec, f[2], "LOST", "its queued job was missing at dispatch")
      else
        moveJob(jobKey, bull, PARKED_QUEUE, id, now, "tail", "copy")
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


-- Preemption: Class A is ready (head `h`, as headOf reads it) but no slot is free for it: the
-- most recently dispatched Class C workflows are asked to yield, as many as Class A waits for.
local function preemptForA(h)
  local tenant = h.tenant
  if not tenant then return 0 end
  local caps = readCaps(own, tenant)
  local runA = readRunning(own, tenant)
  if not (caps and caps.paused ~= "1" and aEligible(caps, runA)) then return 0 end
  if h.org then
    local ocaps = readCaps(own, h.flow)
    if not (ocaps and aEligible(ocaps, (readRunning(own, h.flow)))) then return 0 end
  end
  local preempted = 0
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
    rcall("PUBLISH", ARGV[9], "preempt " .. victim)
    preempted = preempted + 1
    want = want - 1
  end
  return preempted
end
