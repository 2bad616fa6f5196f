--[[
  What both tool-gate scripts share (acquirePermit-10.lua, releasePermit-8.lua).
  `g` names one tenant's gate keys: held, heldC, wait, waitC, waitExp; and, for a tenant of an
  org with an mctc (orgMctc > 0), orgHeld: the org's holders, every tenant's permits of the org
  (<cell>:gate:@<org>:held), so the org's bound holds across its tenants. A waiter held back by
  its org's bound rather than its tenant's is let in by its poll (src/runtime/toolGate.ts): another
  tenant's release wakes only that tenant's waiters.

  Lapsed leases and expired waits are dropped before any decision, so a dead
  holder's permit comes back and a dead waiter stops blocking the queue. A
  Class C holder is in both held and heldC with the same lease (acquired and
  renewed together), so heldC only has lapsed entries when held had some.

  wakeEligible publishes, on the cell's gate channel, the ids of the waiters
  that may take a permit now (eligibleWaiters in src/runtime/gateRule.ts):
  the first `free` A/B waiters, or, when no A/B caller waits, the first
  min(free, batch free) Class C waiters. Nothing is published when nobody may
  go. Each process wakes only its own waiters among the ids.
]]
local function expireHolders(g, now)
  local n = rcall("ZREMRANGEBYSCORE", g.held, "-inf", now)
  if n > 0 then rcall("ZREMRANGEBYSCORE", g.heldC, "-inf", now) end
  if g.orgMctc > 0 then n = n + rcall("ZREMRANGEBYSCORE", g.orgHeld, "-inf", now) end
  return n
end

-- Permits free now: the tenant's, and no more than its org's.
local function freePermits(g, mctc)
  local free = mctc - rcall("ZCARD", g.held)
  if g.orgMctc > 0 then free = math.min(free, g.orgMctc - rcall("ZCARD", g.orgHeld)) end
  return free
end

local function expireWaiters(g, now)
  local gone = rcall("ZRANGEBYSCORE", g.waitExp, "-inf", now)
  -- ZREM in chunks: unpack() of a long table would overflow Lua's C stack.
  for i = 1, #gone, 1000 do
    local last = math.min(i + 999, #gone)
    rcall("ZREM", g.wait, unpack(gone, i, last))
    rcall("ZREM", g.waitC, unpack(gone, i, last))
  end
  if #gone > 0 then rcall("ZREMRANGEBYSCORE", g.waitExp, "-inf", now) end
  return #gone
end

local function wakeEligible(g, mctc, mctcBatch, channel)
  local free = freePermits(g, mctc)
  if free <= 0 then return 0 end
  local ids = rcall("ZRANGE", g.wait, 0, free - 1)
  if #ids == 0 then
    local n = math.min(free, mctcBatch - rcall("ZCARD", g.heldC))
    if n > 0 then ids = rcall("ZRANGE", g.waitC, 0, n - 1) end
  end
  if #ids > 0 then rcall("PUBLISH", channel, table.concat(ids, " ")) end
  return #ids
end
