--[[
  A spend added to a month total (integer micro-dollars), giving a new month key its TTL: the tenant's
  and its org's, by recordSpend-2.lua (a model call, an agent's charge) and releasePermit-8.lua (a tool
  call's cost, with its permit's release).
]]
local function addSpend(key, micro, ttl)
  local total = rcall("INCRBY", key, micro)
  rcall("EXPIRE", key, ttl, "NX")
  return total
end

-- Both months' new totals: the tenant's, and its org's (the tenant's again when orgKey is the tenant's key).
local function spend(key, orgKey, micro, ttl)
  local total = addSpend(key, micro, ttl)
  if orgKey == key then return total, total end
  return total, addSpend(orgKey, micro, ttl)
end
