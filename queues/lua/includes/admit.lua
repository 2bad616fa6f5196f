--[[
  Admits workflows into their tenants' ingress queues (admitWorkflows-4.lua, up to ADMIT_CALL_ITEMS
  per call: queues/lua/admitWorkflow.ts), each atomically with its idempotency key, the monthly
  budgets, the safety valves and its workflow record, and each seeing the ones before it.

  Idempotency (Stripe's convention): the key's value is "<id> <request hash>",
  the hash of the canonical request (type, class, payload, deadline). The same
  key with the same request names the first workflow ("duplicate"); with a
  different request it is refused ("conflict"), never silently answered with
  a workflow that is not what was asked for. A value without a hash (written
  before hashes were kept) still replays.

  The job is written exactly as BullMQ 6.7's addStandardJob writes a job with a
  custom id (HMSET name data opts timestamp delay priority; LPUSH wait), so
  BullMQ's Queue.getJob / getState / Bull Board read it as their own. No marker
  is added: nothing consumes ingress queues with a BullMQ Worker.

  What a call shares between its workflows is read once and written once: the cell's queued count
  and each tenant's queued bytes (read at their first use, added to as workflows are admitted,
  written when the call ends: admitEnd), and each pair of month spend keys (spend does not change
  during a call). A call is one script, so nothing sees the counts in between.
]]
--- @include "keys"
--- @include "trail"
--- @include "deadlineIndex"

-- A call's shared state: the cell's own-key and BullMQ prefixes and queued counter key, and what it read.
local function admitCall(own, bull, queuedKey)
  return { own = own, bull = bull, queuedKey = queuedKey, queued = tonumber(rcall("GET", queuedKey) or "0"), admitted = 0,
    bytes = {}, spent = {} }
end

-- One workflow `a` (admitWorkflows-4.lua lists its fields); keys `k`: the cell's queues set, dirty set
-- and wake marker. Returns {kind, value} as the script answers it for this workflow.
local function admitOne(s, k, a)
  local own, id, tenant = s.own, a.id, a.tenant
  local idem = a.idemHash ~= "" and cellKey_idempotency(own, tenant, a.idemHash) or nil
  if idem then
    local existing = rcall("GET", idem)
    if existing then
      local first, hash = string.match(existing, "^(%S+) ?(%S*)$")
      if first and rcall("EXISTS", cellKey_workflow(own, first)) == 1 then
        if hash ~= "" and hash ~= a.requestHash then return { "conflict", first } end
        return { "duplicate", first }
      end
    end
  end

  -- A spent month refuses new work; a request the idempotency key already admitted is still answered (above).
  -- Read here rather than by the caller beforehand: exact against concurrent spend, and no round trip of its own.
  local pair = a.spendKey .. "\n" .. a.orgSpendKey
  local spent = s.spent[pair]
  if not spent then
    spent = rcall("MGET", a.spendKey, a.orgSpendKey)
    s.spent[pair] = spent
  end
  if tonumber(spent[1] or "0") >= tonumber(a.budget) then return { "budget_exceeded", "tenant" } end
  local orgBudget = tonumber(a.orgBudget)
  if orgBudget >= 0 and tonumber(spent[2] or "0") >= orgBudget then return { "budget_exceeded", "org" } end

  local bytes = tonumber(a.bytes)
  local maxDepth = tonumber(a.maxQueueDepth)
  local queue = ingressQueue(tenant, a.cls)
  -- The tenant's queued workflows are among the cell's: while the cell holds fewer than the tenant's
  -- maxQueueDepth, so does the tenant, and its queues need not be counted.
  if s.queued >= maxDepth then
    local depth = 0
    for _, c in ipairs({ "A", "B", "C" }) do depth = depth + rcall("LLEN", bullQueueKey(s.bull, ingressQueue(tenant, c), "wait")) end
    if depth >= maxDepth then return { "tenant_full", tostring(depth) } end
  end

  local tb = s.bytes[tenant]
  if not tb then
    tb = { queued = tonumber(rcall("GET", cellKey_queuedBytes(own, tenant)) or "0"), added = 0 }
    s.bytes[tenant] = tb
  end
  if tb.queued + bytes > tonumber(a.maxQueueBytes) then return { "tenant_bytes_full", tostring(tb.queued) } end

  if s.queued >= tonumber(a.maxQueued) then return { "cell_full", tostring(s.queued) } end

  rcall("HMSET", bullJobKey(s.bull, queue, id), "name", a.type, "data", a.data, "opts", "{}",
        "timestamp", a.now, "delay", 0, "priority", 0)
  -- Only a queue going from empty to not empty can change the tenant's readiness.
  local became = rcall("LPUSH", bullQueueKey(s.bull, queue, "wait"), id) == 1

  local fields = cjson.decode(a.record)
  local flat = {}
  for f, v in pairs(fields) do
    flat[#flat + 1] = f
    flat[#flat + 1] = v
  end
  if bytes > 0 then
    flat[#flat + 1] = "bytes"
    flat[#flat + 1] = a.bytes
  end
  rcall("HSET", cellKey_workflow(own, id), unpack(flat))
  -- Indexed so a workflow whose tenant cannot be dispatched still fails on time.
  if fields.deadlineAt then indexDeadline(own, id, tonumber(fields.deadlineAt)) end

  if idem then rcall("SET", idem, id .. " " .. a.requestHash, "EX", tonumber(a.idemTtl)) end
  -- The run list: one entry per workflow, its ID Redis's time of the admission, as the trail's (the
  -- dispatcher trims it once a minute, not each admission).
  rcall("XADD", cellKey_runList(own, tenant), "*", "w", id)
  s.queued, s.admitted = s.queued + 1, s.admitted + 1
  tb.queued, tb.added = tb.queued + bytes, tb.added + bytes
  -- A queue that already held a job is already in the set (every path that pushes adds it).
  if became then
    rcall("SADD", k.queues, queue)
    rcall("SADD", k.dirty, tenant)
  end
  trail(own, tenant, id, "admitted", a.by)
  -- Class A is always worth a look: more urgent demand may call for preemption.
  if became or a.cls == "A" then rcall("ZADD", k.wake, 0, "w") end
  return { "ok", id }
end

-- Writes what the call's admissions added to the cell's queued count and the tenants' queued bytes.
local function admitEnd(s)
  if s.admitted > 0 then rcall("INCRBY", s.queuedKey, s.admitted) end
  for tenant, tb in pairs(s.bytes) do
    if tb.added > 0 then rcall("INCRBY", cellKey_queuedBytes(s.own, tenant), tb.added) end
  end
end
