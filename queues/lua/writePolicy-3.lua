--[[
  Writes one tenant's or one org's policy spec in the registry (or deletes it), bumps the registry
  version and logs what changed under that version, atomically. A process whose registry is at
  version v reads the log above v and re-reads only the names it lists (src/tenancy/registry.ts)
  rather than the whole hash. The log keeps the last ARGV[4] changes; a process further behind, or
  after a write that logs nothing (a seed, a process of an older version), reads the whole registry.

  KEYS[1]  the hash                <root>:{<root>.reg}:tenants or :orgs
  KEYS[2]  the version counter     <root>:{<root>.reg}:version
  KEYS[3]  the change log          <root>:{<root>.reg}:changes (ZSET "<version> <t|o> <name>" -> version)
  ARGV[1]  name    ARGV[2] spec JSON ("" deletes it)    ARGV[3] "t" (tenant) or "o" (org)
  ARGV[4]  how many changes the log keeps
  Returns the new version.
]]
local rcall = redis.call
if ARGV[2] == "" then rcall("HDEL", KEYS[1], ARGV[1]) else rcall("HSET", KEYS[1], ARGV[1], ARGV[2]) end
local v = rcall("INCR", KEYS[2])
rcall("ZADD", KEYS[3], v, v .. " " .. ARGV[3] .. " " .. ARGV[1])
rcall("ZREMRANGEBYRANK", KEYS[3], 0, -1 - tonumber(ARGV[4]))
return v
