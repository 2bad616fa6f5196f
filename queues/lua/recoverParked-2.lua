--[[
  The recovery worker's wave for one dependency: takes up to ARGV[4] of its
  parked workflows, oldest parked first, and puts each back in its ingress
  queue in line by admission time (includes/unpark.lua: ahead of what was
  admitted after it, behind what was admitted before); one whose deadline
  passed while parked fails DEADLINE_EXCEEDED instead. With ARGV[6] = 1 it
  only fails the expired ones (the dependency is still unhealthy) and leaves
  the rest parked. The index ZREM inside unpark decides, so two recovery
  workers never requeue one workflow twice.

  KEYS[1] parked index of the dependency (id -> parkedAt)   KEYS[2] cell queued counter
  ARGV[1] cell own-key prefix   ARGV[2] cell BullMQ prefix   ARGV[3] now
  ARGV[4] how many to take   ARGV[5] record TTL s   ARGV[6] 1 = expire only
  ARGV[7] the dependency

  Returns {requeued, expired, ms parked of each requeued...}
]]
local rcall = redis.call
--- @include "keys"
--- @include "unpark"
local own, bull, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local requeued, expired = 0, 0
local durations = {}
local inLine = {}
for _, id in ipairs(rcall("ZRANGE", KEYS[1], 0, tonumber(ARGV[4]) - 1)) do
  local deadline = tonumber(rcall("HGET", cellKey_workflow(own, id), "deadlineAt") or "")
  if deadline and deadline <= now then
    local out = unpark(own, bull, id, now, "fail", tonumber(ARGV[5]), "DEADLINE_EXCEEDED",
      "the deadline passed while the workflow was parked waiting for " .. ARGV[7] .. " to recover", inLine, "recovery")
    if out == "failed" then expired = expired + 1 end
  elseif ARGV[6] ~= "1" then
    local out, parkedAt = unpark(own, bull, id, now, "requeue", 0, "", "", inLine, "recovery")
    if out == "requeued" then
      requeued = requeued + 1
      durations[#durations + 1] = now - tonumber(parkedAt or now)
    end
  end
end
lineUp(own, bull, inLine)
return { requeued, expired, unpack(durations) }
