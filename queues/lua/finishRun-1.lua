--[[
  A workflow run ended: record the outcome and release its slot, once.
  A run that lost its claim (another run id took over after a stall) changes
  nothing, so a late finisher cannot overwrite a newer run's record.

  KEYS[1]  workflow record
  ARGV[1]  workflow id   ARGV[2] now   ARGV[3] run id ("" = any)
  ARGV[4]  state: completed | failed | cancelled
  ARGV[5]  result JSON ("" = none)   ARGV[6] error code   ARGV[7] error message
  ARGV[8]  record TTL in seconds (the tenant's retention wins: includes/endRecord.lua)     ARGV[9] cell own-key prefix

  Returns {"ok"} | {"final", state} | {"stale"}
]]
local rcall = redis.call
--- @include "keys"
--- @include "releaseSlot"
--- @include "endRecord"
--- @include "trail"
local r = rcall("HMGET", KEYS[1], "state", "runId", "tenant", "idem", "worker")
local state = r[1]
if state == "completed" or state == "failed" or state == "cancelled" or not state then
  releaseSlot(ARGV[9], ARGV[1], tonumber(ARGV[2]))
  return { "final", state or "missing" }
end
if ARGV[3] ~= "" and r[2] and r[2] ~= ARGV[3] then return { "stale" } end
local fields = { "state", ARGV[4], "finishedAt", ARGV[2] }
if ARGV[5] ~= "" then
  fields[#fields + 1] = "result"
  fields[#fields + 1] = ARGV[5]
end
if ARGV[6] ~= "" then
  fields[#fields + 1] = "errorCode"
  fields[#fields + 1] = ARGV[6]
  fields[#fields + 1] = "errorMessage"
  fields[#fields + 1] = ARGV[7]
end
rcall("HSET", KEYS[1], unpack(fields))
-- Kept for the record's TTL: only what the API shows and the trace. Where it queued and ran, its run
-- fence and its byte count served the run; they would only make each finished record bigger.
rcall("HDEL", KEYS[1], "preemptRequested", "queue", "pool", "runId", "worker", "bytes", "runBudgetMs")
-- An ended workflow needs no deadline sweep: its entry would otherwise stay (~116 B) until the deadline.
rcall("ZREM", cellKey_deadlines(ARGV[9]), ARGV[1])
local released, retainSec = releaseSlot(ARGV[9], ARGV[1], tonumber(ARGV[2]))
-- The lease named the record's tenant: its retention was read with the release (nil when none was held).
expireEnded(ARGV[9], ARGV[1], r[3], r[4], tonumber(ARGV[8]), released == 1 and retainSec or nil)
if r[3] then trail(ARGV[9], r[3], ARGV[1], "ended", r[5], ARGV[4] .. (ARGV[6] ~= "" and " " .. ARGV[6] or "")) end
return { "ok" }
