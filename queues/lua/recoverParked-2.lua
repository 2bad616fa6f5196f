--[[
  The recovery worker's wave for one dependency: takes up to ARGV[4] of its
  parked workflows, oldest first, and puts each back at the head of its
  ingress queue (it runs next, resuming after its last finished step); one
  whose deadline passed while parked fails DEADLINE_EXCEEDED instead. With
  ARGV[6] = 1 it only fails the expired ones (the dependency is still
  unhealthy) and leaves the rest parked. ZREM decides, so two recovery
  workers never requeue one workflow twice.

  KEYS[1] parked index of the dependency (id -> parkedAt)   KEYS[2] cell queued counter
  ARGV[1] cell own-key prefix   ARGV[2] cell BullMQ prefix   ARGV[3] now
  ARGV[4] how many to take   ARGV[5] record TTL s   ARGV[6] 1 = expire only
  ARGV[7] the dependency

  Returns {requeued, expired}
]]
local rcall = redis.call
local own, bull, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local expireOnly = ARGV[6] == "1"
local requeued, expired = 0, 0
for _, id in ipairs(rcall("ZRANGE", KEYS[1], 0, tonumber(ARGV[4]) - 1)) do
  local rec = own .. ":wf:" .. id
  local r = rcall("HMGET", rec, "state", "tenant", "class", "deadlineAt")
  local parkedKey = bull .. ":parked:" .. id
  if r[1] ~= "parked" then
    rcall("ZREM", KEYS[1], id)
  elseif r[4] and tonumber(r[4]) <= now then
    rcall("ZREM", KEYS[1], id)
    rcall("LREM", bull .. ":parked:wait", 1, id)
    rcall("DEL", parkedKey, parkedKey .. ":logs")
    rcall("HSET", rec, "state", "failed", "finishedAt", now, "errorCode", "DEADLINE_EXCEEDED",
      "errorMessage", "the deadline passed while the workflow was parked waiting for " .. ARGV[7] .. " to recover")
    rcall("EXPIRE", rec, tonumber(ARGV[5]))
    rcall("EXPIRE", rec .. ":steps", tonumber(ARGV[5]))
    expired = expired + 1
  elseif not expireOnly then
    rcall("ZREM", KEYS[1], id)
    local q = "ingress." .. r[2] .. "." .. r[3]
    local job = rcall("HMGET", parkedKey, "name", "data")
    rcall("HMSET", bull .. ":" .. q .. ":" .. id, "name", job[1], "data", job[2], "opts", "{}",
      "timestamp", now, "delay", 0, "priority", 0)
    rcall("RPUSH", bull .. ":" .. q .. ":wait", id)
    rcall("LREM", bull .. ":parked:wait", 1, id)
    rcall("DEL", parkedKey, parkedKey .. ":logs")
    rcall("INCR", KEYS[2])
    rcall("SADD", own .. ":queues", q)
    rcall("HSET", rec, "state", "queued", "queue", q, "recoveredAt", now)
    rcall("SADD", own .. ":dirty", r[2])
    requeued = requeued + 1
  end
end
if requeued > 0 then rcall("ZADD", own .. ":wake", 0, "w") end
return { requeued, expired }
