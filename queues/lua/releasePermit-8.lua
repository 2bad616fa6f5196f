--[[
  Gives a permit back, or abandons a place in the wait queue (a timeout, an
  abort), and wakes the waiters this lets in: only those that may take a
  permit now, named by id (includes/gate.lua). When nobody waits (the waiter
  expiry set does not exist) that is all: two commands, nothing published.

  With a spend (a tool call's cost: KEYS[7] names a month), the call's month totals grow in the same round trip,
  whether or not the permit was still held (a lapsed permit's call was made all the same):
  includes/spend.lua, as recordSpend-2.lua adds a model call's.

  KEYS[1] holders   KEYS[2] Class C holders   KEYS[3] A/B waiters
  KEYS[4] Class C waiters   KEYS[5] waiter expiry   KEYS[6] the org's holders (KEYS[1] when no org bound)
  KEYS[7] the tenant's month spend   KEYS[8] its org's month spend (KEYS[7] without an org)
          (both KEYS[1] when there is no spend: then ARGV[8] and ARGV[9] are not read)
  ARGV[1] permit / waiter id   ARGV[2] 1 when it is a Class C caller's
  ARGV[3] now   ARGV[4] mctc   ARGV[5] mctcBatch   ARGV[6] the cell's gate channel
  ARGV[7] the org's mctc (0: no org bound)
  ARGV[8] the spend in micro-dollars   ARGV[9] a new month key's TTL in seconds

  Returns {1 when a held permit was released else 0, and with a spend the tenant's and the org's new
  month totals in micro-dollars (the tenant's twice without an org)}.
]]
local rcall = redis.call
--- @include "gate"
--- @include "spend"

local g = { held = KEYS[1], heldC = KEYS[2], wait = KEYS[3], waitC = KEYS[4], waitExp = KEYS[5], orgHeld = KEYS[6],
  orgMctc = tonumber(ARGV[7]) }
local id, isC, now = ARGV[1], ARGV[2] == "1", tonumber(ARGV[3])

local out = {0}
if KEYS[7] ~= KEYS[1] then out[2], out[3] = spend(KEYS[7], KEYS[8], ARGV[8], ARGV[9]) end

local released = rcall("ZREM", g.held, id)
if released == 1 then
  if isC then rcall("ZREM", g.heldC, id) end
  if g.orgMctc > 0 then rcall("ZREM", g.orgHeld, id) end
elseif rcall("ZREM", g.waitExp, id) == 1 then
  rcall("ZREM", isC and g.waitC or g.wait, id)
else
  return out -- neither held nor waiting (already released, lapsed or expired): nothing else changes
end
out[1] = released
if rcall("EXISTS", g.waitExp) == 0 then return out end
expireHolders(g, now)
expireWaiters(g, now)
wakeEligible(g, tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])
return out
