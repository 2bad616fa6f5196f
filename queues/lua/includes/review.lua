--[[
  Human review queues (ctx.review; docs/concepts.md "Human review").

  An open review item is the hash <cell>:wf:<id>:review. While it waits it sits in its
  tenant's queue of its reviewer pool and class (rvq, oldest first), and the tenant sits in
  the pool's set for that class (rvt), scored by virtual time. A claim takes the tenant with
  the least virtual time and advances it by 1 / its weight, so tenants share a pool's
  reviewers by weight whatever their backlog: one tenant's 5,000 items do not bury another's
  5. A tenant enters the set at the pool's virtual now (rvv), so an idle tenant banks no
  credit. Classes are served A, then B, then C. A claimed item leaves its queue for the
  pool's leases (rvl) until it is decided, or its lease lapses and it goes back in its queue
  (ahead of newer items: it keeps its createdAt).
]]
--- @include "keys"

local REVIEW_CLASSES = { "A", "B", "C" }

-- Puts item `id` in line in `pool` (it waits there until claimed).
local function reviewEnqueue(own, pool, cls, tenant, id, at)
  rcall("ZADD", cellKey_reviewQueue(own, pool, cls, tenant), at, id)
  local vnow = rcall("HGET", cellKey_reviewClock(own, pool), cls) or "0"
  rcall("ZADD", cellKey_reviewTenants(own, pool, cls), "NX", vnow, tenant)
  rcall("SADD", cellKey_reviewPools(own), pool)
end

-- Takes item `id` out of its queue (waiting) or the pool's leases (claimed).
local function reviewDequeue(own, id, pool, cls, tenant)
  local q = cellKey_reviewQueue(own, pool, cls, tenant)
  if rcall("ZREM", q, id) == 1 and rcall("EXISTS", q) == 0 then
    rcall("ZREM", cellKey_reviewTenants(own, pool, cls), tenant)
  end
  rcall("ZREM", cellKey_reviewLeases(own, pool), id)
end

-- The next waiting item of `pool` by the fair rule (see the header), taken out of its queue; nil when none waits.
local function reviewTake(own, pool)
  for _, cls in ipairs(REVIEW_CLASSES) do
    local set = cellKey_reviewTenants(own, pool, cls)
    while true do
      local head = rcall("ZRANGE", set, 0, 0, "WITHSCORES")
      if not head[1] then break end
      local tenant = head[1]
      local q = cellKey_reviewQueue(own, pool, cls, tenant)
      local popped = rcall("ZPOPMIN", q)
      rcall("HSET", cellKey_reviewClock(own, pool), cls, head[2])
      if rcall("EXISTS", q) == 0 then
        rcall("ZREM", set, tenant)
      else
        local w = tonumber(rcall("HGET", cellKey_tenantCaps(own, tenant), "weight") or "") or 1
        rcall("ZADD", set, tonumber(head[2]) + 1 / w, tenant)
      end
      if popped[1] then return popped[1] end
    end
  end
  return nil
end

-- Hands a waiting or claimed item to pool `to` (an escalation): unclaimed, at its place by createdAt.
local function reviewEscalate(own, id, it, to, note)
  reviewDequeue(own, id, it.pool, it.cls, it.tenant)
  local item = cellKey_review(own, id)
  rcall("HDEL", item, "claimant", "leaseUntil")
  rcall("HSET", item, "state", "pending", "pool", to)
  if note then rcall("HSET", item, "note", note) end
  rcall("HINCRBY", item, "escalations", 1)
  reviewEnqueue(own, to, it.cls, it.tenant, id, it.createdAt)
end

-- The item's fields the scripts use, by name; nil when there is no open item.
local function reviewItem(own, id)
  local r = rcall("HMGET", cellKey_review(own, id), "tenant", "cls", "pool", "step", "state", "claimant", "leaseUntil",
    "createdAt", "dueWhy", "onTimeout", "escalateTo", "deadlineAt")
  if not r[1] then return nil end
  return { tenant = r[1], cls = r[2], pool = r[3], step = r[4], state = r[5], claimant = r[6],
    leaseUntil = tonumber(r[7] or "") or 0, createdAt = r[8], dueWhy = r[9], onTimeout = r[10],
    escalateTo = r[11] ~= "" and r[11] or nil, deadlineAt = tonumber(r[12] or "") or 0 }
end

-- Closes item `id` for good (decided, timed out, its workflow cancelled).
local function reviewClose(own, id, it)
  reviewDequeue(own, id, it.pool, it.cls, it.tenant)
  rcall("ZREM", cellKey_reviewDue(own), id)
  rcall("DEL", cellKey_review(own, id))
end
