--[[
  The heads of the sorted sets one script call reads again and again (the dispatch's ready sets):
  a set's first `size` members and scores are read in one ZRANGE, then kept right in Lua as the
  call's own writes change the set, so a call reads a set's head once rather than once per move.

  A window is always an exact prefix of its set in Redis's order (score, then member bytes):
    - a member removed leaves the window;
    - a member added goes in ahead of the first member of the window with a greater score, or stays
      out when none has one, unless the window holds the whole set (then it goes last). No member
      comparison is needed: every member added carries a dispatch sequence newer than any already in
      the set ("<seq>:<flow>", seq zero-padded to 14 digits: includes/flows.lua), so it sorts after
      every member of an equal score.
  A window emptied of a set it does not hold whole is read again. Scores are kept as Redis wrote
  them (text) for writing back, and as numbers for comparing.
  `heads`: the windows by set key, for one script call; a caller that writes the sets any other way
  (a recompute) forgets them.
]]
-- The head of sorted set `key`: its member and score (a number); nil when the set is empty.
-- `size`: how many members a read takes. `beforeRead(key)` (optional) runs before a read: a caller that
-- holds writes to the set back makes them first.
local function windowHead(heads, key, size, beforeRead)
  local w = heads[key]
  if w == nil or (#w.m == 0 and not w.whole) then
    if beforeRead then beforeRead(key) end
    local r = rcall("ZRANGE", key, 0, size - 1, "WITHSCORES")
    w = { m = {}, s = {}, t = {}, whole = #r < 2 * size }
    for i = 1, #r, 2 do
      local n = #w.m + 1
      w.m[n], w.t[n], w.s[n] = r[i], r[i + 1], tonumber(r[i + 1])
    end
    heads[key] = w
  end
  return w.m[1], w.s[1]
end

-- `member`'s score in set `key` as text, as far as its window knows: false when the window holds the whole
-- set and not it, nil when the window cannot tell (no window, or one that does not reach it).
local function windowScore(heads, key, member)
  local w = heads[key]
  if not w then return nil end
  for i = 1, #w.m do
    if w.m[i] == member then return w.t[i] end
  end
  if w.whole then return false end
  return nil
end

-- The script removed `member` from set `key`.
local function windowRemoved(heads, key, member)
  local w = heads[key]
  if not w then return end
  for i = 1, #w.m do
    if w.m[i] == member then
      table.remove(w.m, i)
      table.remove(w.s, i)
      table.remove(w.t, i)
      return
    end
  end
end

-- The script added `member` (the newest dispatch sequence in the set) to set `key` with score `text`.
local function windowAdded(heads, key, member, text)
  local w = heads[key]
  if not w then return end
  local score = tonumber(text)
  local at = #w.s + 1
  for i = 1, #w.s do
    if w.s[i] > score then
      at = i
      break
    end
  end
  if at > #w.s and not w.whole then return end
  table.insert(w.m, at, member)
  table.insert(w.s, at, score)
  table.insert(w.t, at, text)
end
