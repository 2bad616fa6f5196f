--[[
  Erases one page of a tenant's ended workflows, oldest first: every key a workflow that ended
  before ARGV[4] left behind (its record with result and error, its step results, its
  idempotency key, any job hash of it left in an ingress, exec, parked or review queue, with its logs,
  and its entry in BullMQ's completed/failed sets, a review item), and its run-list entry. Queued,
  running, parked and in-review workflows, and those that ended at or after ARGV[4], are counted and left as they are:
  erasure never touches work that has not ended. Entries whose record already expired (its
  tenant's retention, includes/endRecord.lua) are dropped from the run list.

  KEYS[1]  the tenant's run list <cell>:runs:<t> (a stream: entry IDs Redis's time of each admission, field w the id),
           or, ARGV[8] = "wfs", its index as written before 2026-12-05 <cell>:wfs:<t> (a zset: members
           "<13-digit enqueuedAt>|<id>", score 0)
  ARGV[1]  cell own-key prefix   ARGV[2] cell BullMQ prefix   ARGV[3] tenant
  ARGV[4]  before (epoch ms)     ARGV[5] start ("-", or "(" .. the last entry ID or member of the previous page)
  ARGV[6]  end, exclusive of what was enqueued after `before` (a workflow that ended before then was
           enqueued before it): "(" .. "<ms>-0", or "(" .. "<13-digit before>|"
  ARGV[7]  page size             ARGV[8] "runs" or "wfs": which KEYS[1] is

  Returns {examined, erased, alreadyGone, queued, running, parked (or in review), endedLater, last entry ID or member or ""}
]]
local rcall = redis.call
--- @include "keys"
local own, bull, tenant, before = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local stream = ARGV[8] == "runs"
-- Each entry as { its entry ID or member, the workflow id }.
local page = {}
if stream then
  for _, e in ipairs(rcall("XRANGE", KEYS[1], ARGV[5], ARGV[6], "COUNT", tonumber(ARGV[7]))) do page[#page + 1] = { e[1], e[2][2] } end
else
  for _, m in ipairs(rcall("ZRANGEBYLEX", KEYS[1], ARGV[5], ARGV[6], "LIMIT", 0, tonumber(ARGV[7]))) do
    page[#page + 1] = { m, string.match(m, "|(.+)$") }
  end
end
local function unlist(entry)
  if stream then rcall("XDEL", KEYS[1], entry) else rcall("ZREM", KEYS[1], entry) end
end
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

for _, e in ipairs(page) do
  local id = e[2]
  local rec = cellKey_workflow(own, id)
  local r = rcall("HMGET", rec, "tenant", "state", "finishedAt", "idem", "class", "enqueuedAt")
  if not r[1] then
    unlist(e[1])
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
      unlist(e[1])
      erased = erased + 1
    elseif (tonumber(r[6] or "") or 0) >= before then
      -- Enqueued at or after `before` (a run list is read a little past it, for clocks that differ): not counted.
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
return { #page, erased, gone, queued, running, parked, later, page[#page] and page[#page][1] or "" }
