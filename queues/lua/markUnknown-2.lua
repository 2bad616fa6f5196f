--[[
  A health monitor's announcement before its first probe: the dependency is
  watched and its first verdict is under way. Writes "unknown" only where no
  signal exists, so it never overwrites another monitor's verdict, a passive
  downgrade or its TTL. Workflows call an unknown dependency (no evidence of
  an outage yet); /readyz waits for its first verdict; recovery does not count
  it healthy. Expires like any probe signal if the monitor dies before probing.

  KEYS[1] the dependency's health hash   KEYS[2] the cell's deps set
  ARGV[1] now   ARGV[2] TTL ms   ARGV[3] dependency

  Returns 1 when it wrote, 0 when a signal was already there.
]]
if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
redis.call("HSET", KEYS[1], "state", "unknown", "since", ARGV[1], "detail", "first probe under way", "source", "probe")
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]))
redis.call("SADD", KEYS[2], ARGV[3])
return 1
