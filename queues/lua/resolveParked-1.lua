--[[
  An operator's hand on one parked workflow: requeue it now (whatever the
  dependency's health; in line by admission time, includes/unpark.lua) or
  fail it with a reason.

  KEYS[1] workflow record
  ARGV[1] workflow id   ARGV[2] cell own-key prefix   ARGV[3] cell BullMQ prefix   ARGV[4] now
  ARGV[5] "requeue" | "fail"   ARGV[6] record TTL s   ARGV[7] message (fail)   ARGV[8] who (the trail's `by`)

  Returns "requeued" | "failed" | "skipped"
]]
local rcall = redis.call
--- @include "unpark"
local inLine = {}
local out = unpark(ARGV[2], ARGV[3], ARGV[1], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), "FAILED_BY_OPERATOR", ARGV[7], inLine, ARGV[8])
lineUp(ARGV[2], ARGV[3], inLine)
return out
