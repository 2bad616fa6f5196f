--[[
  Gives a permit back (or abandons a wait) and, when a permit was freed and
  someone waits, tells the tenant's waiters in every process to try again.

  KEYS[1] holders   KEYS[2] Class C holders   KEYS[3] A/B waiters
  KEYS[4] Class C waiters   KEYS[5] waiter expiry
  ARGV[1] permit / waiter id   ARGV[2] gate channel   ARGV[3] tenant

  Returns 1 when a held permit was released, else 0.
]]
local rcall = redis.call
local released = rcall("ZREM", KEYS[1], ARGV[1])
rcall("ZREM", KEYS[2], ARGV[1])
rcall("ZREM", KEYS[3], ARGV[1])
rcall("ZREM", KEYS[4], ARGV[1])
rcall("ZREM", KEYS[5], ARGV[1])
if released == 1 and rcall("ZCARD", KEYS[3]) + rcall("ZCARD", KEYS[4]) > 0 then
  rcall("PUBLISH", ARGV[2], ARGV[3])
end
return released
