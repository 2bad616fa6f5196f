--[[
  The exec consumer's finish (src/exec/execBackend.ts): the ended run's outcome and slot release
  (includes/runFinish.lua), then BullMQ 6.7's own moveToFinished, less its events, flow checks and
  promotion of delayed jobs (queues/lua/bullmqSlim.ts; `bullmq()`, composed in by
  queues/lua/script.ts), which completes (or fails) the exec job and may fetch the next one, and
  that one's start (includes/runStart.lua): one script and one round trip from one run to the next.
  The outcome is written first, as when finishRun ran on its own before BullMQ's call: a job whose
  lock was lost (BullMQ's reply < 0) still has its run's outcome recorded, fenced by the run id.

  KEYS[1..BULL_KEYS]  BullMQ's moveToFinished keys
  KEYS[BULL_KEYS + 1] the ended workflow's record
  ARGV[1..BULL_ARGV]  BullMQ's moveToFinished args, then:
    +1 now   +2 run id for a job it takes   +3 worker id   +4 cell own-key prefix
    +5 ended workflow id ("": the job's run has no outcome to record, and nothing follows)   +6 its run id   +7 state   +8 result JSON   +9 error code   +10 error message
    +11 record TTL (s)   +12 "0" when the ended workflow has no step results (includes/runFinish.lua noSteps), else "1"

  Returns BullMQ's reply with, when it took a job, the start's reply as a 5th element.
]]
local rcall = redis.call
--- @include "runFinish"
--- @include "runStart"
local a = BULL_ARGV
local now, own = tonumber(ARGV[a + 1]), ARGV[a + 4]
if ARGV[a + 5] ~= "" then
  finishRunFor(KEYS[BULL_KEYS + 1], ARGV[a + 5], now, ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 10],
    tonumber(ARGV[a + 11]), own, ARGV[a + 12] == "0")
end
local reply = bullmq()
if type(reply) == "table" and type(reply[2]) == "string" and reply[2] ~= "" then
  local id = reply[2]
  reply[5] = startRunFor(cellKey_workflow(own, id), id, now, ARGV[a + 2], ARGV[a + 3], own)
end
return reply
