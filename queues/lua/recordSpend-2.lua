--[[
  Adds a spend to a tenant's month total and, for a tenant of an org, to the org's month total
  (integer micro-dollars), giving a new month key its TTL: atomically and in one round trip. An
  org's tenants all live in its cell, so both keys share the cell's slot.
  KEYS[1] <cell>:spend:<tenant>:<yyyymm>
  KEYS[2] <cell>:spend:@<org>:<yyyymm> the tenant's org's month; KEYS[1] again for a tenant without an org
  ARGV    micro-dollars, ttl seconds
  Returns {the tenant's new month total, the org's (the tenant's again without an org)} in micro-dollars.
]]
local function add(key)
  local total = redis.call("INCRBY", key, ARGV[1])
  redis.call("EXPIRE", key, ARGV[2], "NX")
  return total
end

local total = add(KEYS[1])
if KEYS[2] == KEYS[1] then return {total, total} end
return {total, add(KEYS[2])}
