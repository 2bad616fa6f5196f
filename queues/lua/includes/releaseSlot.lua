--[[
  Releases a workflow's slot exactly once: HDEL on the slot lease decides, so
  a second call (a retry, the reconciler, a racing worker) changes nothing.
  Returns 1 when this call released it, 0 when it was not held.

  Fair queuing: the run held its slot from dispatch to `now`; the tenant's
  virtual time in the pool and class is settled from the charge taken at
  dispatch to the slot-time really received (wfq.lua), and its score in that
  ready set follows (ZADD XX). Only when the release may have made it
  eligible again (it is at or just under a cap) is it marked dirty for a full
  recompute. Mirrors PoolDispatch.release (src/dispatch/policy/dispatchRule.ts).
]]
--- @include "keys"
--- @include "wfq"

local function releaseSlot(own, id, now)
  local lease = rcall("HGET", cellKey_slots(own), id)
  if not lease then return 0 end
  rcall("HDEL", cellKey_slots(own), id)
  -- "tenant|class|pool|dispatchedAt|charge"; leases written before charges have none (0).
  local tenant, cls, pool, at, charge = string.match(lease, "^([^|]+)|([ABC])|([^|]+)|(%d+)|?([^|]*)$")
  local used = cellKey_poolUsed(own, pool)
  local run = cellKey_running(own, tenant)
  local caps = rcall("HMGET", cellKey_tenantCaps(own, tenant), "mca", "mcaUrgent", "weight", "m:" .. pool)
  rcall("HINCRBY", used, "total", -1)
  rcall("HINCRBY", run, "p:" .. pool, -1)
  local mayBecomeEligible
  if cls == "A" then
    rcall("HINCRBY", used, "A", -1)
    mayBecomeEligible = rcall("HINCRBY", run, "A", -1) >= tonumber(caps[2] or "0") - 1
  else
    mayBecomeEligible = rcall("HINCRBY", run, "BC", -1) >= tonumber(caps[1] or "0") - 1
    if cls == "C" then
      rcall("HINCRBY", used, "C", -1)
      rcall("ZREM", cellKey_runningC(own, pool), id)
      -- Only Class C runs are ever asked to yield.
      rcall("ZREM", cellKey_preempting(own, pool), id)
    end
  end
  if caps[3] then
    local held = now - tonumber(at)
    if held < 0 then held = 0 end
    local v = wfqSettle(cellKey_wfq(own, pool, cls), tenant, tonumber(charge) or 0, held, tonumber(caps[3]))
    if caps[4] then rcall("ZADD", cellKey_ready(own, pool, cls), "XX", wfqNum(v), caps[4]) end
  end
  if mayBecomeEligible or not caps[4] then rcall("SADD", cellKey_dirty(own), tenant) end
  rcall("ZADD", cellKey_wake(own), 0, "w")
  return 1
end
