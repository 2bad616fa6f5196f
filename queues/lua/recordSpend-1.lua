--[[
  Adds a spend to a tenant's month total (integer micro-dollars) and gives a new month key its TTL,
  atomically and in one round trip (MULTI/EXEC was two commands and a client-side transaction per call).
  KEYS[1] <cell>:spend:<tenant>:<yyyymm>
  ARGV    micro-dollars, ttl seconds
  Returns the month's new total in micro-dollars.
]]
local total = redis.call("INCRBY", KEYS[1], ARGV[1])
redis.call("EXPIRE", KEYS[1], ARGV[2], "NX")
return total
