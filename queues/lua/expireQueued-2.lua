--[[
  Fails queued workflows whose deadline has passed, whether or not their
  tenant can be dispatched (paused, at its cap, a pool with no capacity):
  the dispatch script fails an expired workflow only when it takes it.
  Every queued workflow that has a deadline is in the index KEYS[1]
  (includes/deadlineIndex.lua: a list of ids per second of deadline, the
  seconds in the zset). This script takes the due seconds, oldest first, and
  pops at most ARGV[2] ids per call: each one still queued past its deadline
  is failed; one still queued and due later in a second under way goes on the
  list of its deadline's millisecond ("@<ms>"), due then; the others
  (dispatched, ended, or queued again with another deadline) are dropped.
  A member that is a workflow id (scored by its deadline, as a version before
  2026-12-05 wrote the index) is taken out and swept the same way.
  The cost is O(due entries and ids since dropped), never O(queued).
  The job is removed from the tail of its wait list (LREM with a negative
  count searches from the tail, where the oldest jobs are), so the search
  stops at the job after passing only jobs enqueued before it.

  KEYS[1]  cell deadline index          <cell>:deadlines   (second -> its start; "@<ms>" -> ms)
  KEYS[2]  cell queued counter

  ARGV[1]  now (epoch ms)
  ARGV[2]  ids read per call
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
  local r = rcall("HMGET", rec, "state", "queue", "deadlineAt", "tenant", "idem", "class")
  local deadline = tonumber(r[3] or "")
  local q = jobQueue(r[2], r[4], r[6])
  if r[1] ~= "queued" or not q or not deadline then return nil end
  if deadline > now then return deadline end
  if rcall("LREM", bullQueueKey(bull, q, "wait"), -1, id) == 1 then
    deleteJob(bullJobKey(bull, q, id))
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
  if not b and string.sub(member, 1, 1) ~= "@" then
    rcall("ZREM", KEYS[1], member)
    sweep(member)
    read = read + 1
  else
    -- A second (or one deadline's millisecond) that is due: popped, in chunks of what is left of the budget.
    local list = cellKey_deadlineBucket(own, member)
    local ids = rcall("LPOP", list, budget - read) or {}
    for _, id in ipairs(ids) do
      local later = sweep(id)
      -- Due later in this second, which is under way: listed under its deadline's millisecond, due then.
      -- (Due in another second: queued again since, and listed there.)
      if later and b and deadlineBucketOf(later) == b then listDeadline(own, "@" .. later, later, id) end
    end
    read = read + #ids
    if rcall("EXISTS", list) == 0 then rcall("ZREM", KEYS[1], member) end
  end
end
return {expired, read}
