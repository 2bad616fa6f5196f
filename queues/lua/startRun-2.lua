--[[
  An exec worker is about to run a workflow it took from the exec queue.
  Decides, atomically with the record, whether it may run:
    {"final", state}     already ended (a re-delivered job): do nothing
    {"cancel"}           a cancel was requested while it waited
    {"expired"}          its deadline passed before it started
    {"yield"}            it was asked to yield (preempted) before it started
    {"noslot"}           its slot lease is gone (reconciled): hand it back
    {"run", deadlineAt, attempts}  it is now running with run id ARGV[3]

  KEYS[1]  workflow record
  ARGV[1]  workflow id   ARGV[2] now   ARGV[3] run id   ARGV[4] worker id
  ARGV[5]  cell own-key prefix (for the slot lease)
]]
local rcall = redis.call
local r = rcall("HMGET", KEYS[1], "state", "cancelRequested", "deadlineAt", "preemptRequested")
local state = r[1]
if not state then return { "final", "missing" } end
if state == "completed" or state == "failed" or state == "cancelled" then return { "final", state } end
if rcall("HEXISTS", ARGV[5] .. ":slots", ARGV[1]) == 0 then return { "noslot" } end
if r[2] then return { "cancel" } end
local now = tonumber(ARGV[2])
if r[3] and tonumber(r[3]) <= now then return { "expired" } end
if r[4] then return { "yield" } end
rcall("HSETNX", KEYS[1], "startedAt", now)
rcall("HSET", KEYS[1], "state", "running", "runStartedAt", now, "runId", ARGV[3], "worker", ARGV[4])
local attempts = rcall("HINCRBY", KEYS[1], "attempts", 1)
return { "run", r[3] or "", attempts }
