--[[
  A workflow run ended: record the outcome and note its slot's release (includes/releaseSlot.lua), once.
  A run that lost its claim (another run id took over after a stall) changes nothing, so a late
  finisher cannot overwrite a newer run's record. `runId` "" = any; `state` completed | failed | cancelled; `result` JSON or "";
  `code`, `message` the error ("" = none); `ttl` the record's TTL in seconds once ended (the tenant's
  retention wins: includes/endRecord.lua); `own` the cell's own-key prefix; `noSteps` true when the
  workflow has no step results (FinishInput.steps in queues/lua/runLifecycle.ts): no steps hash to expire.
  Returns {"ok"} | {"final", state} | {"stale"}. Called by finishRun-1.lua, and by the exec
  consumer's finish right before BullMQ's (finishFetchStart-1.lua).
]]
--- @include "keys"
--- @include "releaseSlot"
--- @include "endRecord"
--- @include "trail"

local function finishRunFor(rec, id, now, runId, state, result, code, message, ttl, own, noSteps)
  local r = rcall("HMGET", rec, "state", "runId", "tenant", "idem", "worker", "lease")
  local was = r[1]
  if was == "completed" or was == "failed" or was == "cancelled" or not was then
    releaseSlot(own, id, now)
    return { "final", was or "missing" }
  end
  if runId ~= "" and r[2] and r[2] ~= runId then return { "stale" } end
  local fields = { "state", state, "finishedAt", now }
  if result ~= "" then
    fields[#fields + 1] = "result"
    fields[#fields + 1] = result
  end
  if code ~= "" then
    fields[#fields + 1] = "errorCode"
    fields[#fields + 1] = code
    fields[#fields + 1] = "errorMessage"
    fields[#fields + 1] = message
  end
  rcall("HSET", rec, unpack(fields))
  -- Kept for the record's TTL: only what the API shows and the trace. Where it queued and ran, its run
  -- fence and its byte count served the run; they would only make each finished record bigger.
  rcall("HDEL", rec, "preemptRequested", "queue", "pool", "runId", "worker", "bytes", "runBudgetMs", "lease")
  -- Noted, not settled: the caller settles it (finishRun-1.lua) or leaves it to the dispatcher (the exec consumer's).
  -- The record's copy of the lease spares reading it (one written before the record kept it: read).
  local released, retainSec = noteRelease(own, id, now, r[6] or nil)
  -- The lease named the record's tenant: its retention was read with the release (nil when none was held).
  expireEnded(own, id, r[3], r[4], ttl, released == 1 and retainSec or nil, noSteps)
  if r[3] then trail(own, r[3], id, "ended", r[5], state .. (code ~= "" and " " .. code or "")) end
  return { "ok" }
end
