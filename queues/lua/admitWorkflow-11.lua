--[[
  Admits one workflow into its tenant's ingress queue, atomically with its
  idempotency key, the safety valves and its workflow record.

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

  Returns
    {"ok", id}              admitted
    {"duplicate", id}       the idempotency key already names workflow id
    {"tenant_full", depth}  the tenant's queued depth reached maxQueueDepth
    {"cell_full", queued}   the cell's queued total reached the safety valve
]]
local rcall = redis.call
local id = ARGV[1]

if tonumber(ARGV[8]) > 0 then
  local existing = rcall("GET", KEYS[4])
  if existing then
    local prefix = string.sub(KEYS[3], 1, #KEYS[3] - #id)
    if rcall("EXISTS", prefix .. existing) == 1 then
      return {"duplicate", existing}
    end
  end
end

local depth = rcall("LLEN", KEYS[8]) + rcall("LLEN", KEYS[9]) + rcall("LLEN", KEYS[10])
if depth >= tonumber(ARGV[6]) then
  return {"tenant_full", tostring(depth)}
end

local queued = tonumber(rcall("GET", KEYS[5]) or "0")
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
rcall("HSET", KEYS[3], unpack(flat))

if tonumber(ARGV[8]) > 0 then
  rcall("SET", KEYS[4], id, "EX", tonumber(ARGV[8]))
end
rcall("INCR", KEYS[5])
rcall("SADD", KEYS[6], ARGV[10])
if became then rcall("SADD", KEYS[7], ARGV[9]) end
-- Class A is always worth a look: more urgent demand may call for preemption.
if became or string.sub(ARGV[10], -2) == ".A" then rcall("ZADD", KEYS[11], 0, "w") end
return {"ok", id}
