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

-- Puts `member` (flow `name`) in `ready` when it may run there, entering at max(v, frontier); else takes it out.
local function placeIn(ready, wfq, name, member, weight, may)
  if not may then
    rcall("ZREM", ready, member)
  elseif not rcall("ZSCORE", ready, member) then
    rcall("ZADD", ready, wfqNum(wfqEnter(wfq, ready, name, weight)), member)
  end
end

-- An org's place in the pool's ready sets: where one of its tenants is ready and it is under its cap.
local function refreshOrg(own, org, now)
  local caps = readCaps(own, org)
  if not caps then return end
  local runA, runBC = readRunning(own, org)
  local eligBC = bcEligible(caps, runBC, now)
  local eligible = { A = aEligible(caps, runA), B = eligBC, C = eligBC }
  for _, pool in ipairs(splitPools(caps.pools)) do
    local member = memberFor(caps, org, pool)
    for _, cls in ipairs(REFRESH_CLASSES) do
      local may = eligible[cls] and rcall("EXISTS", cellKey_orgReady(own, pool, cls, string.sub(org, 2))) == 1
      placeIn(cellKey_ready(own, pool, cls), cellKey_wfq(own, pool, cls), org, member, tonumber(caps.weight), may)
    end
  end
end

-- `orgs` (optional): instead of placing the tenant's old and new org at once, note them there ("@<org>"
-- = true) for the caller to place after all the tenants it refreshes.
local function refreshTenant(own, bull, tenant, now, orgs)
  if string.sub(tenant, 1, 1) == "@" then return refreshOrg(own, tenant, now) end
  local function place(org)
    if orgs then orgs["@" .. org] = true else refreshOrg(own, "@" .. org, now) end
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
      placeIn(ready, wfq, tenant, member, tonumber(caps.weight), backlog[cls] and eligible[cls])
    end
  end
  if org ~= "" then place(org) end
end
