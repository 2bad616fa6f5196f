--[[
  An exec worker advertises its capacity (concurrency) in its pool until
  ARGV[3], and its batch limit: how many of those slots Class C may take now
  (lower while its event loop lags: src/exec/batchLimit.ts); concurrency 0
  removes it. Expired workers are pruned, so a killed worker's share
  disappears within its heartbeat TTL. A new worker, or a batch limit that
  rose, wakes the dispatchers (capacity grew).

  KEYS[1]  pool workers zset   KEYS[2] pool concurrency hash
  KEYS[3]  cell pools set      KEYS[4] cell wake marker
  KEYS[5]  pool batch-limit hash
  ARGV[1]  worker id   ARGV[2] concurrency   ARGV[3] expires at   ARGV[4] now   ARGV[5] pool
  ARGV[6]  batch limit (0..concurrency)
]]
local rcall = redis.call
local added = 0
local wake = false
if tonumber(ARGV[2]) > 0 then
  added = rcall("ZADD", KEYS[1], ARGV[3], ARGV[1])
  rcall("HSET", KEYS[2], ARGV[1], ARGV[2])
  rcall("SADD", KEYS[3], ARGV[5])
  local before = tonumber(rcall("HGET", KEYS[5], ARGV[1]) or ARGV[2])
  if tonumber(ARGV[6]) > before then wake = true end
  rcall("HSET", KEYS[5], ARGV[1], ARGV[6])
else
  rcall("ZREM", KEYS[1], ARGV[1])
  rcall("HDEL", KEYS[2], ARGV[1])
  rcall("HDEL", KEYS[5], ARGV[1])
end
local dead = rcall("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[4])
for _, w in ipairs(dead) do
  rcall("ZREM", KEYS[1], w)
  rcall("HDEL", KEYS[2], w)
  rcall("HDEL", KEYS[5], w)
end
if added == 1 or wake then rcall("ZADD", KEYS[4], 0, "w") end
return added
