--[[
  Erases one page of a tenant's ended workflows, oldest first: every key a workflow that ended
  before ARGV[4] left behind (its record with result and error, its step results, its
  idempotency key, any job hash of it left in an ingress, exec, parked or review queue, with its logs,
  and its entry in BullMQ's completed/failed sets, a review item), and its run-list entry. Queued,
  running, parked and in-review workflows, and those that ended at or after ARGV[4], are counted and left as they are:
  erasure never touches work that has not ended. Entries whose record already expired (its
  tenant's retention, includes/endRecord.lua) are dropped from the run list.

  KEYS[1]  the tenant's run-list index <cell>:wfs:<t> (members "<13-digit enqueuedAt>|<id>", score 0)
  ARGV[1]  cell own-key prefix   ARGV[2] cell BullMQ prefix   ARGV[3] tenant
  ARGV[4]  before (epoch ms)     ARGV[5] lex start ("-", or "(" .. the last member of the previous page)
  ARGV[6]  lex end: "(" .. "<13-digit before>|" (a workflow that ended before then was enqueued before it)
  ARGV[7]  page size

  Returns {examined, erased, alreadyGone, queued, running, parked (or in review), endedLater, last member or ""}
]]
local rcall = redis.call
--- @include "keys"
local own, bull, tenant, before = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local page = rcall("ZRANGEBYLEX", KEYS[1], ARGV[5], ARGV[6], "LIMIT", 0, tonumber(ARGV[7]))
local pools = rcall("SMEMBERS", cellKey_pools(own))
local erased, gone, queued, running, parked, later = 0, 0, 0, 0, 0, 0
local ENDED = { completed = true, failed = true, cancelled = true }

local function deleteJobEverywhere(id, cls)
  local queues = { PARKED_QUEUE, REVIEW_QUEUE }
  if cls then queues[#queues + 1] = ingressQueue(tenant, cls) end
  for _, p in ipairs(pools) do queues[#queues + 1] = execQueue(p) end
  for _, q in ipairs(queues) do
    local jobKey = bullJobKey(bull, q, id)
    rcall("DEL", jobKey, jobKey .. ":logs")
    rcall("ZREM", bullQueueKey(bull, q, "completed"), id)
    rcall("ZREM", bullQueueKey(bull, q, "failed"), id)
  end
end

for _, member in ipairs(page) do
  local id = string.match(member, "|(.+)$")
  local rec = cellKey_workflow(own, id)
  local r = rcall("HMGET", rec, "tenant", "state", "finishedAt", "idem", "class")
  if not r[1] then
    rcall("ZREM", KEYS[1], member)
    gone = gone + 1
  elseif r[1] == tenant then
    if ENDED[r[2]] and (tonumber(r[3] or "") or before) < before then
      if r[4] then
        local idemKey = cellKey_idempotency(own, tenant, r[4])
        local v = rcall("GET", idemKey)
        -- Only the key that still names this workflow (a key is reused once it expired).
        if v and (v == id or string.sub(v, 1, #id + 1) == id .. " ") then rcall("DEL", idemKey) end
      end
      rcall("DEL", rec, cellKey_steps(own, id), cellKey_review(own, id))
      deleteJobEverywhere(id, r[5])
      rcall("ZREM", KEYS[1], member)
      erased = erased + 1
    elseif r[2] == "queued" then
      queued = queued + 1
    elseif r[2] == "parked" or r[2] == "review" then
      parked = parked + 1
    elseif ENDED[r[2]] then
      later = later + 1
    else
      running = running + 1
    end
  end
end
return { #page, erased, gone, queued, running, parked, later, page[#page] or "" }
