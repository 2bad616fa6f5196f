--[[
  Weighted fair queuing by service received: the arithmetic of
  src/scheduler/policy/wfq.ts, in the same order, so the script and the pure
  rule make bit-identical decisions (test/integration/dispatchDifferential).
  Numbers are written with %.17g: they round-trip exactly (Redis would format
  a Lua number with 14 digits).

  One HASH per pool and class, <cell>:pool:<p>:wfq:<class>:
    now          system virtual time (the highest v ever served)
    e            estimate of a run's slot-time over all tenants, ms
    v:<tenant>   the tenant's virtual time, slot-ms / weight
    e:<tenant>   its estimate, ms
]]
local WFQ_DEFAULT_CHARGE_MS = 1000

local function wfqNum(x)
  return string.format("%.17g", x)
end

local function wfqKey(own, pool, cls)
  return own .. ":pool:" .. pool .. ":wfq:" .. cls
end

-- What a dispatch charges: the tenant's estimate, else the class's, else the default.
local function wfqCharge(key, tenant)
  local r = rcall("HMGET", key, "e:" .. tenant, "e")
  return tonumber(r[1] or r[2] or WFQ_DEFAULT_CHARGE_MS)
end

-- A tenant entering the ready set starts at max(v, now). Returns its v.
local function wfqEnter(key, tenant)
  local r = rcall("HMGET", key, "v:" .. tenant, "now")
  local v, now = tonumber(r[1] or ""), tonumber(r[2] or "0")
  if v == nil or v < now then
    v = now
    rcall("HSET", key, "v:" .. tenant, wfqNum(v))
  end
  return v
end

-- Serving the tenant whose virtual time is v: now := max(now, v); v grows by charge / weight.
local function wfqServe(key, tenant, v, charge, weight)
  local now = tonumber(rcall("HGET", key, "now") or "0")
  local nv = v + charge / weight
  if v > now then
    rcall("HSET", key, "now", wfqNum(v), "v:" .. tenant, wfqNum(nv))
  else
    rcall("HSET", key, "v:" .. tenant, wfqNum(nv))
  end
  return nv
end

-- A run charged `charge` held its slot `held` ms: correct v to the truth, learn the estimates.
local function wfqSettle(key, tenant, charge, held, weight)
  local r = rcall("HMGET", key, "v:" .. tenant, "e:" .. tenant, "e")
  local v = tonumber(r[1] or "0") + (held - charge) / weight
  local e = tonumber(r[2] or "")
  if e then e = e + (held - e) / 4 else e = held end
  local ce = tonumber(r[3] or "")
  if ce then ce = ce + (held - ce) / 16 else ce = held end
  rcall("HSET", key, "v:" .. tenant, wfqNum(v), "e:" .. tenant, wfqNum(e), "e", wfqNum(ce))
  return v
end
