--[[
  Passive health: marks a dependency degraded from tool-call outcomes, between
  probes. Only ever downgrades (healthy, unknown or missing -> degraded); keeps the
  signal's TTL when it is longer than ours. Recovery needs healthy probes.

  KEYS[1] the dependency's health hash   KEYS[2] the cell's deps set
  ARGV[1] now   ARGV[2] detail   ARGV[3] TTL ms   ARGV[4] dependency
  ARGV[5] the cell's signals channel: "degraded <dep>" tells every exec process at once, so
          none goes on calling it until its health cache expires

  Returns 1 when it marked, 0 when already degraded or down; announces it on ARGV[5] either way.
]]
local cur = redis.call("HGET", KEYS[1], "state")
if cur == "degraded" or cur == "down" then
  -- Already not callable (a probe may have said so first): still tell the exec processes, which may
  -- not have read it yet. Callers send this at most once a second per process.
  redis.call("PUBLISH", ARGV[5], "degraded " .. ARGV[4])
  return 0
end
redis.call("HSET", KEYS[1], "state", "degraded", "since", ARGV[1], "detail", ARGV[2], "source", "passive")
local ttl = tonumber(ARGV[3])
if redis.call("PTTL", KEYS[1]) < ttl then redis.call("PEXPIRE", KEYS[1], ttl) end
redis.call("SADD", KEYS[2], ARGV[4])
redis.call("PUBLISH", ARGV[5], "degraded " .. ARGV[4])
return 1
