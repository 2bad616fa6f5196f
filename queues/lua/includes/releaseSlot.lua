--[[
  Releases a workflow's slot exactly once: HDEL on the slot lease decides, so
  a second call (a retry, the reconciler, a racing worker) changes nothing.
  Returns 1 when this call released it, 0 when it was not held.

  Readiness: the tenant's score in the pool's ready sets it is in drops at
  once (ZADD XX). Only when the release may have made it eligible again (it
  is at or just under a cap) is it marked dirty for a full recompute.
]]
local function releaseSlot(own, id)
  local lease = rcall("HGET", own .. ":slots", id)
  if not lease then return 0 end
  rcall("HDEL", own .. ":slots", id)
  local tenant, cls, pool = string.match(lease, "^([^|]+)|([ABC])|([^|]+)|")
  local used = own .. ":pool:" .. pool .. ":used"
  local run = own .. ":run:" .. tenant
  local caps = rcall("HMGET", own .. ":tp:" .. tenant, "mca", "mcaUrgent", "weight", "m:" .. pool)
  rcall("HINCRBY", used, "total", -1)
  local held = rcall("HINCRBY", run, "p:" .. pool, -1)
  local mayBecomeEligible
  if cls == "A" then
    rcall("HINCRBY", used, "A", -1)
    mayBecomeEligible = rcall("HINCRBY", run, "A", -1) >= tonumber(caps[2] or "0") - 1
  else
    mayBecomeEligible = rcall("HINCRBY", run, "BC", -1) >= tonumber(caps[1] or "0") - 1
    if cls == "C" then
      rcall("HINCRBY", used, "C", -1)
      rcall("ZREM", own .. ":pool:" .. pool .. ":runC", id)
    end
  end
  rcall("ZREM", own .. ":pool:" .. pool .. ":preempting", id)
  if caps[4] then
    local score = held / tonumber(caps[3])
    for _, x in ipairs({ "A", "B", "C" }) do
      rcall("ZADD", own .. ":pool:" .. pool .. ":ready:" .. x, "XX", score, caps[4])
    end
  end
  if mayBecomeEligible or not caps[4] then rcall("SADD", own .. ":dirty", tenant) end
  rcall("ZADD", own .. ":wake", 0, "w")
  return 1
end
