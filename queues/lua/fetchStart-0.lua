--[[
  The exec consumer's fetch (src/exec/execBackend.ts): BullMQ 6.7's own moveToActive, less its "active"
  event and its promotion of delayed jobs (queues/lua/bullmqSlim.ts; `bullmq()`, composed in by
  queues/lua/script.ts), and when it took a job, that workflow's start (includes/runStart.lua) in the same
  call: a fetched workflow is running, or knows why not, without a round trip of its own. Bull Board,
  locks and stalled-job recovery see the keys BullMQ's own moveToActive leaves.

  KEYS[1..BULL_KEYS]  BullMQ's moveToActive keys
  ARGV[1..BULL_ARGV]  BullMQ's moveToActive args, then:
    +1 now   +2 run id for a job it takes   +3 worker id   +4 cell own-key prefix

  Returns BullMQ's reply ({job fields, id, rate-limit delay, delay until}, or its "nothing" reply) with,
  when it took a job, the start's reply (includes/runStart.lua) as a 5th element.
]]
local rcall = redis.call
--- @include "runStart"
local reply = bullmq()
local a = BULL_ARGV
if type(reply) == "table" and type(reply[2]) == "string" and reply[2] ~= "" then
  local id, own = reply[2], ARGV[a + 4]
  reply[5] = startRunFor(cellKey_workflow(own, id), id, tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3], own)
end
return reply
