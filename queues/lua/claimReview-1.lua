--[[
  A reviewer of pool ARGV[2] claims the pool's next review item by the fair rule
  (includes/review.lua), with a lease until ARGV[3] + ARGV[4]. Items whose lease lapsed go back
  in line first. The claim is in the item's tenant's trail: who saw the request, and when.

  KEYS[1] the pool's leases <cell>:rvl:<pool>
  ARGV[1] cell own-key prefix   ARGV[2] pool   ARGV[3] now   ARGV[4] lease ms   ARGV[5] claimant (reviewer:<key id>)

  Returns nil | {id, field, value, ...} (the item's hash)
]]
local rcall = redis.call
--- @include "keys"
--- @include "trail"
--- @include "review"
local own, pool, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
for _, id in ipairs(rcall("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, 100)) do
  rcall("ZREM", KEYS[1], id)
  local it = reviewItem(own, id)
  if it and it.state == "claimed" and it.pool == pool then
    rcall("HDEL", cellKey_review(own, id), "claimant", "leaseUntil")
    rcall("HSET", cellKey_review(own, id), "state", "pending")
    reviewEnqueue(own, pool, it.cls, it.tenant, id, it.createdAt)
  end
end
local id = reviewTake(own, pool)
if not id then return nil end
local item = cellKey_review(own, id)
local leaseUntil = now + tonumber(ARGV[4])
rcall("HSET", item, "state", "claimed", "claimant", ARGV[5], "leaseUntil", leaseUntil)
rcall("HINCRBY", item, "claims", 1)
rcall("ZADD", KEYS[1], leaseUntil, id)
trail(own, rcall("HGET", item, "tenant"), id, "review-claimed", ARGV[5], pool)
local out = { id }
for _, v in ipairs(rcall("HGETALL", item)) do out[#out + 1] = v end
return out
