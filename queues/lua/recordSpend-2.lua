--[[
  Adds a spend to a tenant's month total and, for a tenant of an org, to the org's month total
  (integer micro-dollars), giving a new month key its TTL: atomically and in one round trip. An
  org's tenants all live in its cell, so both keys share the cell's slot. A tool call's spend goes
  with its permit's release instead (releasePermit-8.lua).
  KEYS[1] <cell>:spend:<tenant>:<yyyymm>
  KEYS[2] <cell>:spend:@<org>:<yyyymm> the tenant's org's month; KEYS[1] again for a tenant without an org
  ARGV    micro-dollars, ttl seconds
  Returns {the tenant's new month total, the org's (the tenant's again without an org)} in micro-dollars.
]]
local rcall = redis.call
--- @include "spend"

return {spend(KEYS[1], KEYS[2], ARGV[1], ARGV[2])}
