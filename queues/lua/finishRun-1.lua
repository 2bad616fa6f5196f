--[[
  A workflow run ended: record the outcome and release its slot, once (includes/runFinish.lua).

  KEYS[1]  workflow record
  ARGV[1]  workflow id   ARGV[2] now   ARGV[3] run id ("" = any)
  ARGV[4]  state: completed | failed | cancelled
  ARGV[5]  result JSON ("" = none)   ARGV[6] error code   ARGV[7] error message
  ARGV[8]  record TTL in seconds (the tenant's retention wins: includes/endRecord.lua)
  ARGV[9]  "0" when the workflow has no step results (no steps hash to expire), else "1"   ARGV[10] cell own-key prefix
  ARGV[11] "later": leave the slot's release for the dispatcher to settle, as the exec consumer's finish
           does (finishFetchStart-1.lua); else it is settled here

  Returns {"ok"} | {"final", state} | {"stale"}
]]
local rcall = redis.call
--- @include "runFinish"
local r = finishRunFor(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]),
  ARGV[10], ARGV[9] == "0")
if ARGV[11] ~= "later" then settleReleased(ARGV[10]) end
return r
