--[[
  Weighted fair queuing by service received: the arithmetic of
  src/dispatch/policy/wfq.ts, in the same order, so the script and the pure
  rule make bit-identical decisions (test/conformance/dispatch.differential.test.ts).
  Numbers are written with %.17g: they round-trip exactly (Redis would format
  a Lua number with 14 digits).

  One HASH per pool and class, <cell>:pool:<p>:wfq:<class> (cellKey_wfq, includes/keys.lua):
    now          the v last served (the frontier when no tenant is ready)
    e            estimate of a run's slot-time over all tenants, ms
    v:<tenant>   the tenant's virtual time, slot-ms / weight
    e:<tenant>   its estimate, ms
    c:<tenant>   slot-ms charged for its runs in flight
]]
local WFQ_DEFAULT_CHARGE_MS = 0

local function wfqNum(x)
  return string.format("%.17g", x)
end

-- What a dispatch charges (the tenant's estimate, else the class's, else the
-- default), and what its runs in flight were charged.
local function wfqCharge(key, tenant)
  local r = rcall("HMGET", key, "e:" .. tenant, "e", "c:" .. tenant)
  return tonumber(r[1] or r[2] or WFQ_DEFAULT_CHARGE_MS), tonumber(r[3] or "0")
end

-- The lowest v in ready set `ready` (nil: it is empty).
local function wfqLowest(ready)
  return tonumber(rcall("ZRANGE", ready, 0, 0, "WITHSCORES")[2] or "")
end

-- A tenant entering a ready set whose lowest v is `lowest` (nil: none) starts at
-- max(v, frontier - in flight / weight), the frontier being min(now, lowest). Returns its v.
local function wfqEnter(key, lowest, tenant, weight)
  local r = rcall("HMGET", key, "v:" .. tenant, "now", "c:" .. tenant)
  local v, frontier = tonumber(r[1] or ""), tonumber(r[2] or "0")
  if lowest and lowest < frontier then frontier = lowest end
  local floor = frontier - tonumber(r[3] or "0") / weight
  if v == nil or v < floor then
    v = floor
    rcall("HSET", key, "v:" .. tenant, wfqNum(v))
  end
  return v
end

-- Serving the tenant whose virtual time is v: now := v; v grows by charge / weight. Returns the new v
-- and the fields of the pool's and class's WFQ hash to write, as numbers: the dispatch writes them once
-- per call, formatting (wfqNum) only the last value of each field.
local function wfqServe(tenant, v, charge, weight, inflight)
  local nv = v + charge / weight
  return nv, { "now", v, "v:" .. tenant, nv, "c:" .. tenant, inflight + charge }
end

-- A run charged `charge` held its slot `held` ms: correct v to the truth, learn the estimates. Takes and
-- returns numbers, the tenant's v, estimate and in-flight charge and the class's estimate (an estimate nil:
-- none yet): includes/releaseSlot.lua reads and writes them once for all the releases it settles.
local function wfqSettle(v, e, ce, c, charge, held, weight)
  v = v + (held - charge) / weight
  if e then e = e + (held - e) / 4 else e = held end
  if ce then ce = ce + (held - ce) / 16 else ce = held end
  return v, e, ce, c - charge
end
