--[[
  An exec worker is about to run workflow `id` (record `rec`), taken from the exec queue. Decides,
  atomically with the record, whether it may run; the reply (9 elements):
    {"final", state}     already ended (a re-delivered job): do nothing
    {"cancel"}           a cancel was requested while it waited
    {"expired"}          its deadline passed before it started
    {"yield"}            it was asked to yield (preempted) before it started
    {"noslot"}           its slot lease is gone (reconciled): hand it back
    {"run", deadlineAt, attempts, first}  it is now running with run id `runId`;
                         first = 1 on its first start (not a resume after preemption, parking or a crash)
  the 4 above (padded), then what the run needs from the record — tenant, class, enqueuedAt,
  traceparent ("": admitted without a trace context, derived from the id; false (nil) in a record
  written before admission kept it there, whose job's data then carries it), dispatchedAt ("": none).

  Its enqueue->start latency is counted by the exec process from this reply (startedAt and
  enqueuedAt), not here: queues/latencyTally.ts adds it to the cell's usage-event buckets once a
  heartbeat, one HINCRBY per tenant and latency bucket rather than one per workflow.
  Called by startRun-1.lua, and by the exec consumer's fetch right after BullMQ's (fetchStart-0.lua).
]]
--- @include "keys"
--- @include "trail"

local function startRunFor(rec, id, now, runId, workerId, own)
  local r = rcall("HMGET", rec, "state", "cancelRequested", "deadlineAt", "preemptRequested", "tenant", "enqueuedAt",
    "startedAt", "attempts", "class", "traceparent", "lease", "dispatchedAt")
  local function reply(kind, a, b, c)
    return { kind, a or "", b or 0, c or 0, r[5] or "", r[9] or "", r[6] or "", r[10] or false, r[12] or "" }
  end
  local state = r[1]
  if not state then return reply("final", "missing") end
  if state == "completed" or state == "failed" or state == "cancelled" then return reply("final", state) end
  -- The record keeps its slot's lease from the dispatch until the slot is given back (the finish and
  -- releaseSlot delete it, in the script that gives it back); one without (given back, or dispatched
  -- before records kept it) is checked against the slots themselves.
  if not r[11] and rcall("HEXISTS", cellKey_slots(own), id) == 0 then return reply("noslot") end
  if r[2] then return reply("cancel") end
  if r[3] and tonumber(r[3]) <= now then return reply("expired") end
  if r[4] then return reply("yield") end
  local attempts = tonumber(r[8] or "0") + 1
  -- Written as text once: Lua formats a number argument anew at every use (the HSET and the trail).
  local attemptsText = tostring(attempts)
  local fields = { "state", "running", "runId", runId, "worker", workerId, "attempts", attemptsText }
  local first = 0
  if not r[7] then
    first = 1
    fields[#fields + 1] = "startedAt"
    fields[#fields + 1] = now
  end
  rcall("HSET", rec, unpack(fields))
  trail(own, r[5], id, "started", workerId, "attempt " .. attemptsText)
  return reply("run", r[3], attempts, first)
end
