--[[
  Admits one workflow into its tenant's ingress queue, atomically with its
  idempotency key, the monthly budgets, the safety valves and its workflow record.

  Idempotency (Stripe's convention): the key's value is "<id> <request hash>",
  the hash of the canonical request (type, class, payload, deadline). The same
  key with the same request names the first workflow ("duplicate"); with a
  different request it is refused ("conflict"), never silently answered with
  a workflow that is not what was asked for. A value without a hash (written
  before hashes were kept) still replays.

  The job is written exactly as BullMQ 6.7's addStandardJob writes a job with a
  custom id (HMSET name data opts timestamp delay priority; LPUSH wait), so
  BullMQ's Queue.getJob / getState / Bull Board read it as their own. No marker
  is added: nothing consumes ingress queues with a BullMQ Worker.

  KEYS[1]  ingress wait list            <cell>:ingress.<t>.<class>:wait
  KEYS[2]  job hash                     <cell>:ingress.<t>.<class>:<id>
  KEYS[3]  workflow record              <cell>:fl:wf:<id>
  KEYS[4]  idempotency key              <cell>:fl:idem:<t>:<sha256> (unused when ARGV[8] = 0)
  KEYS[5]  cell queued counter
  KEYS[6]  cell set of ingress queue names
  KEYS[7]  cell dirty set (tenants whose readiness the dispatcher recomputes)
  KEYS[8..10] the tenant's ingress wait lists for A, B, C (tenant queue depth)
  KEYS[11] cell wake marker (wakes a blocked dispatcher)
  KEYS[12] the tenant's queued payload bytes  <cell>:fl:qbytes:<t>  (includes/queuedBytes.lua)
  KEYS[13] cell deadline index          <cell>:fl:deadlines (includes/deadlineIndex.lua; expireQueued-2.lua fails
           the due ones still queued)
  KEYS[14] the tenant's run list        <cell>:fl:runs:<t> (a stream; src/workflows/list.ts)
  KEYS[15] the tenant's spend this month  <cell>:fl:spend:<t>:<yyyymm> (src/runtime/budget.ts)
  KEYS[16] its org's spend this month     <cell>:fl:spend:@<org>:<yyyymm>, or KEYS[15] again when it has no org budget

  ARGV[1]  workflow id (also the BullMQ job id)
  ARGV[2]  job name (workflow type)
  ARGV[3]  job data (JSON)
  ARGV[4]  job opts (JSON)
  ARGV[5]  now (epoch ms, from the caller's clock)
  ARGV[6]  tenant maxQueueDepth
  ARGV[7]  cell max queued (global safety valve)
  ARGV[8]  idempotency TTL in seconds, 0 when the request has no idempotency key
  ARGV[9]  tenant
  ARGV[10] ingress queue name
  ARGV[11] workflow record fields (JSON object of strings)
  ARGV[12] payload bytes (kept in the record's `bytes`, added to KEYS[12])
  ARGV[13] tenant maxQueueBytes
  ARGV[14] request hash (sha256 hex of the canonical request; "" without an idempotency key)
  ARGV[15] who admits it, for the tenant's audit trail (key:<api key id>; includes/trail.lua)
  ARGV[16] the cell's own-key prefix (the trail's key derives from it)
  ARGV[17] the tenant's monthly budget, micro-dollars
  ARGV[18] its org's monthly budget, micro-dollars; -1 when it has none

  Returns
    {"ok", id}              admitted
    {"duplicate", id}       the idempotency key already names workflow id, for the same request
    {"conflict", id}        the idempotency key names workflow id, admitted for a different request
    {"budget_exceeded", "tenant"|"org"}  the tenant's month spend reached its monthly budget, or its org's
                            reached the org's (the tenant's own is named first)
    {"tenant_full", depth}  the tenant's queued depth reached maxQueueDepth
    {"tenant_bytes_full", bytes}  the tenant's queued bytes plus this payload would pass maxQueueBytes
    {"cell_full", queued}   the cell's queued total reached the safety valve
]]
local rcall = redis.call
--- @include "trail"
--- @include "deadlineIndex"
local id = ARGV[1]

if tonumber(ARGV[8]) > 0 then
  local existing = rcall("GET", KEYS[4])
  if existing then
    local first, hash = string.match(existing, "^(%S+) ?(%S*)$")
    local prefix = string.sub(KEYS[3], 1, #KEYS[3] - #id)
    if first and rcall("EXISTS", prefix .. first) == 1 then
      if hash ~= "" and hash ~= ARGV[14] then return {"conflict", first} end
      return {"duplicate", first}
    end
  end
end

-- A spent month refuses new work; a request the idempotency key already admitted is still answered (above).
-- Read here rather than by the caller beforehand: exact against concurrent spend, and no round trip of its own.
local spent = rcall("MGET", KEYS[15], KEYS[16])
if tonumber(spent[1] or "0") >= tonumber(ARGV[17]) then return {"budget_exceeded", "tenant"} end
local orgBudget = tonumber(ARGV[18])
if orgBudget >= 0 and tonumber(spent[2] or "0") >= orgBudget then return {"budget_exceeded", "org"} end

local bytes = tonumber(ARGV[12])
local counters = rcall("MGET", KEYS[12], KEYS[5])
local queued = tonumber(counters[2] or "0")

-- The tenant's queued workflows are among the cell's: while the cell holds fewer than the tenant's
-- maxQueueDepth, so does the tenant, and its queues need not be counted.
if queued >= tonumber(ARGV[6]) then
  local depth = rcall("LLEN", KEYS[8]) + rcall("LLEN", KEYS[9]) + rcall("LLEN", KEYS[10])
  if depth >= tonumber(ARGV[6]) then
    return {"tenant_full", tostring(depth)}
  end
end

local queuedBytes = tonumber(counters[1] or "0")
if queuedBytes + bytes > tonumber(ARGV[13]) then
  return {"tenant_bytes_full", tostring(queuedBytes)}
end

if queued >= tonumber(ARGV[7]) then
  return {"cell_full", tostring(queued)}
end

rcall("HMSET", KEYS[2], "name", ARGV[2], "data", ARGV[3], "opts", ARGV[4],
      "timestamp", ARGV[5], "delay", 0, "priority", 0)
-- Only a queue going from empty to not empty can change the tenant's readiness.
local became = rcall("LPUSH", KEYS[1], id) == 1

local fields = cjson.decode(ARGV[11])
local flat = {}
for k, v in pairs(fields) do
  flat[#flat + 1] = k
  flat[#flat + 1] = v
end
if bytes > 0 then
  flat[#flat + 1] = "bytes"
  flat[#flat + 1] = ARGV[12]
end
rcall("HSET", KEYS[3], unpack(flat))
-- Indexed so a workflow whose tenant cannot be dispatched still fails on time.
if fields.deadlineAt then indexDeadline(ARGV[16], id, tonumber(fields.deadlineAt)) end

if tonumber(ARGV[8]) > 0 then
  rcall("SET", KEYS[4], id .. " " .. ARGV[14], "EX", tonumber(ARGV[8]))
end
-- The run list: one entry per workflow, its ID Redis's time of the admission, as the trail's (the
-- dispatcher trims it once a minute, not each admission).
rcall("XADD", KEYS[14], "*", "w", id)
rcall("INCR", KEYS[5])
if bytes > 0 then rcall("INCRBY", KEYS[12], ARGV[12]) end
-- A queue that already held a job is already in the set (every path that pushes adds it).
if became then
  rcall("SADD", KEYS[6], ARGV[10])
  rcall("SADD", KEYS[7], ARGV[9])
end
trail(ARGV[16], ARGV[9], id, "admitted", ARGV[15])
-- Class A is always worth a look: more urgent demand may call for preemption.
if became or string.sub(ARGV[10], -2) == ".A" then rcall("ZADD", KEYS[11], 0, "w") end
return {"ok", id}
