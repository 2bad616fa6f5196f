--[[
  Moving a BullMQ job from one queue of a cell to another, written once against BullMQ 6.7's
  layout (node_modules/bullmq/dist/esm/commands). Used by every move Fairlane makes:
    ingress -> exec     dispatch-18.lua (the dispatch)
    ingress -> parked   dispatch-18.lua (its dependency is down at dispatch)
    exec -> parked      parkRun-4.lua
    exec -> ingress     requeueRun-4.lua (preemption, shutdown, a lost slot)
    parked -> ingress   includes/unpark.lua (recovery, an operator's requeue)
  All the queues of a cell share its hash tag, so a move never leaves the slot.

  What the job is in its new queue: what addStandardJob-9.lua writes for a job with a custom id
  (the workflow id), no parent, repeat, deduplication, delay or priority, so Queue.getJob,
  getState, a Worker and Bull Board take it for one of their own:
    <bull>:<queue>:<id>     HASH name data opts timestamp delay priority (storeJob.lua); delay and
                            priority 0. Job.fromJSON reads these fields; `opts` is "{}" in every
                            queue: an exec job's attempts (BullMQ's default, no retry) and what is
                            kept of it once finished are the exec Worker's own options
                            (src/exec/execWorker.ts), so a job moves into the exec queue unchanged.
    <bull>:<queue>:wait     LIST the id (addJobInTargetList.lua). Workers take the right end
                            (RPOPLPUSH wait active, fetchNextJob.lua): "tail" is LPUSH, behind
                            every waiting job (BullMQ's default, FIFO); "head" is RPUSH, taken next
                            (BullMQ's `lifo`, and where moveJobFromActiveToWait puts a job back).
    <bull>:<queue>:marker   ZSET member "0" at score 0 (addBaseMarkerIfNeeded.lua): a Worker blocked
                            in BZPOPMIN on it wakes up and fetches (and its fetch adds the marker
                            again, waking the next). Only for a queue Workers consume (exec):
                            addJobMarker, once per script call however many jobs moved; with more
                            members at score 0 ("a2", "a3", ...) it wakes that many Workers at once.
  Not written, unlike addStandardJob: the `id` counter (the id is given), the events stream
  <queue>:events ("added", "waiting": nothing reads QueueEvents of Fairlane's queues), the
  `prioritized` zset and `pc` counter (priority 0: a job in `wait` is all fetchNextJob needs),
  `meta` (addBaseMarkerIfNeeded's paused/concurrency check: Fairlane never pauses a queue nor sets
  a global concurrency, so the marker is added unconditionally).

  The old job: deleteJob deletes its hash and its `:logs` list, the two of removeJobKeys.lua's keys
  a Fairlane job can have (no flows: no :dependencies, :processed, :failed, :unsuccessful). Its
  place in its old wait list is the caller's (an ingress job is popped from it, a parked one taken
  out with LREM); a job a Worker holds is first taken back from it with takeFromWorker.
]]
--- @include "keys"

-- Takes job `id` (hash `jobKey`) back from the Worker running it, as BullMQ's
-- moveJobFromActiveToWait does (removeLock.lua): only with its lock token, then without the
-- lock, its entry in `stalled` (the stalled-job checker's) and its place in `active`. The
-- Worker then leaves it (the caller throws BullMQ's WaitingError). False when the lock is
-- not `token`'s (lapsed and taken by another worker, or gone): nothing changes.
local function takeFromWorker(jobKey, activeKey, stalledKey, id, token)
  if rcall("GET", jobKey .. ":lock") ~= token then return false end
  rcall("DEL", jobKey .. ":lock")
  rcall("SREM", stalledKey, id)
  rcall("LREM", activeKey, 1, id)
  return true
end

-- The queue a workflow's job is in, from its record's `queue`, `tenant` and `class`: the `queue` a move
-- wrote, or for one queued as admitted (no `queue`) its tenant's ingress queue of its class; nil when the
-- record names neither (src/admission/prepare.ts).
local function jobQueue(queue, tenant, cls)
  return queue or (tenant and cls and ingressQueue(tenant, cls)) or nil
end

-- Deletes a job's keys (its hash `jobKey` and its logs).
local function deleteJob(jobKey)
  rcall("DEL", jobKey, jobKey .. ":logs")
end

-- Moves job `id`, whose hash is `jobKey`, into queue `to` of the cell whose BullMQ prefix is
-- `bull`: its hash becomes <bull>:<to>:<id> and its id goes on <bull>:<to>:wait at `at`: "head",
-- "tail", or nil when the caller puts it in line itself. `how`:
--   "rename"  the old hash is an unstarted job with exactly the fields above (an ingress job):
--             RENAMEd (same hash tag: its data is not copied through Lua) and nothing rewritten:
--             its `timestamp` stays when it entered ingress (admitted, requeued or recovered; the
--             record's dispatchedAt is the move's time). Returns nil, changing nothing, when that
--             hash does not exist.
--   "copy"    a new hash from the old one's name and data, `timestamp` `now` (the move's time in
--             epoch ms) (a job a Worker ran has processedOn, ats, attemptsMade, ... which must not
--             follow it into a queue where it waits again), then the old job deleted (deleteJob).
-- Returns the new job key. No marker: see addJobMarker.
local function moveJob(jobKey, bull, to, id, now, at, how)
  local target = bullJobKey(bull, to, id)
  if how == "rename" then
    local renamed = redis.pcall("RENAME", jobKey, target)
    if type(renamed) == "table" and renamed.err then return nil end
  else
    local job = rcall("HMGET", jobKey, "name", "data")
    rcall("HMSET", target, "name", job[1], "data", job[2], "opts", "{}", "timestamp", now, "delay", 0, "priority", 0)
  end
  if at == "head" then
    rcall("RPUSH", bullQueueKey(bull, to, "wait"), id)
  elseif at == "tail" then
    rcall("LPUSH", bullQueueKey(bull, to, "wait"), id)
  end
  if how ~= "rename" then deleteJob(jobKey) end
  return target
end

-- Wakes Workers of queue `to` blocked waiting for a job (BullMQ's marker, see the header): one, or
-- `n` at once. A Worker takes a marker's score (0: fetch now), never its member, so any member
-- serves; "1" is left to BullMQ's delay marker.
local function addJobMarker(bull, to, n)
  local args = { 0, "0" }
  for i = 2, n or 1 do
    args[#args + 1] = 0
    args[#args + 1] = "a" .. i
  end
  rcall("ZADD", bullQueueKey(bull, to, "marker"), unpack(args))
end
