--[[
  Releases slot leases whose workflow no longer runs, so a kill -9 anywhere
  leaks nothing: the workflow already ended (its finisher died before the
  release), or its exec job is gone or finished by BullMQ (e.g. failed after
  stalling too often) — then the record fails with the reason, if it had none.
  Leases younger than the grace period are left alone (a move in flight).

  KEYS[1]  cell slots hash
  ARGV[1]  cell own-key prefix   ARGV[2] cell BullMQ prefix   ARGV[3] now
  ARGV[4]  grace ms   ARGV[5] HSCAN cursor   ARGV[6] HSCAN count   ARGV[7] record TTL s

  Returns {next cursor, released}
]]
local rcall = redis.call
--- @include "keys"
--- @include "releaseSlot"
--- @include "endRecord"
--- @include "trail"
local own, bull, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- Releases noted but not yet settled first: their leases are not lost, and are released once.
settleReleased(own)
local scan = rcall("HSCAN", KEYS[1], ARGV[5], "COUNT", tonumber(ARGV[6]))
local released = 0
local items = scan[2]
for i = 1, #items, 2 do
  local id, lease = items[i], items[i + 1]
  local pool, at = string.match(lease, "^[^|]+|[ABC]|([^|]+)|(%d+)")
  local rec = cellKey_workflow(own, id)
  local state = rcall("HGET", rec, "state")
  local execKey = bullJobKey(bull, execQueue(pool), id)
  if state == "completed" or state == "failed" or state == "cancelled" or not state then
    released = released + releaseSlot(own, id, now)
  elseif now - tonumber(at) > tonumber(ARGV[4]) then
    local exists = rcall("EXISTS", execKey) == 1
    local finished = exists and rcall("HGET", execKey, "finishedOn")
    if not exists or finished then
      local reason = (exists and rcall("HGET", execKey, "failedReason")) or "the exec job disappeared"
      rcall("HSET", rec, "state", "failed", "finishedAt", now, "errorCode", "LOST",
        "errorMessage", "the workflow's run was lost: " .. reason)
      local who = rcall("HMGET", rec, "tenant", "idem")
      expireEnded(own, id, who[1], who[2], tonumber(ARGV[7]))
      if who[1] then trail(own, who[1], id, "ended", "dispatcher", "failed LOST") end
      released = released + releaseSlot(own, id, now)
    end
  end
end
return { scan[1], released }
