--[[
  Settles the slot releases the exec consumer's finishes noted (includes/releaseSlot.lua), in a call of
  its own: the dispatcher makes it right before its dispatch calls, so they stay as short as they were
  and a run's charge, which starts at the dispatch call's `now`, is not lengthened by settling. The
  dispatch call settles too, first: what was noted in between.

  KEYS[1]  <cell>:released
  ARGV[1]  cell own-key prefix

  Returns how many leases it released.
]]
local rcall = redis.call
--- @include "keys"
--- @include "releaseSlot"
return settleReleased(ARGV[1])
