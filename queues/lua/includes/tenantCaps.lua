--[[
  Reading a tenant's caps and deciding whether it may take one more slot.
  Mirrors src/dispatch/policy/caps.ts (the same cases are unit-tested there).
]]
--- @include "keys"
local function hashToTable(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function readCaps(own, tenant)
  local flat = rcall("HGETALL", cellKey_tenantCaps(own, tenant))
  if #flat == 0 then return nil end
  return hashToTable(flat)
end

local function readRunning(own, tenant)
  local r = rcall("HMGET", cellKey_running(own, tenant), "A", "BC")
  return tonumber(r[1] or "0") or 0, tonumber(r[2] or "0") or 0
end

-- May the tenant start one more Class B/C workflow now?
-- Returns eligible, startsBurst, retryAt (when a cooldown ends; nil otherwise).
local function bcEligible(caps, runBC, now)
  local mca = tonumber(caps.mca)
  if runBC < mca then return true, false, nil end
  if runBC >= tonumber(caps.burstMca) then return false, false, nil end
  local burstMs = tonumber(caps.burstMs)
  if burstMs <= 0 then return false, false, nil end
  local start = tonumber(caps.burstStart or "-1")
  if start >= 0 then
    local windowEnd = start + burstMs
    if now < windowEnd then return true, false, nil end
    local coolEnd = windowEnd + tonumber(caps.cooldownMs)
    if now < coolEnd then return false, false, coolEnd end
  end
  return true, true, nil
end

local function aEligible(caps, runA)
  return runA < tonumber(caps.mcaUrgent)
end

local function splitPools(s)
  local out = {}
  for p in string.gmatch(s or "", "[^,]+") do out[#out + 1] = p end
  return out
end

local function memberFor(caps, tenant, pool)
  return caps["m:" .. pool] or string.format("%014d:%s", 0, tenant)
end
