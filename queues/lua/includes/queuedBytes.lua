--[[
  A tenant's queued payload bytes (`<cell>:qbytes:<t>`, bounded by its
  maxQueueBytes in includes/admit.lua) follow its workflows in and out of
  ingress: every place that INCRs the cell's `queued` counter adds the
  workflow's bytes, every place that DECRs it takes them away. The amount is
  the record's `bytes` field, written once at admission, so the two always
  match (a workflow admitted before the field existed counts 0 both ways).
  Only a counter: it never changes what the dispatcher decides.
]]
--- @include "keys"
local function queuedBytesBy(own, bytes, tenant, sign)
  bytes = tonumber(bytes or "0") or 0
  if bytes <= 0 or not tenant then return end
  local key = cellKey_queuedBytes(own, tenant)
  if sign > 0 then
    rcall("INCRBY", key, bytes)
  elseif rcall("DECRBY", key, bytes) <= 0 then
    rcall("DEL", key)
  end
end

-- The same, reading the amount from the record (callers that have not read it already).
local function queuedBytes(own, rec, tenant, sign)
  queuedBytesBy(own, rcall("HGET", rec, "bytes"), tenant, sign)
end
