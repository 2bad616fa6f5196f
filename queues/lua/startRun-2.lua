--[[
  An exec worker is about to run a workflow it took from the exec queue.
  Decides, atomically with the record, whether it may run:
    {"final", state}     already ended (a re-delivered job): do nothing
    {"cancel"}           a cancel was requested while it waited
    {"expired"}          its deadline passed before it started
    {"yield"}            it was asked to yield (preempted) before it started
    {"noslot"}           its slot lease is gone (reconciled): hand it back
    {"run", deadlineAt, attempts, first}  it is now running with run id ARGV[3];
                         first = 1 on its first start (not a resume after preemption, parking or a crash)
  Every reply has 8 elements: the 4 above (padded), then what the run needs from
  the record — tenant, class, enqueuedAt, traceparent ("" in a record written
  before admission kept it there; the job's data then carries it).

  On the first start it also counts the enqueue->start latency in the cell's
  usage-event bucket (one HINCRBY of "<tenant>|l<b>", b the smallest with
  latency <= 2^b ms; mirrored by queues/usageEvents.ts, one case table in test/conformance/latency.cases.ts).

  KEYS[1]  workflow record
  KEYS[2]  usage-event bucket of `now` (<cell>:ev:<bucketStart>)
  ARGV[1]  workflow id   ARGV[2] now   ARGV[3] run id   ARGV[4] worker id
  ARGV[5]  cell own-key prefix (for the slot lease)
  ARGV[6]  usage-event bucket TTL (seconds)
]]
local rcall = redis.call
--- @include "keys"
--- @include "trail"
local r = rcall("HMGET", KEYS[1], "state", "cancelRequested", "deadlineAt", "preemptRequested", "tenant", "enqueuedAt",
  "startedAt", "attempts", "class", "traceparent")
local function reply(kind, a, b, c)
  return { kind, a or "", b or 0, c or 0, r[5] or "", r[9] or "", r[6] or "", r[10] or "" }
end
local state = r[1]
if not state then return reply("final", "missing") end
if state == "completed" or state == "failed" or state == "cancelled" then return reply("final", state) end
if rcall("HEXISTS", cellKey_slots(ARGV[5]), ARGV[1]) == 0 then return reply("noslot") end
if r[2] then return reply("cancel") end
local now = tonumber(ARGV[2])
if r[3] and tonumber(r[3]) <= now then return reply("expired") end
if r[4] then return reply("yield") end
local attempts = tonumber(r[8] or "0") + 1
local fields = { "state", "running", "runStartedAt", now, "runId", ARGV[3], "worker", ARGV[4], "attempts", attempts }
local first = 0
if not r[7] then
  first = 1
  fields[#fields + 1] = "startedAt"
  fields[#fields + 1] = now
  if r[5] and r[6] then
    local latency, b, v = now - tonumber(r[6]), 0, 1
    while v < latency and b < 23 do
      v = v * 2
      b = b + 1
    end
    -- A new field may be the bucket's first: give the bucket its TTL then (once per key is enough).
    if rcall("HINCRBY", KEYS[2], r[5] .. "|l" .. b, 1) == 1 then rcall("EXPIRE", KEYS[2], ARGV[6]) end
  end
end
rcall("HSET", KEYS[1], unpack(fields))
trail(ARGV[5], r[5], ARGV[1], "started", ARGV[4], "attempt " .. attempts)
return reply("run", r[3], attempts, first)
