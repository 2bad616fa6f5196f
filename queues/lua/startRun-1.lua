--[[
  An exec worker is about to run a workflow it took from the exec queue: may it run?
  (includes/runStart.lua has the decision and its reply.)

  KEYS[1]  workflow record
  ARGV[1]  workflow id   ARGV[2] now   ARGV[3] run id   ARGV[4] worker id
  ARGV[5]  cell own-key prefix (for the slot lease)
]]
local rcall = redis.call
--- @include "runStart"
return startRunFor(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5])
