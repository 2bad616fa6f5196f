--[[
  Part of dispatch-18.lua, kept apart for its length: what one call keeps rather than going to Redis
  at every move. Uses the script's locals (own, readyKeys) and KEYS.

  Reads: what the loop would otherwise read again at every move, read once per call and kept in step
  with the call's own writes: the size of each class's ready set, each tenant's (or org's) caps and
  slots held, its charge and the charge of its runs in flight (wfq.lua), its ready-set members'
  scores (`seats`, includes/flows.lua reseat), its ingress queues' lengths (`depths`,
  includes/dispatchTake.lua takeHead) and the heads of the ready sets (`heads`, includes/headWindow.lua:
  one ZRANGE a set per call rather than one per move, for headOf). A recompute (refreshTenant) may
  change any of them, so it empties the cache (forget).

  Writes: those a move makes that the rest of the call never reads back from Redis (the cache holds
  them), held and made once when the loop ends, or before a recompute reads them (writeHeld): a
  tenant's (or org's) slot counters, ready-set member and WFQ state once per call however many of
  its workflows moved, the slot leases in one HSET, the exec queue's new ids in one LPUSH and one
  RPUSH (the same list as one push per move: the two ends do not mix), and the ready sets' re-seated
  members (`seatWrites`, includes/flows.lua reseat) in one ZREM and one ZADD per set: a member a
  move added and a later move of the same flow took out again is never written. A ready set is read
  from Redis again only through its window (includes/headWindow.lua), which first writes what is
  held (syncSeats), or by a recompute, which comes after writeHeld.
]]
local held
local function holdNothing()
  held = { incr = {}, set = {}, leases = {}, head = {}, tail = {}, zrem = {}, zadd = {} }
end
holdNothing()

local function fieldsOf(into, key)
  local fields = into[key]
  if not fields then
    fields = {}
    into[key] = fields
  end
  return fields
end

-- HINCRBY key field by, held.
local function holdIncr(key, field, by)
  local fields = fieldsOf(held.incr, key)
  fields[field] = (fields[field] or 0) + by
end

-- HSET key field value, held (the last value of a field is the one written; a number as wfqNum writes it,
-- so each is formatted once per call however many moves change it).
local function holdSet(key, field, value)
  fieldsOf(held.set, key)[field] = value
end

-- The slot lease of workflow `id`; its id onto the exec queue at `at` ("head" | "tail").
local function holdMove(id, lease, at)
  held.leases[#held.leases + 1] = id
  held.leases[#held.leases + 1] = lease
  held[at][#held[at] + 1] = id
end

-- The ready sets' writes a move makes (includes/flows.lua reseat), held: ZREM key member, ZADD key score member.
local seatWrites = {
  rem = function(key, member)
    local added = held.zadd[key]
    if added and added[member] then
      added[member] = nil
    else
      fieldsOf(held.zrem, key)[member] = true
    end
  end,
  add = function(key, score, member) fieldsOf(held.zadd, key)[member] = score end,
}

local function writeHeld()
  for key, members in pairs(held.zrem) do
    local args = {}
    for member in pairs(members) do args[#args + 1] = member end
    if #args > 0 then rcall("ZREM", key, unpack(args)) end
  end
  for key, members in pairs(held.zadd) do
    local args = {}
    for member, score in pairs(members) do
      args[#args + 1] = score
      args[#args + 1] = member
    end
    if #args > 0 then rcall("ZADD", key, unpack(args)) end
  end
  for key, fields in pairs(held.incr) do
    for field, by in pairs(fields) do rcall("HINCRBY", key, field, by) end
  end
  for key, fields in pairs(held.set) do
    local args = {}
    for field, value in pairs(fields) do
      args[#args + 1] = field
      args[#args + 1] = type(value) == "number" and wfqNum(value) or value
    end
    rcall("HSET", key, unpack(args))
  end
  if #held.leases > 0 then rcall("HSET", KEYS[10], unpack(held.leases)) end
  if #held.tail > 0 then rcall("LPUSH", KEYS[11], unpack(held.tail)) end
  if #held.head > 0 then rcall("RPUSH", KEYS[11], unpack(held.head)) end
  holdNothing()
end

local cards, capsOf, runOf, charges, seats, depths, heads = {}, {}, {}, {}, {}, {}, {}
local function forget()
  cards, capsOf, runOf, charges, seats, depths, heads = {}, {}, {}, {}, {}, {}, {}
end
-- Before a ready set is read from Redis (its size, or its window again: includes/headWindow.lua): what is
-- held for it, written.
local function syncSeats(key)
  if next(held.zrem[key] or {}) or next(held.zadd[key] or {}) then writeHeld() end
end
-- Whether sorted set `key` has a member, with what this call holds for it counted (its window, else Redis).
local function nonEmpty(key)
  local w = heads[key]
  if w and #w.m > 0 then return true end
  if w and w.whole then return false end
  syncSeats(key)
  return rcall("EXISTS", key) == 1
end
local function card(cls)
  if cards[cls] == nil then
    syncSeats(readyKeys[cls])
    cards[cls] = rcall("ZCARD", readyKeys[cls])
  end
  return cards[cls]
end
local function capsFor(name)
  if capsOf[name] == nil then capsOf[name] = readCaps(own, name) or false end
  return capsOf[name] or nil
end
local function runningFor(name)
  if runOf[name] == nil then runOf[name] = { readRunning(own, name) } end
  return runOf[name][1], runOf[name][2]
end
-- wfqCharge, and the charge as a lease writes it (formatted once per call).
local function chargeFor(key, name)
  local k = key .. "\0" .. name
  if charges[k] == nil then
    local charge, inflight = wfqCharge(key, name)
    charges[k] = { charge, inflight, wfqNum(charge) }
  end
  return charges[k][1], charges[k][2], charges[k][3]
end
-- wfqServe, its writes held, and the served flow's runs in flight charged `charge` more.
local function serve(key, name, v, charge, weight, inflight)
  charges[key .. "\0" .. name][2] = inflight + charge
  local nv, fields = wfqServe(name, v, charge, weight, inflight)
  for i = 1, #fields, 2 do holdSet(key, fields[i], fields[i + 1]) end
  return nv
end

