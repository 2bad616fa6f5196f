--[[
  Releasing a workflow's slot, in two halves.

  noteRelease: what must happen when the run ends, and all the exec consumer's finish does
  (finishFetchStart-1.lua): the release goes onto <cell>:released with what it read of the caps (the
  class's cap, weight and ready-set member of the tenant, and of its org for a tenant of an org), and
  the dispatcher is woken by the first release noted since the list was last emptied: a release noted
  behind others finds the wake-up they left, or a pass under way that has yet to settle them (a
  settlement that leaves some behind wakes the dispatcher again). An entry is the id, the release
  time, the lease, then those three (or six), one per line ("" where the caps have none).

  settleReleased: what a release changes, for every noted release in the order noted; the dispatcher
  runs it in a call of its own before its dispatch calls (settleReleased-1.lua, so a run's charge does
  not grow by the settling's time), and the dispatch at the start of every call, before it reads any
  of it (what was noted in between), so each decision sees what releasing at once would have left. The
  slot lease goes (an HDEL that matches the noted lease decides: a lease is released once however
  often it is noted); the pool's slot counts, the tenant's (and org's) and the Class C sets follow;
  fair queuing: each run held its slot from dispatch to its release, and the tenant's virtual time in
  the pool and class is settled from the charge taken at dispatch to the slot-time really received
  (wfq.lua), in the same arithmetic and order as one release at a time (so PoolDispatch.release,
  src/dispatch/policy/dispatchRule.ts, stays its mirror), its score in the ready set follows (ZADD
  XX); only when a release may have made it eligible again (at or just under a cap) is it marked dirty
  for a full recompute. A tenant of an org is settled in its org's sets, and the org's own slot count,
  virtual time and readiness follow the same way (includes/flows.lua). Each key is written once per
  settlement however many releases touched it: that, not the move, is the saving.

  releaseSlot: both at once, for the rarer ways a slot is given back (parking, hand-back, review,
  reconcile, finishRun-1.lua).
]]
--- @include "keys"
--- @include "wfq"
--- @include "flows"

local SETTLE_MAX = 1000

local function parseLease(lease)
  -- "tenant|class|pool|dispatchedAt|charge[|org|org charge]"; leases written before charges have none (0).
  return string.match(lease, "^([^|]+)|([ABC])|([^|]+)|(%d+)|?([^|]*)|?([^|]*)|?([^|]*)$")
end

-- Notes the release of workflow `id`'s slot, `lease` (nil: read it). Returns 1 and the tenant's retainSec
-- as read (false: none) when it held one, else 0. The dispatcher settles it (settleReleased).
local function noteRelease(own, id, now, lease)
  lease = lease or rcall("HGET", cellKey_slots(own), id)
  if not lease then return 0 end
  local tenant, cls, pool, _, _, org = parseLease(lease)
  local capField = cls == "A" and "mcaUrgent" or "mca"
  local t = rcall("HMGET", cellKey_tenantCaps(own, tenant), capField, "weight", "m:" .. pool, "retainSec")
  local entry = { id, now, lease, t[1] or "", t[2] or "", t[3] or "" }
  if org ~= "" then
    local o = rcall("HMGET", cellKey_tenantCaps(own, "@" .. org), capField, "weight", "m:" .. pool)
    entry[7], entry[8], entry[9] = o[1] or "", o[2] or "", o[3] or ""
  end
  if rcall("RPUSH", cellKey_released(own), table.concat(entry, "\n")) == 1 then rcall("ZADD", cellKey_wake(own), "0", "w") end
  return 1, t[4]
end

local function fieldsOf(into, key)
  local fields = into[key]
  if not fields then
    fields = {}
    into[key] = fields
  end
  return fields
end

-- Settles every noted release (noteRelease). Returns how many leases it released.
local function settleReleased(own)
  local entries = rcall("LPOP", cellKey_released(own), SETTLE_MAX)
  if not entries then return 0 end
  -- More are noted than one settlement takes: their wake-up came with the first of them, so another.
  if #entries == SETTLE_MAX then rcall("ZADD", cellKey_wake(own), "0", "w") end
  local notes, ids = {}, {}
  for i, e in ipairs(entries) do
    local f = {}
    for part in string.gmatch(e .. "\n", "([^\n]*)\n") do f[#f + 1] = part end
    notes[i], ids[i] = f, f[1]
  end
  local leases = rcall("HMGET", cellKey_slots(own), unpack(ids))
  local gone, seen = {}, {}
  local incr = {} -- key -> field -> by
  local runs = {} -- run key -> field -> the release caps, in order (whether each may make its holder eligible)
  local wfqs = {} -- wfq key -> { e = class estimate, t = { [name] = { v, e, c } } }, read once, written once
  local scores = {} -- ready key -> member -> score
  local zrem = {} -- key -> ids
  local dirty = {}

  local function wfqOf(key, name)
    local w = wfqs[key]
    if not w then
      w = { t = {} }
      wfqs[key] = w
    end
    local s = w.t[name]
    if not s then
      local r = rcall("HMGET", key, "v:" .. name, "e:" .. name, "e", "c:" .. name)
      if not w.read then w.e, w.read = tonumber(r[3] or ""), true end
      s = { v = tonumber(r[1] or "0"), e = tonumber(r[2] or ""), c = tonumber(r[4] or "0") }
      w.t[name] = s
    end
    return w, s
  end

  -- One level of one release: `name` (a tenant, or "@<org>") held a slot of class `cls` for `held` ms,
  -- charged `charge`, with the noted cap, weight and member (strings, "" = none).
  local function settleLevel(name, cls, held, charge, ready, wfq, cap, weight, member)
    local run = fieldsOf(runs, cellKey_running(own, name))
    local field = cls == "A" and "A" or "BC"
    run[field] = run[field] or {}
    run[field][#run[field] + 1] = { name = name, cap = tonumber(cap) or 0, noSeat = member == "" }
    if weight == "" then return end
    local w, s = wfqOf(wfq, name)
    s.v, s.e, w.e, s.c = wfqSettle(s.v, s.e, w.e, s.c, tonumber(charge) or 0, held, tonumber(weight))
    if member ~= "" then fieldsOf(scores, ready)[member] = s.v end
  end

  for i, f in ipairs(notes) do
    local id = f[1]
    if leases[i] and leases[i] == f[3] and not seen[id] then
      seen[id] = true
      gone[#gone + 1] = id
      local tenant, cls, pool, at, charge, org, ocharge = parseLease(f[3])
      local used = fieldsOf(incr, cellKey_poolUsed(own, pool))
      used.total = (used.total or 0) - 1
      if cls ~= "B" then used[cls] = (used[cls] or 0) - 1 end
      if cls == "C" then
        -- Only Class C runs are ever asked to yield.
        local c, p = fieldsOf(zrem, cellKey_runningC(own, pool)), fieldsOf(zrem, cellKey_preempting(own, pool))
        c[#c + 1], p[#p + 1] = id, id
      end
      local held = tonumber(f[2]) - tonumber(at)
      if held < 0 then held = 0 end
      local ready, wfq = levelOf(own, pool, cls, org)
      settleLevel(tenant, cls, held, charge, ready, wfq, f[4], f[5], f[6])
      if org ~= "" then
        settleLevel("@" .. org, cls, held, ocharge, cellKey_ready(own, pool, cls), cellKey_wfq(own, pool, cls), f[7], f[8], f[9])
      end
    end
  end
  if #gone == 0 then return 0 end

  rcall("HDEL", cellKey_slots(own), unpack(gone))
  for key, fields in pairs(incr) do
    for field, by in pairs(fields) do rcall("HINCRBY", key, field, by) end
  end
  for key, ids in pairs(zrem) do rcall("ZREM", key, unpack(ids)) end
  -- A release may make its holder eligible again when it leaves it at or just under its cap, or when the
  -- holder is in no ready set: as many releases of one counter as one HINCRBY, each judged at its count.
  for key, fields in pairs(runs) do
    for field, list in pairs(fields) do
      local left = rcall("HINCRBY", key, field, -#list) + #list
      for _, r in ipairs(list) do
        left = left - 1
        if left >= r.cap - 1 or r.noSeat then dirty[r.name] = true end
      end
    end
  end
  for key, w in pairs(wfqs) do
    local args = { "e", wfqNum(w.e) }
    for name, s in pairs(w.t) do
      args[#args + 1], args[#args + 2] = "v:" .. name, wfqNum(s.v)
      args[#args + 1], args[#args + 2] = "e:" .. name, wfqNum(s.e)
      args[#args + 1], args[#args + 2] = "c:" .. name, wfqNum(s.c)
    end
    rcall("HSET", key, unpack(args))
  end
  for key, members in pairs(scores) do
    local args = {}
    for member, v in pairs(members) do
      args[#args + 1], args[#args + 2] = wfqNum(v), member
    end
    rcall("ZADD", key, "XX", unpack(args))
  end
  local names = {}
  for name in pairs(dirty) do names[#names + 1] = name end
  if #names > 0 then rcall("SADD", cellKey_dirty(own), unpack(names)) end
  return #gone
end

-- Releases a workflow's slot at once: noted and settled, and the record's copy of its lease deleted (a
-- start trusts that copy: includes/runStart.lua). Returns 1 and the tenant's retainSec as read (false:
-- none) when this call released it, 0 when it held none.
local function releaseSlot(own, id, now)
  local released, retainSec = noteRelease(own, id, now)
  settleReleased(own)
  rcall("HDEL", cellKey_workflow(own, id), "lease")
  return released, retainSec
end
