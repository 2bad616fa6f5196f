--[[
  The tenant's audit trail (<cell>:trail:<t>, a stream): one entry per state transition of each of
  its workflows, written by the script that makes the transition, atomically with it.
    wf   the workflow id ("" for an action on the tenant itself)
    ev   admitted | dispatched | started | preempt-requested | handed-back | parked | recovered |
         cancel-requested | ended | admin:<action>
    by   who: key:<api key id> (a producer), dispatcher, an exec worker's id, recovery, operator:<name>
    why  the cause: a pool, a dependency, a reason code, an outcome and its error code; never a
         payload, a result or a handler's message
  The entry id (Redis's ms time and a sequence) orders the trail and is the read and export cursor.
  Retention: the dispatcher trims entries older than the tenant's auditRetentionDays (queues/trail.ts).
]]
--- @include "keys"

local function trail(own, tenant, wf, ev, by, why)
  rcall("XADD", cellKey_trail(own, tenant), "*", "wf", wf, "ev", ev, "by", by or "", "why", why or "")
end
