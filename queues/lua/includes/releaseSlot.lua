--[[
  Releases a workflow's slot exactly once: HDEL on the slot lease decides, so
  a second call (a retry, the reconciler, a racing worker) changes nothing.
  Returns 1 when this call released it, 0 when it was not held; with 1, the tenant's
  retainSec as read here (false: none), for includes/endRecord.lua.

  Fair queuing: the run held its slot from dispatch to `now`; the tenant's
  virtual time in the pool and class is settled from the charge taken at
  dispatch to the slot-time really received (wfq.lua), and its score in that
  ready set follows (ZADD XX). Only when the release may have made it
  eligible again (it is at or just under a cap) is it marked dirty for a full
  recompute. A tenant of an org is settled in its org's sets, and the org's
  own slot count, virtual time and readiness follow the same way
  (includes/flows.lua). Mirrors PoolDispatch.release (src/dispatch/policy/dispatchRule.ts).
]]
--- @include "keys"
--- @include "wfq"
--- @include "flows"

-- One level's release: `name` (a tenant, or "@<org>") held a slot of class `cls` charged `charge`;
-- its count goes down, its virtual time is settled and its score follows in `ready`. True when the
-- release may have made it eligible again (at or just under a cap), or it is in no set: recompute.
-- Also returns its retainSec as read (false: none), so a workflow ending with its release reads it once.
local function releaseLevel(own, name, cls, pool, held, charge, ready, wfq)
  local caps = rcall("HMGET", cellKey_tenantCaps(own, name), "mca", "mcaUrgent", "weight", "m:" .. pool, "retainSec")
  local run = cellKey_running(own, name)
  local mayBecomeEligible
  if cls == "A" then
    mayBecomeEligible = rcall("HINCRBY", run, "A", "-1") >= tonumber(caps[2] or "0") - 1
  else
    mayBecomeEligible = rcall("HINCRBY", run, "BC", "-1") >= tonumber(caps[1] or "0") - 1
  end
  if caps[3] then
    local vs = wfqSettle(wfq, name, tonumber(charge) or 0, held, tonumber(caps[3]))
    if caps[4] then rcall("ZADD", ready, "XX", vs, caps[4]) end
  end
  return mayBecomeEligible or not caps[4], caps[5]
end

local function releaseSlot(own, id, now)
  local lease = rcall("HGET", cellKey_slots(own), id)
  if not lease then return 0 end
  rcall("HDEL", cellKey_slots(own), id)
  -- "tenant|class|pool|dispatchedAt|charge[|org|org charge]"; leases written before charges have none (0).
  local tenant, cls, pool, at, charge, org, ocharge =
    string.match(lease, "^([^|]+)|([ABC])|([^|]+)|(%d+)|?([^|]*)|?([^|]*)|?([^|]*)$")
  local used = cellKey_poolUsed(own, pool)
  rcall("HINCRBY", used, "total", "-1")
  if cls == "A" then
    rcall("HINCRBY", used, "A", "-1")
  elseif cls == "C" then
    rcall("HINCRBY", used, "C", "-1")
    rcall("ZREM", cellKey_runningC(own, pool), id)
    -- Only Class C runs are ever asked to yield.
    rcall("ZREM", cellKey_preempting(own, pool), id)
  end
  local held = now - tonumber(at)
  if held < 0 then held = 0 end
  local ready, wfq = levelOf(own, pool, cls, org)
  local may, retainSec = releaseLevel(own, tenant, cls, pool, held, charge, ready, wfq)
  if may then rcall("SADD", cellKey_dirty(own), tenant) end
  if org ~= "" then
    local flow = "@" .. org
    if releaseLevel(own, flow, cls, pool, held, ocharge, cellKey_ready(own, pool, cls), cellKey_wfq(own, pool, cls)) then
      rcall("SADD", cellKey_dirty(own), flow)
    end
  end
  rcall("ZADD", cellKey_wake(own), "0", "w")
  return 1, retainSec
end
