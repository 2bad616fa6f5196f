--[[
  Cancels a workflow for its tenant.
  A queued, parked or in-review workflow is taken out of its queue (and its
  review item closed) and ends `cancelled` here, atomically. A dispatched or running one gets `cancelRequested`, and
  the caller signals its exec worker, which ends it `cancelled`.

  KEYS[1]  workflow record              <cell>:fl:wf:<id>
  KEYS[2]  cell queued counter

  ARGV[1]  workflow id
  ARGV[2]  tenant asking (another tenant's workflow answers "missing")
  ARGV[3]  now (epoch ms)
  ARGV[4]  BullMQ prefix of the cell     <root>:{<root>.<cell>}
  ARGV[5]  the cell's signals channel (exec workers abort the run on "cancel <id>")
  ARGV[6]  the cell's own-key prefix     <cell>  (a parked workflow leaves its dependency's index;
           a queued one's payload bytes leave <cell>:qbytes:<t>, includes/queuedBytes.lua)
  ARGV[7]  record TTL in seconds (an ended record expires, like every other way a workflow ends)
  ARGV[8]  the record's error message (who cancelled)
  ARGV[9]  who cancels, for the tenant's trail (key:<api key id>, operator:<name>)

  The queue's wait list and job hash are derived from the record's `queue`
  field, or for a queued workflow without one (as admitted) its tenant's ingress
  queue of its class; they share the cell's hash tag, so the script stays on one slot.

  Returns {"missing"} | {"cancelled"} | {"signalled"} | {"final", state}
]]
local rcall = redis.call
--- @include "keys"
--- @include "queuedBytes"
--- @include "moveJob"
--- @include "endRecord"
--- @include "trail"
--- @include "review"
local id = ARGV[1]
local rec = rcall("HMGET", KEYS[1], "tenant", "state", "queue", "idem", "class")
if not rec[1] or rec[1] ~= ARGV[2] then
  return {"missing"}
end
local state = rec[2]
if state == "queued" or state == "parked" or state == "review" then
  local q = jobQueue(rec[3], rec[1], rec[5])
  local removed = q and rcall("LREM", bullQueueKey(ARGV[4], q, "wait"), 1, id) or 0
  if removed == 1 then
    deleteJob(bullJobKey(ARGV[4], q, id))
    if state == "queued" then
      rcall("DECR", KEYS[2])
      queuedBytes(ARGV[6], KEYS[1], rec[1], -1)
    end
  end
  local dep = rcall("HGET", KEYS[1], "parkedDep")
  if state == "parked" and dep then rcall("ZREM", cellKey_parked(ARGV[6], dep), id) end
  local item = state == "review" and reviewItem(ARGV[6], id)
  if item then reviewClose(ARGV[6], id, item) end
  rcall("HSET", KEYS[1], "state", "cancelled", "finishedAt", ARGV[3],
        "errorCode", "CANCELLED", "errorMessage", ARGV[8])
  expireEnded(ARGV[6], id, rec[1], rec[4], tonumber(ARGV[7]))
  trail(ARGV[6], rec[1], id, "ended", ARGV[9], "cancelled")
  return {"cancelled"}
end
if state == "dispatched" or state == "running" then
  rcall("HSET", KEYS[1], "cancelRequested", ARGV[3])
  rcall("PUBLISH", ARGV[5], "cancel " .. id)
  trail(ARGV[6], rec[1], id, "cancel-requested", ARGV[9])
  return {"signalled"}
end
return {"final", state}
