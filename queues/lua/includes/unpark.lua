--[[
  Takes one parked workflow out of the parked queue and its dependency's
  index: "requeue" puts it at the head of its ingress queue (it runs next,
  resuming after its last finished step); "fail" ends it failed with
  `code` and `message`. Returns "requeued" | "failed" | "skipped" (not parked).
]]
--- @include "queuedBytes"

local function unpark(own, bull, id, now, action, ttl, code, message)
  local rec = own .. ":wf:" .. id
  local r = rcall("HMGET", rec, "state", "tenant", "class", "parkedDep", "parkedAt")
  if r[4] then rcall("ZREM", own .. ":parked:" .. r[4], id) end
  if r[1] ~= "parked" then return "skipped" end
  local parkedKey = bull .. ":parked:" .. id
  rcall("LREM", bull .. ":parked:wait", 1, id)
  if action == "fail" then
    rcall("DEL", parkedKey, parkedKey .. ":logs")
    rcall("HSET", rec, "state", "failed", "finishedAt", now, "errorCode", code, "errorMessage", message)
    rcall("EXPIRE", rec, ttl)
    rcall("EXPIRE", rec .. ":steps", ttl)
    return "failed", r[5]
  end
  local q = "ingress." .. r[2] .. "." .. r[3]
  local job = rcall("HMGET", parkedKey, "name", "data")
  rcall("HMSET", bull .. ":" .. q .. ":" .. id, "name", job[1], "data", job[2], "opts", "{}",
    "timestamp", now, "delay", 0, "priority", 0)
  rcall("RPUSH", bull .. ":" .. q .. ":wait", id)
  rcall("DEL", parkedKey, parkedKey .. ":logs")
  rcall("INCR", own .. ":queued")
  queuedBytes(own, rec, r[2], 1)
  rcall("SADD", own .. ":queues", q)
  rcall("HSET", rec, "state", "queued", "queue", q, "recoveredAt", now)
  rcall("SADD", own .. ":dirty", r[2])
  rcall("ZADD", own .. ":wake", 0, "w")
  return "requeued", r[5]
end
