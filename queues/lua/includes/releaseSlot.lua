--[[
  Releases a workflow's slot exactly once: HDEL on the slot lease decides, so
  a second call (a retry, the reconciler, a racing worker) changes nothing.
  Returns 1 when this call released it, 0 when it was not held.
]]
local function releaseSlot(own, id)
  local lease = rcall("HGET", own .. ":slots", id)
  if not lease then return 0 end
  rcall("HDEL", own .. ":slots", id)
  local tenant, cls, pool = string.match(lease, "^([^|]+)|([ABC])|([^|]+)|")
  local used = own .. ":pool:" .. pool .. ":used"
  local run = own .. ":run:" .. tenant
  rcall("HINCRBY", used, "total", -1)
  rcall("HINCRBY", run, "p:" .. pool, -1)
  if cls == "A" then
    rcall("HINCRBY", used, "A", -1)
    rcall("HINCRBY", run, "A", -1)
  else
    rcall("HINCRBY", run, "BC", -1)
    if cls == "C" then
      rcall("HINCRBY", used, "C", -1)
      rcall("ZREM", own .. ":pool:" .. pool .. ":runC", id)
    end
  end
  rcall("ZREM", own .. ":pool:" .. pool .. ":preempting", id)
  rcall("SADD", own .. ":dirty", tenant)
  rcall("ZADD", own .. ":wake", 0, "w")
  return 1
end
