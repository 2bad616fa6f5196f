--[[
  Parks a running workflow as pending-backpressure: its dependency is not
  healthy, so instead of retrying into it the workflow moves from the exec
  queue into the `parked` queue, keeps everything it needs to resume (the
  job's data: tenant, class, type, payload, enqueue time, deadline; the
  record's attempts and checkpoints), gives its attempt back and releases
  its slot. The lock token must still be ours. The caller then throws
  BullMQ's WaitingError. The job's move: includes/moveJob.lua.

  KEYS[1] workflow record   KEYS[2] exec job hash   KEYS[3] exec active list   KEYS[4] exec stalled set
  ARGV[1] workflow id   ARGV[2] now   ARGV[3] lock token   ARGV[4] cell own-key prefix
  ARGV[5] cell BullMQ prefix   ARGV[6] dependency   ARGV[7] reason   ARGV[8] 1 when the run had started

  Returns {"ok"} | {"lostlock"} | {"final", state}
]]
local rcall = redis.call
--- @include "keys"
--- @include "releaseSlot"
--- @include "moveJob"
--- @include "trail"
local id, own, bull = ARGV[1], ARGV[4], ARGV[5]
local r = rcall("HMGET", KEYS[1], "state", "tenant", "worker")
local state = r[1]
if state ~= "running" and state ~= "dispatched" then return { "final", state or "missing" } end
if not takeFromWorker(KEYS[2], KEYS[3], KEYS[4], id, ARGV[3]) then return { "lostlock" } end
moveJob(KEYS[2], bull, PARKED_QUEUE, id, ARGV[2], "tail", "copy")

rcall("HSET", KEYS[1], "state", "parked", "queue", PARKED_QUEUE, "parkedDep", ARGV[6], "parkedAt", ARGV[2],
  "parkReason", ARGV[7])
rcall("HDEL", KEYS[1], "runId", "preemptRequested")
if ARGV[8] == "1" then rcall("HINCRBY", KEYS[1], "attempts", -1) end
rcall("ZADD", cellKey_parked(own, ARGV[6]), ARGV[2], id)
rcall("SADD", cellKey_deps(own), ARGV[6])
releaseSlot(own, id, tonumber(ARGV[2]))
trail(own, r[2], id, "parked", r[3], ARGV[6])
return { "ok" }
