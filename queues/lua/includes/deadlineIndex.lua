--[[
  The deadline index of a cell's queued workflows (queues/keys.ts `<cell>:deadlines`,
  `<cell>:deadlines:<bucket>`): so a workflow whose tenant cannot be dispatched (paused, at its
  cap, a pool with no capacity) still fails on time (expireQueued-2.lua sweeps it every second).

  Bucketed by the second of the deadline: a workflow's id is pushed on its second's list, and the
  second is in the zset (scored by its start) from its first id on. An id in a list costs ~25 bytes
  of Redis where a zset member costs ~130, and the dispatch that takes a workflow out of ingress
  leaves its id where it is: the sweep drops ids that are no longer queued when their second is
  due (an index of what might still be queued, not of what is). A workflow queued again (handed
  back, recovered) is pushed again; its first id, if still there, is dropped the same way or fails
  it once, never twice (the sweep reads the record's state).
]]
--- @include "keys"

-- The start of `deadlineAt`'s second (epoch ms): its bucket.
local function deadlineBucketOf(deadlineAt)
  return deadlineAt - deadlineAt % 1000
end

-- Indexes workflow `id`, queued at `now` with deadline `deadlineAt` (epoch ms, numbers). A second already
-- under way may have been swept and rescored to its next deadline (expireQueued-2.lua): one earlier
-- than that brings it forward.
local function indexDeadline(own, id, deadlineAt, now)
  local b = deadlineBucketOf(deadlineAt)
  if rcall("RPUSH", cellKey_deadlineBucket(own, b), id) == 1 then
    rcall("ZADD", cellKey_deadlines(own), b, b)
  elseif b <= now then
    rcall("ZADD", cellKey_deadlines(own), "LT", deadlineAt, b)
  end
end
