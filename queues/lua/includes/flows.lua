--[[
  Organisations: two-level fair queuing and org caps (docs/concepts.md "Organisations").

  A pool's ready set for a class holds flows: each tenant without an org, as before
  ("<seq>:<tenant>"), and each org ("<seq>:@<org>"). An org's tenants have a ready set of their
  own per pool and class (pool:<p>:oready:<cls>:<org>) and virtual times among themselves
  (pool:<p>:owfq:<cls>:<org>). So orgs (and lone tenants) share the pool by weight, and an org's
  tenants share what the org receives by their weights. An org's caps are tp:@<org> (weight mca
  mcaUrgent pools, written by src/dispatch/tenantSync.ts; burstMca = mca, no burst) and its
  slots held run:@<org> (A, BC), so readCaps, readRunning, aEligible and bcEligible read an org
  as a tenant: an org in a ready set is under its cap for that class, like a tenant.
  Mirrors src/dispatch/policy/dispatchRule.ts (PoolDispatch).
]]
--- @include "keys"
--- @include "headWindow"

-- The ready set and WFQ hash a tenant is in, in `pool` and `cls`: its org's, or the pool's.
local function levelOf(own, pool, cls, org)
  if org and org ~= "" then return cellKey_orgReady(own, pool, cls, org), cellKey_orgWfq(own, pool, cls, org) end
  return cellKey_ready(own, pool, cls), cellKey_wfq(own, pool, cls)
end

-- Re-seats a flow served in class `cls`: its member `old` becomes `member` in each class's set
-- (setOf(x)), keeping its score there, with `nv` (its new virtual time) in `cls` while
-- hasBacklog() says it still has work of that class; only where `eligible` says it may run.
-- `head`, `v`: the set's head as read before serving, so its own score needs no read.
-- `seats`: scores of members (false: not a member) by set key and member, as far as the caller's
-- script has read or written them (a cache for one script call); kept right.
-- `sizes` (optional): the sets' sizes by class as the caller knows them (nil: not known), kept right.
-- `heads`: the sets' head windows (includes/headWindow.lua), kept right.
-- `writes`: where the ZREMs and ZADDs go ({rem(key, member), add(key, score, member)}: the dispatch
-- holds them back, includes/dispatchCache.lua). The sizes, seats and windows follow at once: a member
-- with a score known is in its set, and a new member is new to it.
local function reseat(setOf, old, member, head, cls, nv, hasBacklog, eligible, seats, sizes, heads, writes)
  for _, x in ipairs({ "A", "B", "C" }) do
    local key = setOf(x)
    local was, is = key .. "\0" .. old, key .. "\0" .. member
    local score = x == cls and old == head
    if not score then
      -- An empty set holds no one; else its window may know.
      if seats[was] == nil and sizes and sizes[x] == 0 then seats[was] = false end
      if seats[was] == nil then seats[was] = windowScore(heads, key, old) end
      if seats[was] == nil then seats[was] = rcall("ZSCORE", key, old) end
      score = seats[was]
    end
    local backlog = score ~= false
    local delta = 0
    if backlog then
      writes.rem(key, old)
      delta = -1
      windowRemoved(heads, key, old)
    end
    seats[was] = false
    if x == cls then
      backlog = hasBacklog()
      score = wfqNum(nv)
    end
    if backlog and eligible[x] then
      writes.add(key, score, member)
      delta = delta + 1
      windowAdded(heads, key, member, score)
      seats[is] = score
    else
      seats[is] = false
    end
    if sizes and sizes[x] then sizes[x] = sizes[x] + delta end
  end
end
