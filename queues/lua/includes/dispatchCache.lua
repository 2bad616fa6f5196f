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
  its workflows moved, the slot leases in one HSET, and the exec queue's new ids in one LPUSH and one
  RPUSH (the same list as one push per move: the two ends do not mix).
]]
local held
local function holdNothing()
  held = { incr = {}, set = {}, leases = {}, head = {}, tail = {} }
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

local function writeHeld()
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
local function card(cls)
  if cards[cls] == nil then cards[cls] = rcall("ZCARD", readyKeys[cls]) end
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

