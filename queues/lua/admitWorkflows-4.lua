--[[
  Admits up to ADMIT_CALL_ITEMS workflows of one cell, in order (includes/admit.lua): one script for
  many, so a bulk costs its producer and Redis one call per ADMIT_CALL_ITEMS workflows rather than
  one each (queues/lua/admitWorkflow.ts).

  KEYS[1]  cell queued counter
  KEYS[2]  cell set of ingress queue names
  KEYS[3]  cell dirty set (tenants whose readiness the dispatcher recomputes)
  KEYS[4]  cell wake marker (wakes a blocked dispatcher)
  The keys of each workflow are derived from the cell's prefixes (its job, wait lists, record, run list,
  idempotency key, queued bytes and the cell's deadline index: includes/keys.lua, includes/deadlineIndex.lua)
  or named by it (its month spend keys), all in the cell's hash slot (the caller checks the spend keys).

  ARGV[1]  the cell's own-key prefix   ARGV[2] the cell's BullMQ prefix
  then ITEM_ARGS per workflow, from ARGV[3]:
    +0 workflow id (also the BullMQ job id)   +1 workflow type (the job's name)   +2 job data (JSON)
    +3 now (epoch ms, from the caller's clock)   +4 tenant   +5 class (A | B | C)
    +6 workflow record fields (JSON object of strings)
    +7 payload bytes (kept in the record's `bytes`, added to the tenant's queued bytes)
    +8 tenant maxQueueDepth   +9 tenant maxQueueBytes   +10 cell max queued (global safety valve)
    +11 sha256 of the idempotency key ("": none)   +12 its TTL in seconds   +13 request hash
        (sha256 hex of the canonical request)
    +14 who admits it, for the tenant's audit trail (key:<api key id>)
    +15 the tenant's spend this month key  <cell>:fl:spend:<t>:<yyyymm> (src/runtime/budget.ts)
    +16 its org's, or +15 again when its org has no monthly budget
    +17 the tenant's monthly budget, micro-dollars   +18 its org's, -1 when it has none

  Returns, per workflow in order, {kind, value}:
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
--- @include "admit"
local ITEM_ARGS = 19
local s = admitCall(ARGV[1], ARGV[2], KEYS[1])
local k = { queues = KEYS[2], dirty = KEYS[3], wake = KEYS[4] }
local out = {}
for i = 3, #ARGV, ITEM_ARGS do
  out[#out + 1] = admitOne(s, k, {
    id = ARGV[i], type = ARGV[i + 1], data = ARGV[i + 2], now = ARGV[i + 3], tenant = ARGV[i + 4], cls = ARGV[i + 5],
    record = ARGV[i + 6], bytes = ARGV[i + 7], maxQueueDepth = ARGV[i + 8], maxQueueBytes = ARGV[i + 9],
    maxQueued = ARGV[i + 10], idemHash = ARGV[i + 11], idemTtl = ARGV[i + 12], requestHash = ARGV[i + 13],
    by = ARGV[i + 14], spendKey = ARGV[i + 15], orgSpendKey = ARGV[i + 16], budget = ARGV[i + 17],
    orgBudget = ARGV[i + 18],
  })
end
admitEnd(s)
return out
