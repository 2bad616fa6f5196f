--[[
  Suspends a running workflow until a person decides (ctx.review). As parkRun-4.lua does for a
  sick dependency, the job moves from the exec queue into the `review` queue, the attempt is
  given back and the slot released (a person may take hours); the review item (includes/review.lua)
  goes in line in its tenant's queue of its reviewer pool, and in the due index when it has a
  due time. The lock token must still be ours. The caller then throws BullMQ's WaitingError.
  When the decision comes (decideReview-1.lua) the workflow is queued again and resumes after its
  last finished step, the review step answering with the decision.

  KEYS[1] workflow record   KEYS[2] exec job hash   KEYS[3] exec active list   KEYS[4] exec stalled set
  ARGV[1] workflow id   ARGV[2] now   ARGV[3] lock token   ARGV[4] cell own-key prefix   ARGV[5] cell BullMQ prefix
  ARGV[6] reviewer pool   ARGV[7] step name   ARGV[8] request (JSON)   ARGV[9] due at (0: never)
  ARGV[10] why due then: "sla" | "deadline"   ARGV[11] on SLA timeout: "escalate" | "fail"
  ARGV[12] escalation pool ("" : the same pool)   ARGV[13] the workflow's deadline (0: none)

  Returns {"ok"} | {"lostlock"} | {"final", state} | {"cancel"} (the producer cancelled it as it asked:
  nothing moved, the caller ends it cancelled)
]]
local rcall = redis.call
--- @include "keys"
--- @include "releaseSlot"
--- @include "moveJob"
--- @include "trail"
--- @include "review"
local id, now, own, bull, pool = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local r = rcall("HMGET", KEYS[1], "state", "tenant", "worker", "class", "cancelRequested")
if r[1] ~= "running" then return { "final", r[1] or "missing" } end
if r[5] then return { "cancel" } end
if not takeFromWorker(KEYS[2], KEYS[3], KEYS[4], id, ARGV[3]) then return { "lostlock" } end
moveJob(KEYS[2], bull, REVIEW_QUEUE, id, now, "tail", "copy")
rcall("HSET", KEYS[1], "state", "review", "queue", REVIEW_QUEUE, "reviewAt", now)
rcall("HDEL", KEYS[1], "runId", "preemptRequested")
rcall("HINCRBY", KEYS[1], "attempts", -1)

local item = cellKey_review(own, id)
rcall("DEL", item)
rcall("HSET", item, "tenant", r[2], "cls", r[4], "pool", pool, "step", ARGV[7], "request", ARGV[8], "createdAt", now,
  "dueAt", ARGV[9], "dueWhy", ARGV[10], "onTimeout", ARGV[11], "escalateTo", ARGV[12], "deadlineAt", ARGV[13],
  "escalations", 0, "state", "pending")
reviewEnqueue(own, pool, r[4], r[2], id, now)
if tonumber(ARGV[9]) > 0 then rcall("ZADD", cellKey_reviewDue(own), ARGV[9], id) end
releaseSlot(own, id, tonumber(now))
trail(own, r[2], id, "review-requested", r[3], pool)
return { "ok" }
