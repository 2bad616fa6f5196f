--[[
  Recomputes one tenant's membership in every ready set of its pools: it is
  in pool P's ready set for class X exactly when it has class X queued, is not
  paused, and is under its cap for X. Called for tenants marked dirty
  (admission, slot release, policy sync) and when a cooldown timer is due.
  Entering a ready set starts the tenant at max(its virtual time, the
  frontier less its runs in flight): no credit banked while idle, one round
  of lag kept across a cap (wfq.lua). A tenant of an org is in its org's
  ready sets, and the org ("@<org>", refreshed after it) is in the pool's
  exactly when one of its tenants is ready there and the org is under its
  cap for the class (includes/flows.lua). Mirrors PoolDispatch.refresh
  (src/dispatch/policy/dispatchRule.ts).
]]
--- @include "keys"
--- @include "tenantCaps"
--- @include "wfq"
--- @include "flows"

local REFRESH_CLASSES = { "A", "B", "C" }

-- Puts `member` (flow `name`) in `ready` when it may run there, entering at max(v, frontier); else takes it
-- out. With `batch`, an entry waits in batch.entries for enterAll.
local function placeIn(ready, wfq, name, member, weight, may, batch)
  if not may then
    rcall("ZREM", ready, member)
  elseif not rcall("ZSCORE", ready, member) then
    if batch then
      batch.entries[#batch.entries + 1] = { ready = ready, wfq = wfq, name = name, member = member, weight = weight }
    else
      rcall("ZADD", ready, wfqNum(wfqEnter(wfq, wfqLowest(ready), name, weight)), member)
    end
  end
end

-- Enters the flows a batch of refreshes left waiting, each against its set's lowest v as it was before any
-- of them entered: several entering together do not set each other's frontier, whatever their order.
local function enterAll(batch)
  local lowest, read = {}, {}
  for _, e in ipairs(batch.entries) do
    if not read[e.ready] then lowest[e.ready], read[e.ready] = wfqLowest(e.ready), true end
  end
  for _, e in ipairs(batch.entries) do
    rcall("ZADD", e.ready, wfqNum(wfqEnter(e.wfq, lowest[e.ready], e.name, e.weight)), e.member)
  end
  batch.entries = {}
end

-- An org's place in the pool's ready sets: where one of its tenants is ready and it is under its cap.
local function refreshOrg(own, org, now, batch)
  local caps = readCaps(own, org)
  if not caps then return end
  local runA, runBC = readRunning(own, org)
  local eligBC = bcEligible(caps, runBC, now)
  local eligible = { A = aEligible(caps, runA), B = eligBC, C = eligBC }
  for _, pool in ipairs(splitPools(caps.pools)) do
    local member = memberFor(caps, org, pool)
    for _, cls in ipairs(REFRESH_CLASSES) do
      local may = eligible[cls] and rcall("EXISTS", cellKey_orgReady(own, pool, cls, string.sub(org, 2))) == 1
      placeIn(cellKey_ready(own, pool, cls), cellKey_wfq(own, pool, cls), org, member, tonumber(caps.weight), may, batch)
    end
  end
end

-- `batch` (optional, { orgs = {}, entries = {} }): the tenant's entries wait for enterAll, and its old and
-- new org are noted in batch.orgs ("@<org>" = true) for the caller to place after all its tenants.
local function refreshTenant(own, bull, tenant, now, batch)
  if string.sub(tenant, 1, 1) == "@" then return refreshOrg(own, tenant, now, batch) end
  local function place(org)
    if batch then batch.orgs["@" .. org] = true else refreshOrg(own, "@" .. org, now) end
  end
  local caps = readCaps(own, tenant)
  if not caps then return end
  local org = caps.org or ""
  local was = caps.inOrg or ""
  if was ~= org then
    -- It joined, left or changed its org: out of the sets it was in, then in its new ones below.
    for _, pool in ipairs(splitPools(caps.pools)) do
      for _, cls in ipairs(REFRESH_CLASSES) do rcall("ZREM", (levelOf(own, pool, cls, was)), memberFor(caps, tenant, pool)) end
    end
    rcall("HSET", cellKey_tenantCaps(own, tenant), "inOrg", org)
    if was ~= "" then place(was) end
  end
  local runA, runBC = readRunning(own, tenant)
  local paused = caps.paused == "1"
  local eligA = (not paused) and aEligible(caps, runA)
  local eligBC, _, retryAt = bcEligible(caps, runBC, now)
  eligBC = eligBC and not paused
  if retryAt and not paused then
    rcall("ZADD", cellKey_timers(own), retryAt, tenant)
  end
  local backlog = {}
  local eligible = { A = eligA, B = eligBC, C = eligBC }
  for _, cls in ipairs(REFRESH_CLASSES) do
    backlog[cls] = rcall("LLEN", bullQueueKey(bull, ingressQueue(tenant, cls), "wait")) > 0
  end
  for _, pool in ipairs(splitPools(caps.pools)) do
    local member = memberFor(caps, tenant, pool)
    for _, cls in ipairs(REFRESH_CLASSES) do
      local ready, wfq = levelOf(own, pool, cls, org)
      placeIn(ready, wfq, tenant, member, tonumber(caps.weight), backlog[cls] and eligible[cls], batch)
    end
  end
  if org ~= "" then place(org) end
end
