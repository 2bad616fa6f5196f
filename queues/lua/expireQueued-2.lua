--[[
  Fails queued workflows whose deadline has passed, whether or not their
  tenant can be dispatched (paused, at its cap, a pool with no capacity):
  the dispatch script fails an expired workflow only when it takes it.
  Every queued workflow that has a deadline is in the index KEYS[1]
  (includes/deadlineIndex.lua: a list of ids per second of deadline, the
  seconds in the zset). This script takes the due seconds, oldest first, and
  reads at most about ARGV[2] ids per call:
    - a second that has passed whole: its ids are popped; each one still
      queued is failed, the others (dispatched, ended, or queued again with
      another deadline) are dropped;
    - the second under way (its start <= now): its ids are read; those due
      are failed, those still queued and due later in it are kept, and the
      second is rescored to the earliest of those, so it is due again then
      and no sooner (one list per second: read at most once per sweep).
  A member that is a workflow id (scored by its deadline, as a version before
  2026-12-05 wrote the index) is taken out and swept the same way.
  The cost is O(due entries and ids since dropped), never O(queued).
  The job is removed from the tail of its wait list (LREM with a negative
  count searches from the tail, where the oldest jobs are), so the search
  stops at the job after passing only jobs enqueued before it.

  KEYS[1]  cell deadline index          <cell>:deadlines   (second -> its start, or its earliest deadline to come)
  KEYS[2]  cell queued counter

  ARGV[1]  now (epoch ms)
  ARGV[2]  ids read per call (about: a second under way is read whole)
  ARGV[3]  cell own-key prefix          <cell>
  ARGV[4]  cell BullMQ prefix           <root>:{<root>.<cell>}
  ARGV[5]  record TTL in seconds once a workflow ends

  Returns {expired, read}
]]
local rcall = redis.call
--- @include "keys"
--- @include "queuedBytes"
--- @include "moveJob"
--- @include "endRecord"
--- @include "trail"
--- @include "deadlineIndex"
local now, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local own, bull = ARGV[3], ARGV[4]
local expired, read = 0, 0

-- Workflow `id`, read from the index: failed when it is still queued and its deadline has passed.
-- Returns its deadline when it is still queued and due later (else nil).
local function sweep(id)
  local rec = cellKey_workflow(own, id)
  local r = rcall("HMGET", rec, "state", "queue", "deadlineAt", "tenant", "idem")
  local deadline = tonumber(r[3] or "")
  if r[1] ~= "queued" or not r[2] or not deadline then return nil end
  if deadline > now then return deadline end
  if rcall("LREM", bullQueueKey(bull, r[2], "wait"), -1, id) == 1 then
    deleteJob(bullJobKey(bull, r[2], id))
    rcall("DECR", KEYS[2])
    queuedBytes(own, rec, r[4], -1)
  end
  rcall("HSET", rec, "state", "failed", "finishedAt", now, "errorCode", "DEADLINE_EXCEEDED",
    "errorMessage", "the deadline passed while the workflow was queued; it was never started")
  expireEnded(own, id, r[4], r[5], tonumber(ARGV[5]))
  trail(own, r[4], id, "ended", "dispatcher", "failed DEADLINE_EXCEEDED")
  expired = expired + 1
  return nil
end

for _, member in ipairs(rcall("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, budget)) do
  if read >= budget then break end
  local b = string.match(member, "^%d+$") and tonumber(member)
  if not b then
    rcall("ZREM", KEYS[1], member)
    sweep(member)
    read = read + 1
  else
    local list = cellKey_deadlineBucket(own, member)
    if now >= b + 999 then
      -- Passed whole: every id's deadline in it has passed (one still queued and due later was
      -- queued again with another deadline, and is in that second's list).
      local ids = rcall("LPOP", list, budget - read) or {}
      for _, id in ipairs(ids) do sweep(id) end
      read = read + #ids
      if rcall("EXISTS", list) == 0 then rcall("ZREM", KEYS[1], member) end
    else
      local ids = rcall("LRANGE", list, 0, -1)
      local keep, next = {}, nil
      for _, id in ipairs(ids) do
        local later = sweep(id)
        if later and deadlineBucketOf(later) == b then
          keep[#keep + 1] = id
          if not next or later < next then next = later end
        end
      end
      read = read + #ids
      rcall("DEL", list)
      if next then
        -- In chunks: unpack() of a long table would overflow Lua's C stack.
        for i = 1, #keep, 1000 do rcall("RPUSH", list, unpack(keep, i, math.min(i + 999, #keep))) end
        rcall("ZADD", KEYS[1], next, member)
      else
        rcall("ZREM", KEYS[1], member)
      end
    end
  end
end
return {expired, read}
