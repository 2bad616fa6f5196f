--[[
  The review deadline sweep (the dispatcher's, every second): review items due by ARGV[3], up to
  ARGV[4]. An item due at its review SLA whose policy says "escalate" goes, unclaimed, to its
  escalation pool (or back in its own, first in line among newer items) and is next due at its
  workflow's deadline. Otherwise its workflow ends failed: REVIEW_TIMEOUT at the SLA,
  DEADLINE_EXCEEDED at the workflow's deadline. Either is in the tenant's trail, by "review-sla".

  KEYS[1] the cell's review due index <cell>:rvdue
  ARGV[1] cell own-key prefix   ARGV[2] cell BullMQ prefix   ARGV[3] now   ARGV[4] how many
  ARGV[5] record TTL s

  Returns {escalated, failed}
]]
local rcall = redis.call
--- @include "keys"
--- @include "unpark"
--- @include "review"
local own, bull, now = ARGV[1], ARGV[2], ARGV[3]
local escalated, failed = 0, 0
for _, id in ipairs(rcall("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[4]))) do
  rcall("ZREM", KEYS[1], id)
  local it = reviewItem(own, id)
  if it and it.dueWhy == "sla" and it.onTimeout == "escalate" then
    local to = it.escalateTo or it.pool
    reviewEscalate(own, id, it, to, nil)
    rcall("HSET", cellKey_review(own, id), "dueWhy", "deadline", "dueAt", it.deadlineAt)
    if it.deadlineAt > 0 then rcall("ZADD", KEYS[1], it.deadlineAt, id) end
    trail(own, it.tenant, id, "review-escalated", "review-sla", "to " .. to)
    escalated = escalated + 1
  elseif it then
    reviewClose(own, id, it)
    local r = rcall("HMGET", cellKey_workflow(own, id), "state", "idem")
    if r[1] == "review" then
      local sla = it.dueWhy == "sla"
      failWaiting(own, bull, id, REVIEW_QUEUE, it.tenant, r[2], now, sla and "REVIEW_TIMEOUT" or "DEADLINE_EXCEEDED",
        sla and "no reviewer decided within the tenant's review SLA" or "the workflow's deadline passed while it awaited review",
        tonumber(ARGV[5]), "review-sla")
      failed = failed + 1
    end
  end
end
return { escalated, failed }
