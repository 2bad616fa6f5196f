--[[
  Hands a workflow back: from the exec queue to the head of its ingress queue
  (it is taken next), without using an attempt, releasing its slot. Used for
  preemption, for a graceful shutdown past its grace period, and when a run
  finds its slot lease gone. The exec job's lock must still be ours (token),
  so a stalled worker that lost the job cannot requeue it a second time.
  The caller then throws BullMQ's WaitingError so the Worker leaves the job.
  The job's move: includes/moveJob.lua.

  KEYS[1]  workflow record
  KEYS[2]  exec job hash
  KEYS[3]  exec active list
  KEYS[4]  exec stalled set
  ARGV[1]  workflow id   ARGV[2] now   ARGV[3] lock token
  ARGV[4]  cell own-key prefix   ARGV[5] cell BullMQ prefix
  ARGV[6]  reason (recorded as lastYield)
  ARGV[7]  1 when the run had started (undo its attempt), else 0

  Returns {"ok"} | {"lostlock"} | {"final", state}
]]
local rcall = redis.call
--- @include "keys"
--- @include "releaseSlot"
--- @include "queuedBytes"
--- @include "moveJob"
--- @include "trail"
--- @include "deadlineIndex"
local id, own = ARGV[1], ARGV[4]
local r = rcall("HMGET", KEYS[1], "state", "tenant", "class", "worker", "deadlineAt")
if r[1] ~= "running" and r[1] ~= "dispatched" then return { "final", r[1] or "missing" } end
if not takeFromWorker(KEYS[2], KEYS[3], KEYS[4], id, ARGV[3]) then return { "lostlock" } end

local q = ingressQueue(r[2], r[3])
moveJob(KEYS[2], ARGV[5], q, id, ARGV[2], "head", "copy")
rcall("INCR", cellKey_queued(own))
queuedBytes(own, KEYS[1], r[2], 1)
rcall("SADD", cellKey_queues(own), q)

rcall("HSET", KEYS[1], "state", "queued", "queue", q, "lastYield", ARGV[6], "lastYieldAt", ARGV[2])
-- Queued again: listed in the deadline sweep's index again (includes/deadlineIndex.lua).
if r[5] then indexDeadline(own, id, tonumber(r[5])) end
rcall("HDEL", KEYS[1], "preemptRequested", "runId")
if ARGV[7] == "1" then rcall("HINCRBY", KEYS[1], "attempts", -1) end
releaseSlot(own, id, tonumber(ARGV[2]))
rcall("SADD", cellKey_dirty(own), r[2]) -- its queue may have been empty: recompute readiness
trail(own, r[2], id, "handed-back", r[4], ARGV[6])
return { "ok" }
