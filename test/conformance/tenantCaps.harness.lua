--[[
  Test-only (test/conformance/caps.test.ts): includes/tenantCaps.lua's two
  decisions on their own, with the caps as the dispatch script reads them
  from <cell>:fl:tp:<tenant>, so generated cases cost one EVAL each.

  ARGV[1] the tp hash's fields (JSON object of strings)
  ARGV[2] now   ARGV[3] running Class A   ARGV[4] running Class B + C

  Returns {B/C eligible 0|1, opens a burst 0|1, cooldown ends at or -1, Class A eligible 0|1}
]]
local rcall = redis.call
--- @include "tenantCaps"

local caps = cjson.decode(ARGV[1])
local now, runA, runBC = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ok, starts, retryAt = bcEligible(caps, runBC, now)
return { ok and 1 or 0, starts and 1 or 0, retryAt or -1, aEligible(caps, runA) and 1 or 0 }
