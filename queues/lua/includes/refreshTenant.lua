--[[
  Recomputes one tenant's membership in every ready set of its pools: it is
  in pool P's ready set for class X exactly when it has class X queued, is not
  paused, and is under its cap for X. Called for tenants marked dirty
  (admission, slot release, policy sync) and when a cooldown timer is due.
  Entering a ready set starts the tenant at max(its virtual time, the
  frontier less its runs in flight): no credit banked while idle, one round
  of lag kept across a cap (wfq.lua). Mirrors PoolDispatch.refresh
  (src/dispatch/policy/dispatchRule.ts).
]]
--- @include "keys"
--- @include "tenantCaps"
--- @include "wfq"

local function refreshTenant(own, bull, tenant, now)
  local caps = readCaps(own, tenant)
  if not caps then return end
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
  for _, cls in ipairs({ "A", "B", "C" }) do
    backlog[cls] = rcall("LLEN", bullQueueKey(bull, ingressQueue(tenant, cls), "wait")) > 0
  end
  for _, pool in ipairs(splitPools(caps.pools)) do
    local member = memberFor(caps, tenant, pool)
    for _, cls in ipairs({ "A", "B", "C" }) do
      local ready = cellKey_ready(own, pool, cls)
      if backlog[cls] and eligible[cls] then
        if not rcall("ZSCORE", ready, member) then
          rcall("ZADD", ready, wfqNum(wfqEnter(cellKey_wfq(own, pool, cls), ready, tenant, tonumber(caps.weight))), member)
        end
      else
        rcall("ZREM", ready, member)
      end
    end
  end
end
