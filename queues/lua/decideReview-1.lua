--[[
  A reviewer's decision on a review item it holds. "approve" / "reject": the decision becomes
  the review step's durable result (the workflow's steps hash, as ctx.step writes it), the item
  closes, and the workflow is queued again in line by admission time (includes/unpark.lua), to
  resume after its last finished step. "escalate": the item goes, unclaimed, to the tenant's
  escalation pool (or back to the same one), with the note for the next reviewer.

  KEYS[1] workflow record
  ARGV[1] cell own-key prefix   ARGV[2] cell BullMQ prefix   ARGV[3] workflow id   ARGV[4] now
  ARGV[5] the reviewer's pool   ARGV[6] claimant (reviewer:<key id>)   ARGV[7] approve | reject | escalate
  ARGV[8] the step's result (JSON {"v": ...}, approve/reject)   ARGV[9] note (escalate; "" none)

  Returns {"notfound"} (no open item in this pool) | {"notclaimed"} (not held by this reviewer now)
        | {"decided"} | {"escalated", pool}
]]
local rcall = redis.call
--- @include "keys"
--- @include "unpark"
--- @include "review"
local own, bull, id, now, pool, claimant, decision = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local it = reviewItem(own, id)
if not it or it.pool ~= pool then return { "notfound" } end
if it.state ~= "claimed" or it.claimant ~= claimant or it.leaseUntil < tonumber(now) then return { "notclaimed" } end
if decision == "escalate" then
  local to = it.escalateTo or pool
  reviewEscalate(own, id, it, to, ARGV[9] ~= "" and ARGV[9] or nil)
  trail(own, it.tenant, id, "review-escalated", claimant, "to " .. to)
  return { "escalated", to }
end
rcall("HSET", cellKey_steps(own, id), it.step, ARGV[8])
reviewClose(own, id, it)
trail(own, it.tenant, id, "reviewed", claimant, decision)
local r = rcall("HMGET", KEYS[1], "state", "class", "enqueuedAt", "deadlineAt")
if r[1] == "review" then
  local requeued = {}
  requeueWaiting(own, bull, id, REVIEW_QUEUE, it.tenant, r[2], r[3], r[4], now, requeued)
  lineUp(own, bull, requeued)
end
return { "decided" }
