--[[
  Takes one parked workflow out of the parked queue and its dependency's
  index: "requeue" makes it queued again (it resumes after its last finished
  step) and adds it to `requeued`, which lineUp then puts in its ingress
  queue; "fail" ends it failed with `code` and `message`. Either is in its tenant's trail, by `by`.
  Returns "requeued" | "failed" | "skipped" (not parked), and when it was parked.

  Where a requeued workflow goes: back in line by admission time (the record's
  enqueuedAt) among its tenant's queued workflows of its class. It was
  admitted before the work that arrived while it was parked, so it still goes
  ahead of that, but no longer to the very head: a later wave does not jump an
  earlier one still waiting, and a recovered Class A waits behind older Class
  A. Its class is unchanged, so a recovered Class B or C never goes before
  Class A: the dispatcher serves every ready Class A first (dispatch-18.lua).
  The job's move: includes/moveJob.lua.
]]
--- @include "keys"
--- @include "queuedBytes"
--- @include "moveJob"
--- @include "endRecord"
--- @include "trail"
--- @include "deadlineIndex"

-- How far lineUp looks into the head of a queue for workflows admitted no later than the
-- ones it places: normally only earlier recovered (or preempted) ones sit there, so it
-- stops at the first. Past this many, the rest go in behind these and ahead of the others.
local LINE_SCAN = 100

local function admittedAt(own, id)
  return tonumber(rcall("HGET", cellKey_workflow(own, id), "enqueuedAt") or "") or 0
end

-- Puts workflow `id`, waiting in queue `from` (parked, review), back in its ingress queue: queued again
-- (it resumes after its last finished step), in the deadline sweep's index again when it has a
-- deadline (`deadlineAt`: includes/deadlineIndex.lua), and in `requeued`, which lineUp then puts in line.
-- `requeued`: ingress queue name -> list of { id, at = enqueuedAt, n = order taken }.
local function requeueWaiting(own, bull, id, from, tenant, cls, enqueuedAt, deadlineAt, now, requeued)
  local rec = cellKey_workflow(own, id)
  rcall("LREM", bullQueueKey(bull, from, "wait"), 1, id)
  -- Not pushed on the ingress wait list here: lineUp puts the requeued ones in line.
  local q = ingressQueue(tenant, cls)
  moveJob(bullJobKey(bull, from, id), bull, q, id, now, nil, "copy")
  local batch = requeued[q]
  if not batch then
    batch = {}
    requeued[q] = batch
  end
  batch[#batch + 1] = { id = id, at = tonumber(enqueuedAt or "") or 0, n = #batch + 1 }
  rcall("INCR", cellKey_queued(own))
  queuedBytes(own, rec, tenant, 1)
  rcall("SADD", cellKey_queues(own), q)
  rcall("HSET", rec, "state", "queued", "queue", q)
  if deadlineAt then indexDeadline(own, id, tonumber(deadlineAt)) end
  rcall("SADD", cellKey_dirty(own), tenant)
  rcall("ZADD", cellKey_wake(own), 0, "w")
end

-- Ends workflow `id`, waiting in queue `from` (parked, review), failed with `code`: its job deleted, its trail told.
local function failWaiting(own, bull, id, from, tenant, idem, now, code, message, ttl, by)
  rcall("LREM", bullQueueKey(bull, from, "wait"), 1, id)
  deleteJob(bullJobKey(bull, from, id))
  rcall("HSET", cellKey_workflow(own, id), "state", "failed", "finishedAt", now, "errorCode", code, "errorMessage", message)
  expireEnded(own, id, tenant, idem, ttl)
  trail(own, tenant, id, "ended", by, "failed " .. code)
end

local function unpark(own, bull, id, now, action, ttl, code, message, requeued, by)
  local rec = cellKey_workflow(own, id)
  local r = rcall("HMGET", rec, "state", "tenant", "class", "parkedDep", "parkedAt", "enqueuedAt", "idem", "deadlineAt")
  if r[4] then rcall("ZREM", cellKey_parked(own, r[4]), id) end
  if r[1] ~= "parked" then return "skipped" end
  if action == "fail" then
    failWaiting(own, bull, id, PARKED_QUEUE, r[2], r[7], now, code, message, ttl, by)
    return "failed", r[5]
  end
  requeueWaiting(own, bull, id, PARKED_QUEUE, r[2], r[3], r[6], r[8], now, requeued)
  rcall("HSET", rec, "recoveredAt", now)
  trail(own, r[2], id, "recovered", by, r[4])
  return "requeued", r[5]
end

-- Puts each queue's requeued workflows in line by admission time (see the header), in one
-- pass per queue: takes out the head section admitted no later than the newest of them (the
-- head is the right end: the dispatcher RPOPs), merges them in, and pushes the section back.
-- Ties keep the ones already in line first, then the order unpark took them.
local function lineUp(own, bull, requeued)
  for q, batch in pairs(requeued) do
    table.sort(batch, function(a, b)
      if a.at ~= b.at then return a.at < b.at end
      return a.n < b.n
    end)
    local wait = bullQueueKey(bull, q, "wait")
    local newest = batch[#batch].at
    local ahead = {}
    for i = 1, LINE_SCAN do
      local id = rcall("LINDEX", wait, -i)
      if not id then break end
      local at = admittedAt(own, id)
      if at > newest then break end
      ahead[i] = { id = id, at = at }
    end
    if #ahead > 0 then rcall("LTRIM", wait, 0, -(#ahead + 1)) end
    local line, i, j = {}, 1, 1
    while i <= #ahead or j <= #batch do
      if j > #batch or (i <= #ahead and ahead[i].at <= batch[j].at) then
        line[#line + 1] = ahead[i].id
        i = i + 1
      else
        line[#line + 1] = batch[j].id
        j = j + 1
      end
    end
    -- Pushed last to first: the first in line ends at the right end, taken next.
    local pushed = {}
    for k = #line, 1, -1 do pushed[#pushed + 1] = line[k] end
    rcall("RPUSH", wait, unpack(pushed))
  end
end
