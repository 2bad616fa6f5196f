--[[
  A workflow ended: what it leaves behind is kept for its tenant's retention, then Redis erases it.
  Its record, its step results and its idempotency key (the record's `idem`, the key's sha256)
  expire after the tenant's `retainSec` (<cell>:tp:<t>, synced from the policy's erasureAfterDays),
  else `defaultTtl` (the deployment's FAIRLANE_RECORD_TTL_SEC). An idempotency key only ever
  expires sooner than it would have (EXPIRE LT). Every way a workflow ends calls this; the
  explicit erasure (eraseEnded-1.lua) deletes the same keys at once.
]]
--- @include "keys"

-- `retainSec`: the tenant's, when the caller already read it (releaseSlot's second result); nil: read here.
-- `noSteps`: the caller knows the workflow has no steps hash (a run that wrote no step, first started): no EXPIRE.
local function expireEnded(own, id, tenant, idem, defaultTtl, retainSec, noSteps)
  if retainSec == nil and tenant then retainSec = rcall("HGET", cellKey_tenantCaps(own, tenant), "retainSec") end
  local ttl = tonumber(retainSec or "") or defaultTtl
  rcall("EXPIRE", cellKey_workflow(own, id), ttl)
  if not noSteps then rcall("EXPIRE", cellKey_steps(own, id), ttl) end
  if tenant and idem then rcall("EXPIRE", cellKey_idempotency(own, tenant, idem), ttl, "LT") end
end
