--[[
  Fails queued workflows whose deadline has passed, whether or not their
  tenant can be dispatched (paused, at its cap, a pool with no capacity):
  the dispatch script fails an expired workflow only when it takes it.
  Every queued workflow that has a deadline is in KEYS[1] (queues/keys.ts
  says who writes it); this script pops the due entries, oldest deadline
  first, at most ARGV[2] per call. An entry whose workflow is no longer
  queued (one left from before the dispatch took entries out) is dropped:
  the cost is O(due entries), never O(queued).
  The job is removed from the tail of its wait list (LREM with a negative
  count searches from the tail, where the oldest jobs are), so the search
  stops at the job after passing only jobs enqueued before it.

  KEYS[1]  cell deadlines zset          <cell>:deadlines   (workflow id -> deadlineAt)
  KEYS[2]  cell queued counter

  ARGV[1]  now (epoch ms)
  ARGV[2]  max entries popped in this call
  ARGV[3]  cell own-key prefix          <cell>
  ARGV[4]  cell BullMQ prefix           <root>:{<root>.<cell>}
  ARGV[5]  record TTL in seconds once a workflow ends

  Returns {expired, popped}
]]
local rcall = redis.call
--- @include "keys"
--- @include "queuedBytes"
--- @include "moveJob"
--- @include "endRecord"
--- @include "trail"
local now = tonumber(ARGV[1])
local own, bull = ARGV[3], ARGV[4]
local due = rcall("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[2]))
local expired = 0
for _, id in ipairs(due) do
  rcall("ZREM", KEYS[1], id)
  local rec = cellKey_workflow(own, id)
  local r = rcall("HMGET", rec, "state", "queue", "deadlineAt", "tenant", "idem")
  local deadline = tonumber(r[3] or "")
  if r[1] == "queued" and r[2] and deadline and deadline <= now then
    if rcall("LREM", bullQueueKey(bull, r[2], "wait"), -1, id) == 1 then
      deleteJob(bullJobKey(bull, r[2], id))
      rcall("DECR", KEYS[2])
      queuedBytes(own, rec, r[4], -1)
    end
    rcall("HSET", rec, "state", "failed", "finishedAt", now, "errorCode", "DEADLINE_EXCEEDED",
      "errorMessage", "the deadline passed while the workflow was queued; it was never started")
    expireEnded(own, id, r[4], r[5], tonumber(ARGV[5]))
    trail(own, r[4], id, "ended", "dispatcher", "failed DEADLINE_EXCEEDED")
    expired = expired + 1
  end
end
return {expired, #due}
