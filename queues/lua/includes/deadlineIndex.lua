--[[
  The deadline index of a cell's queued workflows (queues/keys.ts `<cell>:deadlines`,
  `<cell>:deadlines:<member>`): so a workflow whose tenant cannot be dispatched (paused, at its
  cap, a pool with no capacity) still fails on time (expireQueued-2.lua sweeps it every second).

  Bucketed by the second of the deadline: a workflow's id is pushed on its second's list, and the
  second is in the zset (member and score its start) from its first id on. An id in a list costs
  ~25 bytes of Redis where a zset member costs ~130, and the dispatch that takes a workflow out of
  ingress leaves its id where it is: the sweep drops ids that are no longer queued when their
  second is due (an index of what might still be queued, not of what is). A workflow queued again
  (handed back, recovered) is pushed again; its first id, if still there, is dropped the same way
  or fails it once, never twice (the sweep reads the record's state). A second is due from its
  start: the sweep pops it whole, and an id it finds still queued and due later in that second
  goes on a list of its own deadline's millisecond (member "@<ms>", scored by it), due then.
]]
--- @include "keys"

-- The start of `deadlineAt`'s second (epoch ms): its bucket.
local function deadlineBucketOf(deadlineAt)
  return deadlineAt - deadlineAt % 1000
end

-- Pushes `id` on the list of index member `member`, due at `dueAt`; the member is indexed with its first id.
local function listDeadline(own, member, dueAt, id)
  if rcall("RPUSH", cellKey_deadlineBucket(own, member), id) == 1 then rcall("ZADD", cellKey_deadlines(own), dueAt, member) end
end

-- Indexes workflow `id`, queued with deadline `deadlineAt` (epoch ms, a number).
local function indexDeadline(own, id, deadlineAt)
  local b = deadlineBucketOf(deadlineAt)
  listDeadline(own, b, b, id)
end
